//! The store's C-ABI operations: what the Lua binding calls through LuaJIT's
//! FFI, so that a loop of dictionary calls compiles into one trace instead
//! of leaving it for a Lua C function on every call.
//!
//! `ffi.h` declares them for `ffi.cdef`. Each function takes the zone handle
//! (a `SharedZone` pointer, which a dictionary table holds) and the key as
//! pointer and length, writes its results into the caller's memory and
//! returns a status code. None of them raises, allocates on the heap or logs;
//! each takes the zone lock at most once (through [`Store`]). A panic, which
//! no operation should produce, is caught here and reported as [`PANICKED`].
//!
//! nginx loads modules with `RTLD_GLOBAL`, so `ffi.C` finds these symbols in
//! the worker. Unit tests link without nginx and do not export them.

use core::ffi::{c_int, c_void};
use core::panic::AssertUnwindSafe;

use super::zone::SharedZone;
use super::{
    decode_value, Keys, ListEnd, Read, ScanItem, Scanned, Store, StoreError, Swap, Value,
    ValueKind, WriteMode,
};
use crate::nginx;

/// The C declarations of this file's functions and structures.
pub const DECLARATIONS: &str = include_str!("ffi.h");

/// Success.
pub const OK: c_int = 0;
/// A read found no live value (get, pop).
pub const MISS: c_int = 1;
/// The caller's buffer is too small: `out.len` bytes (and, for keys,
/// `out.count` length slots) are needed. Nothing was changed.
pub const TOO_SMALL: c_int = 2;
/// A compare-and-set found another value than the expected one.
pub const CHANGED: c_int = 3;
/// The handle's zone has no store yet.
pub const NO_STORE: c_int = -100;
/// The operation panicked (a bug); the zone lock was released.
pub const PANICKED: c_int = -101;

/// Every store error with its status code: the Lua binding's table of error
/// strings is built from this, so the codes and wording live here only.
pub const ERRORS: [(c_int, StoreError); 6] = [
    (-1, StoreError::NoMemory),
    (-2, StoreError::Exists),
    (-3, StoreError::NotFound),
    (-4, StoreError::NotANumber),
    (-5, StoreError::NotAList),
    (-6, StoreError::IsList),
];

fn error_status(error: StoreError) -> c_int {
    ERRORS
        .iter()
        .find(|(_, e)| *e == error)
        .map_or(PANICKED, |(code, _)| *code)
}

/// The write modes by the numbers `ngx_lua_shdict_store` takes.
pub const WRITE_MODES: [(c_int, WriteMode); 5] = [
    (0, WriteMode::Set),
    (1, WriteMode::SafeSet),
    (2, WriteMode::Add),
    (3, WriteMode::SafeAdd),
    (4, WriteMode::Replace),
];

/// A value's kind as these functions take and report it; 0 is nil.
pub const KIND_NIL: c_int = 0;

/// Results of one call (`ngx_lua_shdict_out_t`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct Out {
    pub number: f64,
    pub len: u32,
    pub flags: i32,
    pub kind: i32,
    pub stale: i32,
    pub forcible: i32,
    pub count: u32,
}

/// One slot class in [`StatsOut`] (`ngx_lua_shdict_slab_t`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SlabOut {
    pub size: f64,
    pub total: f64,
    pub used: f64,
    pub requests: f64,
    pub failures: f64,
}

/// `dict:stats()` figures (`ngx_lua_shdict_stats_t`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StatsOut {
    pub capacity: f64,
    pub free_space: f64,
    pub used_bytes: f64,
    pub entries: f64,
    pub lists: f64,
    pub expired_pending: f64,
    pub hits: f64,
    pub misses: f64,
    pub stores: f64,
    pub evictions: f64,
    pub expirations: f64,
    pub no_memory: f64,
    pub pages_total: f64,
    pub pages_free: f64,
    pub slab_count: u32,
    pub slabs: [SlabOut; super::stats::MAX_SLAB_CLASSES],
}

