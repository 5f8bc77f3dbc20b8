//! Phase handlers: where nginx hands a request to Lua and takes it back.

mod client_abort;
mod filters;
pub mod lifecycle;
mod outcome;
mod parked;
pub mod set_var;
mod snapshots;
mod socket_settings;
pub mod status;

use nginx_sys::{
    ngx_array_push, ngx_conf_t, ngx_http_core_main_conf_t, ngx_http_core_module,
    ngx_http_handler_pt, ngx_http_phases_NGX_HTTP_ACCESS_PHASE, ngx_http_phases_NGX_HTTP_LOG_PHASE,
    ngx_http_phases_NGX_HTTP_REWRITE_PHASE, ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
    ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_DONE, NGX_ERROR,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ALERT, NGX_LOG_ERR, NGX_OK,
};

use self::outcome::{content_rc, phase_step, PhaseStep};
use self::parked::{body_arrived, captures_arrived, request_owner};
use crate::conf::request_confs;
use crate::lua::RunOutcome;
use crate::phase::Phase;
use crate::request::waiters::{self, WaiterHooks};
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
        let outcome = runtime.start(
            chunk,
            req.as_ptr(),
            Phase::Content,
            request_owner(req),
            loc.need_request_body == Some(true),
        );
        content_rc(req, outcome, false).unwrap_or(NGX_DONE as ngx_int_t)
    })
}

/// rewrite_by_lua* and access_by_lua*: finishing normally, or with
/// `ngx.exit(ngx.OK)`, goes on to the next handler; other exits end the
/// request.
fn run_request_phase(req: HttpRequest, phase: Phase) -> ngx_int_t {
    let (main, loc) = request_confs(req);
    let chunk = match phase {
        Phase::ServerRewrite => loc.server_rewrite,
        Phase::Rewrite => loc.rewrite,
        _ => loc.access,
    };
    let (Some(chunk), Some(runtime)) = (chunk, main.runtime()) else {
        return NGX_DECLINED as ngx_int_t;
    };
    let outcome = runtime.start(
        chunk,
        req.as_ptr(),
        phase,
        request_owner(req),
        loc.need_request_body == Some(true),
    );
    match phase_step(req, phase, outcome) {
        PhaseStep::Continue => NGX_DECLINED as ngx_int_t,
        PhaseStep::Finish(rc) => rc,
        PhaseStep::Redirected | PhaseStep::Suspended => NGX_DONE as ngx_int_t,
    }
}

unsafe extern "C" fn server_rewrite_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guarded(r, Phase::ServerRewrite, |req| {
        run_request_phase(req, Phase::ServerRewrite)
    })
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
/// `allow`/`deny`, as in OpenResty. With `first` (the `*_no_postpone`
/// directives) it goes last in the array, to run before them.
unsafe fn add_phase_handler(
    cmcf: *mut ngx_http_core_main_conf_t,
    phase: u32,
    handler: ngx_http_handler_pt,
    first: bool,
) -> bool {
    // SAFETY: the caller passes the core main conf during postconfiguration,
    // when phase handler arrays are still being filled.
    unsafe {
        let handlers = &mut (*cmcf).phases[phase as usize].handlers;
        if ngx_array_push(handlers).is_null() {
            return false;
        }
        let elts = handlers.elts.cast::<ngx_http_handler_pt>();
        if first {
            *elts.add(handlers.nelts - 1) = handler;
        } else {
            core::ptr::copy(elts, elts.add(1), handlers.nelts - 1);
            *elts = handler;
        }
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
                main.server_rewrite_used,
                ngx_http_phases_NGX_HTTP_SERVER_REWRITE_PHASE,
                server_rewrite_handler as unsafe extern "C" fn(_) -> _,
                false,
            ),
            (
                main.rewrite_used,
                ngx_http_phases_NGX_HTTP_REWRITE_PHASE,
                rewrite_handler,
                main.rewrite_no_postpone == Some(true),
            ),
            (
                main.access_used,
                ngx_http_phases_NGX_HTTP_ACCESS_PHASE,
                access_handler,
                main.access_no_postpone == Some(true),
            ),
            (
                main.log_used,
                ngx_http_phases_NGX_HTTP_LOG_PHASE,
                log_handler,
                false,
            ),
        ];
        for (used, phase, handler, first) in wanted {
            if used && !add_phase_handler(cmcf, phase, Some(handler), first) {
                return NGX_ERROR as ngx_int_t;
            }
        }
        filters::install(main);
        crate::request::state::use_ctx_slot(crate::conf::lookup::ctx_index());
        waiters::install(WaiterHooks {
            body_ready: body_arrived,
            captures_done: captures_arrived,
        });
        crate::lua::ngx::install_location_settings(crate::lua::ngx::LocationSettings {
            checks_client_abort: client_abort::checks_client_abort,
            transforms_underscores: |r| {
                crate::conf::request_confs(r).1.transform_underscores != Some(false)
            },
            has_lua_content: |r| crate::conf::request_confs(r).1.content.is_some(),
        });
        crate::lua::socket::install_settings(socket_settings::socket_settings);
    }
    NGX_OK as ngx_int_t
}
