//! What the module keeps per request between nginx's calls into it: the body
//! filter's truncation flag, and the scheduler of a handler whose coroutines
//! wait for events.

use core::ffi::c_void;
use core::ptr;

use nginx_sys::{ngx_http_request_t, ngx_pcalloc, ngx_pool_cleanup_add};

use super::subrequest::CaptureBatch;
use crate::lua::scheduler::Shared;
use crate::lua::Phase;

pub(crate) struct RequestState {
    /// Lua ended the body early (`ngx.arg[2] = true`): drop what follows.
    pub body_filter_truncated: bool,
    /// The scheduler of a handler whose coroutines wait (`ngx.sleep`, the
    /// request body, light threads, subrequests), and the handler's phase.
    pub suspended: Option<(Shared, Phase)>,
    /// Subrequests of `ngx.location.capture*` not yet handed to Lua.
    pub captures: Vec<CaptureBatch>,
    /// Identifies the next capture batch.
    pub next_capture: u64,
}

/// The request's state if something created it already: what readers use,
/// so that requests which never wait allocate none.
///
/// # Safety
/// `r` must be a live request.
pub(crate) unsafe fn existing_request_state<'a>(
    r: *mut ngx_http_request_t,
) -> Option<&'a mut RequestState> {
    let index = crate::ngx_http_lua_shdict_module.ctx_index;
    // SAFETY: per the contract; r->ctx has a slot per HTTP module, ours null
    // or the state `request_state` allocated from the request pool.
    unsafe { (*(*r).ctx.add(index)).cast::<RequestState>().as_mut() }
}

/// The request's state, created on first use; freed (its scheduler's timers
/// disarmed, its Lua values released) with the request.
///
/// # Safety
/// `r` must be a live request.
pub(crate) unsafe fn request_state<'a>(r: *mut ngx_http_request_t) -> Option<&'a mut RequestState> {
    unsafe extern "C" fn release(data: *mut c_void) {
        let state = data.cast::<RequestState>();
        // SAFETY: registered below for this initialised state; the pool runs
        // cleanups before freeing the memory they refer to, and the state is
        // dropped exactly once, here (its scheduler disarms its timers).
        crate::nginx::without_unwinding("request state cleanup", || unsafe {
            ptr::drop_in_place(state)
        });
    }
    let index = crate::ngx_http_lua_shdict_module.ctx_index;
    // SAFETY: r->ctx has a slot per HTTP module; ours is null or this state,
    // allocated from the request pool.
    unsafe {
        let slot = (*r).ctx.add(index);
        if (*slot).is_null() {
            let state =
                ngx_pcalloc((*r).pool, core::mem::size_of::<RequestState>()).cast::<RequestState>();
            let cleanup = ngx_pool_cleanup_add((*r).pool, 0);
            if state.is_null() || cleanup.is_null() {
                return None;
            }
            ptr::write(
                state,
                RequestState {
                    body_filter_truncated: false,
                    suspended: None,
                    captures: Vec::new(),
                    next_capture: 0,
                },
            );
            (*cleanup).handler = Some(release);
            (*cleanup).data = state.cast();
            *slot = state.cast();
        }
        Some(&mut *(*slot).cast::<RequestState>())
    }
}
