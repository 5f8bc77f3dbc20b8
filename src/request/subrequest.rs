//! Subrequests for `ngx.location.capture*`: nginx's own subrequests whose
//! response is captured in memory for the Lua code that issued them.
//!
//! nginx queues a subrequest's output behind its parent's (the "postponed"
//! list) and makes it the connection's active request. A captured response
//! never reaches the client, so both are undone right after creation: the
//! parent keeps writing its own response, and any number of subrequests (of
//! any number of light threads) run side by side. When one finishes, its
//! post-subrequest handler makes it active again for nginx's bookkeeping,
//! which then posts the parent; the parent's write handler resumes the
//! waiting handler (through the `captures_done` waiter hook) once its whole
//! batch is in.
//!
//! The capture filters (`capture_filters.rs`) keep a captured response
//! from going further than its record here.

use core::ffi::c_void;
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_alloc_chain_link, ngx_create_temp_buf, ngx_http_core_main_conf_t, ngx_http_core_module,
    ngx_http_parse_unsafe_uri, ngx_http_post_subrequest_t, ngx_http_request_body_t,
    ngx_http_request_empty_handler, ngx_http_request_t, ngx_http_subrequest,
    ngx_http_variable_value_t, ngx_int_t, ngx_list_init, ngx_list_push, ngx_pcalloc, ngx_str_t,
    ngx_table_elt_t, ngx_uint_t, NGX_ERROR, NGX_HTTP_COPY, NGX_HTTP_DELETE, NGX_HTTP_GET,
    NGX_HTTP_HEAD, NGX_HTTP_LOCK, NGX_HTTP_MKCOL, NGX_HTTP_MOVE, NGX_HTTP_OPTIONS, NGX_HTTP_PATCH,
    NGX_HTTP_POST, NGX_HTTP_PROPFIND, NGX_HTTP_PROPPATCH, NGX_HTTP_PUT, NGX_HTTP_TRACE,
    NGX_HTTP_UNLOCK, NGX_LOG_ERR, NGX_OK,
};

use super::headers::{bytes_of, copy_to_pool, elements, header_name_matches};
use super::state::{existing_request_state, request_state};
use super::waiters::{self, FinishedCapture, WaiterId};
use super::{HttpRequest, VariableError};

/// nginx's method bits and names, as `ngx.HTTP_*` hold them (`ngx.HTTP_GET`
/// is `NGX_HTTP_GET`) and subrequests take them.
pub const METHODS: &[(u32, &[u8])] = &[
    (NGX_HTTP_GET, b"GET"),
    (NGX_HTTP_HEAD, b"HEAD"),
    (NGX_HTTP_POST, b"POST"),
    (NGX_HTTP_PUT, b"PUT"),
    (NGX_HTTP_DELETE, b"DELETE"),
    (NGX_HTTP_MKCOL, b"MKCOL"),
    (NGX_HTTP_COPY, b"COPY"),
    (NGX_HTTP_MOVE, b"MOVE"),
    (NGX_HTTP_OPTIONS, b"OPTIONS"),
    (NGX_HTTP_PROPFIND, b"PROPFIND"),
    (NGX_HTTP_PROPPATCH, b"PROPPATCH"),
    (NGX_HTTP_LOCK, b"LOCK"),
    (NGX_HTTP_UNLOCK, b"UNLOCK"),
    (NGX_HTTP_PATCH, b"PATCH"),
    (NGX_HTTP_TRACE, b"TRACE"),
];

