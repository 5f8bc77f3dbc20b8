//! header_filter_by_lua* and body_filter_by_lua*: our filters sit at the top
//! of nginx's output filter chains, so Lua sees the response before any
//! other filter (gzip, chunked encoding) changes it.

use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_create_temp_buf, ngx_http_request_t,
    ngx_int_t, ngx_pcalloc, NGX_ERROR, NGX_LOG_ERR,
};

use crate::conf::MainConf;
use crate::lua::RunOutcome;
use crate::phase::Phase;
use crate::request::buffers::{drain_chain, ChainEnd};
use crate::request::filter_chain::FilterLink;
use crate::request::state::request_state;
use crate::request::HttpRequest;

/// The filters below ours.
static NEXT: FilterLink = FilterLink::new();

/// Installs our filters on top of the chains, as postconfiguration must
/// (above the capture filters, which thereby see subrequest output after
/// the Lua filters).
///
/// # Safety
/// Called from postconfiguration, while nginx builds its filter chains.
pub(crate) unsafe fn install(main: &MainConf) {
    // SAFETY: per the contract.
    unsafe {
        crate::request::capture_filters::install_capture_filters();
        if main.header_filter_used || main.body_filter_used {
            NEXT.install_header(header_filter);
        }
        if main.body_filter_used {
            NEXT.install_body(body_filter);
        }
    }
}

/// # Safety
/// `r` must be a live request.
unsafe fn next_header(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: per the contract.
    unsafe { NEXT.next_header(r) }
}

/// # Safety
/// `r` must be a live request, `chain` null or a chain of its own.
unsafe fn next_body(r: *mut ngx_http_request_t, chain: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: per the contract.
    unsafe { NEXT.next_body(r, chain) }
}

fn log_failure(req: HttpRequest, phase: Phase, message: &str) {
    if let Some(log) = req.log() {
        let line = format!("failed to run {}*: {message}", phase.directive());
        log.write(NGX_LOG_ERR as usize, line.as_bytes());
    }
}

unsafe extern "C" fn header_filter(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls header filters with a live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (main, loc) = crate::conf::request_confs(req);
        if loc.body_filter.is_some() {
            // Lua sees and may change the body: it must be in memory, and
            // its length is no longer known.
            // SAFETY: live request, before its header is written.
            unsafe {
                (*r).set_filter_need_in_memory(1);
                (*r).headers_out.content_length_n = -1;
                if !(*r).headers_out.content_length.is_null() {
                    (*(*r).headers_out.content_length).hash = 0;
                    (*r).headers_out.content_length = ptr::null_mut();
                }
            }
        }
        let (Some(chunk), Some(runtime)) = (loc.header_filter, main.runtime()) else {
            return Ok(());
        };
        match runtime.run(chunk, r, Phase::HeaderFilter) {
            RunOutcome::Failed(message) => {
                log_failure(req, Phase::HeaderFilter, &message);
                Err(())
            }
            _ => Ok(()),
        }
    }));
    match outcome {
        // SAFETY: nginx called the filter with this live request.
        Ok(Ok(())) => unsafe { next_header(r) },
        _ => NGX_ERROR as ngx_int_t,
    }
}

unsafe extern "C" fn body_filter(r: *mut ngx_http_request_t, input: *mut ngx_chain_t) -> ngx_int_t {
    // SAFETY: nginx calls body filters with a live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return NGX_ERROR as ngx_int_t;
    };
    let (main, loc) = crate::conf::request_confs(req);
    let (Some(chunk), Some(runtime)) = (loc.body_filter, main.runtime()) else {
        // SAFETY: nginx called the filter with this live request and chain.
        return unsafe { next_body(r, input) };
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the input chain and its buffers belong to this request;
        // we consume them (pos = last) and pass new buffers from its pool.
        unsafe {
            let state = request_state(r).ok_or(())?;
            let mut data = Vec::new();
            let ChainEnd { last: eof, flush } = drain_chain(input, Some(&mut data)).ok_or(())?;
            if state.body_filter_truncated {
                return Ok(ptr::null_mut());
            }
            let (outcome, new_data, new_eof) = runtime.run_body_filter(chunk, r, &data, eof);
            if let RunOutcome::Failed(message) = outcome {
                log_failure(req, Phase::BodyFilter, &message);
                return Err(());
            }
            if new_eof && !eof {
                state.body_filter_truncated = true;
            }
            output_chain(r, &new_data, new_eof, flush).ok_or(())
        }
    }));
    match outcome {
        // SAFETY: live request; the chain comes from its pool.
        Ok(Ok(chain)) => unsafe { next_body(r, chain) },
        _ => NGX_ERROR as ngx_int_t,
    }
}

/// One buffer holding `data`, marked last (or last in its subrequest) on
/// `eof` and flushing on `flush`; null when there is nothing to send.
///
/// # Safety
/// `r` must be a live request.
unsafe fn output_chain(
    r: *mut ngx_http_request_t,
    data: &[u8],
    eof: bool,
    flush: bool,
) -> Option<*mut ngx_chain_t> {
    if data.is_empty() && !eof && !flush {
        return Some(ptr::null_mut());
    }
    // SAFETY: buffers and links from the request pool, filled within bounds.
    unsafe {
        let pool = (*r).pool;
        let b = if data.is_empty() {
            ngx_pcalloc(pool, core::mem::size_of::<ngx_buf_t>()).cast::<ngx_buf_t>()
        } else {
            let b = ngx_create_temp_buf(pool, data.len());
            if !b.is_null() {
                ptr::copy_nonoverlapping(data.as_ptr(), (*b).last, data.len());
                (*b).last = (*b).last.add(data.len());
            }
            b
        };
        if b.is_null() {
            return None;
        }
        if eof {
            if (*r).main == r {
                (*b).set_last_buf(1);
            }
            (*b).set_last_in_chain(1);
        }
        if flush {
            (*b).set_flush(1);
        }
        if data.is_empty() {
            (*b).set_sync(1);
        }
        let link = ngx_alloc_chain_link(pool);
        if link.is_null() {
            return None;
        }
        (*link).buf = b;
        (*link).next = ptr::null_mut();
        Some(link)
    }
}
