//! Request primitives: safe operations on the request a handler is serving
//! (response status, headers and body, variables, method and query string,
//! the request body, subrequests) and what the module keeps per request.
//! The Lua API and the phase handlers call these; nothing in here knows
//! about Lua or the module's configuration. Where a primitive must tell a
//! waiting handler that something arrived, it calls the hooks the layer
//! above installed (see [`waiters`]).

pub mod body;
pub mod body_edit;
pub mod buffers;
pub mod capture_filters;
pub mod filter_chain;
pub mod headers;
pub mod socket;
pub mod state;
pub mod subrequest;
pub mod waiters;

use core::ffi::c_void;
use core::ptr::NonNull;

use self::headers::copy_to_pool;
use crate::nginx::{str_bytes as bytes_of, Log};

use nginx_sys::{
    ngx_alloc_chain_link, ngx_chain_t, ngx_create_temp_buf, ngx_hash_find, ngx_hash_key,
    ngx_http_core_main_conf_t, ngx_http_core_module, ngx_http_discard_request_body,
    ngx_http_get_variable, ngx_http_internal_redirect, ngx_http_named_location,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_http_send_special,
    ngx_http_set_content_type, ngx_http_variable_t, ngx_http_variable_value_t, ngx_int_t,
    ngx_list_part_t, ngx_pcalloc, ngx_pool_cleanup_add, ngx_str_t, ngx_table_elt_t, NGX_ERROR,
    NGX_HTTP_FLUSH, NGX_HTTP_LAST, NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_INDEXED, NGX_OK,
};

/// Why writing to the response failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("nginx output filter error")]
    Filter,
    #[error("no memory")]
    NoMemory,
}

/// Why `ngx.var.NAME = value` failed; texts are OpenResty's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    #[error("variable \"{0}\" not found for writing; maybe it is a built-in variable that is not changeable or you forgot to use \"set ${0} '';\" in the config file to define it first")]
    NotFound(String),
    #[error("variable \"{0}\" not changeable")]
    NotChangeable(String),
    #[error("no memory")]
    NoMemory,
}

/// A borrowed handle on the request being served. Valid while the handler
/// that created it runs (the request is neither freed nor finalised then).
#[derive(Clone, Copy)]
pub struct HttpRequest(NonNull<ngx_http_request_t>);

impl HttpRequest {
    /// # Safety
    /// `r` must be a live request that stays valid for the handle's use.
    pub unsafe fn from_raw(r: *mut ngx_http_request_t) -> Option<HttpRequest> {
        NonNull::new(r).map(HttpRequest)
    }

    pub fn as_ptr(&self) -> *mut ngx_http_request_t {
        self.0.as_ptr()
    }

    fn raw(&self) -> &ngx_http_request_t {
        // SAFETY: the handle's contract keeps the request alive.
        unsafe { self.0.as_ref() }
    }

