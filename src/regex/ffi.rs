//! The C-ABI functions `ngx.re`'s Lua calls through LuaJIT's FFI
//! (declared in `ffi.h`): a loop of cached matches then compiles into one
//! trace. None raises; none allocates on the Lua heap. A panic, which none
//! should produce, is caught and reported as an error code.

use core::ffi::{c_char, c_int};
use core::panic::AssertUnwindSafe;
use core::slice;
use std::cell::RefCell;

use super::{Regex, Template};

/// The C declarations of this file's functions and structures.
pub const DECLARATIONS: &str = include_str!("ffi.h");

/// Returned for a panic (a bug): not one of PCRE2's codes.
pub const PANICKED: c_int = -1000;

/// Output of `ngx_lua_regex_substitute`.
#[repr(C)]
pub struct Output {
    data: *const u8,
    len: usize,
}

thread_local! {
    /// The last substitution's text, kept for the next call: the Lua side
    /// copies it into a string right away.
    static SUBSTITUTED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A substitution buffer grown past this is given back after its use.
const KEPT_OUTPUT_MAX: usize = 1 << 20;

/// # Safety
/// `data` points to `len` readable bytes (or `len` is 0).
unsafe fn bytes<'a>(data: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's promise.
    unsafe { slice::from_raw_parts(data.cast(), len) }
}

/// Writes `message` into the caller's `err` buffer, NUL-terminated and cut
/// to fit.
///
/// # Safety
/// `err` points to `err_len` writable bytes.
unsafe fn write_error(message: &str, err: *mut c_char, err_len: usize) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let len = message.len().min(err_len - 1);
    // SAFETY: len + 1 <= err_len bytes are written.
    unsafe {
        core::ptr::copy_nonoverlapping(message.as_ptr(), err.cast::<u8>(), len);
        *err.add(len) = 0;
    }
}

/// Compiles a pattern; null with the message in `err` when it fails.
///
/// # Safety
/// `pattern` points to `len` bytes; `err` to `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_compile(
    pattern: *const c_char,
    len: usize,
    flags: u32,
    err: *mut c_char,
    err_len: usize,
) -> *mut Regex {
    // SAFETY: the caller's promise.
    let pattern = unsafe { bytes(pattern, len) };
    let result = std::panic::catch_unwind(|| Regex::new(pattern, flags))
        .unwrap_or_else(|_| Err("internal error while compiling the regex".to_string()));
    match result {
        Ok(regex) => Box::into_raw(regex),
        Err(message) => {
            // SAFETY: the caller's promise.
            unsafe { write_error(&message, err, err_len) };
            core::ptr::null_mut()
        }
    }
}

/// Matches from byte `start`; see [`Regex::exec`].
///
/// # Safety
/// `re` is a live pattern from `ngx_lua_regex_compile`; `subject` points to
/// `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_exec(
    re: *mut Regex,
    subject: *const c_char,
    len: usize,
    start: usize,
) -> c_int {
    // SAFETY: the caller's promise; the Lua side never uses one pattern
    // from two calls at once.
    let (re, subject) = unsafe { (&mut *re, bytes(subject, len)) };
    std::panic::catch_unwind(AssertUnwindSafe(|| re.exec(subject, start))).unwrap_or(PANICKED)
}

/// # Safety
/// `re` is null or a pattern from `ngx_lua_regex_compile`, freed once.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_free(re: *mut Regex) {
    if !re.is_null() {
        // SAFETY: the caller's promise: it came from Box::into_raw.
        drop(unsafe { Box::from_raw(re) });
    }
}

/// Compiles a replacement template; null with OpenResty's log line in
/// `err` when it is invalid.
///
/// # Safety
/// `text` points to `len` bytes; `err` to `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_template_compile(
    text: *const c_char,
    len: usize,
    err: *mut c_char,
    err_len: usize,
) -> *mut Template {
    // SAFETY: the caller's promise.
    let text = unsafe { bytes(text, len) };
    let result = std::panic::catch_unwind(|| Template::new(text))
        .unwrap_or_else(|_| Err("internal error while compiling the template".to_string()));
    match result {
        Ok(template) => Box::into_raw(Box::new(template)),
        Err(message) => {
            // SAFETY: the caller's promise.
            unsafe { write_error(&message, err, err_len) };
            core::ptr::null_mut()
        }
    }
}

/// # Safety
/// `template` is null or from `ngx_lua_regex_template_compile`, freed once.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_template_free(template: *mut Template) {
    if !template.is_null() {
        // SAFETY: the caller's promise: it came from Box::into_raw.
        drop(unsafe { Box::from_raw(template) });
    }
}

/// Replaces the first match (every match when `global` is not 0) of `re`
/// in `subject` by `template`: returns the number of matches replaced, with
/// the new text in `out` (valid until the next call) when there was one, or
/// a PCRE2 error code.
///
/// # Safety
/// `re` and `template` are live objects from this file's compile
/// functions; `subject` points to `len` bytes; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn ngx_lua_regex_substitute(
    re: *mut Regex,
    template: *const Template,
    subject: *const c_char,
    len: usize,
    global: c_int,
    out: *mut Output,
) -> c_int {
    // SAFETY: the caller's promise.
    let (re, template, subject, out) =
        unsafe { (&mut *re, &*template, bytes(subject, len), &mut *out) };
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        SUBSTITUTED.with_borrow_mut(|text| {
            if text.capacity() > KEPT_OUTPUT_MAX {
                *text = Vec::new();
            }
            text.clear();
            let count = substitute(re, template, subject, global != 0, text);
            out.data = text.as_ptr();
            out.len = text.len();
            count
        })
    }));
    result.unwrap_or(PANICKED)
}

/// The substitution loop: after an empty match the next search starts one
/// byte further, as in OpenResty.
pub(super) fn substitute(
    re: &mut Regex,
    template: &Template,
    subject: &[u8],
    global: bool,
    text: &mut Vec<u8>,
) -> c_int {
    let mut count = 0;
    let mut start = 0;
    let mut copied = 0;
    loop {
        let rc = re.exec(subject, start);
        if rc == super::NO_MATCH {
            break;
        }
        if rc < 0 {
            return rc;
        }
        count += 1;
        let offsets = re.offsets();
        let (from, to) = (offsets[0] as usize, offsets[1] as usize);
        text.extend_from_slice(&subject[copied..from]);
        template.expand(subject, &offsets[..2 * rc as usize], text);
        copied = to;
        start = to;
        if to == from {
            start += 1;
            if start > subject.len() {
                break;
            }
        }
        if !global {
            break;
        }
    }
    if count > 0 {
        text.extend_from_slice(&subject[copied..]);
    }
    count
}

/// `ngx.re.opt("jit_stack_size", size)`: 0 when done, -1 when the stack
/// could not be allocated.
#[no_mangle]
pub extern "C" fn ngx_lua_regex_set_jit_stack_size(size: usize) -> c_int {
    if super::set_jit_stack_size(size) {
        0
    } else {
        -1
    }
}
