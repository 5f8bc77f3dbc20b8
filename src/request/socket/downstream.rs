//! `ngx.req.socket()`: the request body read as a stream through a TCP
//! socket on the client's connection. What nginx read of the body with the
//! header comes first; then the socket reads the connection, never past
//! the body's end (what follows is the next request's), and never closes
//! it.

use core::ptr;

use nginx_sys::{
    ngx_connection_t, ngx_del_timer, ngx_http_block_reading, ngx_http_request_body_t,
    ngx_http_request_t, ngx_pcalloc,
};

use super::{wake, Core, Direction, Failure, SocketSettings, State, TcpSocket};
use crate::request::state::{existing_request_state, request_state};
use crate::request::HttpRequest;

/// What a socket on the client's connection keeps.
pub(super) struct Downstream {
    request: *mut ngx_http_request_t,
    /// Body bytes not yet read from the connection.
    pub(super) rest: u64,
}

impl Downstream {
    pub(super) fn consumed(&mut self, n: u64) {
        self.rest = self.rest.saturating_sub(n);
        // SAFETY: the request outlives its sockets (they are released with
        // it); nginx reads `rest` to know whether a body is left.
        unsafe {
            let body = (*self.request).request_body;
            if !body.is_null() {
                (*body).rest = self.rest as _;
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
            if let Some(state) = existing_request_state(self.request) {
                state.downstream_socket = ptr::null_mut();
            }
            (*self.request).read_event_handler = Some(ngx_http_block_reading);
        }
    }
}

/// Makes `socket` read `req`'s body (`ngx.req.socket()`), with OpenResty's
/// refusals.
pub fn attach(
    socket: &mut TcpSocket,
    req: HttpRequest,
    settings: &SocketSettings,
) -> Result<(), Failure> {
    let r = req.as_ptr();
    // SAFETY: the running request, live; its fields are read and the body
    // structure nginx would make is made here.
    unsafe {
        if r != (*r).main {
            return Err(Failure::Text("not supported in subrequests".into()));
        }
        if !(*r).stream.is_null() {
            return Err(Failure::Text("http2 requests not supported yet".into()));
        }
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
        let Some(state) = request_state(r) else {
            return Err(Failure::Text("no memory".into()));
        };
        if body.is_null() {
            return Err(Failure::Text("no memory".into()));
        }
        (*body).rest = length;
        (*r).request_body = body;
        socket.core.shut(false);
        let core: &mut Core = &mut socket.core;
        let core_ptr: *mut Core = core;
        super::own(r as usize, super::tcp_owned(core_ptr));
        core.settings = Some(*settings);
        core.owner = r as usize;
        let mut downstream = Downstream {
            request: r,
            rest: length as u64,
        };
        // What nginx read with the header comes first.
        let header_in = (*r).header_in;
        if !header_in.is_null() {
            let available = (*header_in).last.offset_from((*header_in).pos).max(0) as u64;
            let take = available.min(downstream.rest) as usize;
            if take > 0 {
                core.inbox
                    .push(core::slice::from_raw_parts((*header_in).pos, take));
                (*header_in).pos = (*header_in).pos.add(take);
                downstream.consumed(take as u64);
            }
        }
        core.conn = (*r).connection;
        core.downstream = Some(downstream);
        core.state = State::Connected;
        state.downstream_socket = (core as *mut Core).cast();
        (*r).read_event_handler = Some(on_client_read);
    }
    Ok(())
}

/// The client's connection is readable (or its read timer fired) while a
/// socket reads the body.
unsafe extern "C" fn on_client_read(r: *mut ngx_http_request_t) {
    // SAFETY: nginx calls this for the live main request, whose state
    // points at the attached socket's live core (cleared when it detaches).
    unsafe {
        let core = match existing_request_state(r) {
            Some(state) if !state.downstream_socket.is_null() => {
                state.downstream_socket.cast::<Core>()
            }
            _ => {
                ngx_http_block_reading(r);
                return;
            }
        };
        let rev = (*(*r).connection).read;
        if (*rev).timedout() != 0 {
            (*rev).set_timedout(0);
            (*core).reader.timed_out = true;
        }
        wake(core, Direction::Read);
    }
}