/// One subrequest of a capture, as the Lua options describe it.
pub struct SubrequestSpec {
    /// The URI, possibly with `?args`.
    pub uri: Vec<u8>,
    /// Extra query arguments, appended to the URI's own.
    pub args: Vec<u8>,
    /// An entry of [`METHODS`].
    pub method: (u32, &'static [u8]),
    pub body: Option<Vec<u8>>,
    pub vars: Vec<(Vec<u8>, Vec<u8>)>,
    pub copy_all_vars: bool,
    pub share_all_vars: bool,
    pub always_forward_body: bool,
}

/// A subrequest's captured response.
#[derive(Default)]
pub struct Captured {
    pub status: usize,
    /// Header name as sent, and value, in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// `Content-Length` when nginx keeps it only as a number.
    pub content_length: Option<i64>,
    pub body: Vec<u8>,
    pub truncated: bool,
    /// The body's last buffer went through the capture filter.
    pub(super) seen_last: bool,
}

/// The subrequests of one `capture*` call, and the waiter waiting for
/// them.
pub struct CaptureBatch {
    id: u64,
    waiter: WaiterId,
    pending: usize,
    pub(super) responses: Vec<Captured>,
    /// The call failed half-way: nobody waits for what was started.
    abandoned: bool,
}

/// What a subrequest's post-subrequest handler gets. Allocated from the
/// request pool (plain data, no destructor); nginx points at `post`.
#[repr(C)]
pub(super) struct CaptureLink {
    post: ngx_http_post_subrequest_t,
    parent: *mut ngx_http_request_t,
    batch: u64,
    index: usize,
    /// nginx may finalize a subrequest more than once; the first counts.
    pub(super) posted: bool,
}

/// Why a capture could not start; the text is raised to Lua.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("unsafe uri in argument #1: {0}")]
    UnsafeUri(String),
    #[error("failed to issue subrequest: {0}")]
    Issue(isize),
    #[error("failed to adjust the subrequest: {0}")]
    Adjust(isize),
    #[error("no memory")]
    NoMemory,
}

/// Whether coroutines of request `r` wait for subrequests.
pub fn pending(req: HttpRequest) -> bool {
    // SAFETY: live request.
    unsafe { existing_request_state(req.as_ptr()) }
        .is_some_and(|state| state.captures.iter().any(|b| b.pending > 0))
}

/// Nobody waits for the subrequests `waiter` of `r` started (its yield
/// failed). They still count as pending.
pub fn abandon(req: HttpRequest, waiter: WaiterId) {
    // SAFETY: live request.
    if let Some(state) = unsafe { existing_request_state(req.as_ptr()) } {
        for batch in state.captures.iter_mut().filter(|b| b.waiter == waiter) {
            batch.abandoned = true;
        }
    }
}

/// Starts one subrequest per spec for `waiter` of `req`; returns them (in
/// order) once all are posted. The waiter hears of the responses through
/// the `captures_done` hook once all have answered.
pub fn start_captures(
    req: HttpRequest,
    waiter: WaiterId,
    specs: &[SubrequestSpec],
) -> Result<Vec<*mut ngx_http_request_t>, CaptureError> {
    let r = req.as_ptr();
    // SAFETY: live request.
    let state = unsafe { request_state(r) }.ok_or(CaptureError::NoMemory)?;
    let id = state.next_capture;
    state.next_capture += 1;
    state.captures.push(CaptureBatch {
        id,
        waiter,
        pending: 0,
        responses: specs.iter().map(|_| Captured::default()).collect(),
        abandoned: false,
    });
    let mut created = Vec::with_capacity(specs.len());
    for (index, spec) in specs.iter().enumerate() {
        // SAFETY: live request, which its Lua handler is serving.
        let issued = unsafe { issue(r, spec, id, index) };
        // SAFETY: as above; issuing does not run any request code.
        let state = unsafe { request_state(r) }.ok_or(CaptureError::NoMemory)?;
        let Some(batch) = state.captures.iter_mut().find(|b| b.id == id) else {
            return Err(CaptureError::NoMemory);
        };
        match issued {
            Ok(sr) => {
                batch.pending += 1;
                created.push(sr);
            }
            Err(e) => {
                // None of those already issued has run (they are only
                // posted): take them all back.
                for sr in created {
                    // SAFETY: detached subrequests of `r`, not yet run.
                    unsafe { cancel(r, sr) };
                }
                state.captures.retain(|b| b.id != id);
                return Err(e);
            }
        }
    }
    Ok(created)
}

