//! What the module keeps per request between nginx's calls into it, in the
//! request's context slot for the module.

use core::any::Any;
use core::ffi::c_void;
use core::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use nginx_sys::{ngx_http_request_t, ngx_pcalloc, ngx_pool_cleanup_add};

use super::subrequest::CaptureBatch;

pub struct RequestState {
    /// Lua ended the body early (`ngx.arg[2] = true`): drop what follows.
    pub body_filter_truncated: bool,
    /// The handler whose code waits for events (sleeps, the request body,
    /// subrequests, light threads), as the layer that parks it keeps it.
    /// Request primitives only ask whether there is one.
    pub parked: Option<Box<dyn Any>>,
    /// Subrequests of `ngx.location.capture*` not yet handed back.
    pub(super) captures: Vec<CaptureBatch>,
    /// Identifies the next capture batch.
    pub(super) next_capture: u64,
    /// Cosockets were connected for the request: their connections close
    /// with it.
    pub(super) owns_sockets: Option<usize>,
    /// The core of the socket reading the body (`ngx.req.socket()`), for
    /// the request's read events; null without one.
    pub(super) downstream_socket: *mut core::ffi::c_void,
    /// `ngx.req.socket(true)` was taken (once per request).
    pub(super) raw_socket_taken: bool,
}

impl RequestState {
    /// Whether a raw request socket (`ngx.req.socket(true)`) is attached:
    /// it has the request's write events, which a parked handler must
    /// leave to it.
    pub fn raw_socket_attached(&self) -> bool {
        self.raw_socket_taken && !self.downstream_socket.is_null()
    }
}

impl Drop for RequestState {
    fn drop(&mut self) {
        self.downstream_socket = ptr::null_mut();
        if let Some(owner) = self.owns_sockets {
            super::socket::release_owned_by(owner);
        }
    }
}

/// Cosockets connect for request `r`: their connections are closed when it
/// ends. False without memory for the request's state.
///
/// # Safety
/// `r` must be a live request, and [`use_ctx_slot`] must have run.
pub unsafe fn own_sockets(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: per the contract.
    match unsafe { request_state(r) } {
        Some(state) => {
            state.owns_sockets = Some(r as usize);
            true
        }
        None => false,
    }
}

/// The module's index in `r->ctx`, as nginx numbered the HTTP modules of
/// the running configuration.
static CTX_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Records the module's context index (at postconfiguration, before any
/// request).
pub fn use_ctx_slot(index: usize) {
    CTX_SLOT.store(index, Ordering::Relaxed);
}

/// # Safety
/// `r` must be a live request, and [`use_ctx_slot`] must have run.
unsafe fn slot(r: *mut ngx_http_request_t) -> *mut *mut c_void {
    let index = CTX_SLOT.load(Ordering::Relaxed);
    debug_assert_ne!(
        index,
        usize::MAX,
        "request state used before postconfiguration"
    );
    // SAFETY: per the contract; r->ctx has a slot per HTTP module.
    unsafe { (*r).ctx.add(index) }
}

/// The request's state if something created it already: what readers use,
/// so that requests which never wait allocate none.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn existing_request_state<'a>(
    r: *mut ngx_http_request_t,
) -> Option<&'a mut RequestState> {
    // SAFETY: per the contract; our slot is null or the state
    // `request_state` allocated from the request pool.
    unsafe { (*slot(r)).cast::<RequestState>().as_mut() }
}

/// The request's state, created on first use; freed (what its parked
/// handler holds released, which disarms its timers) with the request.
///
/// # Safety
/// `r` must be a live request.
pub unsafe fn request_state<'a>(r: *mut ngx_http_request_t) -> Option<&'a mut RequestState> {
    unsafe extern "C" fn release(data: *mut c_void) {
        let state = data.cast::<RequestState>();
        // SAFETY: registered below for this initialised state; the pool runs
        // cleanups before freeing the memory they refer to, and the state is
        // dropped exactly once, here.
        crate::nginx::without_unwinding("request state cleanup", || unsafe {
            ptr::drop_in_place(state)
        });
    }
    // SAFETY: per the contract; our slot is null or this state, allocated
    // from the request pool.
    unsafe {
        let slot = slot(r);
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
                    parked: None,
                    captures: Vec::new(),
                    next_capture: 0,
                    owns_sockets: None,
                    downstream_socket: ptr::null_mut(),
                    raw_socket_taken: false,
                },
            );
            (*cleanup).handler = Some(release);
            (*cleanup).data = state.cast();
            *slot = state.cast();
        }
        Some(&mut *(*slot).cast::<RequestState>())
    }
}
