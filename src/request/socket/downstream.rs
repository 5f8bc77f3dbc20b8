//! `ngx.req.socket()`: the request body read as a stream through a TCP
//! socket on the client's connection. What nginx read of the body with the
//! header comes first; then the socket reads the connection, never past
//! the body's end (what follows is the next request's), and never closes
//! it.
//!
//! `ngx.req.socket(true)` (raw): the client's connection itself, to read
//! without limit and write to, for a protocol of one's own. nginx sends no
//! response header after it, and closes the connection when the request
//! ends.

use core::ptr;

use nginx_sys::{
    ngx_connection_t, ngx_del_timer, ngx_http_block_reading, ngx_http_request_body_t,
    ngx_http_request_empty_handler, ngx_http_request_t, ngx_pcalloc,
};

use super::{wake, Core, Direction, Failure, SocketSettings, State, TcpSocket};
use crate::request::state::{existing_request_state, request_state};
use crate::request::HttpRequest;

/// What a socket on the client's connection keeps.
pub(super) struct Downstream {
    request: *mut ngx_http_request_t,
    /// Body bytes not yet read from the connection; `None` for a raw
    /// socket, which reads without limit.
    pub(super) rest: Option<u64>,
}

impl Downstream {
    pub(super) fn is_raw(&self) -> bool {
        self.rest.is_none()
    }

    pub(super) fn consumed(&mut self, n: u64) {
        let Some(rest) = &mut self.rest else {
            return;
        };
        *rest = rest.saturating_sub(n);
        let rest = *rest;
        // SAFETY: the request outlives its sockets (they are released with
        // it); nginx reads `rest` to know whether a body is left.
        unsafe {
            let body = (*self.request).request_body;
            if !body.is_null() {
                (*body).rest = rest as _;
            }
        }
    }

    /// The socket lets go of the client's connection (closed, or the
    /// request ending): its timer goes, reading goes back to nginx.
    pub(super) fn detach(self, conn: *mut ngx_connection_t) {
        // SAFETY: the request and its connection are live while the socket
        // is attached (it is released before the request is freed).
        unsafe {
            if !conn.is_null() && (*(*conn).read).timer_set() != 0 {
                ngx_del_timer((*conn).read);
            }
            if self.is_raw() {
                if !conn.is_null() && (*(*conn).write).timer_set() != 0 {
                    ngx_del_timer((*conn).write);
                }
                // The request's handler is parked or ending: writes are
                // nobody's now.
                (*self.request).write_event_handler = Some(ngx_http_request_empty_handler);
            }
            if let Some(state) = existing_request_state(self.request) {
                state.downstream_socket = ptr::null_mut();
            }
            (*self.request).read_event_handler = Some(ngx_http_block_reading);
        }
    }
}

/// Request sockets take the main request's HTTP/1 connection: refused in
/// subrequests, and with `http2` (OpenResty's words differ by mode) over
/// HTTP/2.
fn main_http1_request(r: *mut ngx_http_request_t, http2: &str) -> Result<(), Failure> {
    // SAFETY: the running request, live.
    unsafe {
        if r != (*r).main {
            return Err(Failure::Text("not supported in subrequests".into()));
        }
        if !(*r).stream.is_null() {
            return Err(Failure::Text(http2.into()));
        }
    }
    Ok(())
}

/// Makes `socket` read `req`'s body (`ngx.req.socket()`), with OpenResty's
/// refusals.
pub fn attach(
    socket: &mut TcpSocket,
    req: HttpRequest,
    settings: &SocketSettings,
) -> Result<(), Failure> {
    let r = req.as_ptr();
    main_http1_request(r, "http2 requests not supported yet")?;
    // SAFETY: the running request, live; its fields are read and the body
    // structure nginx would make is made here.
    unsafe {
        if !(*r).request_body.is_null() || (*r).discard_body() != 0 {
            return Err(Failure::Text("request body already exists".into()));
        }
        if (*r).headers_in.chunked() != 0 {
            return Err(Failure::Text(
                "chunked request bodies not supported yet".into(),
            ));
        }
        let length = (*r).headers_in.content_length_n;
        if length <= 0 {
            return Err(Failure::Text("no body".into()));
        }
        let body = ngx_pcalloc((*r).pool, core::mem::size_of::<ngx_http_request_body_t>())
            .cast::<ngx_http_request_body_t>();
        if request_state(r).is_none() || body.is_null() {
            return Err(Failure::Text("no memory".into()));
        }
        (*body).rest = length;
        (*r).request_body = body;
        take_client_connection(socket, r, settings, Some(length as u64));
    }
    Ok(())
}