/// Creates, detaches and adjusts one subrequest.
///
/// # Safety
/// `r` must be a live request.
unsafe fn issue(
    r: *mut ngx_http_request_t,
    spec: &SubrequestSpec,
    batch: u64,
    index: usize,
) -> Result<*mut ngx_http_request_t, CaptureError> {
    // SAFETY: per the contract; everything allocated here comes from the
    // request pool, which subrequests share with their main request.
    unsafe {
        let pool = (*r).pool;
        let link = ngx_pcalloc(pool, core::mem::size_of::<CaptureLink>()).cast::<CaptureLink>();
        if link.is_null() {
            return Err(CaptureError::NoMemory);
        }
        (*link).post.handler = Some(post_subrequest);
        (*link).post.data = link.cast();
        (*link).parent = r;
        (*link).batch = batch;
        (*link).index = index;

        let mut uri = copy_to_pool(pool, &spec.uri).ok_or(CaptureError::NoMemory)?;
        let mut args = ngx_str_t {
            len: 0,
            data: ptr::null_mut(),
        };
        let mut flags: ngx_uint_t = 0;
        if ngx_http_parse_unsafe_uri(r, &mut uri, &mut args, &mut flags) != NGX_OK as ngx_int_t {
            return Err(CaptureError::UnsafeUri(
                String::from_utf8_lossy(&spec.uri).into_owned(),
            ));
        }
        if !spec.args.is_empty() {
            let mut joined = bytes_of(&args).to_vec();
            if !joined.is_empty() {
                joined.push(b'&');
            }
            joined.extend_from_slice(&spec.args);
            args = copy_to_pool(pool, &joined).ok_or(CaptureError::NoMemory)?;
        }

        let mut sr: *mut ngx_http_request_t = ptr::null_mut();
        let rc = ngx_http_subrequest(r, &mut uri, &mut args, &mut sr, &mut (*link).post, 0);
        if rc != NGX_OK as ngx_int_t || sr.is_null() {
            return Err(CaptureError::Issue(rc as isize));
        }
        detach(r, sr);
        if let Err(e) = adjust(r, sr, spec) {
            cancel(r, sr);
            return Err(e);
        }
        Ok(sr)
    }
}

/// Takes `sr` out of its parent's output order, and gives the connection
/// back to the parent if nginx made `sr` the active request.
///
/// # Safety
/// `sr` must be a subrequest of `r` just created by `ngx_http_subrequest`.
unsafe fn detach(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t) {
    // SAFETY: per the contract; the postponed list is the parent's own.
    unsafe {
        let mut link = &mut (*r).postponed;
        while !(*link).is_null() {
            if (**link).request == sr {
                *link = (**link).next;
                break;
            }
            link = &mut (**link).next;
        }
        let c = (*r).connection;
        if (*c).data == sr.cast() {
            (*c).data = r.cast();
        }
    }
}

/// Undoes the creation of a subrequest that could not be adjusted.
///
/// # Safety
/// `sr` must be a detached subrequest of `r` that has not run yet.
unsafe fn cancel(r: *mut ngx_http_request_t, sr: *mut ngx_http_request_t) {
    // SAFETY: per the contract; nginx posted it on the main request's list
    // and counted a reference for it.
    unsafe {
        let main = (*r).main;
        let mut link = &mut (*main).posted_requests;
        while !(*link).is_null() {
            if (**link).request == sr {
                *link = (**link).next;
                break;
            }
            link = &mut (**link).next;
        }
        (*main).set_count((*main).count() - 1);
    }
}