// The layout ffi.h declares for LuaJIT, which build/layout_checks.c asserts
// of it.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(Out, len) == 8 && offset_of!(Out, flags) == 12);
    assert!(offset_of!(Out, kind) == 16 && offset_of!(Out, stale) == 20);
    assert!(offset_of!(Out, forcible) == 24 && offset_of!(Out, count) == 28);
    assert!(size_of::<Out>() == 32 && size_of::<SlabOut>() == 40);
    assert!(offset_of!(ScanItem, key_len) == 8 && offset_of!(ScanItem, value_len) == 12);
    assert!(offset_of!(ScanItem, kind) == 16 && offset_of!(ScanItem, flags) == 20);
    assert!(size_of::<ScanItem>() == 24);
    assert!(offset_of!(StatsOut, slab_count) == 112 && offset_of!(StatsOut, slabs) == 120);
    assert!(super::stats::MAX_SLAB_CLASSES == 128);
    assert!(size_of::<StatsOut>() == 120 + 128 * 40);
};

/// Runs one operation, turning a panic into [`PANICKED`].
fn guarded(op: impl FnOnce() -> c_int) -> c_int {
    std::panic::catch_unwind(AssertUnwindSafe(op)).unwrap_or(PANICKED)
}

/// The zone behind a handle.
///
/// # Safety
/// `zone` is null or a `SharedZone` that outlives the call.
unsafe fn zone_of<'a>(zone: *const c_void) -> Option<&'a SharedZone> {
    // SAFETY: per this function's contract.
    unsafe { zone.cast::<SharedZone>().as_ref() }
}

/// Runs `op` on the store behind `zone`, or answers [`NO_STORE`].
///
/// # Safety
/// As [`zone_of`].
unsafe fn with_store(zone: *const c_void, op: impl FnOnce(Store) -> c_int) -> c_int {
    // SAFETY: per this function's contract.
    match unsafe { zone_of(zone) }.and_then(SharedZone::store) {
        Some(store) => guarded(|| op(store)),
        None => NO_STORE,
    }
}

/// # Safety
/// `ptr` is valid for `len` bytes of reads (or `len` is 0).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: per this function's contract.
        unsafe { core::slice::from_raw_parts(ptr, len) }
    }
}

/// # Safety
/// `ptr` is valid for `len` bytes of writes (or `len` is 0).
unsafe fn bytes_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if ptr.is_null() || len == 0 {
        &mut []
    } else {
        // SAFETY: per this function's contract.
        unsafe { core::slice::from_raw_parts_mut(ptr, len) }
    }
}

/// # Safety
/// As [`bytes`], for `str` when `kind` is a string.
unsafe fn value_arg<'a>(kind: c_int, str: *const u8, len: usize, number: f64) -> Option<Value<'a>> {
    match u8::try_from(kind).ok().and_then(ValueKind::from_byte)? {
        // SAFETY: per this function's contract.
        ValueKind::Str => Some(Value::Str(unsafe { bytes(str, len) })),
        ValueKind::Number => Some(Value::Number(number)),
        ValueKind::Bool => Some(Value::Bool(number != 0.0)),
        ValueKind::List => None,
    }
}

/// A number as OpenResty's FFI call hands it to a C `int` (user flags):
/// truncated, and NaN or anything out of range is INT_MIN.
pub fn c_int_of(number: f64) -> i32 {
    if number.is_nan() || number >= 2_147_483_648.0 || number <= -2_147_483_649.0 {
        i32::MIN
    } else {
        number as i32
    }
}

/// Seconds (fractional) to an absolute expiry in ms; 0 for never.
pub fn expiry_from_seconds(seconds: f64, now_ms: u64) -> u64 {
    expiry_from_ms(seconds * 1000.0, now_ms)
}

