//! Phase handlers: where nginx hands a request to Lua and takes it back.

mod filters;
pub mod lifecycle;
pub mod set_var;
pub mod status;

use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_core_main_conf_t, ngx_http_core_module,
    ngx_http_finalize_request, ngx_http_handler_pt, ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
    ngx_http_phases_NGX_HTTP_LOG_PHASE, ngx_http_phases_NGX_HTTP_REWRITE_PHASE, ngx_http_request_t,
    ngx_int_t, NGX_DECLINED, NGX_DONE, NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NO_CONTENT, NGX_LOG_ALERT, NGX_LOG_ERR, NGX_OK,
};

use mlua::MultiValue;
use nginx_sys::{
    ngx_event_flags, ngx_handle_read_event, ngx_http_block_reading, ngx_http_core_run_phases,
    ngx_http_request_empty_handler, ngx_http_run_posted_requests, ngx_uint_t,
    NGX_HTTP_CLIENT_CLOSED_REQUEST, NGX_LOG_INFO, NGX_USE_LEVEL_EVENT,
};

use crate::conf::request_confs;
use crate::lua::scheduler::event_loop::EVENT_LOOP;
use crate::lua::scheduler::{AbortHandling, CoId, Owner, Shared, Wait};
use crate::lua::RunOutcome;
use crate::phase::Phase;
use crate::request::state::{existing_request_state, request_state};
use crate::request::subrequest;
use crate::request::waiters::{self, FinishedCapture, WaiterHooks};
use crate::request::HttpRequest;

/// Runs a phase handler body, turning a panic into a failed request.
fn guarded(
    r: *mut ngx_http_request_t,
    phase: Phase,
    body: impl FnOnce(HttpRequest) -> ngx_int_t,
) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    crate::nginx::guarded(
        || body(req),
        || {
            if let Some(log) = req.log() {
                let line = format!("panic while running {}", phase.directive());
                log.write(NGX_LOG_ALERT as usize, line.as_bytes());
            }
            if req.headers_sent() {
                NGX_ERROR as ngx_int_t
            } else {
                NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
            }
        },
    )
}

/// Logs an aborted request handler as OpenResty does and answers 500 (or
/// aborts the connection when the header is already out).
fn fail_request(req: HttpRequest, message: &str) -> ngx_int_t {
    if let Some(log) = req.log() {
        let line = format!("lua entry thread aborted: {message}");
        log.write(NGX_LOG_ERR as usize, line.as_bytes());
    }
    // nginx cannot cancel subrequests under way: no response can be made.
    if req.headers_sent() || subrequest::pending(req) {
        NGX_ERROR as ngx_int_t
    } else {
        NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
    }
}

/// What `ngx.exit(status)` means once a handler stops, as in OpenResty:
/// `ngx.ERROR` aborts; after output started any status just ends the
/// response; a 2xx status (other than 204) sends an empty response with it;
/// other statuses of 300 and up produce nginx's response for them.
fn exit_response(req: HttpRequest, status: isize) -> ngx_int_t {
    if status == NGX_ERROR as isize {
        return NGX_ERROR as ngx_int_t;
    }
    if status < 200 || req.headers_sent() {
        return req.finish_response();
    }
    if status < 300 && status != NGX_HTTP_NO_CONTENT as isize {
        req.set_status(status as usize);
        return req.finish_response();
    }
    status as ngx_int_t
}

/// What a handler's outcome means for nginx in the content phase. `None`
/// for a handler whose coroutines wait (already suspended by `suspend`).
///
/// `resumed` is true when the handler was already suspended before: the
/// content handler has returned NGX_DONE, so no extra request reference is
/// needed to outlive it.
fn content_rc(req: HttpRequest, outcome: RunOutcome, resumed: bool) -> Option<ngx_int_t> {
    if let Some(rc) = abandons_subrequests(req, &outcome) {
        return Some(rc);
    }
    if matches!(outcome, RunOutcome::Finished | RunOutcome::Exited(_)) {
        // The chunk did not read the body: discard it before answering so
        // that a keep-alive connection stays in step.
        let rc = req.discard_unread_body();
        if rc != NGX_OK as ngx_int_t {
            return Some(rc);
        }
    }
    Some(match outcome {
        // ngx.eof() already sent the end of the response.
        RunOutcome::Finished | RunOutcome::Exited(0) if crate::lua::last_run_sent_eof() => {
            NGX_OK as ngx_int_t
        }
        RunOutcome::Finished | RunOutcome::Exited(0) => req.finish_response(),
        RunOutcome::Exited(status) => exit_response(req, status),
        // Finalizing with NGX_DONE balances the reference the redirect took.
        RunOutcome::Exec { uri, args } => req.internal_redirect(&uri, &args),
        RunOutcome::Failed(message) => fail_request(req, &message),
        RunOutcome::Suspended(scheduler) => {
            return suspend(req, scheduler, Phase::Content, !resumed).err();
        }
    })
}

