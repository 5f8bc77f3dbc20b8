//! Replacing the request body a handler read: with given bytes
//! (`ngx.req.set_body_data`), with a file (`ngx.req.set_body_file`), or
//! piece by piece (`ngx.req.init_body`, `append_body`, `finish_body`),
//! spilling to a temporary file in `client_body_temp_path` past the buffer
//! size, as nginx does for a body it reads. The new body is where nginx's
//! modules find a body (`r->request_body->bufs`, `proxy_pass` included),
//! and `Content-Length` follows it.

use core::ffi::c_char;
use core::ptr;

use nginx_sys::{
    ngx_alloc_chain_link, ngx_buf_t, ngx_chain_t, ngx_create_temp_buf, ngx_http_core_loc_conf_t,
    ngx_http_core_module, ngx_http_request_body_t, ngx_pcalloc, ngx_pool_cleanup_add,
    ngx_pool_cleanup_file, ngx_pool_cleanup_file_t, ngx_pool_delete_file, ngx_pool_t,
    ngx_temp_file_t, ngx_write_chain_to_temp_file, NGX_ERROR,
};

/// nginx's `ngx_calloc_buf` (a macro): a zeroed buffer header.
///
/// # Safety
/// `pool` is a live pool.
unsafe fn ngx_calloc_buf(pool: *mut ngx_pool_t) -> *mut ngx_buf_t {
    // SAFETY: per the contract.
    unsafe { ngx_pcalloc(pool, core::mem::size_of::<ngx_buf_t>()).cast() }
}

use super::HttpRequest;

/// Why the body could not be changed, worded as OpenResty's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyEditError {
    #[error("request body not read yet")]
    NotRead,
    #[error("request body already discarded asynchronously")]
    Discarded,
    #[error("request_body not initialized")]
    NotInitialized,
    #[error("no memory")]
    NoMemory,
    #[error("fail to write file")]
    WriteFailed,
    /// The system call that failed on the file, and its name.
    #[error("{0}() \"{1}\" failed")]
    File(&'static str, String),
    #[error("failed to reset the Content-Length input header")]
    Header,
}

type FileCleanup = unsafe extern "C" fn(*mut core::ffi::c_void);

/// The line nginx logs when a body goes to a temporary file.
const SPILL_WARNING: &[u8] = b"a client request body is buffered to a temporary file\0";

impl HttpRequest {
    /// The read body to change; errors when there is none to change.
    fn body_to_change(&self) -> Result<*mut ngx_http_request_body_t, BodyEditError> {
        let r = self.raw();
        if r.discard_body() != 0 {
            return Err(BodyEditError::Discarded);
        }
        if r.request_body.is_null() {
            return Err(BodyEditError::NotRead);
        }
        Ok(r.request_body)
    }

    /// `ngx.req.set_body_data`: the body becomes `data`, in memory.
    pub fn set_body_data(&self, data: &[u8]) -> Result<(), BodyEditError> {
        let rb = self.body_to_change()?;
        let r = self.as_ptr();
        // SAFETY: live request; its body and the new buffer live in its pool.
        unsafe {
            self.drop_body_file(rb);
            if data.is_empty() {
                (*rb).bufs = ptr::null_mut();
                (*rb).buf = ptr::null_mut();
            } else {
                let b = ngx_create_temp_buf((*r).pool, data.len());
                let link = ngx_alloc_chain_link((*r).pool);
                if b.is_null() || link.is_null() {
                    return Err(BodyEditError::NoMemory);
                }
                ptr::copy_nonoverlapping(data.as_ptr(), (*b).pos, data.len());
                (*b).last = (*b).pos.add(data.len());
                (*b).set_last_buf(1);
                (*b).set_last_in_chain(1);
                (*link).buf = b;
                (*link).next = ptr::null_mut();
                (*rb).bufs = link;
                (*rb).buf = b;
            }
        }
        self.set_content_length(data.len() as i64)
    }

    /// `ngx.req.init_body`: starts an empty body filled by
    /// [`Self::append_body`] through a buffer of `buffer_size` bytes
    /// (`client_body_buffer_size` by default; 0 writes straight to a file).
    pub fn init_body(&self, buffer_size: Option<usize>) -> Result<(), BodyEditError> {
        let rb = self.body_to_change()?;
        let r = self.as_ptr();
        let size = buffer_size.unwrap_or_else(|| self.core_loc_conf().client_body_buffer_size);
        // SAFETY: live request; the buffer lives in its pool.
        unsafe {
            if size == 0 {
                (*r).set_request_body_in_file_only(1);
            }
            self.drop_body_file(rb);
            (*r).set_request_body_in_clean_file(1);
            (*r).headers_in.content_length_n = 0;
            let b = ngx_create_temp_buf((*r).pool, size);
            let link = ngx_alloc_chain_link((*r).pool);
            if b.is_null() || link.is_null() {
                return Err(BodyEditError::NoMemory);
            }
            (*link).buf = b;
            (*link).next = ptr::null_mut();
            (*rb).buf = b;
            (*rb).bufs = link;
        }
        Ok(())
    }