/// Milliseconds from now to an absolute expiry in ms; 0 for never, as
/// OpenResty reads them: converted to a C `long` (truncated; NaN, infinity
/// and anything from 2^63 up become LONG_MIN), then a value of 0 or less
/// means never. So sub-ms exptimes, negative ones (for `expire`) and NaN
/// never expire.
pub fn expiry_from_ms(ms: f64, now_ms: u64) -> u64 {
    const LONG_LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(1.0..LONG_LIMIT).contains(&ms) {
        return 0;
    }
    now_ms.saturating_add(ms as u64)
}

/// Reports a read: strings stay in the buffer (`len` bytes), numbers and
/// booleans go to `number`.
fn report_read(read: Result<Read, StoreError>, buf: &[u8], out: &mut Out) -> c_int {
    match read {
        Ok(Read::Hit(found)) => {
            out.kind = c_int::from(found.kind as u8);
            out.flags = found.user_flags as i32;
            out.stale = c_int::from(found.stale);
            out.len = found.len as u32;
            out.number = match decode_value(found.kind, &buf[..found.len]) {
                Value::Number(n) => n,
                Value::Bool(b) => f64::from(u8::from(b)),
                Value::Str(_) => 0.0,
            };
            OK
        }
        Ok(Read::Miss) => MISS,
        Ok(Read::TooLarge(needed)) => {
            out.len = u32::try_from(needed).unwrap_or(u32::MAX);
            TOO_SMALL
        }
        Err(e) => error_status(e),
    }
}

/// Reports a number result in `out.number`.
fn report_number(result: Result<f64, StoreError>, out: &mut Out) -> c_int {
    match result {
        Ok(number) => {
            out.number = number;
            OK
        }
        Err(e) => error_status(e),
    }
}

fn list_end(at_tail: c_int) -> ListEnd {
    if at_tail != 0 {
        ListEnd::Tail
    } else {
        ListEnd::Head
    }
}

/// `get` / `get_stale`.
///
/// # Safety
/// `zone` is a dictionary handle; `key`, `buf` and `out` are valid for
/// `key_len` bytes, `buf_len` bytes and one `Out`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_get(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    allow_stale: c_int,
    buf: *mut u8,
    buf_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, buf, out) = (bytes(key, key_len), bytes_mut(buf, buf_len), &mut *out);
        with_store(zone, |store| {
            let read = store.get_into(key, nginx::now_ms(), allow_stale != 0, buf);
            report_read(read, buf, out)
        })
    }
}

/// `set`, `safe_set`, `add`, `safe_add`, `replace` (`mode` from
/// [`WRITE_MODES`]); a value of kind [`KIND_NIL`] removes the key once the
/// mode's condition holds.
///
/// # Safety
/// As [`ngx_lua_shdict_get`], with `str` valid for `str_len` bytes.
#[cfg_attr(not(test), no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_lua_shdict_store(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    mode: c_int,
    kind: c_int,
    str: *const u8,
    str_len: usize,
    number: f64,
    exptime: f64,
    flags: f64,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        let value = value_arg(kind, str, str_len, number);
        let Some(&(_, mode)) = WRITE_MODES.iter().find(|(code, _)| *code == mode) else {
            return PANICKED;
        };
        with_store(zone, |store| {
            let now = nginx::now_ms();
            let expires = expiry_from_seconds(exptime, now);
            match store.write(key, value, expires, c_int_of(flags) as u32, mode, now) {
                Ok(written) => {
                    out.forcible = c_int::from(written.forcible);
                    OK
                }
                Err(e) => error_status(e),
            }
        })
    }
}