/// A handler that ends while its subrequests still run (a failed body
/// read, `ngx.exit(444)` ...) cannot answer: nginx cannot cancel them, and
/// the request would wait for them forever. It is terminated instead.
fn abandons_subrequests(req: HttpRequest, outcome: &RunOutcome) -> Option<ngx_int_t> {
    let ends = !matches!(outcome, RunOutcome::Suspended(_) | RunOutcome::Failed(_));
    (ends && subrequest::pending(req)).then_some(NGX_ERROR as ngx_int_t)
}

/// How rewrite/access go on after their chunk stopped.
enum PhaseStep {
    /// Finished (or `ngx.exit(ngx.OK)`): on to the next phase handler.
    Continue,
    /// The request ends with this code.
    Finish(ngx_int_t),
    /// `ngx.exec` redirected it; the phase engine must stop.
    Redirected,
    /// The handler's coroutines wait (already suspended).
    Suspended,
}

fn phase_step(req: HttpRequest, phase: Phase, outcome: RunOutcome) -> PhaseStep {
    if let Some(rc) = abandons_subrequests(req, &outcome) {
        return PhaseStep::Finish(rc);
    }
    match outcome {
        RunOutcome::Finished | RunOutcome::Exited(0) if crate::lua::last_run_sent_eof() => {
            PhaseStep::Finish(NGX_OK as ngx_int_t)
        }
        RunOutcome::Finished | RunOutcome::Exited(0) if req.headers_sent() => {
            PhaseStep::Finish(req.finish_response())
        }
        RunOutcome::Finished | RunOutcome::Exited(0) => PhaseStep::Continue,
        RunOutcome::Exec { uri, args } => {
            let rc = req.internal_redirect(&uri, &args);
            if rc == NGX_ERROR as ngx_int_t {
                return PhaseStep::Finish(rc);
            }
            // Nobody finalizes a redirect outside the content phase: release
            // the reference it took.
            // SAFETY: live request.
            unsafe { ngx_http_finalize_request(req.as_ptr(), NGX_DONE as ngx_int_t) };
            PhaseStep::Redirected
        }
        RunOutcome::Exited(status) => PhaseStep::Finish(exit_response(req, status)),
        RunOutcome::Failed(message) => PhaseStep::Finish(fail_request(req, &message)),
        RunOutcome::Suspended(scheduler) => match suspend(req, scheduler, phase, false) {
            Ok(()) => PhaseStep::Suspended,
            Err(rc) => PhaseStep::Finish(rc),
        },
    }
}

/// A handler whose coroutines wait, as the request's state keeps it.
struct Parked {
    scheduler: Shared,
    phase: Phase,
}

/// The request's parked handler: its scheduler and phase.
fn parked(req: HttpRequest) -> Option<(Shared, Phase)> {
    // SAFETY: live request.
    let state = unsafe { existing_request_state(req.as_ptr()) }?;
    let parked = state.parked.as_ref()?.downcast_ref::<Parked>()?;
    Some((parked.scheduler.clone(), parked.phase))
}

/// The handler of `req` no longer waits: dropping its scheduler disarms its
/// coroutines' timers.
fn unpark(req: HttpRequest) {
    // SAFETY: live request.
    if let Some(state) = unsafe { existing_request_state(req.as_ptr()) } {
        state.parked = None;
    }
}

