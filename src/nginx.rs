//! Small safe wrappers over nginx globals and logging, shared by all layers.

use core::ffi::c_char;
use core::ptr::NonNull;

use nginx_sys::{
    ngx_conf_log_error, ngx_conf_t, ngx_core_conf_t, ngx_core_module, ngx_cycle, ngx_log_t,
    ngx_parent, ngx_pid, ngx_process, ngx_quit, ngx_time_update, ngx_timeofday, ngx_worker,
    NGX_LOG_EMERG, NGX_PROCESS_HELPER, NGX_PROCESS_MASTER, NGX_PROCESS_SIGNALLER,
    NGX_PROCESS_SINGLE, NGX_PROCESS_WORKER,
};

/// The bytes of an nginx string (none for an empty or unset one).
pub fn str_bytes(s: &nginx_sys::ngx_str_t) -> &[u8] {
    if s.data.is_null() || s.len == 0 {
        return &[];
    }
    // SAFETY: nginx strings point at `len` readable bytes in a pool that
    // outlives the structure holding them.
    unsafe { core::slice::from_raw_parts(s.data, s.len) }
}

/// An nginx log to write to: a request's, or the cycle's.
#[derive(Clone, Copy)]
pub struct Log(NonNull<ngx_log_t>);

impl Log {
    /// # Safety
    /// `log` must stay valid for as long as the handle is used.
    pub unsafe fn from_raw(log: *mut ngx_log_t) -> Option<Log> {
        NonNull::new(log).map(Log)
    }

    /// The current cycle's log: for messages outside any request.
    pub fn cycle() -> Option<Log> {
        // SAFETY: ngx_cycle is set before any module code runs, and its log
        // lives as long as the cycle.
        unsafe { Log::from_raw((*ngx_cycle).log) }
    }

    /// The raw log, for nginx structures that point at one (events).
    pub fn as_ptr(&self) -> *mut ngx_log_t {
        self.0.as_ptr()
    }

    /// The most verbose level the log writes (`error_log`'s level).
    pub fn level(&self) -> usize {
        // SAFETY: valid per the constructor's contract.
        unsafe { self.0.as_ref() }.log_level
    }

    /// Whether the log would write a line at `level`.
    pub fn enabled(&self, level: usize) -> bool {
        // SAFETY: valid per the constructor's contract.
        unsafe { self.0.as_ref() }.log_level >= level
    }

    pub fn write(&self, level: usize, message: &[u8]) {
        if self.enabled(level) {
            // SAFETY: valid per the constructor's contract.
            unsafe { ngx::log::log_error(level, self.0.as_ptr(), 0, message) };
        }
    }
}

/// Takes `event` out of nginx's timer tree and posted queue, wherever its
/// flags say it is: before it is armed again, or before its memory goes.
pub fn disarm_event(event: &mut nginx_sys::ngx_event_t) {
    // SAFETY: nginx sets these flags exactly while it holds the event in
    // its timer tree or a posted queue; the exclusive borrow means no
    // handler of it runs now.
    unsafe {
        if event.timer_set() != 0 {
            nginx_sys::ngx_del_timer(event);
        }
        if event.posted() != 0 {
            nginx_sys::ngx_delete_posted_event(event);
        }
    }
}

/// Runs `f` in a callback nginx calls (pool cleanups, event handlers),
/// where an unwinding panic must not reach nginx's C frames: a panic is
/// logged at `alert` level on the cycle log and the callback returns.
pub fn without_unwinding(what: &str, f: impl FnOnce()) {
    guarded(f, || {
        if let Some(log) = Log::cycle() {
            let line = format!("panic in {what}");
            log.write(nginx_sys::NGX_LOG_ALERT as usize, line.as_bytes());
        }
    });
}

/// Runs `body` for a callback nginx calls: a panic, which must not unwind
/// into nginx's C frames, gives `on_panic()`'s result instead. Each kind of
/// callback says how it reports one (an `[emerg]` for a directive, a failed
/// request for a handler, an alert for an event).
pub fn guarded<T>(body: impl FnOnce() -> T, on_panic: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|_| on_panic())
}

/// Logs an `[emerg]` line with the configuration file and line appended by
/// nginx, as directive errors are reported.
///
/// # Safety
/// `cf` must be the configuration being parsed.
pub unsafe fn conf_emerg(cf: *mut ngx_conf_t, message: &str) {
    let mut text = message.as_bytes().to_vec();
    // nginx's formatter treats '%' specially; pass the text as an argument.
    text.push(0);
    // SAFETY: cf is the conf being parsed (caller's contract); "%s" consumes
    // one NUL-terminated string argument, which `text` is.
    unsafe {
        ngx_conf_log_error(
            NGX_LOG_EMERG as usize,
            cf,
            0,
            c"%s".as_ptr(),
            text.as_ptr().cast::<c_char>(),
        )
    };
}

