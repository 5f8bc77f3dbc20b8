//! Phase handlers: where nginx hands a request to Lua and takes it back.

pub mod args;
pub mod request;
pub mod status;

use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_http_discard_request_body, ngx_http_request_t, ngx_int_t, NGX_DECLINED, NGX_ERROR,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NO_CONTENT, NGX_LOG_ALERT, NGX_LOG_ERR, NGX_OK,
};

use self::request::HttpRequest;
use crate::conf::{LocConf, MainConf};
use crate::lua::RunOutcome;

/// The location content handler installed by `content_by_lua*`.
///
/// # Safety
/// Called by nginx's content phase with a live request.
pub unsafe extern "C" fn content_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: per this function's contract.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    match catch_unwind(AssertUnwindSafe(|| serve_content(req))) {
        Ok(rc) => rc,
        Err(_) => {
            if let Some(log) = req.log() {
                log.write(
                    NGX_LOG_ALERT as usize,
                    b"panic while running content_by_lua",
                );
            }
            if req.headers_sent() {
                NGX_ERROR as ngx_int_t
            } else {
                NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
            }
        }
    }
}

/// Our `http` main configuration for the request's server.
pub(crate) fn main_conf<'a>(req: HttpRequest) -> &'a MainConf {
    module_confs(req).0
}

fn module_confs<'a>(req: HttpRequest) -> (&'a MainConf, &'a LocConf) {
    // SAFETY: the request's conf arrays hold our confs at our ctx_index for
    // every request routed to a location of an http block.
    unsafe {
        let r = req.as_ptr();
        let index = crate::ngx_http_lua_shdict_module.ctx_index;
        let main = &*(*(*r).main_conf.add(index)).cast::<MainConf>();
        let loc = &*(*(*r).loc_conf.add(index)).cast::<LocConf>();
        (main, loc)
    }
}

fn serve_content(req: HttpRequest) -> ngx_int_t {
    // SAFETY: live request; nginx's content handlers that do not use the
    // body discard it so keep-alive connections stay in sync.
    let rc = unsafe { ngx_http_discard_request_body(req.as_ptr()) };
    if rc != NGX_OK as ngx_int_t {
        return rc;
    }
    let (main, loc) = module_confs(req);
    let (Some(chunk), Some(runtime)) = (loc.content, main.runtime()) else {
        return NGX_DECLINED as ngx_int_t;
    };
    match runtime.run(chunk, req.as_ptr()) {
        RunOutcome::Finished => req.finish_response(),
        RunOutcome::Exited(status) => exit_response(req, status),
        RunOutcome::Failed(message) => {
            let line = format!("lua entry thread aborted: {message}");
            if let Some(log) = req.log() {
                log.write(NGX_LOG_ERR as usize, line.as_bytes());
            }
            if req.headers_sent() {
                NGX_ERROR as ngx_int_t
            } else {
                NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t
            }
        }
    }
}

/// What `ngx.exit(status)` means in the content phase, as in OpenResty:
/// `ngx.OK` or any status once output started ends the response normally; a
/// 2xx status (other than 204) before output sends an empty response with it;
/// `ngx.ERROR` aborts; other statuses produce nginx's response for them.
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
