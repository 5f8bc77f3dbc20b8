//! A place in nginx's output filter chains: a filter installed on top
//! keeps the filters that were there before it, and passes output on to
//! them.

use core::cell::UnsafeCell;

use nginx_sys::{
    ngx_chain_t, ngx_http_output_body_filter_pt, ngx_http_output_header_filter_pt,
    ngx_http_request_t, ngx_http_top_body_filter, ngx_http_top_header_filter, ngx_int_t, NGX_ERROR,
};

/// The filters below one of ours (per process: a reload re-installs them
/// in the new cycle).
pub struct FilterLink {
    next_header: UnsafeCell<ngx_http_output_header_filter_pt>,
    next_body: UnsafeCell<ngx_http_output_body_filter_pt>,
}

// SAFETY: written only while nginx reads the configuration, in the master
// process's single thread, before any request reads it; workers are
// single-threaded.
unsafe impl Sync for FilterLink {}

impl Default for FilterLink {
    fn default() -> FilterLink {
        FilterLink::new()
    }
}

impl FilterLink {
    pub const fn new() -> FilterLink {
        FilterLink {
            next_header: UnsafeCell::new(None),
            next_body: UnsafeCell::new(None),
        }
    }

    /// Puts `header` on top of the header filter chain.
    ///
    /// # Safety
    /// Only from postconfiguration, while nginx builds its filter chains.
    pub unsafe fn install_header(
        &self,
        header: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t,
    ) {
        // SAFETY: per the contract, nothing else reads or writes the chain
        // heads or this link meanwhile.
        unsafe {
            *self.next_header.get() = ngx_http_top_header_filter;
            ngx_http_top_header_filter = Some(header);
        }
    }

    /// Puts `body` on top of the body filter chain.
    ///
    /// # Safety
    /// As for [`Self::install_header`].
    pub unsafe fn install_body(
        &self,
        body: unsafe extern "C" fn(*mut ngx_http_request_t, *mut ngx_chain_t) -> ngx_int_t,
    ) {
        // SAFETY: as for `install_header`.
        unsafe {
            *self.next_body.get() = ngx_http_top_body_filter;
            ngx_http_top_body_filter = Some(body);
        }
    }

    /// Passes the response header of `r` down the chain.
    ///
    /// # Safety
    /// `r` must be a live request.
    pub unsafe fn next_header(&self, r: *mut ngx_http_request_t) -> ngx_int_t {
        // SAFETY: written before any request (see the Sync impl).
        match unsafe { *self.next_header.get() } {
            // SAFETY: per the contract; the chain always ends in nginx's own
            // header filter.
            Some(next) => unsafe { next(r) },
            None => NGX_ERROR as ngx_int_t,
        }
    }

    /// Passes `chain`, output of `r`, down the chain.
    ///
    /// # Safety
    /// `r` must be a live request, `chain` null or a chain of its own.
    pub unsafe fn next_body(
        &self,
        r: *mut ngx_http_request_t,
        chain: *mut ngx_chain_t,
    ) -> ngx_int_t {
        // SAFETY: as for `next_header`.
        match unsafe { *self.next_body.get() } {
            // SAFETY: per the contract.
            Some(next) => unsafe { next(r, chain) },
            None => NGX_ERROR as ngx_int_t,
        }
    }
}
