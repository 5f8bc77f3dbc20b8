//! Reading the buffers of an output chain that a filter consumes.

use nginx_sys::{ngx_buf_t, ngx_chain_t, ngx_read_file};

/// What the last buffers of a consumed chain said.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChainEnd {
    /// The response (or subrequest response) ends with this chain.
    pub last: bool,
    /// A buffer asked for a flush.
    pub flush: bool,
}

/// Consumes every buffer of `chain` (marking it sent, so that its producer
/// may reuse it), appending its bytes to `out` when there is one: memory
/// buffers directly, file buffers read from their file (a filter above
/// nginx's copy filter sees them unread). `None` when a file could not be
/// read.
///
/// # Safety
/// `chain` must be null or a live chain whose buffers the caller's filter
/// owns.
pub unsafe fn drain_chain(
    chain: *mut ngx_chain_t,
    mut out: Option<&mut Vec<u8>>,
) -> Option<ChainEnd> {
    let mut end = ChainEnd::default();
    let mut link = chain;
    // SAFETY: per the contract; each link and buffer is live until the
    // filter returns.
    unsafe {
        while !link.is_null() {
            let b = (*link).buf;
            if in_memory(b) {
                if let Some(out) = out.as_deref_mut() {
                    let len = (*b).last.offset_from((*b).pos) as usize;
                    out.extend_from_slice(core::slice::from_raw_parts((*b).pos, len));
                }
                (*b).pos = (*b).last;
            } else if (*b).in_file() != 0 {
                if let Some(out) = out.as_deref_mut() {
                    read_file_part(b, out).ok()?;
                }
            }
            if (*b).in_file() != 0 {
                (*b).file_pos = (*b).file_last;
            }
            end.last |= (*b).last_buf() != 0 || (*b).last_in_chain() != 0;
            end.flush |= (*b).flush() != 0;
            link = (*link).next;
        }
    }
    Some(end)
}

/// # Safety
/// `b` must be a live buffer.
unsafe fn in_memory(b: *const ngx_buf_t) -> bool {
    // SAFETY: per the contract.
    unsafe { (*b).temporary() != 0 || (*b).memory() != 0 || (*b).mmap() != 0 }
}

/// Appends a file buffer's bytes (`file_pos..file_last`) to `out`.
///
/// # Safety
/// `b` must be a live file buffer.
unsafe fn read_file_part(b: *const ngx_buf_t, out: &mut Vec<u8>) -> Result<(), ()> {
    // SAFETY: per the contract; nginx reads at most `len` bytes into the
    // spare capacity we reserved, and we only keep what it reports.
    unsafe {
        let len = ((*b).file_last - (*b).file_pos).max(0) as usize;
        out.reserve(len);
        let start = out.len();
        let dst = out.as_mut_ptr().add(start);
        let n = ngx_read_file((*b).file, dst, len, (*b).file_pos);
        if n < 0 || n as usize != len {
            return Err(());
        }
        out.set_len(start + len);
    }
    Ok(())
}