/// Makes `socket` the raw socket of `req` (`ngx.req.socket(true)`), with
/// OpenResty's refusals.
pub fn attach_raw(
    socket: &mut TcpSocket,
    req: HttpRequest,
    settings: &SocketSettings,
) -> Result<(), Failure> {
    let r = req.as_ptr();
    main_http1_request(r, "http v2 not supported yet")?;
    // SAFETY: the running request, live; its fields are read and set as
    // OpenResty's raw socket sets them.
    unsafe {
        let Some(state) = request_state(r) else {
            return Err(Failure::Text("no memory".into()));
        };
        if state.raw_socket_taken {
            return Err(Failure::Text("duplicate call".into()));
        }
        let body = (*r).request_body;
        if body.is_null() {
            // Taken now: nginx reads no body after this.
            let body = ngx_pcalloc((*r).pool, core::mem::size_of::<ngx_http_request_body_t>())
                .cast::<ngx_http_request_body_t>();
            if body.is_null() {
                return Err(Failure::Text("no memory".into()));
            }
            (*r).request_body = body;
        } else if (*body).rest > 0 {
            return Err(Failure::Text(
                "pending request body reading in some other thread".into(),
            ));
        }
        // Output sent before (ngx.say, ngx.send_headers) goes out first,
        // so that what the socket sends follows it on the wire.
        if req.headers_sent() && req.flush().is_err() {
            return Err(Failure::Text("pending data to write".into()));
        }
        let conn = (*r).connection;
        if (*conn).buffered() & nginx_sys::NGX_HTTP_LOWLEVEL_BUFFERED != 0 {
            return Err(Failure::Text("pending data to write".into()));
        }
        state.raw_socket_taken = true;
        // The response is the socket's from here: nginx sends no header,
        // and the connection serves no further request.
        (*r).set_header_sent(1);
        (*r).set_keepalive(0);
        (*r).set_lingering_close(1);
        take_client_connection(socket, r, settings, None);
    }
    Ok(())
}

/// Points `socket` at `r`'s client connection, reading up to `limit` body
/// bytes (`None`: without limit, and writing too).
///
/// # Safety
/// `r` must be the live main request, with its state made.
unsafe fn take_client_connection(
    socket: &mut TcpSocket,
    r: *mut ngx_http_request_t,
    settings: &SocketSettings,
    limit: Option<u64>,
) {
    // SAFETY: per the contract.
    unsafe {
        socket.core.shut(false);
        let core: &mut Core = &mut socket.core;
        core.bind_to(r as usize);
        core.settings = Some(*settings);
        let mut downstream = Downstream {
            request: r,
            rest: limit,
        };
        // What nginx read with the header comes first.
        let header_in = (*r).header_in;
        if !header_in.is_null() {
            let available = (*header_in).last.offset_from((*header_in).pos).max(0) as u64;
            let take = limit.map_or(available, |rest| available.min(rest)) as usize;
            if take > 0 {
                core.inbox
                    .push(core::slice::from_raw_parts((*header_in).pos, take));
                (*header_in).pos = (*header_in).pos.add(take);
                downstream.consumed(take as u64);
            }
        }
        core.conn = (*r).connection;
        let raw = downstream.is_raw();
        core.downstream = Some(downstream);
        core.state = State::Connected;
        if let Some(state) = request_state(r) {
            state.downstream_socket = (core as *mut Core).cast();
        }
        (*r).read_event_handler = Some(on_client_read);
        if raw {
            (*r).write_event_handler = Some(on_client_write);
        }
    }
}

/// The core of the socket attached to `r`, if any.
///
/// # Safety
/// `r` must be a live main request.
unsafe fn attached_core(r: *mut ngx_http_request_t) -> Option<*mut Core> {
    // SAFETY: per the contract; the state's pointer is cleared when the
    // socket detaches.
    match unsafe { existing_request_state(r) } {
        Some(state) if !state.downstream_socket.is_null() => {
            Some(state.downstream_socket.cast::<Core>())
        }
        _ => None,
    }
}

/// The client's connection is readable (or its read timer fired) while a
/// socket reads it.
unsafe extern "C" fn on_client_read(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls this for the live main request, whose state
    // points at the attached socket's live core (cleared when it detaches).
    unsafe {
        let Some(core) = attached_core(r) else {
            ngx_http_block_reading(r);
            return;
        };
        let rev = (*(*r).connection).read;
        if (*rev).timedout() != 0 {
            (*rev).set_timedout(0);
            (*core).reader.timed_out = true;
        }
        wake(core, Direction::Read);
    }
}

/// The client's connection is writable (or its write timer fired) while a
/// raw socket sends.
unsafe extern "C" fn on_client_write(r: *mut ngx_http_request_t) {
    // SAFETY: as on_client_read.
    unsafe {
        let Some(core) = attached_core(r) else {
            return;
        };
        let wev = (*(*r).connection).write;
        if (*wev).timedout() != 0 {
            (*wev).set_timedout(0);
            (*core).writer.timed_out = true;
        }
        wake(core, Direction::Write);
    }
}