/// Method, variables, request body and headers of a new subrequest.
///
/// # Safety
/// `sr` must be a fresh subrequest of the live request `r`.
unsafe fn adjust(
    r: *mut ngx_http_request_t,
    sr: *mut ngx_http_request_t,
    spec: &SubrequestSpec,
) -> Result<(), CaptureError> {
    // SAFETY: per the contract; new structures come from the shared pool.
    unsafe {
        let pool = (*r).pool;
        let (bit, name) = spec.method;
        (*sr).method = bit as ngx_uint_t;
        (*sr).method_name = ngx_str_t {
            len: name.len(),
            data: name.as_ptr().cast_mut(),
        };

        // nginx shares the parent's variable values; a capture starts from
        // none unless asked to copy or share them.
        if !spec.share_all_vars {
            let cmcf = (*(*r).main_conf.add(ngx_http_core_module.ctx_index))
                .cast::<ngx_http_core_main_conf_t>();
            let count = (*cmcf).variables.nelts;
            let size = count * core::mem::size_of::<ngx_http_variable_value_t>();
            let values = ngx_pcalloc(pool, size.max(1)).cast::<ngx_http_variable_value_t>();
            if values.is_null() {
                return Err(CaptureError::NoMemory);
            }
            if spec.copy_all_vars {
                ptr::copy_nonoverlapping((*r).variables, values, count);
            }
            (*sr).variables = values;
        }

        let forwards_parent_body = spec.always_forward_body
            || bit == NGX_HTTP_PUT
            || bit == NGX_HTTP_POST
            || (*r).headers_in.content_length_n <= 0;
        (*sr).request_body = match &spec.body {
            Some(bytes) => request_body(pool, bytes).ok_or(CaptureError::NoMemory)?,
            None if forwards_parent_body => (*r).request_body,
            None => ptr::null_mut(),
        };
        copy_request_headers(r, sr)?;

        let subrequest = HttpRequest::from_raw(sr).ok_or(CaptureError::NoMemory)?;
        for (name, value) in &spec.vars {
            if let Err(e) = subrequest.assign_variable(name, value) {
                let shown = String::from_utf8_lossy(name);
                let line = match e {
                    VariableError::NoMemory => return Err(CaptureError::NoMemory),
                    VariableError::NotFound(_) => format!(
                        "variable \"{shown}\" cannot be assigned a value (maybe you forgot to define it first?) "
                    ),
                    VariableError::NotChangeable(_) => {
                        format!("variable \"{shown}\" not changeable")
                    }
                };
                if let Some(log) = subrequest.log() {
                    log.write(NGX_LOG_ERR as usize, line.as_bytes());
                }
                return Err(CaptureError::Adjust(NGX_ERROR as isize));
            }
        }
    }
    Ok(())
}

/// A request body holding `bytes` in one memory buffer.
fn request_body(
    pool: *mut nginx_sys::ngx_pool_t,
    bytes: &[u8],
) -> Option<*mut ngx_http_request_body_t> {
    // SAFETY: pool allocations, filled within their sizes.
    unsafe {
        let body = ngx_pcalloc(pool, core::mem::size_of::<ngx_http_request_body_t>())
            .cast::<ngx_http_request_body_t>();
        if body.is_null() {
            return None;
        }
        if bytes.is_empty() {
            return Some(body);
        }
        let b = ngx_create_temp_buf(pool, bytes.len());
        let link = ngx_alloc_chain_link(pool);
        if b.is_null() || link.is_null() {
            return None;
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), (*b).last, bytes.len());
        (*b).last = (*b).last.add(bytes.len());
        (*b).set_last_buf(1);
        (*link).buf = b;
        (*link).next = ptr::null_mut();
        (*body).bufs = link;
        (*body).buf = b;
        Some(body)
    }
}

