//! Handlers whose coroutines wait: parked with their request, and resumed
//! by the events they wait for (sleep timers, the request body,
//! subrequests, a client abort), after which their phase goes on.

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use mlua::MultiValue;
use nginx_sys::{
    ngx_http_core_run_phases, ngx_http_finalize_request, ngx_http_request_empty_handler,
    ngx_http_request_t, ngx_http_run_posted_requests, ngx_int_t, NGX_ERROR,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ALERT,
};

use super::client_abort::{checks_client_abort, watch_for_client_abort};
use super::outcome::{content_rc, phase_step, PhaseStep};
use crate::conf::request_confs;
use crate::lua::runner::{EntryWait, Suspension};
use crate::lua::scheduler::event_loop::EVENT_LOOP;
use crate::lua::scheduler::{CoId, Owner, Shared, Wait, ENTRY};
use crate::lua::RunOutcome;
use crate::phase::Phase;
use crate::request::state::{existing_request_state, request_state, RequestState};
use crate::request::waiters::FinishedCapture;
use crate::request::HttpRequest;

/// A handler whose coroutines wait, as the request's state keeps it.
struct Parked {
    run: Suspension,
    phase: Phase,
}

/// The parked handler a request's state keeps.
fn parked_in(state: &RequestState) -> Option<&Parked> {
    state.parked.as_ref()?.downcast_ref::<Parked>()
}

/// The request's parked handler.
fn parked_handler<'a>(req: HttpRequest) -> Option<&'a Parked> {
    // SAFETY: live request; its state lives in its pool.
    parked_in(unsafe { existing_request_state(req.as_ptr()) }?)
}

fn is_entry(parked: &Parked) -> bool {
    matches!(parked.run, Suspension::Entry(_))
}

/// The request's parked handler, when it has a scheduler: the scheduler
/// and the phase.
pub(super) fn parked(req: HttpRequest) -> Option<(Shared, Phase)> {
    let parked = parked_handler(req)?;
    match &parked.run {
        Suspension::Scheduler(scheduler) => Some((scheduler.clone(), parked.phase)),
        Suspension::Entry(_) => None,
    }
}

/// Whether the request's parked handler is an entry coroutine waiting on a
/// cosocket, without a scheduler.
pub(super) fn parked_entry(req: HttpRequest) -> bool {
    parked_handler(req).is_some_and(is_entry)
}

/// Takes the request's parked entry coroutine out of its state, to resume
/// it: nothing is parked while it runs.
fn take_parked_entry(req: HttpRequest) -> Option<(EntryWait, Phase)> {
    // SAFETY: live request.
    let state = unsafe { existing_request_state(req.as_ptr()) }?;
    if !parked_in(state).is_some_and(is_entry) {
        return None;
    }
    let parked = state.parked.take()?.downcast::<Parked>().ok()?;
    match parked.run {
        Suspension::Entry(wait) => Some((wait, parked.phase)),
        Suspension::Scheduler(_) => None,
    }
}

/// The handler of `req` no longer waits: dropping its scheduler disarms its
/// coroutines' timers.
pub(super) fn unpark(req: HttpRequest) {
    // SAFETY: live request.
    if let Some(state) = unsafe { existing_request_state(req.as_ptr()) } {
        state.parked = None;
    }
}

/// Whom a request handler's scheduler belongs to: its events resume it
/// through [`wake_request`].
pub(super) fn request_owner(req: HttpRequest) -> Owner {
    let r = req.as_ptr();
    Owner {
        data: r.cast(),
        wake: wake_request,
        wake_io: wake_request_io,
        // SAFETY: live request; its connection's log lives as long.
        log: unsafe { (*(*r).connection).log },
        host: &EVENT_LOOP,
        log_context: "",
        cancelable_sleeps: false,
        checks_client_abort: checks_client_abort(req),
    }
}

/// Parks a handler whose coroutines wait: their events resume it from
/// nginx's event loop and nothing else may run the request meanwhile. In
/// the content phase nginx finalizes with our NGX_DONE, so the request needs
/// an extra reference to stay alive; in rewrite/access NGX_DONE just pauses
/// the phase engine. `Err` holds the code to end the request with.
pub(super) fn suspend(
    req: HttpRequest,
    run: Suspension,
    phase: Phase,
    take_reference: bool,
) -> Result<(), ngx_int_t> {
    let r = req.as_ptr();
    // SAFETY: live request; the state lives in its pool.
    unsafe {
        let Some(state) = request_state(r) else {
            return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        };
        state.parked = Some(Box::new(Parked { run, phase }));
        if !state.raw_socket_attached() {
            (*r).write_event_handler = Some(ngx_http_request_empty_handler);
        }
        watch_for_client_abort(req);
        if take_reference {
            let main = (*r).main;
            (*main).set_count((*main).count() + 1);
        }
    }
    Ok(())
}

/// An event for a coroutine of a suspended request handler (its sleep
/// timer fired).
unsafe fn wake_request(data: *mut c_void, co: CoId) {
    // SAFETY: per the owner's contract.
    unsafe { wake_request_for(data, co, &Wait::Sleep) }
}