/// Whom a request handler's scheduler belongs to: its events resume it
/// through [`wake_request`].
fn request_owner(req: HttpRequest) -> Owner {
    let r = req.as_ptr();
    Owner {
        data: r.cast(),
        wake: wake_request,
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
fn suspend(
    req: HttpRequest,
    scheduler: Shared,
    phase: Phase,
    take_reference: bool,
) -> Result<(), ngx_int_t> {
    let r = req.as_ptr();
    // SAFETY: live request; the state lives in its pool.
    unsafe {
        let Some(state) = request_state(r) else {
            return Err(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
        };
        state.parked = Some(Box::new(Parked { scheduler, phase }));
        (*r).write_event_handler = Some(ngx_http_request_empty_handler);
        watch_for_client_abort(req);
        if take_reference {
            let main = (*r).main;
            (*main).set_count((*main).count() + 1);
        }
    }
    Ok(())
}

/// Whether `lua_check_client_abort` is on for the request's location.
fn checks_client_abort(req: HttpRequest) -> bool {
    request_confs(req).1.check_client_abort == Some(true)
}

/// Under `lua_check_client_abort on`, a suspended handler hears of the
/// client closing its connection (unless nginx is reading the request body,
/// which notices that itself).
fn watch_for_client_abort(req: HttpRequest) {
    if !checks_client_abort(req) {
        return;
    }
    let r = req.as_ptr();
    // SAFETY: live request; its connection's read event is nginx's.
    unsafe {
        type ReadHandler = unsafe extern "C" fn(*mut ngx_http_request_t);
        let reading_blocked = (*r).read_event_handler.is_some_and(|handler| {
            core::ptr::fn_addr_eq(handler, ngx_http_block_reading as ReadHandler)
                || core::ptr::fn_addr_eq(handler, client_abort_check as ReadHandler)
        });
        if reading_blocked {
            (*r).read_event_handler = Some(client_abort_check);
            ngx_handle_read_event((*(*r).connection).read, 0);
        }
    }
}

/// Whether the client closed the connection (peeking, so that pipelined
/// requests stay unread).
///
/// # Safety
/// `r` must be a live request.
unsafe fn client_gone(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let c = (*r).connection;
        let level_triggered = ngx_event_flags & NGX_USE_LEVEL_EVENT as ngx_uint_t != 0;
        if (*c).error() == 0 {
            let mut byte = 0u8;
            let n = libc::recv((*c).fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK);
            let would_block = n == -1
                && matches!(
                    std::io::Error::last_os_error().raw_os_error(),
                    Some(libc::EAGAIN | libc::EINTR)
                );
            if n > 0 || would_block {
                if level_triggered && n > 0 {
                    // A level-triggered event would fire again at once for
                    // pipelined data: stop listening, as nginx does.
                    ngx_http_block_reading(r);
                }
                return false;
            }
            (*(*c).read).set_eof(1);
            (*c).set_error(1);
        }
        if level_triggered {
            ngx_http_block_reading(r);
        }
        true
    }
}

/// The read handler of a suspended request under `lua_check_client_abort`:
/// a client that went away starts the `ngx.on_abort` callback, or else
/// ends the handler's coroutines and the request (499).
unsafe extern "C" fn client_abort_check(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls read handlers with the live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return;
    };
    let checked = catch_unwind(AssertUnwindSafe(|| {
        let Some((scheduler, _)) = parked(req) else {
            // The handler is done: back to nginx's own behaviour.
            // SAFETY: live request.
            unsafe { ngx_http_block_reading(r) };
            return;
        };
        // SAFETY: live request.
        if !unsafe { client_gone(r) } {
            return;
        }
        if let Some(log) = req.log() {
            log.write(
                NGX_LOG_INFO as usize,
                b"client prematurely closed connection",
            );
        }
        let handling = scheduler.borrow_mut().client_aborted();
        match handling {
            AbortHandling::CallbackQueued => continue_handler(req),
            AbortHandling::HandlerGoesOn => {}
            AbortHandling::EndRequest => {
                unpark(req);
                // SAFETY: live request; 499 terminates it whatever its
                // reference count.
                unsafe {
                    ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST as ngx_int_t)
                };
            }
        }
    }));
    if checked.is_err() {
        // SAFETY: live request.
        unsafe { ngx_http_finalize_request(r, NGX_ERROR as ngx_int_t) };
    }
}

/// An event for a coroutine of a suspended request handler (its sleep
/// timer fired).
unsafe fn wake_request(data: *mut c_void, co: CoId) {
    let r = data.cast::<ngx_http_request_t>();
    // SAFETY: the scheduler's owner is this request, which its pool cleanup
    // keeps from outliving the scheduler's events.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return;
    };
    // SAFETY: live request.
    let connection = unsafe { (*r).connection };
    let resumed = catch_unwind(AssertUnwindSafe(|| resume_coroutine(req, co, &Wait::Sleep)));
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
fn body_arrived(req: HttpRequest) {
    let waiting =
        parked(req).and_then(|(scheduler, _)| scheduler.borrow().waiting_for(&Wait::Body));
    if let Some(co) = waiting {
        resume_coroutine(req, co, &Wait::Body);
    }
}

/// The `captures_done` waiter hook: the coroutines whose subrequests have
/// all answered go on with the responses.
fn captures_arrived(req: HttpRequest, finished: Vec<FinishedCapture>) {
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
    continue_handler(req);
}

/// Resumes thread `co` of the request's suspended handler after an event of kind `why`,
/// and takes the handler's phase on from wherever the run ends.
fn resume_coroutine(req: HttpRequest, co: CoId, why: &Wait) {
    if let Some((scheduler, _)) = parked(req) {
        scheduler
            .borrow_mut()
            .make_ready(co, why, MultiValue::new());
        continue_handler(req);
    }
}

/// Runs what became ready in the request's suspended handler, and takes the
/// handler's phase on from wherever the run ends.
fn continue_handler(req: HttpRequest) {
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
    }
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

