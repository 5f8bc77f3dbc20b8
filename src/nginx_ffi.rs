//! nginx's digest, base64 and time functions behind safe wrappers, for the
//! `ngx` API and the subrequest code. Only called inside nginx (never from
//! unit tests, which do not link it).

use core::ffi::c_void;

use nginx_sys::{ngx_str_t, time_t, tm};

/// `ngx_md5_t` (`src/core/ngx_md5.h`).
#[repr(C)]
struct Md5Ctx {
    bytes: u64,
    state: [u32; 4],
    buffer: [u8; 64],
}

/// `ngx_sha1_t` (`src/core/ngx_sha1.h`).
#[repr(C)]
struct Sha1Ctx {
    bytes: u64,
    state: [u32; 6],
    buffer: [u8; 64],
}

// The layout build/layout_checks.c asserts of nginx's own structures.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Md5Ctx, state) == 8 && offset_of!(Md5Ctx, buffer) == 24);
    assert!(size_of::<Md5Ctx>() == 88);
    assert!(offset_of!(Sha1Ctx, state) == 8 && offset_of!(Sha1Ctx, buffer) == 32);
    assert!(size_of::<Sha1Ctx>() == 96);
};

// nginx's own MD5 and SHA-1 (always built into nginx, whatever its
// configure flags); nginx-sys does not bind their headers.
extern "C" {
    fn ngx_md5_init(ctx: *mut Md5Ctx);
    fn ngx_md5_update(ctx: *mut Md5Ctx, data: *const c_void, size: usize);
    fn ngx_md5_final(result: *mut u8, ctx: *mut Md5Ctx);
    fn ngx_sha1_init(ctx: *mut Sha1Ctx);
    fn ngx_sha1_update(ctx: *mut Sha1Ctx, data: *const c_void, size: usize);
    fn ngx_sha1_final(result: *mut u8, ctx: *mut Sha1Ctx);
}

pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut ctx = Md5Ctx {
        bytes: 0,
        state: [0; 4],
        buffer: [0; 64],
    };
    let mut digest = [0u8; 16];
    // SAFETY: `ctx` has ngx_md5_t's layout; nginx reads `data.len()`
    // bytes of `data` and writes exactly 16 bytes of digest.
    unsafe {
        ngx_md5_init(&mut ctx);
        ngx_md5_update(&mut ctx, data.as_ptr().cast(), data.len());
        ngx_md5_final(digest.as_mut_ptr(), &mut ctx);
    }
    digest
}

/// SHA-1 of the concatenation of `parts`.
pub fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut ctx = Sha1Ctx {
        bytes: 0,
        state: [0; 6],
        buffer: [0; 64],
    };
    let mut digest = [0u8; 20];
    // SAFETY: `ctx` has ngx_sha1_t's layout; nginx reads each part's
    // bytes and writes exactly 20 bytes of digest.
    unsafe {
        ngx_sha1_init(&mut ctx);
        for part in parts {
            ngx_sha1_update(&mut ctx, part.as_ptr().cast(), part.len());
        }
        ngx_sha1_final(digest.as_mut_ptr(), &mut ctx);
    }
    digest
}

pub fn crc32_table16() -> &'static [u32; 16] {
    // SAFETY: nginx points ngx_crc32_table_short at a 16-entry table at
    // startup (an aligned copy of its static one) and never frees it.
    unsafe { &*nginx_sys::ngx_crc32_table_short.cast::<[u32; 16]>() }
}

pub fn crc32_table256() -> &'static [u32; 256] {
    // SAFETY: nginx defines ngx_crc32_table256 as a static
    // uint32_t[256]; the binding only lacks its length.
    unsafe { &*core::ptr::addr_of!(nginx_sys::ngx_crc32_table256).cast::<[u32; 256]>() }
}

/// The two alphabets of nginx's base64 coders: `+/` (RFC 4648 section 4)
/// and the URL-safe `-_` (section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64 {
    Standard,
    Url,
}

/// nginx's encoder, with `=` padding for the standard alphabet and none for
/// the URL one.
pub fn encode_base64(data: &[u8], alphabet: Base64) -> Vec<u8> {
    let coded = base64_code(data, data.len().div_ceil(3) * 4, |dst, src| {
        // SAFETY: nginx only reads `src` and writes at most
        // ngx_base64_encoded_length(len) bytes, the room given to `dst`.
        unsafe {
            match alphabet {
                Base64::Standard => nginx_sys::ngx_encode_base64(dst, src),
                Base64::Url => nginx_sys::ngx_encode_base64url(dst, src),
            }
        }
        nginx_sys::NGX_OK as nginx_sys::ngx_int_t
    });
    coded.unwrap_or_default()
}

