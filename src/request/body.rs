//! Reading the request body for a handler that asked for it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_http_finalize_request, ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t,
    NGX_AGAIN, NGX_ERROR, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_SPECIAL_RESPONSE, NGX_OK,
};

use super::state::existing_request_state;
use super::{waiters, HttpRequest};

/// Outcome of starting to read the request body.
pub enum BodyRead {
    /// Read (or there was none): go on.
    Done,
    /// Arriving: the handler must wait; the `body_ready` waiter hook says
    /// when it is in.
    Pending,
    /// nginx refused it (e.g. 413): end the request with this status.
    Failed(isize),
}

/// Starts reading the request body.
pub fn start_reading(req: HttpRequest) -> BodyRead {
    let r = req.as_ptr();
    // SAFETY: live request. nginx takes a request reference for the read
    // (and drops it itself on a special-response failure). It is released
    // at once, even while the body is still arriving: a waiting handler is
    // kept alive by whoever parks it, the way a sleeping one is, so that one
    // rule governs references whatever its code waits for.
    unsafe {
        let rc = ngx_http_read_client_request_body(r, Some(body_ready));
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return BodyRead::Failed(rc as isize);
        }
        let main = (*r).main;
        (*main).set_count((*main).count() - 1);
        if rc == NGX_AGAIN as ngx_int_t {
            return BodyRead::Pending;
        }
        if rc == NGX_OK as ngx_int_t {
            BodyRead::Done
        } else {
            BodyRead::Failed(NGX_HTTP_INTERNAL_SERVER_ERROR as isize)
        }
    }
}

/// nginx's post handler for the body read: the body is in. Tells a parked
/// handler (when the body was already there, `start_reading` returned at
/// once and nobody waits).
unsafe extern "C" fn body_ready(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls the post handler with the live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return;
    };
    let told = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: live request.
        let parked = unsafe { existing_request_state(r) }.is_some_and(|s| s.parked.is_some());
        if let (true, Some(hooks)) = (parked, waiters::hooks()) {
            (hooks.body_ready)(req);
        }
    }));
    if told.is_err() {
        // SAFETY: live request.
        unsafe { ngx_http_finalize_request(r, NGX_ERROR as ngx_int_t) };
    }
}