/// Gives the subrequest its own list of the parent's request headers, with
/// a `Content-Length` matching its own body (and no chunked encoding).
///
/// # Safety
/// `sr` must be a fresh subrequest of the live request `r`.
unsafe fn copy_request_headers(
    r: *mut ngx_http_request_t,
    sr: *mut ngx_http_request_t,
) -> Result<(), CaptureError> {
    // SAFETY: per the contract; elements are copied into a new list from
    // the shared pool (their strings stay the parent's, which live as long).
    unsafe {
        let headers_in = &mut (*sr).headers_in;
        if ngx_list_init(
            &mut headers_in.headers,
            (*r).pool,
            20,
            core::mem::size_of::<ngx_table_elt_t>(),
        ) != NGX_OK as ngx_int_t
        {
            return Err(CaptureError::NoMemory);
        }
        for h in elements(&(*r).headers_in.headers.part) {
            let key = bytes_of(&h.key);
            if header_name_matches(b"content-length", key)
                || header_name_matches(b"transfer-encoding", key)
            {
                continue;
            }
            let elt = ngx_list_push(&mut headers_in.headers).cast::<ngx_table_elt_t>();
            if elt.is_null() {
                return Err(CaptureError::NoMemory);
            }
            ptr::copy_nonoverlapping(&*h, elt, 1);
        }
        headers_in.content_length = ptr::null_mut();
        headers_in.content_length_n = -1;
        headers_in.transfer_encoding = ptr::null_mut();
        headers_in.set_chunked(0);

        let body = (*sr).request_body;
        if body.is_null() {
            return Ok(());
        }
        let mut size: i64 = 0;
        let mut link = (*body).bufs;
        while !link.is_null() {
            let b = (*link).buf;
            size += if (*b).in_file() != 0 && (*b).temporary() == 0 && (*b).memory() == 0 {
                (*b).file_last - (*b).file_pos
            } else {
                (*b).last.offset_from((*b).pos) as i64
            };
            link = (*link).next;
        }
        let subrequest = HttpRequest::from_raw(sr).ok_or(CaptureError::NoMemory)?;
        subrequest
            .set_request_header(b"Content-Length", &[size.to_string().as_bytes()])
            .map_err(|_| CaptureError::NoMemory)
    }
}

/// The capture link of `r`, if it is a captured subrequest.
///
/// # Safety
/// `r` must be a live request.
pub(super) unsafe fn capture_link(r: *mut ngx_http_request_t) -> Option<*mut CaptureLink> {
    // SAFETY: per the contract; a post-subrequest entry whose handler is
    // ours was allocated by `issue` as a CaptureLink.
    unsafe {
        let post = (*r).post_subrequest;
        if (*r).main == r || post.is_null() {
            return None;
        }
        let handler = (*post).handler?;
        if handler as *const () != post_subrequest as *const () {
            return None;
        }
        Some((*post).data.cast::<CaptureLink>())
    }
}

/// The response record of a captured subrequest, in its parent's batch.
///
/// # Safety
/// `link` must be a live capture link.
pub(super) unsafe fn captured<'a>(link: *mut CaptureLink) -> Option<(&'a mut CaptureBatch, usize)> {
    // SAFETY: per the contract; the parent outlives its subrequests.
    unsafe {
        let state = existing_request_state((*link).parent)?;
        let batch = state.captures.iter_mut().find(|b| b.id == (*link).batch)?;
        Some((batch, (*link).index))
    }
}

/// nginx's post-subrequest handler for captured subrequests: records the
/// response and, when it completes its batch, arranges for the parent to
/// hand the responses to the waiter.
unsafe extern "C" fn post_subrequest(
    sr: *mut ngx_http_request_t,
    data: *mut c_void,
    rc: ngx_int_t,
) -> ngx_int_t {
    let link = data.cast::<CaptureLink>();
    // SAFETY: nginx passes the live subrequest and the data we gave it.
    let c = unsafe { (*sr).connection };
    // SAFETY: as above.
    if unsafe { (*link).posted } {
        // SAFETY: as above.
        unsafe { (*c).data = sr.cast() };
        return NGX_OK as ngx_int_t;
    }
    // SAFETY: as above.
    unsafe { (*link).posted = true };
    let special = rc == NGX_ERROR as ngx_int_t
        || rc == 201
        || rc == 204
        || (rc >= 300 && !matches!(rc, 408 | 444 | 499));
    let recorded = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as above; the subrequest's response fields are read
        // before nginx frees anything.
        unsafe { record_response(sr, link, rc, special) }
    }));
    if recorded.is_err() {
        if let Some(log) = crate::nginx::Log::cycle() {
            log.write(
                nginx_sys::NGX_LOG_ALERT as usize,
                b"panic while recording a subrequest response",
            );
        }
    }
    // nginx's bookkeeping for a finished subrequest (reference count,
    // posting the parent) applies to the connection's active request.
    // SAFETY: as above.
    unsafe {
        if (*c).data != sr.cast() {
            (*c).data = sr.cast();
        }
    }
    // A status without a body: answered as nginx would, minus the error
    // page, which nobody would see.
    if special {
        NGX_OK as ngx_int_t
    } else {
        rc
    }
}