/// An event of a cosocket a coroutine of a suspended request handler
/// waits on.
unsafe fn wake_request_io(data: *mut c_void, co: CoId) {
    // SAFETY: per the owner's contract.
    unsafe { wake_request_for(data, co, &Wait::Io) }
}

/// # Safety
/// `data` must be the live request owning the scheduler whose event fired.
unsafe fn wake_request_for(data: *mut c_void, co: CoId, why: &Wait) {
    let r = data.cast::<ngx_http_request_t>();
    // SAFETY: the scheduler's owner is this request, which its pool cleanup
    // keeps from outliving the scheduler's events.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return;
    };
    // SAFETY: live request.
    let connection = unsafe { (*r).connection };
    let resumed = catch_unwind(AssertUnwindSafe(|| resume_coroutine(req, co, why)));
    if resumed.is_err() {
        if let Some(log) = req.log() {
            log.write(
                NGX_LOG_ALERT as usize,
                b"panic while resuming a Lua handler",
            );
        }
        // SAFETY: live request.
        unsafe { ngx_http_finalize_request(r, NGX_ERROR as ngx_int_t) };
    }
    // SAFETY: as every event handler that ran request code must.
    unsafe { ngx_http_run_posted_requests(connection) };
}

/// The `body_ready` waiter hook: the request body is in; the coroutine
/// waiting for it goes on.
pub(super) fn body_arrived(req: HttpRequest) {
    let waiting =
        parked(req).and_then(|(scheduler, _)| scheduler.borrow().waiting_for(&Wait::Body));
    if let Some(co) = waiting {
        resume_coroutine(req, co, &Wait::Body);
    }
}

/// The `captures_done` waiter hook: the coroutines whose subrequests have
/// all answered go on with the responses.
pub(super) fn captures_arrived(req: HttpRequest, finished: Vec<FinishedCapture>) {
    let (Some(runtime), Some((scheduler, _))) = (request_confs(req).0.runtime(), parked(req))
    else {
        return;
    };
    // Every waiting thread is queued before any runs: a run may end the
    // request, after which it must not be touched.
    for capture in finished {
        let args = runtime
            .capture_results(capture.responses)
            .unwrap_or_else(|_| MultiValue::new());
        scheduler
            .borrow_mut()
            .make_ready(capture.waiter, &Wait::Subrequests, args);
    }
    drop(scheduler);
    continue_handler(req);
}

/// Resumes thread `co` of the request's suspended handler after an event of kind `why`,
/// and takes the handler's phase on from wherever the run ends.
fn resume_coroutine(req: HttpRequest, co: CoId, why: &Wait) {
    if co == ENTRY && *why == Wait::Io {
        if let Some((wait, phase)) = take_parked_entry(req) {
            let Some(runtime) = request_confs(req).0.runtime() else {
                return;
            };
            let outcome = runtime
                .runner()
                .resume_entry_wait(wait, req.as_ptr(), phase);
            go_on(req, phase, outcome);
            return;
        }
    }
    let Some((scheduler, _)) = parked(req) else {
        return;
    };
    scheduler
        .borrow_mut()
        .make_ready(co, why, MultiValue::new());
    // The handler's run may end: its scheduler must be held only by the
    // request then, to be reused.
    drop(scheduler);
    continue_handler(req);
}

/// Runs what became ready in the request's suspended handler, and takes the
/// handler's phase on from wherever the run ends.
pub(super) fn continue_handler(req: HttpRequest) {
    let r = req.as_ptr();
    let Some((scheduler, phase)) = parked(req) else {
        return;
    };
    let Some(runtime) = request_confs(req).0.runtime() else {
        return;
    };
    let Some(outcome) = runtime.runner().resume_parked(&scheduler, r, phase) else {
        return;
    };
    if !matches!(outcome, RunOutcome::Suspended(_)) {
        unpark(req);
        runtime.runner().retire(scheduler, &outcome);
    }
    go_on(req, phase, outcome);
}

/// Takes the handler's phase on after a resumed run stopped with `outcome`.
fn go_on(req: HttpRequest, phase: Phase, outcome: RunOutcome) {
    let r = req.as_ptr();
    if phase == Phase::Content {
        if let Some(rc) = content_rc(req, outcome, true) {
            // SAFETY: live request, resumed from its own event; finalizing
            // drops the reference the content phase kept while it waited.
            unsafe { ngx_http_finalize_request(r, rc) };
        }
        return;
    }
    match phase_step(req, phase, outcome) {
        // SAFETY: live request, resumed from its own event outside nginx's
        // phase loop, so the loop is re-entered past the handler that waited.
        PhaseStep::Continue => unsafe {
            (*r).phase_handler += 1;
            (*r).write_event_handler = Some(ngx_http_core_run_phases);
            ngx_http_core_run_phases(r);
        },
        // SAFETY: live request, resumed from its own event; the phase failed
        // or answered, so the request ends here.
        PhaseStep::Finish(rc) => unsafe { ngx_http_finalize_request(r, rc) },
        PhaseStep::Redirected | PhaseStep::Suspended => {}
    }
}