    /// The body started by [`Self::init_body`].
    fn body_being_built(&self) -> Result<*mut ngx_http_request_body_t, BodyEditError> {
        let rb = self.raw().request_body;
        // SAFETY: a live request's body, when it has one.
        let ready = !rb.is_null() && unsafe { !(*rb).buf.is_null() && !(*rb).bufs.is_null() };
        if ready {
            Ok(rb)
        } else {
            Err(BodyEditError::NotInitialized)
        }
    }

    /// `ngx.req.append_body`: adds `data` to the body being built.
    pub fn append_body(&self, data: &[u8]) -> Result<(), BodyEditError> {
        let rb = self.body_being_built()?;
        let r = self.as_ptr();
        // SAFETY: live request; the buffer is the one init_body made.
        unsafe {
            if (*r).request_body_in_file_only() != 0 {
                let mut b: ngx_buf_t = core::mem::zeroed();
                b.start = data.as_ptr().cast_mut();
                b.pos = b.start;
                b.last = b.start.add(data.len());
                b.end = b.last;
                b.set_temporary(1);
                let mut link = ngx_chain_t {
                    buf: &mut b,
                    next: ptr::null_mut(),
                };
                self.write_to_body_file(rb, &mut link)?;
                (*r).headers_in.content_length_n += data.len() as i64;
                return Ok(());
            }
            let b = (*rb).buf;
            let mut rest = data;
            while !rest.is_empty() {
                if (*b).last == (*b).end {
                    self.write_to_body_file(rb, (*rb).bufs)?;
                    (*b).last = (*b).start;
                }
                let room = (*b).end.offset_from((*b).last) as usize;
                let n = room.min(rest.len());
                ptr::copy_nonoverlapping(rest.as_ptr(), (*b).last, n);
                (*b).last = (*b).last.add(n);
                rest = &rest[n..];
                (*r).headers_in.content_length_n += n as i64;
            }
        }
        Ok(())
    }

    /// `ngx.req.finish_body`: the body built is complete; a part in a file
    /// gets its last bytes, and `Content-Length` is set.
    pub fn finish_body(&self) -> Result<(), BodyEditError> {
        let rb = self.body_being_built()?;
        let r = self.as_ptr();
        // SAFETY: live request; the file buffer lives in its pool.
        unsafe {
            if !(*rb).temp_file.is_null() {
                self.write_to_body_file(rb, (*rb).bufs)?;
                let b = ngx_calloc_buf((*r).pool);
                if b.is_null() {
                    return Err(BodyEditError::NoMemory);
                }
                (*b).set_in_file(1);
                (*b).file_pos = 0;
                (*b).file_last = (*(*rb).temp_file).offset;
                (*b).file = &mut (*(*rb).temp_file).file;
                (*b).set_last_buf(1);
                (*b).set_last_in_chain(1);
                (*(*rb).bufs).buf = b;
                (*(*rb).bufs).next = ptr::null_mut();
            }
            let length = (*r).headers_in.content_length_n;
            self.set_content_length(length)
        }
    }

    /// `ngx.req.set_body_file`: the body becomes the file at `path` (closed
    /// with the request; deleted then too when `delete`).
    pub fn set_body_file(&self, path: &[u8], delete: bool) -> Result<(), BodyEditError> {
        let rb = self.body_to_change()?;
        let r = self.as_ptr();
        let name_text = String::from_utf8_lossy(path).into_owned();
        let c_path = std::ffi::CString::new(path)
            .map_err(|_| BodyEditError::File("open", name_text.clone()))?;
        // SAFETY: stat and open on a NUL-terminated path; the descriptor is
        // closed by the pool cleanup registered below, or here.
        unsafe {
            // As in OpenResty, the old body file goes first, even when the
            // new one then fails (leaving no body).
            self.drop_body_file(rb);
            (*rb).bufs = ptr::null_mut();
            (*rb).buf = ptr::null_mut();
            let mut info: libc::stat = core::mem::zeroed();
            if libc::stat(c_path.as_ptr(), &mut info) != 0 {
                return Err(BodyEditError::File("stat", name_text));
            }
            let fd = libc::open(c_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(BodyEditError::File("open", name_text));
            }
            let size = info.st_size;
            if size == 0 {
                if delete {
                    libc::unlink(c_path.as_ptr());
                }
                libc::close(fd);
                (*rb).bufs = ptr::null_mut();
                (*rb).buf = ptr::null_mut();
                return self.set_content_length(0);
            }
            let pool = (*r).pool;
            let name = super::headers::copy_to_pool(pool, c_path.as_bytes_with_nul());
            let tf = ngx_pcalloc(pool, core::mem::size_of::<ngx_temp_file_t>())
                .cast::<ngx_temp_file_t>();
            let b = ngx_calloc_buf(pool);
            let link = ngx_alloc_chain_link(pool);
            let cleanup =
                ngx_pool_cleanup_add(pool, core::mem::size_of::<ngx_pool_cleanup_file_t>());
            let (Some(name), false, false, false, false) = (
                name,
                tf.is_null(),
                b.is_null(),
                link.is_null(),
                cleanup.is_null(),
            ) else {
                libc::close(fd);
                return Err(BodyEditError::NoMemory);
            };
            (*cleanup).handler = Some(if delete {
                ngx_pool_delete_file
            } else {
                ngx_pool_cleanup_file
            });
            let file_cleanup = (*cleanup).data.cast::<ngx_pool_cleanup_file_t>();
            (*file_cleanup).fd = fd;
            (*file_cleanup).name = name.data;
            (*file_cleanup).log = (*pool).log;
            (*tf).file.fd = fd;
            (*tf).file.name = nginx_sys::ngx_str_t {
                len: path.len(),
                data: name.data,
            };
            (*tf).file.log = (*(*r).connection).log;
            (*b).set_in_file(1);
            (*b).file_pos = 0;
            (*b).file_last = size;
            (*b).file = &mut (*tf).file;
            (*b).set_last_buf(1);
            (*b).set_last_in_chain(1);
            (*link).buf = b;
            (*link).next = ptr::null_mut();
            (*rb).temp_file = tf;
            (*rb).bufs = link;
            (*rb).buf = ptr::null_mut();
            self.set_content_length(size)
        }
    }