    /// Runs `f` when the request ends (its pool is destroyed); false when
    /// the pool had no memory for it. `f` is kept in the pool itself: no
    /// allocation of its own.
    pub fn at_end<F: FnOnce() + 'static>(&self, f: F) -> bool {
        unsafe extern "C" fn run<F: FnOnce()>(data: *mut c_void) {
            // SAFETY: `data` holds the F written below, read exactly once,
            // here, before the pool frees its memory.
            let f = unsafe { data.cast::<F>().read() };
            crate::nginx::without_unwinding("request cleanup", f);
        }
        const { assert!(core::mem::align_of::<F>() <= core::mem::align_of::<usize>()) };
        // SAFETY: live request; nginx allocates the cleanup's data (aligned
        // as any pool allocation, to a word, which F's alignment fits) and
        // calls the handler once with it when the pool is destroyed.
        unsafe {
            let size = core::mem::size_of::<F>().max(1);
            let cleanup = ngx_pool_cleanup_add((*self.as_ptr()).pool, size);
            if cleanup.is_null() {
                return false;
            }
            (*cleanup).data.cast::<F>().write(f);
            (*cleanup).handler = Some(run::<F>);
        }
        true
    }

    pub fn log(&self) -> Option<Log> {
        // SAFETY: a live request has a live connection whose log lives as
        // long as the request.
        unsafe { Log::from_raw((*self.raw().connection).log) }
    }

    pub fn headers_sent(&self) -> bool {
        self.raw().header_sent() != 0
    }

    pub fn status(&self) -> usize {
        self.raw().headers_out.status
    }

    pub fn set_status(&self, status: usize) {
        let r = self.as_ptr();
        // SAFETY: the handle's contract keeps the request alive; the writes
        // go through the pointer, no reference outlives them.
        unsafe {
            (*r).headers_out.status = status;
            // A status line set by another module would override the number.
            (*r).headers_out.status_line.len = 0;
        }
    }

    pub fn method_name(&self) -> &[u8] {
        bytes_of(&self.raw().method_name)
    }

    /// Changes the request's method (`bit` one of nginx's `NGX_HTTP_*`,
    /// `name` its name), as `$request_method` and the modules after this
    /// one see it.
    pub fn set_method(&self, bit: u32, name: &'static [u8]) {
        let r = self.as_ptr();
        // SAFETY: live request; the name is static, so it outlives it.
        unsafe {
            (*r).method = bit as nginx_sys::ngx_uint_t;
            (*r).method_name = ngx_str_t {
                len: name.len(),
                data: name.as_ptr().cast_mut(),
            };
        }
    }

    pub fn query_string(&self) -> &[u8] {
        bytes_of(&self.raw().args)
    }

    /// Sends the response header unless already sent, as the first output
    /// does in OpenResty: status 200 unless set, `default_type`.
    pub fn send_header_if_needed(&self) -> ngx_int_t {
        if self.headers_sent() {
            return NGX_OK as ngx_int_t;
        }
        let r = self.as_ptr();
        // SAFETY: valid request; these are the calls nginx's own content
        // handlers make before sending a header.
        unsafe {
            if (*r).headers_out.status == 0 {
                (*r).headers_out.status = 200;
            }
            if ngx_http_set_content_type(r) != NGX_OK as ngx_int_t {
                return NGX_ERROR as ngx_int_t;
            }
            // A length set through ngx.header.content_length stays; without
            // one the body is streamed (chunked, or until close).
            ngx_http_send_header(r)
        }
    }

    /// Sends `bytes` as part of the response body, sending the header first
    /// if needed. HEAD requests get the header only.
    pub fn write_body(&self, bytes: &[u8]) -> Result<(), OutputError> {
        let rc = self.send_header_if_needed();
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
            return Err(OutputError::Filter);
        }
        if self.raw().header_only() != 0 || bytes.is_empty() {
            return Ok(());
        }
        let r = self.as_ptr();
        // SAFETY: buffers and chain links come from the request pool and live
        // as long as the request; the copy stays within the new buffer.
        unsafe {
            let buf = ngx_create_temp_buf((*r).pool, bytes.len());
            if buf.is_null() {
                return Err(OutputError::NoMemory);
            }
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), (*buf).last, bytes.len());
            (*buf).last = (*buf).last.add(bytes.len());
            let link: *mut ngx_chain_t = ngx_alloc_chain_link((*r).pool);
            if link.is_null() {
                return Err(OutputError::NoMemory);
            }
            (*link).buf = buf;
            (*link).next = core::ptr::null_mut();
            let rc = ngx_http_output_filter(r, link);
            if rc == NGX_ERROR as ngx_int_t {
                return Err(OutputError::Filter);
            }
        }
        Ok(())
    }

    /// Ends the response: header if not yet sent, then the last buffer.
    pub fn finish_response(&self) -> ngx_int_t {
        let rc = self.send_header_if_needed();
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
            return rc;
        }
        if self.raw().header_only() != 0 {
            return rc;
        }
        // SAFETY: valid request; NGX_HTTP_LAST marks the end of the body.
        unsafe { ngx_http_send_special(self.as_ptr(), NGX_HTTP_LAST as usize) }
    }

    /// The first request header named `name` (ASCII case-insensitive).
    pub fn header_in(&self, name: &[u8]) -> Option<Vec<u8>> {
        let headers = &self.raw().headers_in.headers;
        let mut part = &headers.part as *const ngx_list_part_t;
        // SAFETY: nginx's header list: parts chained by `next`, each holding
        // `nelts` ngx_table_elt_t in `elts`, all in the request pool.
        unsafe {
            while !part.is_null() {
                let elts = (*part).elts.cast::<ngx_table_elt_t>();
                for i in 0..(*part).nelts {
                    let header = &*elts.add(i);
                    if header.hash != 0 && bytes_of(&header.key).eq_ignore_ascii_case(name) {
                        return Some(bytes_of(&header.value).to_vec());
                    }
                }
                part = (*part).next;
            }
        }
        None
    }

    /// Sends a whole response: status, `content_type`, length and body.
    pub fn send_complete(
        &self,
        status: usize,
        content_type: &'static str,
        body: &[u8],
    ) -> ngx_int_t {
        let r = self.as_ptr();
        // SAFETY: valid request; the content type is static; the header is
        // sent once, here.
        let rc = unsafe {
            let out = &mut (*r).headers_out;
            out.status = status;
            out.content_type = ngx_str_t {
                len: content_type.len(),
                data: content_type.as_ptr().cast_mut(),
            };
            out.content_type_len = content_type.len();
            out.content_type_lowcase = core::ptr::null_mut();
            out.content_length_n = body.len() as i64;
            ngx_http_send_header(r)
        };
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t || self.raw().header_only() != 0
        {
            return rc;
        }
        if self.write_body(body).is_err() {
            return NGX_ERROR as ngx_int_t;
        }
        // SAFETY: valid request; NGX_HTTP_LAST marks the end of the body.
        unsafe { ngx_http_send_special(self.as_ptr(), NGX_HTTP_LAST as usize) }
    }

    /// Writes a changeable nginx variable (one made by `set`, or one whose
    /// module allows writes); `None` makes it "not found".
    pub fn set_variable(&self, name: &[u8], value: Option<&[u8]>) -> Result<(), VariableError> {
        self.write_variable(name, value, true)
    }

    /// The `n`th capture of the location's last regex match (`$1` ...;
    /// 0 is the whole match), if there is one.
    pub fn regex_capture(&self, n: usize) -> Option<Vec<u8>> {
        let r = self.raw();
        let start = n.checked_mul(2)?;
        if r.captures.is_null() || r.captures_data.is_null() || start + 1 >= r.ncaptures {
            return None;
        }
        // SAFETY: nginx keeps `ncaptures` offset pairs into `captures_data`
        // for the request's last regex match.
        unsafe {
            let from = *r.captures.add(start);
            let to = *r.captures.add(start + 1);
            if from < 0 || to < from {
                return None;
            }
            let bytes = core::slice::from_raw_parts(
                r.captures_data.add(from as usize),
                (to - from) as usize,
            );
            Some(bytes.to_vec())
        }
    }

    /// Gives variable `name` a value for this request, as a capture's
    /// `vars` option does: any variable with a setter, or any indexed one
    /// (whose cached value this overrides).
    pub fn assign_variable(&self, name: &[u8], value: &[u8]) -> Result<(), VariableError> {
        self.write_variable(name, Some(value), false)
    }

    fn write_variable(
        &self,
        name: &[u8],
        value: Option<&[u8]>,
        only_changeable: bool,
    ) -> Result<(), VariableError> {
        let shown = String::from_utf8_lossy(name).into_owned();
        let mut lower = name.to_ascii_lowercase();
        let r = self.as_ptr();
        // SAFETY: the core main conf's variables hash is built before any
        // request; values live in the request pool.
        unsafe {
            let cmcf = (*(*r).main_conf.add(ngx_http_core_module.ctx_index))
                .cast::<ngx_http_core_main_conf_t>();
            let key = ngx_hash_key(lower.as_mut_ptr(), lower.len());
            let variable = ngx_hash_find(
                &mut (*cmcf).variables_hash,
                key,
                lower.as_mut_ptr(),
                lower.len(),
            )
            .cast::<ngx_http_variable_t>();
            let Some(variable) = variable.as_ref() else {
                return Err(VariableError::NotFound(shown));
            };
            if only_changeable && variable.flags & NGX_HTTP_VAR_CHANGEABLE as usize == 0 {
                return Err(VariableError::NotChangeable(shown));
            }
            let vv = ngx_pcalloc((*r).pool, core::mem::size_of::<ngx_http_variable_value_t>())
                .cast::<ngx_http_variable_value_t>();
            if vv.is_null() {
                return Err(VariableError::NoMemory);
            }
            match value {
                Some(bytes) => {
                    let copy = copy_to_pool((*r).pool, bytes).ok_or(VariableError::NoMemory)?;
                    (*vv).data = copy.data;
                    (*vv).set_len(copy.len as u32);
                    (*vv).set_valid(1);
                }
                None => (*vv).set_not_found(1),
            }
            if let Some(set) = variable.set_handler {
                set(r, vv, variable.data);
            } else if variable.flags & NGX_HTTP_VAR_INDEXED as usize != 0 {
                *(*r).variables.add(variable.index) = *vv;
            } else {
                return Err(VariableError::NotChangeable(shown));
            }
        }
        Ok(())
    }

    /// Sends what is buffered so far (sending the header first if needed).
    pub fn flush(&self) -> Result<(), OutputError> {
        let rc = self.send_header_if_needed();
        if rc == NGX_ERROR as ngx_int_t || rc > NGX_OK as ngx_int_t {
            return Err(OutputError::Filter);
        }
        if self.raw().header_only() != 0 {
            return Ok(());
        }
        // SAFETY: valid request; NGX_HTTP_FLUSH emits a flush buffer.
        let rc = unsafe { ngx_http_send_special(self.as_ptr(), NGX_HTTP_FLUSH as usize) };
        if rc == NGX_ERROR as ngx_int_t {
            return Err(OutputError::Filter);
        }
        Ok(())
    }

    /// Discards the request body unless a handler read (or discarded) it,
    /// so that a keep-alive connection stays in step.
    pub fn discard_unread_body(&self) -> ngx_int_t {
        let raw = self.raw();
        if !raw.request_body.is_null() || raw.discard_body() != 0 {
            return NGX_OK as ngx_int_t;
        }
        // SAFETY: live request.
        unsafe { ngx_http_discard_request_body(self.as_ptr()) }
    }

    /// The request body when it was read into memory; `None` when not read,
    /// empty, or kept in a temporary file.
    pub fn body_data(&self) -> Option<Vec<u8>> {
        let r = self.raw();
        // SAFETY: the request body's chain and buffers live in its pool.
        unsafe {
            let body = r.request_body.as_ref()?;
            if !body.temp_file.is_null() {
                return None;
            }
            let mut data = Vec::new();
            let mut link = body.bufs;
            while !link.is_null() {
                let b = (*link).buf;
                if (*b).in_file() != 0 {
                    return None;
                }
                let len = (*b).last.offset_from((*b).pos) as usize;
                data.extend_from_slice(core::slice::from_raw_parts((*b).pos, len));
                link = (*link).next;
            }
            (!data.is_empty()).then_some(data)
        }
    }

    /// The temporary file holding the body, when nginx wrote it to one.
    pub fn body_file(&self) -> Option<Vec<u8>> {
        // SAFETY: as above; the temp file's name lives in the request pool.
        unsafe {
            let body = self.raw().request_body.as_ref()?;
            let file = body.temp_file.as_ref()?;
            Some(bytes_of(&file.file.name).to_vec())
        }
    }

    pub fn body_was_read(&self) -> bool {
        !self.raw().request_body.is_null()
    }

    /// `ngx.req.http_version()`: 0.9, 1.0, 1.1, 2.0, 3.0.
    pub fn http_version(&self) -> f64 {
        let v = self.raw().http_version;
        (v / 1000) as f64 + (v % 1000) as f64 / 10.0
    }

    /// When the request started, in seconds with milliseconds.
    pub fn start_time(&self) -> f64 {
        let r = self.raw();
        r.start_sec as f64 + r.start_msec as f64 / 1000.0
    }

    pub fn is_internal(&self) -> bool {
        self.raw().internal() != 0
    }

    pub fn is_subrequest(&self) -> bool {
        self.raw().main != self.0.as_ptr()
    }

    /// Replaces the query string (the request's `$args`).
    pub fn set_query_string(&self, args: &[u8]) -> Result<(), OutputError> {
        let r = self.as_ptr();
        // SAFETY: live request; a pool copy lives as long as the request.
        unsafe {
            (*r).args = copy_to_pool((*r).pool, args).ok_or(OutputError::NoMemory)?;
            (*r).set_valid_unparsed_uri(0);
        }
        Ok(())
    }

    /// Replaces the request's URI (`$uri`; the query string stays). With
    /// `jump`, nginx searches the locations again for it once the rewrite
    /// phase ends, as after `rewrite ... last`.
    pub fn set_uri(&self, uri: &[u8], jump: bool) -> Result<(), OutputError> {
        let r = self.as_ptr();
        // SAFETY: live request; a pool copy lives as long as the request.
        unsafe {
            (*r).uri = copy_to_pool((*r).pool, uri).ok_or(OutputError::NoMemory)?;
            (*r).set_internal(1);
            (*r).set_valid_unparsed_uri(0);
            nginx_sys::ngx_http_set_exten(r);
            (*r).set_uri_changed(u32::from(jump));
            if !jump {
                (*r).set_valid_location(0);
            }
        }
        Ok(())
    }

    /// Internal redirect to `uri` (with `args`), or to a named location
    /// `@name`. The caller returns NGX_DONE (after finalizing with it outside
    /// the content phase).
    pub fn internal_redirect(&self, uri: &[u8], args: &[u8]) -> ngx_int_t {
        let r = self.as_ptr();
        // SAFETY: strings copied to the request pool outlive the redirect.
        unsafe {
            let pool = (*r).pool;
            let (Some(mut uri), Some(mut args)) =
                (copy_to_pool(pool, uri), copy_to_pool(pool, args))
            else {
                return NGX_ERROR as ngx_int_t;
            };
            if uri.len > 0 && *uri.data == b'@' {
                ngx_http_named_location(r, &mut uri)
            } else {
                ngx_http_internal_redirect(r, &mut uri, &mut args)
            }
        }
    }

    /// Reads an nginx variable by name (any case); `None` when it does not
    /// exist or has no value for this request.
    pub fn variable(&self, name: &[u8]) -> Option<Vec<u8>> {
        let mut lower = name.to_ascii_lowercase();
        let mut ngx_name = ngx_str_t {
            len: lower.len(),
            data: lower.as_mut_ptr(),
        };
        // SAFETY: `lower` outlives the call; nginx reads the name during the
        // lookup only, and the returned value lives in the request pool.
        unsafe {
            let key = ngx_hash_key(lower.as_mut_ptr(), lower.len());
            let value = ngx_http_get_variable(self.as_ptr(), &mut ngx_name, key);
            if value.is_null() || (*value).not_found() != 0 {
                return None;
            }
            let len = (*value).len() as usize;
            if len == 0 {
                return Some(Vec::new());
            }
            Some(core::slice::from_raw_parts((*value).data, len).to_vec())
        }
    }
}