/// nginx's decoder: `None` for bytes outside the alphabet before the
/// first `=` or a length that cannot be base64; padding is optional.
pub fn decode_base64(data: &[u8], alphabet: Base64) -> Option<Vec<u8>> {
    base64_code(data, data.len().div_ceil(4) * 3, |dst, src| {
        // SAFETY: nginx only reads `src` and writes at most
        // ngx_base64_decoded_length(len) bytes, the room given to `dst`.
        unsafe {
            match alphabet {
                Base64::Standard => nginx_sys::ngx_decode_base64(dst, src),
                Base64::Url => nginx_sys::ngx_decode_base64url(dst, src),
            }
        }
    })
}

/// Runs one of nginx's base64 coders over `data` into a buffer of
/// `room` bytes, which `code(dst, src)` may fill up to its ngx_base64_*
/// length: at most `room`. `None` when it does not return NGX_OK.
fn base64_code(
    data: &[u8],
    room: usize,
    code: impl FnOnce(*mut ngx_str_t, *mut ngx_str_t) -> nginx_sys::ngx_int_t,
) -> Option<Vec<u8>> {
    let mut out = vec![0u8; room];
    let mut src = ngx_str_t {
        len: data.len(),
        data: data.as_ptr().cast_mut(),
    };
    let mut dst = ngx_str_t {
        len: 0,
        data: out.as_mut_ptr(),
    };
    if code(&mut dst, &mut src) != nginx_sys::NGX_OK as nginx_sys::ngx_int_t {
        return None;
    }
    out.truncate(dst.len);
    Some(out)
}

/// Room for any date nginx's formatters write: 29 bytes for years up to
/// 9999, a few more for the absurd ones far from now.
const TIME_BUFFER: usize = 64;

fn format_with(sec: time_t, format: unsafe extern "C" fn(*mut u8, time_t) -> *mut u8) -> Vec<u8> {
    let mut buf = [0u8; TIME_BUFFER];
    // SAFETY: the formatter writes one date (at most 40 bytes, even for
    // a 64-bit year cut to C's int) into `buf` and returns its end.
    let end = unsafe { format(buf.as_mut_ptr(), sec) };
    // SAFETY: `end` points into `buf`, at or after its start.
    let len = unsafe { end.offset_from(buf.as_ptr()) };
    buf[..usize::try_from(len).unwrap_or(0).min(TIME_BUFFER)].to_vec()
}

/// `Thu, 18 Nov 2010 11:27:35 GMT`.
pub fn http_time(sec: time_t) -> Vec<u8> {
    format_with(sec, nginx_sys::ngx_http_time)
}

/// `Thu, 18-Nov-10 11:27:35 GMT` (four-digit years after 2037).
pub fn cookie_time(sec: time_t) -> Vec<u8> {
    format_with(sec, nginx_sys::ngx_http_cookie_time)
}

/// Seconds since the epoch of an RFC 1123, RFC 850 or asctime date.
pub fn parse_http_time(text: &[u8]) -> Option<time_t> {
    // SAFETY: nginx reads `text.len()` bytes and does not write them.
    let t = unsafe { nginx_sys::ngx_parse_http_time(text.as_ptr().cast_mut(), text.len()) };
    (t != nginx_sys::NGX_ERROR as time_t).then_some(t)
}

/// nginx's broken-down UTC time of `sec`: full year, month from 1.
pub fn gmtime(sec: time_t) -> tm {
    // SAFETY: `tm` is plain data (ints and a pointer); all zeroes is a
    // valid value.
    let mut broken: tm = unsafe { core::mem::zeroed() };
    // SAFETY: ngx_gmtime only writes the fields of `broken`.
    unsafe { nginx_sys::ngx_gmtime(sec, &mut broken) };
    broken
}

/// nginx's cached time shifted to local time by its cached UTC offset.
pub fn local_seconds() -> time_t {
    let now = nginx_sys::ngx_timeofday();
    now.sec + now.gmtoff as time_t * 60
}

/// The prefix nginx runs with (`-p`), with its trailing slash.
pub fn cycle_prefix() -> Vec<u8> {
    // SAFETY: ngx_cycle is set before any module code runs; its prefix
    // lives as long as the cycle.
    unsafe {
        let prefix = &(*nginx_sys::ngx_cycle).prefix;
        if prefix.data.is_null() || prefix.len == 0 {
            return Vec::new();
        }
        core::slice::from_raw_parts(prefix.data, prefix.len).to_vec()
    }
}

/// Whether the worker is shutting down gracefully (OpenResty reads the
/// same flag).
pub fn worker_exiting() -> bool {
    // SAFETY: plain read of a global that only this (single-threaded)
    // process writes.
    unsafe { nginx_sys::ngx_exiting != 0 }
}
