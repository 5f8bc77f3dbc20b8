//! `lua_check_client_abort`: a parked handler hears of the client closing
//! its connection.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_event_flags, ngx_handle_read_event, ngx_http_block_reading, ngx_http_finalize_request,
    ngx_http_request_t, ngx_int_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_CLIENT_CLOSED_REQUEST,
    NGX_LOG_INFO, NGX_USE_LEVEL_EVENT,
};

use super::parked::{continue_handler, parked, parked_entry, unpark};
use crate::conf::request_confs;
use crate::lua::scheduler::AbortHandling;
use crate::request::HttpRequest;

/// Whether `lua_check_client_abort` is on for the request's location.
pub(super) fn checks_client_abort(req: HttpRequest) -> bool {
    request_confs(req).1.check_client_abort == Some(true)
}

/// Under `lua_check_client_abort on`, a suspended handler hears of the
/// client closing its connection (unless nginx is reading the request body,
/// which notices that itself).
pub(super) fn watch_for_client_abort(req: HttpRequest) {
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
        let scheduler = parked(req);
        if scheduler.is_none() && !parked_entry(req) {
            // The handler is done: back to nginx's own behaviour.
            // SAFETY: live request.
            unsafe { ngx_http_block_reading(r) };
            return;
        }
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
        // An entry coroutine parked without a scheduler registered no
        // `ngx.on_abort` callback (registering makes the scheduler).
        let handling = scheduler.map_or(AbortHandling::EndRequest, |(scheduler, _)| {
            scheduler.borrow_mut().client_aborted()
        });
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
