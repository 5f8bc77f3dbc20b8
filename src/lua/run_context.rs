//! What the Lua code running now runs for: its request, phase, how it asked
//! to leave, whether it ended the response. Kept in thread-locals (nginx
//! workers are single-threaded) for the API functions, set for exactly the
//! duration of a resume.

use std::cell::{Cell, RefCell};

use nginx_sys::ngx_http_request_t;

use super::scheduler::{Current, CurrentGuard, Request};
use crate::phase::Phase;

/// What the running code runs for, in plain values: one thread-local
/// lookup (a call into the dynamic loader from a module) reads or swaps
/// them together.
struct RunState {
    /// The request whose chunk is running; set for exactly the duration
    /// of a resume.
    request: Cell<*mut ngx_http_request_t>,
    /// The phase of the running chunk.
    phase: Cell<Option<Phase>>,
    /// Whom the running chunk's scheduler belongs to (its owner's data: the
    /// request or timer task), 0 outside scheduled handlers.
    owner: Cell<usize>,
    /// The running chunk called `ngx.eof()`: the response is complete.
    eof_sent: Cell<bool>,
    /// Whether the run that just returned called `ngx.eof()`.
    last_run_eof: Cell<bool>,
}

thread_local! {
    // nginx workers are single-threaded.
    static RUN: RunState = const {
        RunState {
            request: Cell::new(core::ptr::null_mut()),
            phase: Cell::new(None),
            owner: Cell::new(0),
            eof_sent: Cell::new(false),
            last_run_eof: Cell::new(false),
        }
    };
    /// How the running chunk asked to leave: `ngx.exit` or `ngx.exec`.
    static LEAVE: RefCell<Option<Leave>> = const { RefCell::new(None) };
}

/// The owner (request or timer task) of the running scheduled handler, as
/// its scheduler's owner data; 0 when none runs. Cosockets are bound to it.
pub fn current_owner() -> usize {
    RUN.with(|run| run.owner.get())
}

/// The phase of the Lua code running now.
pub fn current_phase() -> Option<Phase> {
    RUN.with(|run| run.phase.get())
}

/// The running request, if Lua code runs on behalf of one.
pub fn current_request() -> Option<*mut ngx_http_request_t> {
    let r = RUN.with(|run| run.request.get());
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
    RUN.with(|run| run.eof_sent.set(true));
}

/// Whether the running chunk sent the response's end (`ngx.eof()`).
pub fn eof_sent() -> bool {
    RUN.with(|run| run.eof_sent.get())
}

/// Whether the run that just returned sent the response's end.
pub fn last_run_sent_eof() -> bool {
    RUN.with(|run| run.last_run_eof.get())
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
        let (previous_owner, previous_request, previous_phase, previous_eof) = RUN.with(|run| {
            (
                run.owner.replace(owner),
                run.request.replace(r),
                run.phase.replace(Some(phase)),
                run.eof_sent.replace(false),
            )
        });
        RunScope {
            previous_owner,
            previous_request,
            previous_phase,
            previous_leave: LEAVE.with(|l| l.borrow_mut().take()),
            previous_eof,
            _scheduler: CurrentGuard::enter(scheduler),
        }
    }
}

impl Drop for RunScope {
    fn drop(&mut self) {
        RUN.with(|run| {
            run.request.set(self.previous_request);
            run.phase.set(self.previous_phase);
            run.eof_sent.set(self.previous_eof);
            run.owner.set(self.previous_owner);
        });
        LEAVE.with(|l| *l.borrow_mut() = self.previous_leave.take());
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
    RUN.with(|run| run.last_run_eof.set(eof));
}