/// nginx's cached wall-clock time: (seconds, milliseconds).
pub fn cached_time() -> (i64, u64) {
    let tp = ngx_timeofday();
    (tp.sec, tp.msec as u64)
}

/// Milliseconds since the epoch from the cached time.
pub fn now_ms() -> u64 {
    let (sec, msec) = cached_time();
    sec.max(0) as u64 * 1000 + msec
}

pub fn update_time() {
    // SAFETY: nginx workers are single-threaded; this is what nginx's event
    // loop calls itself.
    unsafe { ngx_time_update() };
}

pub fn process_id() -> i64 {
    // SAFETY: plain read of a global set at process start.
    i64::from(unsafe { ngx_pid })
}

/// This process's kind, as `ngx.process.type()` names it: while nginx
/// reads its first configuration its one process is still "single", and
/// becomes the master only afterwards, so then the configuration says.
pub fn process_type() -> &'static str {
    // SAFETY: plain read of a global nginx sets as the process starts.
    let process = unsafe { ngx_process } as u32;
    let master = core_conf().is_some_and(|core| core.master != 0);
    match process {
        NGX_PROCESS_SINGLE if master => "master",
        NGX_PROCESS_SINGLE => "single",
        NGX_PROCESS_MASTER => "master",
        NGX_PROCESS_SIGNALLER => "signaller",
        NGX_PROCESS_WORKER => "worker",
        NGX_PROCESS_HELPER => "helper",
        _ => "unknown",
    }
}

/// The master process's pid: the parent of a worker (or helper), else this
/// process itself.
pub fn master_pid() -> i64 {
    // SAFETY: plain reads of globals nginx sets as the process starts.
    unsafe {
        match ngx_process as u32 {
            NGX_PROCESS_WORKER | NGX_PROCESS_HELPER => i64::from(ngx_parent),
            _ => i64::from(ngx_pid),
        }
    }
}

/// The pids of nginx's processes as this process knows them (the master
/// tells each worker of the others as they start), in slot order, this
/// one included.
pub fn process_pids() -> Vec<i64> {
    let mut pids = Vec::new();
    // SAFETY: plain reads of nginx's process table and slot, which only
    // this (single-threaded) process writes, from its channel handler.
    unsafe {
        let processes = &*core::ptr::addr_of!(nginx_sys::ngx_processes);
        let own_slot = nginx_sys::ngx_process_slot;
        for (slot, process) in processes.iter().enumerate() {
            let own = slot as isize == own_slot;
            if own {
                pids.push(i64::from(ngx_pid));
            } else if process.pid == 0 {
                break;
            } else if process.pid > 0 {
                pids.push(i64::from(process.pid));
            }
        }
    }
    pids
}

/// Asks this process to exit gracefully, as a QUIT signal would.
pub fn request_graceful_exit() {
    // SAFETY: nginx's event loop reads the flag between events; this
    // process is single-threaded.
    unsafe { ngx_quit = 1 };
}

/// The worker's ordinal, or `None` outside worker processes (the master).
pub fn worker_id() -> Option<u64> {
    // SAFETY: plain reads of globals set at process start.
    unsafe {
        let process = ngx_process as u32;
        (process == NGX_PROCESS_WORKER || process == NGX_PROCESS_SINGLE)
            .then_some(ngx_worker as u64)
    }
}

pub fn worker_count() -> i64 {
    core_conf().map_or(1, |core| core.worker_processes as i64)
}

/// The core module's configuration of `ngx_cycle`; none in the stand-in
/// cycle of the first start, which has no configuration (see
/// [`with_cycle`]).
fn core_conf() -> Option<&'static ngx_core_conf_t> {
    // SAFETY: ngx_cycle is set before any module code runs; a configured
    // cycle's context holds the core configuration, which lives as long.
    unsafe {
        let conf = (*ngx_cycle).conf_ctx;
        if conf.is_null() {
            return None;
        }
        (*conf.add(ngx_core_module.index))
            .cast::<ngx_core_conf_t>()
            .as_ref()
    }
}

/// Runs `f` with `ngx_cycle` pointing at `cycle`, as OpenResty runs
/// `init_by_lua*`: while nginx reads a configuration the global still
/// points at the previous cycle, or on the first start at a stand-in with
/// no configuration at all.
///
/// # Safety
/// `cycle` must be the cycle being initialised, live for the call.
pub unsafe fn with_cycle<R>(cycle: *mut nginx_sys::ngx_cycle_t, f: impl FnOnce() -> R) -> R {
    /// Puts the previous cycle back, however `f` ends.
    struct Restore(*mut nginx_sys::ngx_cycle_t);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: the master is single-threaded; this puts back the
            // value nginx itself set.
            unsafe { ngx_cycle = self.0 };
        }
    }
    // SAFETY: per the contract, for the duration of `f` only.
    let _restore = unsafe {
        Restore(core::mem::replace(
            &mut *core::ptr::addr_of_mut!(ngx_cycle),
            cycle,
        ))
    };
    f()
}