/// `cas`: `expected_kind` [`KIND_NIL`] expects the key absent, `kind`
/// [`KIND_NIL`] removes it. OK when swapped (`out.forcible` set), [`MISS`]
/// when a value was expected and none is live, [`CHANGED`] when another is.
///
/// # Safety
/// As [`ngx_lua_shdict_store`], with `expected_str` valid for
/// `expected_len` bytes.
#[cfg_attr(not(test), no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_lua_shdict_cas(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    expected_kind: c_int,
    expected_str: *const u8,
    expected_len: usize,
    expected_number: f64,
    kind: c_int,
    str: *const u8,
    str_len: usize,
    number: f64,
    exptime: f64,
    flags: f64,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        let expected = value_arg(expected_kind, expected_str, expected_len, expected_number);
        let new = value_arg(kind, str, str_len, number);
        with_store(zone, |store| {
            let now = nginx::now_ms();
            let expires = expiry_from_seconds(exptime, now);
            match store.compare_and_set(key, expected, new, expires, c_int_of(flags) as u32, now) {
                Ok(Swap::Done { forcible }) => {
                    out.forcible = c_int::from(forcible);
                    OK
                }
                Ok(Swap::NotFound) => MISS,
                Ok(Swap::Changed) => CHANGED,
                Err(e) => error_status(e),
            }
        })
    }
}

/// `delete`.
///
/// # Safety
/// `zone` is a dictionary handle; `key` is valid for `key_len` bytes.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_delete(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let key = bytes(key, key_len);
        with_store(zone, |store| {
            store.delete(key, nginx::now_ms());
            OK
        })
    }
}

/// `incr`; the new value goes to `out.number`.
///
/// # Safety
/// As [`ngx_lua_shdict_delete`], with `out` valid for one `Out`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_incr(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    delta: f64,
    has_init: c_int,
    init: f64,
    init_ttl: f64,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        with_store(zone, |store| {
            let now = nginx::now_ms();
            let init = (has_init != 0).then(|| (init, expiry_from_seconds(init_ttl, now)));
            match store.incr(key, delta, init, now) {
                Ok((value, forcible)) => {
                    out.number = value;
                    out.forcible = c_int::from(forcible);
                    OK
                }
                Err(e) => error_status(e),
            }
        })
    }
}

/// `lpush` / `rpush`; the new length goes to `out.number`.
///
/// # Safety
/// As [`ngx_lua_shdict_store`].
#[cfg_attr(not(test), no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_lua_shdict_push(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    at_tail: c_int,
    kind: c_int,
    str: *const u8,
    str_len: usize,
    number: f64,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        let Some(value) = value_arg(kind, str, str_len, number) else {
            return PANICKED;
        };
        with_store(zone, |store| {
            let pushed = store.push(key, value, list_end(at_tail), nginx::now_ms());
            report_number(pushed.map(|len| len as f64), out)
        })
    }
}

/// `lpop` / `rpop`, reported as a read.
///
/// # Safety
/// As [`ngx_lua_shdict_get`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_pop(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    at_tail: c_int,
    buf: *mut u8,
    buf_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, buf, out) = (bytes(key, key_len), bytes_mut(buf, buf_len), &mut *out);
        with_store(zone, |store| {
            let read = store.pop_into(key, list_end(at_tail), nginx::now_ms(), buf);
            report_read(read, buf, out)
        })
    }
}

/// `llen`; the length goes to `out.number`.
///
/// # Safety
/// As [`ngx_lua_shdict_incr`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_llen(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        with_store(zone, |store| {
            let len = store.llen(key, nginx::now_ms());
            report_number(len.map(|len| len as f64), out)
        })
    }
}

/// `ttl`; seconds left (0 for never) go to `out.number`.
///
/// # Safety
/// As [`ngx_lua_shdict_incr`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_ttl(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (key, out) = (bytes(key, key_len), &mut *out);
        with_store(zone, |store| {
            let ttl = store.ttl_ms(key, nginx::now_ms());
            report_number(ttl.map(|ms| ms as f64 / 1000.0), out)
        })
    }
}