    /// Closes (and, if nginx made it, deletes) the file holding the body
    /// so far, through the pool cleanup nginx registered for it.
    ///
    /// # Safety
    /// `rb` is this live request's body.
    unsafe fn drop_body_file(&self, rb: *mut ngx_http_request_body_t) {
        // SAFETY: per the contract; cleanups are the request pool's.
        unsafe {
            let tf = (*rb).temp_file;
            if tf.is_null() {
                return;
            }
            let fd = (*tf).file.fd;
            if fd != -1 {
                let mut cleanup = (*(*self.as_ptr()).pool).cleanup;
                while !cleanup.is_null() {
                    let handler = (*cleanup).handler;
                    // nginx's own C functions: one address each.
                    let is_file_cleanup = handler.is_some_and(|h| {
                        ptr::fn_addr_eq(h, ngx_pool_cleanup_file as FileCleanup)
                            || ptr::fn_addr_eq(h, ngx_pool_delete_file as FileCleanup)
                    });
                    if is_file_cleanup
                        && (*(*cleanup).data.cast::<ngx_pool_cleanup_file_t>()).fd == fd
                    {
                        if let Some(run) = handler {
                            run((*cleanup).data);
                        }
                        (*cleanup).handler = None;
                        break;
                    }
                    cleanup = (*cleanup).next;
                }
            }
            (*rb).temp_file = ptr::null_mut();
        }
    }

    /// Writes `chain` to the body's temporary file, made first if needed.
    ///
    /// # Safety
    /// `rb` is this live request's body; `chain` a valid chain.
    unsafe fn write_to_body_file(
        &self,
        rb: *mut ngx_http_request_body_t,
        chain: *mut ngx_chain_t,
    ) -> Result<(), BodyEditError> {
        let r = self.as_ptr();
        // SAFETY: per the contract; the temp file lives in the request pool.
        unsafe {
            if (*rb).temp_file.is_null() {
                let tf = ngx_pcalloc((*r).pool, core::mem::size_of::<ngx_temp_file_t>())
                    .cast::<ngx_temp_file_t>();
                if tf.is_null() {
                    return Err(BodyEditError::NoMemory);
                }
                (*tf).file.fd = -1;
                (*tf).file.log = (*(*r).connection).log;
                (*tf).path = self.core_loc_conf().client_body_temp_path;
                (*tf).pool = (*r).pool;
                (*tf).warn = SPILL_WARNING.as_ptr().cast::<c_char>().cast_mut();
                (*tf).set_log_level((*r).request_body_file_log_level());
                (*tf).set_persistent(1);
                (*tf).set_clean(1);
                if (*r).request_body_file_group_access() != 0 {
                    (*tf).access = 0o660;
                }
                (*rb).temp_file = tf;
            }
            let written = ngx_write_chain_to_temp_file((*rb).temp_file, chain);
            if written == NGX_ERROR as isize {
                return Err(BodyEditError::WriteFailed);
            }
            (*(*rb).temp_file).offset += written as i64;
        }
        Ok(())
    }

    fn core_loc_conf(&self) -> &ngx_http_core_loc_conf_t {
        // SAFETY: a live request's location configurations hold the core
        // module's at its index, as long as the request.
        unsafe {
            &*(*(*self.as_ptr())
                .loc_conf
                .add(ngx_http_core_module.ctx_index))
            .cast::<ngx_http_core_loc_conf_t>()
        }
    }

    fn set_content_length(&self, length: i64) -> Result<(), BodyEditError> {
        let value = length.to_string();
        self.set_request_header(b"Content-Length", &[value.as_bytes()])
            .map_err(|_| BodyEditError::Header)
    }
}
