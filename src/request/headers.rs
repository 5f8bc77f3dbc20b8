//! Request and response headers of the request being served: reading the
//! lists nginx parsed, and changing the response headers the way nginx's own
//! filters expect (some headers live in dedicated fields besides the list).

use core::ptr;

use nginx_sys::{
    ngx_http_headers_in_t, ngx_http_headers_out_t, ngx_list_part_t, ngx_list_push, ngx_list_t,
    ngx_pnalloc, ngx_pool_t, ngx_str_t, ngx_table_elt_t,
};

use super::HttpRequest;
pub(crate) use crate::nginx::str_bytes as bytes_of;

/// How a response header name is read: `_` as `-` (what
/// `lua_transform_underscores_in_response_headers` turns on, the default),
/// or exactly as given; both in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseNames {
    UnderscoresAsHyphens,
    AsGiven,
}

impl ResponseNames {
    fn matches(self, wanted: &[u8], actual: &[u8]) -> bool {
        match self {
            ResponseNames::UnderscoresAsHyphens => header_name_matches(wanted, actual),
            ResponseNames::AsGiven => wanted.eq_ignore_ascii_case(actual),
        }
    }

    fn sent_name(self, name: &[u8]) -> Vec<u8> {
        match self {
            ResponseNames::UnderscoresAsHyphens => canonical_header_name(name),
            ResponseNames::AsGiven => name.to_vec(),
        }
    }
}

/// Why a header could not be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("no memory")]
    NoMemory,
}

/// Every live element of an nginx header list.
///
/// # Safety
/// `part` must be the first part of a live `ngx_list_t` of `ngx_table_elt_t`.
pub(crate) unsafe fn elements<'a>(
    mut part: *const ngx_list_part_t,
) -> Vec<&'a mut ngx_table_elt_t> {
    let mut out = Vec::new();
    // SAFETY: per the contract: parts chained by `next`, each holding `nelts`
    // elements in `elts`.
    unsafe {
        while !part.is_null() {
            let elts = (*part).elts.cast::<ngx_table_elt_t>();
            for i in 0..(*part).nelts {
                let header = &mut *elts.add(i);
                // nginx marks deleted headers with a zero hash.
                if header.hash != 0 {
                    out.push(header);
                }
            }
            part = (*part).next;
        }
    }
    out
}

/// Header names match case-insensitively, with `_` standing for `-` as in
/// `ngx.header.content_type`.
pub fn header_name_matches(wanted: &[u8], actual: &[u8]) -> bool {
    let normal = |b: u8| {
        if b == b'_' {
            b'-'
        } else {
            b.to_ascii_lowercase()
        }
    };
    wanted.len() == actual.len()
        && wanted
            .iter()
            .zip(actual)
            .all(|(w, a)| normal(*w) == normal(*a))
}

pub(crate) fn copy_to_pool(pool: *mut ngx_pool_t, bytes: &[u8]) -> Option<ngx_str_t> {
    // SAFETY: a fresh pool allocation of `len` bytes, filled completely.
    unsafe {
        let data = ngx_pnalloc(pool, bytes.len().max(1)).cast::<u8>();
        if data.is_null() {
            return None;
        }
        ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
        Some(ngx_str_t {
            len: bytes.len(),
            data,
        })
    }
}

/// The name sent for an added header: as given, `_` becoming `-`.
pub fn canonical_header_name(name: &[u8]) -> Vec<u8> {
    name.iter()
        .map(|&b| if b == b'_' { b'-' } else { b })
        .collect()
}

