//! What the Lua code running now runs for: its request, phase, how it asked
//! to leave, whether it ended the response. Kept in thread-locals (nginx
//! workers are single-threaded) for the API functions, set for exactly the
//! duration of a resume.

use std::cell::{Cell, RefCell};

use nginx_sys::ngx_http_request_t;

use super::scheduler::{Current, CurrentGuard, Request};
use crate::phase::Phase;

thread_local! {
    /// The request whose chunk is running. nginx workers are single-threaded;
    /// the pointer is set for exactly the duration of a resume.
    static CURRENT_REQUEST: Cell<*mut ngx_http_request_t> = const { Cell::new(core::ptr::null_mut()) };
    /// How the running chunk asked to leave: `ngx.exit` or `ngx.exec`.
    static LEAVE: RefCell<Option<Leave>> = const { RefCell::new(None) };
    /// The running chunk called `ngx.eof()`: the response is complete.
    static EOF_SENT: Cell<bool> = const { Cell::new(false) };
    /// Whether the run that just returned called `ngx.eof()`.
    static LAST_RUN_EOF: Cell<bool> = const { Cell::new(false) };
    /// The phase of the running chunk.
    static CURRENT_PHASE: Cell<Option<Phase>> = const { Cell::new(None) };
    /// Whom the running chunk's scheduler belongs to (its owner's data: the
    /// request or timer task), 0 outside scheduled handlers.
    static CURRENT_OWNER: Cell<usize> = const { Cell::new(0) };
}

/// The owner (request or timer task) of the running scheduled handler, as
/// its scheduler's owner data; 0 when none runs. Cosockets are bound to it.
pub fn current_owner() -> usize {
    CURRENT_OWNER.with(Cell::get)
}

/// The phase of the Lua code running now.
pub fn current_phase() -> Option<Phase> {
    CURRENT_PHASE.with(Cell::get)
}

/// The running request, if Lua code runs on behalf of one.
pub fn current_request() -> Option<*mut ngx_http_request_t> {
    let r = CURRENT_REQUEST.with(Cell::get);
    (!r.is_null()).then_some(r)
}

pub(super) enum Leave {
    Exit(isize),
    Exec {
        uri: Vec<u8>,
        args: Vec<u8>,
    },
    /// Hand the coroutine over to the scheduler.
    Request(Request),
}

pub(crate) fn record_exit(status: isize) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Exit(status)));
}

/// Takes back a recorded scheduler request (its yield failed); an exit or
/// exec recorded is just forgotten.
pub(crate) fn take_request() -> Option<Request> {
    match LEAVE.with(|l| l.borrow_mut().take()) {
        Some(Leave::Request(request)) => Some(request),
        _ => None,
    }
}

/// Takes the recorded request if it is a cosocket's wait; anything else
/// recorded stays.
pub(super) fn take_io_wait() -> Option<crate::request::socket::IoWait> {
    LEAVE.with(|l| {
        let mut leave = l.borrow_mut();
        match leave.take() {
            Some(Leave::Request(Request::Io(wait))) => Some(wait),
            other => {
                *leave = other;
                None
            }
        }
    })
}

pub(crate) fn record_request(request: Request) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Request(request)));
}

pub(crate) fn record_exec(uri: Vec<u8>, args: Vec<u8>) {
    LEAVE.with(|l| *l.borrow_mut() = Some(Leave::Exec { uri, args }));
}

pub(crate) fn mark_eof() {
    EOF_SENT.with(|e| e.set(true));
}

/// Whether the running chunk sent the response's end (`ngx.eof()`).
pub fn eof_sent() -> bool {
    EOF_SENT.with(Cell::get)
}

/// Whether the run that just returned sent the response's end.
pub fn last_run_sent_eof() -> bool {
    LAST_RUN_EOF.with(Cell::get)
}

/// Sets the current request and phase for the duration of a resume.
///
/// Runs nest: a handler's `ngx.say` sends the header, which runs a
/// header_filter_by_lua chunk before returning. Everything a run keeps in
/// thread-locals is therefore saved on entry and restored on exit.
pub(super) struct RunScope {
    previous_request: *mut ngx_http_request_t,
    previous_phase: Option<Phase>,
    previous_leave: Option<Leave>,
    previous_eof: bool,
    previous_owner: usize,
    _scheduler: CurrentGuard,
}

impl RunScope {
    pub(super) fn enter(r: *mut ngx_http_request_t, phase: Phase, scheduler: Current) -> RunScope {
        let owner = match &scheduler {
            Current::None => 0,
            Current::Pending(pending) => pending.owner.data as usize,
            Current::Made(shared) => shared.try_borrow().map_or(0, |s| s.owner().data as usize),
        };
        RunScope {
            previous_owner: CURRENT_OWNER.with(|c| c.replace(owner)),
            previous_request: CURRENT_REQUEST.with(|c| c.replace(r)),
            previous_phase: CURRENT_PHASE.with(|c| c.replace(Some(phase))),
            previous_leave: LEAVE.with(|l| l.borrow_mut().take()),
            previous_eof: EOF_SENT.with(|e| e.replace(false)),
            _scheduler: CurrentGuard::enter(scheduler),
        }
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        CURRENT_REQUEST.with(|c| c.set(self.previous_request));
        CURRENT_PHASE.with(|c| c.set(self.previous_phase));
        LEAVE.with(|l| *l.borrow_mut() = self.previous_leave.take());
        EOF_SENT.with(|e| e.set(self.previous_eof));
        CURRENT_OWNER.with(|c| c.set(self.previous_owner));
    }
}

/// Takes how the chunk that just stopped asked to leave.
pub(super) fn take_leave() -> Option<Leave> {
    LEAVE.with(|l| l.borrow_mut().take())
}

/// Whether the running chunk asked to leave (or to wait).
pub(super) fn leave_recorded() -> bool {
    LEAVE.with(|l| l.borrow().is_some())
}

pub(super) fn set_last_run_eof(eof: bool) {
    LAST_RUN_EOF.with(|e| e.set(eof));
}
