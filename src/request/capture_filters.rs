//! The capture filters: both output chains pass a captured subrequest's
//! response here (above nginx's own filters, below the Lua filters, so a
//! subrequest's header/body_filter_by_lua see its response first), and it
//! goes no further than its capture record.

use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{ngx_chain_t, ngx_http_request_t, ngx_int_t, NGX_ERROR, NGX_OK};

use super::buffers::drain_chain;
use super::filter_chain::FilterLink;
use super::subrequest::{capture_link, captured};

/// The filters below the capture filters.
static NEXT: FilterLink = FilterLink::new();

/// Installs the capture filters on top of the chains, as postconfiguration
/// must (before the Lua filters, which thereby run first).
///
/// # Safety
/// Called from postconfiguration, while nginx builds its filter chains.
pub unsafe fn install_capture_filters() {
    // SAFETY: per the contract.
    unsafe {
        NEXT.install_header(capture_header_filter);
        NEXT.install_body(capture_body_filter);
    }
}

unsafe extern "C" fn capture_header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls header filters with a live request.
    if unsafe { capture_link(r) }.is_some() {
        // SAFETY: as above; the header goes no further than here.
        unsafe {
            (*r).set_filter_need_in_memory(1);
            (*r).set_header_sent(1);
        }
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: passing the live request down the chain.
    unsafe { NEXT.next_header(r) }
}

unsafe extern "C" fn capture_body_filter(
    r: *mut ngx_http_request_t,
    input: *mut ngx_chain_t,
) -> ngx_int_t {
    // SAFETY: nginx calls body filters with a live request.
    let Some(link) = (unsafe { capture_link(r) }) else {
        // SAFETY: passing the live request and its chain down.
        return unsafe { NEXT.next_body(r, input) };
    };
    let captured_ok = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the chain and its buffers belong to this subrequest.
        unsafe {
            let mut record = if (*link).posted { None } else { captured(link) };
            let response = record
                .as_mut()
                .map(|(batch, index)| &mut batch.responses[*index]);
            match response {
                Some(response) => {
                    let end = drain_chain(input, Some(&mut response.body)).ok_or(())?;
                    response.seen_last |= end.last;
                }
                None => {
                    drain_chain(input, None).ok_or(())?;
                }
            }
        }
        Ok::<(), ()>(())
    }));
    match captured_ok {
        Ok(Ok(())) => NGX_OK as ngx_int_t,
        _ => NGX_ERROR as ngx_int_t,
    }
}
