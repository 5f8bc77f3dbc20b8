//! `lua_capture_error_log`: a worker keeps the error log's latest lines in
//! memory for `ngx.errlog.get_logs`. Stock nginx has no hook for that (what
//! OpenResty patches into its core); a log with a writer, added to the main
//! error log's chain, receives every line nginx writes there at its level,
//! whole (time, level, pid, message, context).

use core::ptr;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use nginx_sys::{ngx_cycle_t, ngx_log_t, ngx_pcalloc, ngx_uint_t};

/// One captured line.
pub struct Captured {
    pub level: u8,
    /// Seconds since the epoch, with milliseconds.
    pub time: f64,
    /// The line as written, without its line feed.
    pub text: Vec<u8>,
}

struct Buffer {
    lines: VecDeque<Captured>,
    /// Bytes of the lines held.
    bytes: usize,
    capacity: usize,
}

thread_local! {
    static BUFFER: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// The buffer size `lua_capture_error_log` configured (0: not set).
static CONFIGURED: AtomicUsize = AtomicUsize::new(0);

/// Records `lua_capture_error_log`'s size (0 when the directive is absent)
/// once the configuration is read.
pub fn configure(capacity: usize) {
    CONFIGURED.store(capacity, Ordering::Relaxed);
}

/// Whether `lua_capture_error_log` is set.
pub fn configured() -> bool {
    CONFIGURED.load(Ordering::Relaxed) != 0
}

/// `ngx.errlog.set_filter_level`: the least severe level captured (0: the
/// error log's own). Set in init_by_lua, read as each worker starts.
static FILTER_LEVEL: AtomicUsize = AtomicUsize::new(0);

/// Sets the least severe level captured, from the next worker started on.
pub fn set_filter_level(level: usize) {
    FILTER_LEVEL.store(level, Ordering::Relaxed);
}

/// Per line held besides its text.
const LINE_OVERHEAD: usize = 16;

/// Starts capturing, in a worker, into a buffer of `capacity` bytes (the
/// oldest lines go when it is full). Adds the capturing log after the main
/// error log's logs at least as verbose, as nginx orders its chain.
///
/// # Safety
/// `cycle` is the worker's live cycle.
pub unsafe fn start(cycle: *mut ngx_cycle_t, capacity: usize) {
    BUFFER.with_borrow_mut(|buffer| {
        *buffer = Some(Buffer {
            lines: VecDeque::new(),
            bytes: 0,
            capacity,
        })
    });
    // SAFETY: the worker's cycle and its main log live as long as the
    // worker; the capturing log lives in the cycle's pool, as long.
    unsafe {
        let head: *mut ngx_log_t = &mut (*cycle).new_log;
        let level = match FILTER_LEVEL.load(Ordering::Relaxed) {
            0 => (*head).log_level,
            filter => filter,
        };
        let log = ngx_pcalloc((*cycle).pool, core::mem::size_of::<ngx_log_t>()).cast::<ngx_log_t>();
        if log.is_null() {
            return;
        }
        (*log).log_level = level as ngx_uint_t;
        (*log).writer = Some(capture_line);
        (*log).wdata = ptr::null_mut();
        // Behind every log at least as verbose: nginx stops at the first
        // log less verbose than a line, so the chain stays sorted.
        let mut after = head;
        while !(*after).next.is_null() && (*(*after).next).log_level >= (*log).log_level {
            after = (*after).next;
        }
        (*log).next = (*after).next;
        (*after).next = log;
    }
}

/// The writer nginx calls with each line for the capturing log.
unsafe extern "C" fn capture_line(
    _log: *mut ngx_log_t,
    level: ngx_uint_t,
    buf: *mut u8,
    len: usize,
) {
    // SAFETY: nginx passes the line it formatted, `len` bytes.
    let line = unsafe { core::slice::from_raw_parts(buf, len) };
    let _ = std::panic::catch_unwind(|| {
        let text = line.strip_suffix(b"\n").unwrap_or(line).to_vec();
        let (sec, msec) = crate::nginx::cached_time();
        BUFFER.with(|buffer| {
            let Ok(mut buffer) = buffer.try_borrow_mut() else {
                return;
            };
            let Some(buffer) = buffer.as_mut() else {
                return;
            };
            let size = text.len() + LINE_OVERHEAD;
            if size > buffer.capacity {
                return;
            }
            while buffer.bytes + size > buffer.capacity {
                let Some(oldest) = buffer.lines.pop_front() else {
                    break;
                };
                buffer.bytes -= oldest.text.len() + LINE_OVERHEAD;
            }
            buffer.bytes += size;
            buffer.lines.push_back(Captured {
                level: level as u8,
                time: sec as f64 + msec as f64 / 1000.0,
                text,
            });
        });
    });
}

/// Takes up to `max` of the oldest captured lines out of the buffer (none
/// in a process that does not capture: the master).
pub fn take(max: usize) -> Vec<Captured> {
    BUFFER.with_borrow_mut(|buffer| {
        let Some(buffer) = buffer.as_mut() else {
            return Vec::new();
        };
        let n = max.min(buffer.lines.len());
        let taken: Vec<Captured> = buffer.lines.drain(..n).collect();
        buffer.bytes -= taken
            .iter()
            .map(|c| c.text.len() + LINE_OVERHEAD)
            .sum::<usize>();
        taken
    })
}