/// `expire`: a key's new time to live in ms (0 or less: never).
///
/// # Safety
/// As [`ngx_lua_shdict_delete`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_expire(
    zone: *const c_void,
    key: *const u8,
    key_len: usize,
    exptime_ms: f64,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let key = bytes(key, key_len);
        with_store(zone, |store| {
            let now = nginx::now_ms();
            match store.set_expiry(key, expiry_from_ms(exptime_ms, now)) {
                Ok(()) => OK,
                Err(e) => error_status(e),
            }
        })
    }
}

/// `flush_all`.
///
/// # Safety
/// `zone` is a dictionary handle.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_flush_all(zone: *const c_void) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        with_store(zone, |store| {
            store.flush_all();
            OK
        })
    }
}

/// `flush_expired`: frees at most `max_count` expired entries (0: all); how
/// many goes to `out.number`.
///
/// # Safety
/// `zone` is a dictionary handle; `out` is valid for one `Out`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_flush_expired(
    zone: *const c_void,
    max_count: f64,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let out = &mut *out;
        with_store(zone, |store| {
            out.number = store.flush_expired(nginx::now_ms(), max_count as u64) as f64;
            OK
        })
    }
}

/// `get_keys`: at most `max_count` live keys (0: all), most recent first,
/// back to back in `bytes` with their lengths in `lens`; the number of keys
/// goes to `out.count`.
///
/// # Safety
/// `zone` is a dictionary handle; `bytes`, `lens` and `out` are valid for
/// `bytes_len` bytes, `lens_len` lengths and one `Out`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_get_keys(
    zone: *const c_void,
    max_count: f64,
    bytes: *mut u8,
    bytes_len: usize,
    lens: *mut u32,
    lens_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (bytes, lens, out) = (
            bytes_mut(bytes, bytes_len),
            bytes_mut(lens, lens_len),
            &mut *out,
        );
        with_store(zone, |store| {
            match store.keys_into(nginx::now_ms(), max_count as usize, bytes, lens) {
                Keys::Listed(count) => {
                    out.count = count as u32;
                    OK
                }
                Keys::TooMany { bytes, count } => {
                    out.len = u32::try_from(bytes).unwrap_or(u32::MAX);
                    out.count = u32::try_from(count).unwrap_or(u32::MAX);
                    TOO_SMALL
                }
            }
        })
    }
}

/// `scan` / `scan_items` (`with_values`): one batch of at most `count`
/// entries from the hash `cursor`, into `bytes` and `items`; `out.count`
/// records and `out.len` bytes, `out.number` the next cursor (0: done).
/// [`TOO_SMALL`] when the first entries need more room (`out.len` bytes,
/// `out.count` records).
///
/// # Safety
/// `zone` is a dictionary handle; `bytes`, `items` and `out` are valid for
/// `bytes_len` bytes, `items_len` records and one `Out`.
#[cfg_attr(not(test), no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn ngx_lua_shdict_scan(
    zone: *const c_void,
    cursor: f64,
    count: f64,
    with_values: c_int,
    bytes: *mut u8,
    bytes_len: usize,
    items: *mut ScanItem,
    items_len: usize,
    out: *mut Out,
) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let (bytes, items, out) = (
            bytes_mut(bytes, bytes_len),
            bytes_mut(items, items_len),
            &mut *out,
        );
        // The Lua side checked both: integers, the cursor a hash.
        let (from, max) = (cursor as u32, (count as usize).max(1));
        with_store(zone, |store| {
            match store.scan_into(from, max, with_values != 0, nginx::now_ms(), bytes, items) {
                Scanned::Listed { items, bytes, next } => {
                    out.count = items as u32;
                    out.len = bytes as u32;
                    out.number = f64::from(next.unwrap_or(0));
                    OK
                }
                Scanned::TooSmall { bytes, items } => {
                    out.len = u32::try_from(bytes).unwrap_or(u32::MAX);
                    out.count = u32::try_from(items).unwrap_or(u32::MAX);
                    TOO_SMALL
                }
            }
        })
    }
}

