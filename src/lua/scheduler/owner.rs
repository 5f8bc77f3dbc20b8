//! Whom a scheduler belongs to, and what it needs from the process it runs
//! in.

use core::ffi::c_void;

use nginx_sys::ngx_log_t;

use super::CoId;

/// Whom a scheduler belongs to, so that its events can wake it.
#[derive(Clone, Copy)]
pub struct Owner {
    /// The request or timer task the scheduler is parked with.
    pub data: *mut c_void,
    /// Resumes thread `co` of the owner's scheduler (from an event).
    pub wake: unsafe fn(data: *mut c_void, co: CoId),
    /// Resumes thread `co`, parked for a cosocket's connection.
    pub wake_io: unsafe fn(data: *mut c_void, co: CoId),
    /// Where its timers come from and its failures go.
    pub host: &'static dyn Host,
    pub log: *mut ngx_log_t,
    /// What log lines of failed light threads end with (nginx adds the
    /// request's context to request logs itself).
    pub log_context: &'static str,
    /// Whether sleeps may be cut short by a graceful worker shutdown.
    pub cancelable_sleeps: bool,
    /// Whether `ngx.on_abort` may register a callback
    /// (`lua_check_client_abort on` for the request's location).
    pub checks_client_abort: bool,
}

/// What a scheduler needs from the process it runs in: [`event_loop`](super::event_loop) in
/// an nginx worker, a fake clock in the tests.
pub trait Host: Sync {
    /// A timer for a sleeping thread, armed by [`SleepTimer::arm`]; a
    /// thread reuses its timer for its next sleep.
    fn new_sleep_timer(&self) -> Box<dyn SleepTimer>;

    /// A light thread failed (the others go on): tells the owner's log.
    fn log_thread_failure(&self, owner: &Owner, message: &str);
}

/// A sleeping thread's timer; dropping it disarms it.
pub trait SleepTimer {
    /// Calls `owner.wake(owner.data, co)` in `ms` milliseconds (once).
    fn arm(&mut self, owner: Owner, co: CoId, ms: u64);
}