impl HttpRequest {
    /// All request headers in arrival order (names as the client sent them).
    pub fn request_headers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        // SAFETY: the request's parsed header list.
        unsafe { elements(&(*self.as_ptr()).headers_in.headers.part) }
            .into_iter()
            .map(|h| (bytes_of(&h.key).to_vec(), bytes_of(&h.value).to_vec()))
            .collect()
    }

    /// All response headers nginx will send, the ones kept in dedicated
    /// fields (`Content-Type`, `Content-Length`) included.
    pub fn response_headers(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let r = self.as_ptr();
        let mut out = Vec::new();
        // SAFETY: live request; reading its response header fields and list.
        unsafe {
            let headers_out = &(*r).headers_out;
            if headers_out.content_type.len > 0 {
                out.push((
                    b"Content-Type".to_vec(),
                    bytes_of(&headers_out.content_type).to_vec(),
                ));
            }
            if headers_out.content_length.is_null() && headers_out.content_length_n >= 0 {
                out.push((
                    b"Content-Length".to_vec(),
                    headers_out.content_length_n.to_string().into_bytes(),
                ));
            }
            for h in elements(&headers_out.headers.part) {
                out.push((bytes_of(&h.key).to_vec(), bytes_of(&h.value).to_vec()));
            }
        }
        out
    }

    /// Values of response header `name`.
    pub fn response_header(&self, name: &[u8], names: ResponseNames) -> Vec<Vec<u8>> {
        self.response_headers()
            .into_iter()
            .filter(|(key, _)| names.matches(name, key))
            .map(|(_, value)| value)
            .collect()
    }

    /// Replaces request header `name` by `values` (none: removes it), as
    /// `ngx.req.set_header` / `clear_header` do, so that `$http_NAME` and
    /// the modules reading dedicated fields see the change.
    ///
    /// Names are kept as given (`_` too) and match case-insensitively, as
    /// OpenResty's: one value replaces the first header of the name in
    /// place, keeping its spelling, and removes the others.
    pub fn set_request_header(&self, name: &[u8], values: &[&[u8]]) -> Result<(), HeaderError> {
        let r = self.as_ptr();
        // SAFETY: live request; new strings and elements come from its pool.
        unsafe {
            let headers_in = &mut (*r).headers_in;
            let mut in_place: Option<*mut ngx_table_elt_t> = None;
            for h in elements(&headers_in.headers.part) {
                if !bytes_of(&h.key).eq_ignore_ascii_case(name) {
                    continue;
                }
                match values {
                    [value] if in_place.is_none() => {
                        h.value = copy_to_pool((*r).pool, value).ok_or(HeaderError::NoMemory)?;
                        in_place = Some(&raw mut *h);
                    }
                    _ => h.hash = 0,
                }
            }
            let field = dedicated_request_field(headers_in, name);
            if let Some(field) = field {
                *field = in_place.unwrap_or(ptr::null_mut());
            }
            if name.eq_ignore_ascii_case(b"content-length") {
                headers_in.content_length_n = values
                    .first()
                    .and_then(|v| core::str::from_utf8(v).ok()?.trim().parse::<i64>().ok())
                    .unwrap_or(-1);
            }
            let added: &[&[u8]] = if in_place.is_some() { &[] } else { values };
            for value in added {
                let elt = push_header(&mut headers_in.headers, (*r).pool, name, value)?;
                if let Some(field) = field {
                    if (*field).is_null() {
                        *field = elt;
                    }
                }
            }
            if name.eq_ignore_ascii_case(b"host") {
                if let Some(host) = values.first() {
                    headers_in.server =
                        copy_to_pool((*r).pool, host).ok_or(HeaderError::NoMemory)?;
                }
            }
        }
        Ok(())
    }

    /// Adds `values` to request header `name`, after those it has
    /// (`ngx.req.add_header`); a header not there yet is set as by
    /// [`Self::set_request_header`], so that nginx's own fields see it.
    pub fn add_request_header(&self, name: &[u8], values: &[&[u8]]) -> Result<(), HeaderError> {
        // SAFETY: the request's parsed header list.
        let present = unsafe { elements(&(*self.as_ptr()).headers_in.headers.part) }
            .iter()
            .any(|h| bytes_of(&h.key).eq_ignore_ascii_case(name));
        if !present {
            return self.set_request_header(name, values);
        }
        let r = self.as_ptr();
        // SAFETY: live request; new strings and elements come from its pool.
        unsafe {
            for value in values {
                push_header(&mut (*r).headers_in.headers, (*r).pool, name, value)?;
            }
        }
        Ok(())
    }

    /// Replaces response header `name` by `values` (none: removes it).
    pub fn set_response_header(
        &self,
        name: &[u8],
        values: &[&[u8]],
        names: ResponseNames,
    ) -> Result<(), HeaderError> {
        self.write_response_header(name, values, true, names)
    }

    /// Adds values to response header `name`, after those it has
    /// (`ngx.resp.add_header`); `Content-Type` and `Content-Length`, which
    /// hold one value, are replaced.
    pub fn add_response_header(
        &self,
        name: &[u8],
        values: &[&[u8]],
        names: ResponseNames,
    ) -> Result<(), HeaderError> {
        self.write_response_header(name, values, false, names)
    }

    fn write_response_header(
        &self,
        name: &[u8],
        values: &[&[u8]],
        replace: bool,
        names: ResponseNames,
    ) -> Result<(), HeaderError> {
        let r = self.as_ptr();
        // SAFETY: live request whose header has not been sent (the caller
        // checks); new strings and list elements come from its pool.
        unsafe {
            let headers_out = &mut (*r).headers_out;
            if names.matches(b"content-type", name) {
                headers_out.content_type_lowcase = ptr::null_mut();
                headers_out.content_type_hash = 0;
                let value = values.last().copied().unwrap_or_default();
                let copied = copy_to_pool((*r).pool, value).ok_or(HeaderError::NoMemory)?;
                headers_out.content_type = if values.is_empty() {
                    ngx_str_t {
                        len: 0,
                        data: ptr::null_mut(),
                    }
                } else {
                    copied
                };
                headers_out.content_type_len = headers_out.content_type.len;
                return Ok(());
            }
            if names.matches(b"content-length", name) {
                headers_out.content_length_n = values
                    .last()
                    .and_then(|v| core::str::from_utf8(v).ok()?.trim().parse::<i64>().ok())
                    .unwrap_or(-1);
                if !headers_out.content_length.is_null() {
                    (*headers_out.content_length).hash = 0;
                    headers_out.content_length = ptr::null_mut();
                }
                return Ok(());
            }
            let field = dedicated_field(headers_out, name, names);
            if replace {
                for h in elements(&headers_out.headers.part) {
                    if names.matches(name, bytes_of(&h.key)) {
                        h.hash = 0;
                    }
                }
                if let Some(field) = field {
                    *field = ptr::null_mut();
                }
                if names.matches(b"last-modified", name) {
                    headers_out.last_modified_time = -1;
                }
            }
            for value in values {
                let key = names.sent_name(name);
                let elt = push_header(&mut headers_out.headers, (*r).pool, &key, value)?;
                if let Some(field) = field {
                    if replace || (*field).is_null() {
                        *field = elt;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Appends header `name: value` to an nginx header list, with its pool
/// copies, lower-cased key and hash, as nginx's own parser would.
///
/// # Safety
/// `list` must be a live header list whose elements live in `pool`.
unsafe fn push_header(
    list: *mut ngx_list_t,
    pool: *mut ngx_pool_t,
    name: &[u8],
    value: &[u8],
) -> Result<*mut ngx_table_elt_t, HeaderError> {
    let key = name;
    let lowcase = key.to_ascii_lowercase();
    // SAFETY: per the contract; the element is zeroed first because nginx
    // versions differ in the fields after these (1.23 added `next`), all of
    // which are null by default.
    unsafe {
        let elt = ngx_list_push(list).cast::<ngx_table_elt_t>();
        if elt.is_null() {
            return Err(HeaderError::NoMemory);
        }
        ptr::write_bytes(elt, 0, 1);
        (*elt).key = copy_to_pool(pool, key).ok_or(HeaderError::NoMemory)?;
        (*elt).value = copy_to_pool(pool, value).ok_or(HeaderError::NoMemory)?;
        (*elt).lowcase_key = copy_to_pool(pool, &lowcase)
            .ok_or(HeaderError::NoMemory)?
            .data;
        (*elt).hash = nginx_sys::ngx_hash_key((*elt).lowcase_key, lowcase.len());
        Ok(elt)
    }
}

/// Request headers nginx and its modules read from a dedicated field. Only
/// fields present in every supported nginx build are listed (1.22 and 1.23+
/// differ for cookies and forwarding headers, which stay list-only here).
fn dedicated_request_field(
    h: &mut ngx_http_headers_in_t,
    name: &[u8],
) -> Option<*mut *mut ngx_table_elt_t> {
    let fields: [(&[u8], *mut *mut ngx_table_elt_t); 8] = [
        (b"host", &mut h.host),
        (b"connection", &mut h.connection),
        (b"user-agent", &mut h.user_agent),
        (b"referer", &mut h.referer),
        (b"content-length", &mut h.content_length),
        (b"content-type", &mut h.content_type),
        (b"range", &mut h.range),
        (b"authorization", &mut h.authorization),
    ];
    fields
        .into_iter()
        .find(|(field_name, _)| name.eq_ignore_ascii_case(field_name))
        .map(|(_, field)| field)
}

/// Headers nginx's header filter reads from a dedicated field as well as
/// (or instead of) the list: that field must point at our element. A raw
/// pointer, because the caller goes on to modify the list beside it.
fn dedicated_field(
    h: &mut ngx_http_headers_out_t,
    name: &[u8],
    names: ResponseNames,
) -> Option<*mut *mut ngx_table_elt_t> {
    // (Cache-Control is not here: nginx 1.22 keeps it in an array.)
    let fields: [(&[u8], *mut *mut ngx_table_elt_t); 7] = [
        (b"server", &mut h.server),
        (b"date", &mut h.date),
        (b"location", &mut h.location),
        (b"last-modified", &mut h.last_modified),
        (b"content-encoding", &mut h.content_encoding),
        (b"etag", &mut h.etag),
        (b"expires", &mut h.expires),
    ];
    fields
        .into_iter()
        .find(|(field_name, _)| names.matches(name, field_name))
        .map(|(_, field)| field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_with_underscores_and_any_case() {
        assert!(header_name_matches(b"content_type", b"Content-Type"));
        assert!(header_name_matches(b"content-type", b"content_type"));
        assert!(header_name_matches(b"X-FOO", b"x-foo"));
        assert!(!header_name_matches(b"x-foo", b"x-foob"));
    }

    #[test]
    fn added_names_keep_their_case_with_dashes_for_underscores() {
        assert_eq!(canonical_header_name(b"x_my_header"), b"x-my-header");
        assert_eq!(canonical_header_name(b"X-Custom"), b"X-Custom");
    }
}

impl HttpRequest {
    /// The main request's header as the client sent it: the request line
    /// (unless `without_request_line`), the header lines, and the blank
    /// line, each ending in CRLF. From nginx's header buffer when the whole
    /// header is in the one it was parsed in; else (large header buffers,
    /// HTTP/2) rebuilt from the parsed request line and headers.
    pub fn raw_header(&self, without_request_line: bool) -> Vec<u8> {
        // SAFETY: a live request's main request is live too.
        let main = unsafe { &*(*self.as_ptr()).main };
        let buffer = main.header_in;
        let start = main.request_start;
        let end = main.header_end;
        // SAFETY: the buffer and the pointers are the main request's; they
        // are compared before anything is read between them.
        let in_one_buffer = !buffer.is_null()
            && !start.is_null()
            && !end.is_null()
            && unsafe { (*buffer).start <= start && start <= end && end <= (*buffer).last };
        let mut raw = if in_one_buffer {
            // SAFETY: [start, end) lies within the buffer, checked above.
            let block =
                unsafe { core::slice::from_raw_parts(start, end.offset_from(start) as usize) };
            restore_parsed_header(block)
        } else {
            let mut rebuilt = bytes_of(&main.request_line).to_vec();
            rebuilt.extend_from_slice(b"\r\n");
            // SAFETY: the main request's parsed header list.
            for header in unsafe { elements(&main.headers_in.headers.part) } {
                rebuilt.extend_from_slice(bytes_of(&header.key));
                rebuilt.extend_from_slice(b": ");
                rebuilt.extend_from_slice(bytes_of(&header.value));
                rebuilt.extend_from_slice(b"\r\n");
            }
            rebuilt
        };
        raw.extend_from_slice(b"\r\n");
        if without_request_line {
            let first_line_end = raw.iter().position(|&b| b == b'\n').map_or(0, |at| at + 1);
            raw.drain(..first_line_end);
        }
        raw
    }
}

/// nginx ends each parsed header name and value with a NUL written over
/// the byte after it (the colon; the CR, LF or trailing blank): this puts
/// back what was most likely there.
fn restore_parsed_header(block: &[u8]) -> Vec<u8> {
    let mut out = block.to_vec();
    let mut first_line = true;
    let mut colon_seen = false;
    for i in 0..out.len() {
        match out[i] {
            b'\n' => {
                first_line = false;
                colon_seen = false;
            }
            b':' => colon_seen = true,
            0 => {
                let next = out.get(i + 1).copied();
                out[i] = if !first_line && !colon_seen {
                    colon_seen = true;
                    b':'
                } else if next == Some(b'\n') {
                    b'\r'
                } else if matches!(next, Some(b' ' | b'\t' | b'\r')) {
                    b' '
                } else {
                    b'\n'
                };
                if out[i] == b'\n' {
                    colon_seen = false;
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod raw_header_tests {
    use super::restore_parsed_header;

    #[test]
    fn parsed_header_bytes_come_back() {
        let parsed = b"GET / HTTP/1.1\r\nHost\0 example.com\0\nX-Empty\0\0\nX-Pad\0 padded\0 \r\nLf\0 only\0Next\0 1\0\n";
        assert_eq!(
            restore_parsed_header(parsed),
            b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Pad: padded  \r\nLf: only\nNext: 1\r\n"
        );
    }
}