/// # Safety
/// `sr` must be the live captured subrequest of `link`.
unsafe fn record_response(
    sr: *mut ngx_http_request_t,
    link: *mut CaptureLink,
    rc: ngx_int_t,
    special: bool,
) {
    // SAFETY: per the contract.
    unsafe {
        let Some((batch, index)) = captured(link) else {
            return;
        };
        let out = &mut (*sr).headers_out;
        let mut status = out.status;
        if status == 0 {
            status = match rc {
                rc if rc == NGX_OK as ngx_int_t => 200,
                rc if rc == NGX_ERROR as ngx_int_t => 500,
                rc if rc >= 100 => rc as usize,
                _ => 0,
            };
        }
        let response = &mut batch.responses[index];
        response.status = status;
        if special && rc != NGX_ERROR as ngx_int_t {
            out.content_type.len = 0;
            out.content_length_n = 0;
            response.truncated = false;
        } else {
            response.truncated = !response.seen_last;
        }
        for h in elements(&out.headers.part) {
            response
                .headers
                .push((bytes_of(&h.key).to_vec(), bytes_of(&h.value).to_vec()));
        }
        if out.content_type.len > 0 {
            response
                .headers
                .retain(|(k, _)| !header_name_matches(b"content-type", k));
            response.headers.push((
                b"Content-Type".to_vec(),
                bytes_of(&out.content_type).to_vec(),
            ));
        }
        if out.content_length.is_null() && out.content_length_n >= 0 {
            response.content_length = Some(out.content_length_n);
        }
        if out.last_modified.is_null() && out.last_modified_time != -1 {
            response.headers.push((
                b"Last-Modified".to_vec(),
                crate::nginx_ffi::http_time(out.last_modified_time),
            ));
        }
        batch.pending -= 1;
        let parent = (*link).parent;
        let parent_waits = existing_request_state(parent).is_some_and(|s| s.parked.is_some());
        if batch.pending == 0 && parent_waits {
            (*parent).write_event_handler = Some(captures_ready);
        }
    }
}

/// The parent's write handler once a batch is complete (nginx posts the
/// parent when a subrequest ends): resumes the coroutines whose
/// subrequests have all answered.
unsafe extern "C" fn captures_ready(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls write handlers with the live request.
    let Some(req) = (unsafe { HttpRequest::from_raw(r) }) else {
        return;
    };
    // SAFETY: as above.
    unsafe { (*r).write_event_handler = Some(ngx_http_request_empty_handler) };
    let resumed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: live request.
        let Some(state) = (unsafe { existing_request_state(r) }) else {
            return;
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.captures)
            .into_iter()
            .partition(|batch| batch.pending == 0);
        state.captures = waiting;
        let finished: Vec<FinishedCapture> = done
            .into_iter()
            .filter(|batch| !batch.abandoned)
            .map(|batch| FinishedCapture {
                waiter: batch.waiter,
                responses: batch.responses,
            })
            .collect();
        if let (true, Some(hooks)) = (state.parked.is_some(), waiters::hooks()) {
            (hooks.captures_done)(req, finished);
        }
    }));
    if resumed.is_err() {
        // SAFETY: live request.
        unsafe { nginx_sys::ngx_http_finalize_request(r, NGX_ERROR as ngx_int_t) };
    }
}