/// `capacity`: the configured size in bytes, to `out.number`.
///
/// # Safety
/// `zone` is a dictionary handle; `out` is valid for one `Out`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_capacity(zone: *const c_void, out: *mut Out) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let Some(zone) = zone_of(zone) else {
            return NO_STORE;
        };
        (*out).number = zone.size() as f64;
        OK
    }
}

/// `free_space`: bytes in wholly free pages, to `out.number`.
///
/// # Safety
/// As [`ngx_lua_shdict_capacity`].
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_free_space(zone: *const c_void, out: *mut Out) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let out = &mut *out;
        with_store(zone, |store| {
            out.number = store.free_page_bytes() as f64;
            OK
        })
    }
}

/// `stats`: one consistent snapshot of the zone's figures.
///
/// # Safety
/// `zone` is a dictionary handle; `out` is valid for one `StatsOut`.
#[cfg_attr(not(test), no_mangle)]
pub unsafe extern "C" fn ngx_lua_shdict_stats(zone: *const c_void, out: *mut StatsOut) -> c_int {
    // SAFETY: per this function's contract.
    unsafe {
        let out = &mut *out;
        with_store(zone, |store| {
            let stats = store.stats(nginx::now_ms());
            let c = &stats.counters;
            *out = StatsOut {
                capacity: stats.capacity as f64,
                free_space: stats.free_space as f64,
                used_bytes: c.used_bytes as f64,
                entries: c.entries as f64,
                lists: c.lists as f64,
                expired_pending: stats.expired_pending as f64,
                hits: c.hits as f64,
                misses: c.misses as f64,
                stores: c.stores as f64,
                evictions: c.evictions as f64,
                expirations: c.expirations as f64,
                no_memory: c.no_memory as f64,
                pages_total: stats.pages_total as f64,
                pages_free: stats.pages_free as f64,
                slab_count: stats.slabs().len() as u32,
                slabs: [SlabOut::default(); super::stats::MAX_SLAB_CLASSES],
            };
            for (row, class) in out.slabs.iter_mut().zip(stats.slabs()) {
                *row = SlabOut {
                    size: class.size as f64,
                    total: class.total as f64,
                    used: class.used as f64,
                    requests: class.requests as f64,
                    failures: class.failures as f64,
                };
            }
            OK
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exptimes_convert_as_openresty_reads_them() {
        assert_eq!(expiry_from_seconds(0.0, 1000), 0);
        assert_eq!(expiry_from_seconds(0.0004, 1000), 0);
        assert_eq!(expiry_from_seconds(0.001, 1000), 1001);
        assert_eq!(expiry_from_seconds(1.5, 1000), 2500);
        // What OpenResty's long conversion makes of the rest: never.
        assert_eq!(expiry_from_seconds(-1.0, 1000), 0);
        assert_eq!(expiry_from_seconds(f64::NAN, 1000), 0);
        assert_eq!(expiry_from_seconds(f64::INFINITY, 1000), 0);
        assert_eq!(expiry_from_seconds(1e300, 1000), 0);
        assert_eq!(expiry_from_ms(86_400_000.0, 1000), 86_401_000);
    }

    #[test]
    fn flags_convert_as_a_c_int() {
        assert_eq!(c_int_of(7.9), 7);
        assert_eq!(c_int_of(-1.0), -1);
        assert_eq!(c_int_of(2_147_483_647.0), i32::MAX);
        assert_eq!(c_int_of(2_147_483_648.0), i32::MIN);
        assert_eq!(c_int_of(1e308), i32::MIN);
        assert_eq!(c_int_of(f64::NAN), i32::MIN);
    }

    #[test]
    fn every_error_has_its_own_negative_status() {
        for (i, (code, error)) in ERRORS.iter().enumerate() {
            assert!(*code < 0 && *code > NO_STORE, "{error}");
            assert_eq!(error_status(*error), *code);
            assert!(ERRORS[i + 1..].iter().all(|(other, _)| other != code));
        }
    }
}
