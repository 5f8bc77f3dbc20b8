//! What a handler's run means for nginx: the status to finish the request
//! with, a redirect, or a wait.

use nginx_sys::{
    ngx_http_finalize_request, ngx_int_t, NGX_DONE, NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NO_CONTENT, NGX_LOG_ERR, NGX_OK,
};

use super::parked::suspend;
use crate::lua::RunOutcome;
use crate::phase::Phase;
use crate::request::subrequest;
use crate::request::HttpRequest;

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
pub(super) fn content_rc(
    req: HttpRequest,
    outcome: RunOutcome,
    resumed: bool,
) -> Option<ngx_int_t> {
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
pub(super) enum PhaseStep {
    /// Finished (or `ngx.exit(ngx.OK)`): on to the next phase handler.
    Continue,
    /// The request ends with this code.
    Finish(ngx_int_t),
    /// `ngx.exec` redirected it; the phase engine must stop.
    Redirected,
    /// The handler's coroutines wait (already suspended).
    Suspended,
}

pub(super) fn phase_step(req: HttpRequest, phase: Phase, outcome: RunOutcome) -> PhaseStep {
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