/// The location content handler installed by `content_by_lua*`.
///
/// # Safety
/// Called by nginx's content phase with a live request.
pub unsafe extern "C" fn content_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, Phase::Content, |req| {
        let (main, loc) = request_confs(req);
        let (Some(chunk), Some(runtime)) = (loc.content, main.runtime()) else {
            return NGX_DECLINED as ngx_int_t;
        };
        let outcome = runtime.start(chunk, req.as_ptr(), Phase::Content, request_owner(req));
        content_rc(req, outcome, false).unwrap_or(NGX_DONE as ngx_int_t)
    })
}

/// rewrite_by_lua* and access_by_lua*: finishing normally, or with
/// `ngx.exit(ngx.OK)`, goes on to the next handler; other exits end the
/// request.
fn run_request_phase(req: HttpRequest, phase: Phase) -> ngx_int_t {
    let (main, loc) = request_confs(req);
    let chunk = match phase {
        Phase::Rewrite => loc.rewrite,
        _ => loc.access,
    };
    let (Some(chunk), Some(runtime)) = (chunk, main.runtime()) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let outcome = runtime.start(chunk, req.as_ptr(), phase, request_owner(req));
    match phase_step(req, phase, outcome) {
        PhaseStep::Continue => NGX_DECLINED as ngx_int_t,
        PhaseStep::Finish(rc) => rc,
        PhaseStep::Redirected | PhaseStep::Suspended => NGX_DONE as ngx_int_t,
    }
}

unsafe extern "C" fn rewrite_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, Phase::Rewrite, |req| {
        run_request_phase(req, Phase::Rewrite)
    })
}

unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, Phase::Access, |req| {
        run_request_phase(req, Phase::Access)
    })
}

unsafe extern "C" fn log_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, Phase::Log, |req| {
        let (main, loc) = request_confs(req);
        if let (Some(chunk), Some(runtime)) = (loc.log, main.runtime()) {
            if let RunOutcome::Failed(message) = runtime.run(chunk, req.as_ptr(), Phase::Log) {
                if let Some(log) = req.log() {
                    let line = format!("failed to run log_by_lua*: {message}");
                    log.write(NGX_LOG_ERR as usize, line.as_bytes());
                }
            }
        }
        NGX_OK as ngx_int_t
    })
}

/// Adds `handler` to a phase so that it runs after the handlers already
/// there: nginx runs a phase's handlers from the last registered to the
/// first, so ours goes first in the array. That puts rewrite_by_lua after
/// the rewrite module's `set`/`rewrite`, and access_by_lua after
/// `allow`/`deny`, as in OpenResty.
unsafe fn add_phase_handler(
    cmcf: *mut ngx_http_core_main_conf_t,
    phase: u32,
    handler: ngx_http_handler_pt,
) -> bool {
    // SAFETY: the caller passes the core main conf during postconfiguration,
    // when phase handler arrays are still being filled.
    unsafe {
        let handlers = &mut (*cmcf).phases[phase as usize].handlers;
        if ngx_array_push(handlers).is_null() {
            return false;
        }
        let elts = handlers.elts.cast::<ngx_http_handler_pt>();
        core::ptr::copy(elts, elts.add(1), handlers.nelts - 1);
        *elts = handler;
    }
    true
}

/// postconfiguration: registers the phase handlers some location uses.
///
/// # Safety
/// Called by nginx once the `http` block is read.
pub(crate) unsafe extern "C" fn register_phase_handlers(cf: *mut ngx_conf_t) -> ngx_int_t {
    // SAFETY: cf's context is the http block's; both main confs exist there.
    unsafe {
        let ctx = (*cf).ctx.cast::<nginx_sys::ngx_http_conf_ctx_t>();
        let main = crate::conf::lookup::in_http_context(ctx);
        let cmcf = (*(*ctx).main_conf.add(ngx_http_core_module.ctx_index))
            .cast::<ngx_http_core_main_conf_t>();
        let wanted = [
            (
                main.rewrite_used,
                ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
                rewrite_handler as unsafe extern "C" fn(_) -> _,
            ),
            (
                main.access_used,
                ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
                access_handler,
            ),
            (
                main.log_used,
                ngx_http_phases_NGX_HTTP_LOG_PHASE,
                log_handler,
            ),
        ];
        for (used, phase, handler) in wanted {
            if used && !add_phase_handler(cmcf, phase, Some(handler)) {
                return NGX_ERROR as ngx_int_t;
            }
        }
        filters::install(main);
        crate::request::state::use_ctx_slot(crate::conf::lookup::ctx_index());
        waiters::install(WaiterHooks {
            body_ready: body_arrived,
            captures_done: captures_arrived,
        });
    }
    NGX_OK as ngx_int_t
}
