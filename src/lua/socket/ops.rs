//! The cosocket operations under `tcp.lua`'s methods, once the Lua C
//! functions (`calls.rs`) have read their arguments. They touch no Lua
//! state: a wait is recorded for the scheduler (`Request::Io`), and the
//! Lua side yields.
//!
//! Each takes the socket and an out structure, and returns a status:
//! [`OK`], [`WAIT`] (yield, then call again with the same arguments),
//! [`FAIL`] (`nil, err`), [`FAIL_PARTIAL`] (`nil, err, partial`), [`RAISE`]
//! (raise `err`), or for a `receiveuntil` iterator [`LAST_PIECE`] and
//! [`PATTERN_REACHED`]. Texts and data in `out` stay valid until the next
//! call.

use core::ffi::c_int;
use core::panic::AssertUnwindSafe;
use std::cell::RefCell;

use nginx_sys::NGX_LOG_ERR;

use crate::lua::scheduler::{running_coroutine, Request, SCHEDULED_PHASES};
use crate::phase::Phase;
use crate::request::socket::inbox::Want;
use crate::request::socket::pool::PoolOptions;
use crate::request::socket::udp::UdpSocket;
use crate::request::socket::{Busy, Failure, Received, SocketSettings, Step, TcpSocket};
use crate::request::HttpRequest;

pub const OK: c_int = 0;
pub const WAIT: c_int = 1;
pub const FAIL: c_int = 2;
pub const FAIL_PARTIAL: c_int = 3;
pub const RAISE: c_int = 4;
pub const LAST_PIECE: c_int = 5;
pub const PATTERN_REACHED: c_int = 6;

/// `setoption`'s option codes.
pub const OPTIONS: [(&str, c_int); 5] = [
    ("keepalive", 1),
    ("reuseaddr", 2),
    ("tcp-nodelay", 3),
    ("sndbuf", 4),
    ("rcvbuf", 5),
];

/// What an operation hands back besides its status.
pub struct SocketOut {
    pub data: *const u8,
    pub len: usize,
    pub err: *const u8,
    pub err_len: usize,
    pub number: f64,
}

impl Default for SocketOut {
    fn default() -> Self {
        SocketOut {
            data: core::ptr::null(),
            len: 0,
            err: core::ptr::null(),
            err_len: 0,
            number: 0.0,
        }
    }
}

thread_local! {
    /// The text `out.err` points at.
    static ERROR_TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn set_error(out: &mut SocketOut, text: &str) {
    ERROR_TEXT.with(|buffer| {
        let mut buffer = buffer.borrow_mut();
        buffer.clear();
        buffer.extend_from_slice(text.as_bytes());
        out.err = buffer.as_ptr();
        out.err_len = buffer.len();
    });
}

fn fail(out: &mut SocketOut, code: c_int, text: &str) -> c_int {
    set_error(out, text);
    code
}

fn set_data(out: &mut SocketOut, data: &[u8]) {
    out.data = data.as_ptr();
    out.len = data.len();
}

/// Runs an operation; a panic (a bug) raises instead of unwinding into
/// LuaJIT.
fn guarded(out: *mut SocketOut, op: impl FnOnce(&mut SocketOut) -> c_int) -> c_int {
    // SAFETY: the Lua side passes its out structure, alive for the call.
    let Some(out) = (unsafe { out.as_mut() }) else {
        return RAISE;
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| op(&mut *out))) {
        Ok(code) => code,
        Err(_) => fail(out, RAISE, "internal error in a cosocket operation"),
    }
}

/// The Lua object's socket.
///
/// # Safety
/// `sock` must be null or come from [`tcp_new`], not freed.
unsafe fn socket<'a>(sock: *mut TcpSocket) -> Option<&'a mut TcpSocket> {
    // SAFETY: per the contract.
    unsafe { sock.as_mut() }
}

/// OpenResty's refusal of cosockets where they may not be used.
fn context_refusal() -> Option<String> {
    match crate::lua::current_phase() {
        None | Some(Phase::Init) => Some("no request found".into()),
        Some(phase) if SCHEDULED_PHASES.contains(&phase) => None,
        Some(phase) => Some(format!(
            "API disabled in the context of {}",
            phase.context_name()
        )),
    }
}

/// The checks of every operation: the context, and that the socket is the
/// running request's (or timer's). The owner key on success.
fn enter(socket: &TcpSocket, out: &mut SocketOut) -> Result<usize, c_int> {
    enter_owned_by(socket.owner(), out)
}

/// [`enter`] for a socket bound to `socket_owner` (0: not yet bound).
fn enter_owned_by(socket_owner: usize, out: &mut SocketOut) -> Result<usize, c_int> {
    if let Some(refusal) = context_refusal() {
        return Err(fail(out, RAISE, &refusal));
    }
    let owner = crate::lua::current_owner();
    if socket_owner != 0 && socket_owner != owner {
        return Err(fail(out, RAISE, "bad request"));
    }
    Ok(owner)
}

/// Another thread's operation of the same kind waits on the socket.
fn busy_refusal(socket: &TcpSocket, kinds: &[Busy], out: &mut SocketOut) -> Result<(), c_int> {
    // Most calls find nothing under way: no need to ask who runs.
    if !socket.busy() {
        return Ok(());
    }
    let Some(co) = running_coroutine() else {
        return Ok(());
    };
    match socket.busy_for(co, kinds) {
        Some(busy) => Err(fail(
            out,
            FAIL,
            match busy {
                Busy::Connecting => "socket busy connecting",
                Busy::Reading => "socket busy reading",
                Busy::Writing => "socket busy writing",
            },
        )),
        _ => Ok(()),
    }
}

/// Sockets connected in a request close with it: its state says so.
fn close_with_request(out: &mut SocketOut) -> Result<(), c_int> {
    if let Some(r) = running_request() {
        // SAFETY: the running request is live, its state slot set up.
        if !unsafe { crate::request::state::own_sockets(r.as_ptr()) } {
            return Err(fail(out, FAIL, "no memory"));
        }
    }
    Ok(())
}

/// Records the wait for the scheduler; the Lua side yields.
fn wait(socket: &mut TcpSocket) -> c_int {
    crate::lua::record_request(Request::Io(socket.io_wait()));
    WAIT
}

pub(super) fn running_request() -> Option<HttpRequest> {
    if crate::lua::ngx::runs_with_stand_in_request() {
        return None;
    }
    // SAFETY: the pointer is set only while the handler for this live
    // request runs.
    crate::lua::current_request().and_then(|r| unsafe { HttpRequest::from_raw(r) })
}

/// The running request's log (null outside requests).
pub(super) fn request_log() -> *mut nginx_sys::ngx_log_t {
    running_request()
        .and_then(|r| r.log())
        .map_or(core::ptr::null_mut(), |log| log.as_ptr())
}

fn log_error(line: &str) {
    let log = running_request()
        .and_then(|r| r.log())
        .or_else(crate::nginx::Log::cycle);
    if let Some(log) = log {
        log.write(NGX_LOG_ERR as usize, line.as_bytes());
    }
}

fn logs_errors(socket: &TcpSocket) -> bool {
    socket
        .log_errors()
        .unwrap_or_else(|| super::settings().log_errors)
}

/// Logs a failure as OpenResty does with `lua_socket_log_errors on`.
fn log_failure(socket: &TcpSocket, operation: &str, failure: &Failure) {
    if !logs_errors(socket) {
        return;
    }
    let line = match (failure, operation) {
        (Failure::Timeout, "connect") => format!(
            "lua tcp socket connect timed out, when connecting to {}",
            String::from_utf8_lossy(socket.peer_name())
        ),
        (Failure::Timeout, _) => "lua tcp socket write timed out".to_string(),
        (Failure::Os(errno), "connect") => format!(
            "connect() failed ({errno}: {})",
            crate::request::socket::os_error_log_text(*errno)
        ),
        _ => return,
    };
    log_error(&line);
}

/// Bytes from the Lua side (a string's pointer and length).
///
/// # Safety
/// `ptr` must be null (then `len` is ignored) or point to `len` bytes that
/// stay put for the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

/// `ngx.socket.tcp()`: a new socket, or null with the error to raise.
pub(super) fn tcp_new(out: *mut SocketOut) -> Option<TcpSocket> {
    created_here(out, TcpSocket::new)
}

/// A new socket where cosockets may be used; `None` with the error to
/// raise elsewhere.
fn created_here<T>(out: *mut SocketOut, new: fn() -> T) -> Option<T> {
    let mut created = None;
    guarded(out, |out| {
        if let Some(refusal) = context_refusal() {
            return fail(out, RAISE, &refusal);
        }
        created = Some(new());
        OK
    });
    created
}

/// The socket's Lua object was collected: its connection closes.
///
/// # Safety
/// `sock` must be a socket written by [`tcp_new`]'s caller, dropped once.
pub(super) unsafe fn tcp_free(sock: *mut TcpSocket) {
    crate::nginx::without_unwinding("cosocket finalizer", || {
        // SAFETY: per the contract.
        unsafe { core::ptr::drop_in_place(sock) };
    });
}

/// `ngx.req.socket(raw)`: a socket reading the request body, or `None`
/// with the error (`RAISE` or `FAIL`) in `out`.
pub(super) fn req_socket(raw: bool, out: *mut SocketOut) -> (c_int, Option<TcpSocket>) {
    let mut created = None;
    let rc = guarded(out, |out| {
        match crate::lua::current_phase() {
            None | Some(Phase::Init) => return fail(out, RAISE, "no request found"),
            Some(Phase::Rewrite | Phase::ServerRewrite | Phase::Access | Phase::Content) => {}
            Some(phase) => {
                return fail(
                    out,
                    RAISE,
                    &format!("API disabled in the context of {}", phase.context_name()),
                )
            }
        }
        let Some(r) = running_request() else {
            return fail(out, RAISE, "no request found");
        };
        if let Err(code) = close_with_request(out) {
            return code;
        }
        let mut socket = TcpSocket::new();
        let attach = if raw {
            crate::request::socket::downstream::attach_raw
        } else {
            crate::request::socket::downstream::attach
        };
        match attach(&mut socket, r, &super::settings()) {
            Ok(()) => {
                if raw {
                    // The response is the socket's: the handler's end
                    // sends nothing more, as after ngx.eof().
                    crate::lua::mark_eof();
                }
                created = Some(socket);
                OK
            }
            Err(failure) => fail(out, FAIL, &failure.message()),
        }
    });
    (rc, created)
}

/// `connect(host, port, options)`: `port` -1 for a unix path; `pool` null
/// without the option, `pool_size` and `backlog` -1 without theirs.
#[allow(clippy::too_many_arguments)]
pub(super) fn tcp_connect(
    sock: *mut TcpSocket,
    host: *const u8,
    host_len: usize,
    port: c_int,
    pool_ptr: *const u8,
    pool_len: usize,
    pool_size: c_int,
    backlog: c_int,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        let owner = match enter(socket, out) {
            Ok(owner) => owner,
            Err(code) => return code,
        };
        if socket.is_downstream() {
            return fail(out, RAISE, "attempt to re-connect a request socket");
        }
        if let Err(code) = busy_refusal(
            socket,
            &[Busy::Connecting, Busy::Reading, Busy::Writing],
            out,
        ) {
            return code;
        }
        if let Err(code) = close_with_request(out) {
            return code;
        }
        // SAFETY: the Lua strings passed for the call.
        let (host, pool) = unsafe { (bytes(host, host_len), bytes(pool_ptr, pool_len)) };
        let options = PoolOptions {
            key: (!pool_ptr.is_null()).then(|| pool.to_vec()),
            size: usize::try_from(pool_size).ok().filter(|&n| n > 0),
            backlog: usize::try_from(backlog).ok(),
        };
        match socket.connect(
            host,
            u16::try_from(port).ok(),
            &options,
            &super::settings(),
            owner,
        ) {
            Step::Done(()) => OK,
            Step::Wait => wait(socket),
            Step::Failed(failure) => {
                log_failure(socket, "connect", &failure);
                fail(out, FAIL, &failure.message())
            }
        }
    })
}

pub(super) fn tcp_send(
    sock: *mut TcpSocket,
    data: *const u8,
    len: usize,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter(socket, out) {
            return code;
        }
        if socket.is_downstream() && !socket.is_raw_downstream() {
            return fail(out, RAISE, "attempt to write to request sockets");
        }
        if let Err(code) = busy_refusal(socket, &[Busy::Writing, Busy::Connecting], out) {
            return code;
        }
        if !socket.is_connected() {
            if logs_errors(socket) {
                log_error("attempt to send data on a closed socket");
            }
            return fail(out, FAIL, "closed");
        }
        // SAFETY: the Lua string or buffer passed for the call.
        match socket.send(unsafe { bytes(data, len) }) {
            Step::Done(n) => {
                out.number = n as f64;
                OK
            }
            Step::Wait => wait(socket),
            Step::Failed(failure) => {
                log_failure(socket, "send", &failure);
                fail(out, FAIL, &failure.message())
            }
        }
    })
}

/// The read of every receive method.
fn read(socket: &mut TcpSocket, want: Want, out: &mut SocketOut) -> c_int {
    if let Err(code) = enter(socket, out) {
        return code;
    }
    if let Err(code) = busy_refusal(socket, &[Busy::Reading, Busy::Connecting], out) {
        return code;
    }
    if socket.read_closed() {
        if logs_errors(socket) {
            log_error("attempt to receive data on a closed socket");
        }
        return fail(out, FAIL, "closed");
    }
    // Taken first: the read's result borrows the socket.
    let io = socket.io_wait();
    let log_errors = logs_errors(socket);
    match socket.receive(want) {
        Received::Data(bytes) => {
            set_data(out, bytes);
            OK
        }
        Received::LastPiece(bytes) => {
            set_data(out, bytes);
            LAST_PIECE
        }
        Received::PatternReached => PATTERN_REACHED,
        Received::Wait => {
            crate::lua::record_request(Request::Io(io));
            WAIT
        }
        Received::Failed { failure, partial } => {
            set_data(out, partial);
            set_error(out, &failure.message());
            if failure == Failure::Timeout && log_errors {
                log_error("lua tcp socket read timed out");
            }
            FAIL_PARTIAL
        }
    }
}

/// `receive` (`kind` 0: `*l`, 1: `*a`, 2: `size` bytes) and `receiveany`
/// (3: at most `size`).
pub(super) fn tcp_receive(
    sock: *mut TcpSocket,
    kind: c_int,
    size: usize,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        let want = match kind {
            0 => Want::Line,
            1 => Want::All,
            2 => Want::Bytes(size),
            _ => Want::Any(size),
        };
        read(socket, want, out)
    })
}

/// A `receiveuntil` iterator's call: `chunk` 0 reads to the pattern.
pub(super) fn tcp_receive_until(
    sock: *mut TcpSocket,
    pattern: *const u8,
    len: usize,
    inclusive: c_int,
    chunk: usize,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        // SAFETY: the iterator's pattern string, alive for the call.
        let pattern = unsafe { bytes(pattern, len) };
        if pattern.is_empty() {
            return fail(out, FAIL, "pattern is empty");
        }
        let want = Want::Until {
            pattern,
            inclusive: inclusive != 0,
            chunk: (chunk > 0).then_some(chunk),
        };
        read(socket, want, out)
    })
}

/// Milliseconds from Lua: negative keeps the value, 0 goes back to the
/// directive's.
fn timeout(ms: f64) -> Option<u64> {
    (ms >= 0.0).then_some(ms as u64)
}

pub(super) fn tcp_set_timeouts(
    sock: *mut TcpSocket,
    connect: f64,
    send: f64,
    read: f64,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |_| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        socket.set_timeouts(timeout(connect), timeout(send), timeout(read));
        OK
    })
}

/// `setkeepalive(timeout, size)`: `timeout` negative for the directive's,
/// `pool_size` 0 for the default.
pub(super) fn tcp_setkeepalive(
    sock: *mut TcpSocket,
    timeout_ms: f64,
    pool_size: c_int,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter(socket, out) {
            return code;
        }
        if socket.is_downstream() {
            return fail(out, RAISE, "not supported for downstream sockets");
        }
        if !socket.is_connected() {
            return fail(out, FAIL, "closed");
        }
        if let Err(code) = busy_refusal(
            socket,
            &[Busy::Connecting, Busy::Reading, Busy::Writing],
            out,
        ) {
            return code;
        }
        let settings: SocketSettings = socket.settings().copied().unwrap_or_else(super::settings);
        let idle = timeout(timeout_ms).unwrap_or(settings.keepalive_timeout);
        let size = usize::try_from(pool_size).ok().filter(|&n| n > 0);
        match socket.set_keepalive(idle, size) {
            Ok(()) => OK,
            Err(failure) => fail(out, FAIL, &failure.message()),
        }
    })
}

/// What `sslhandshake` returns on success (in `out.number`): the
/// connection's session, the caller's own session back, or `true`.
pub const HANDSHAKE_SESSION: f64 = 0.0;
pub const HANDSHAKE_GIVEN_SESSION: f64 = 1.0;
pub const HANDSHAKE_TRUE: f64 = 2.0;

/// `sslhandshake(session, server_name, verify, status_request)`; the
/// new session, when there is one, in `session_out`.
#[cfg(ngx_feature = "http_ssl")]
pub(super) fn tcp_sslhandshake(
    sock: *mut TcpSocket,
    handshake: &crate::request::socket::tls::Handshake,
    session_out: &mut Option<crate::request::socket::tls::TlsSession>,
    out: *mut SocketOut,
) -> c_int {
    use crate::request::socket::tls::Handshaken;
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if socket.owner() == 0 {
            return fail(out, RAISE, "socket is never created nor connected");
        }
        if let Err(code) = enter(socket, out) {
            return code;
        }
        if let Err(code) = busy_refusal(
            socket,
            &[Busy::Connecting, Busy::Reading, Busy::Writing],
            out,
        ) {
            return code;
        }
        let Some(context) = super::settings().tls else {
            return fail(out, FAIL, "failed to create ssl connection");
        };
        match socket.ssl_handshake(context, handshake) {
            Step::Done(Handshaken::Session(session)) => {
                *session_out = session;
                out.number = HANDSHAKE_SESSION;
                OK
            }
            Step::Done(Handshaken::GivenSession) => {
                out.number = HANDSHAKE_GIVEN_SESSION;
                OK
            }
            Step::Done(Handshaken::Done) => {
                out.number = HANDSHAKE_TRUE;
                OK
            }
            Step::Wait => wait(socket),
            Step::Failed(failure) => {
                if logs_errors(socket) {
                    match &failure {
                        Failure::Verify { .. } => log_error(&format!(
                            "lua ssl certificate verify error: ({})",
                            failure.message()
                        )),
                        Failure::HostMismatch(name) => log_error(&format!(
                            "lua ssl certificate does not match host \"{name}\""
                        )),
                        _ => {}
                    }
                }
                fail(out, FAIL, &failure.message())
            }
        }
    })
}

pub(super) fn tcp_reused(sock: *mut TcpSocket, out: *mut SocketOut) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter(socket, out) {
            return code;
        }
        match socket.reused_times() {
            Some(n) => {
                out.number = f64::from(n);
                OK
            }
            None => fail(out, FAIL, "closed"),
        }
    })
}

pub(super) fn tcp_close(sock: *mut TcpSocket, out: *mut SocketOut) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter(socket, out) {
            return code;
        }
        if socket.is_downstream() {
            return fail(out, RAISE, "attempt to close a request socket");
        }
        if let Err(code) = busy_refusal(
            socket,
            &[Busy::Connecting, Busy::Reading, Busy::Writing],
            out,
        ) {
            return code;
        }
        if socket.close() {
            OK
        } else {
            fail(out, FAIL, "closed")
        }
    })
}

/// `setoption(option, value)` with an [`OPTIONS`] code.
pub(super) fn tcp_setoption(
    sock: *mut TcpSocket,
    option: c_int,
    value: c_int,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter(socket, out) {
            return code;
        }
        if !socket.is_connected() {
            return fail(out, RAISE, "socket is never created nor connected");
        }
        let (level, name) = match option {
            1 => (libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            2 => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            3 => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            4 => (libc::SOL_SOCKET, libc::SO_SNDBUF),
            _ => (libc::SOL_SOCKET, libc::SO_RCVBUF),
        };
        match socket.set_option(level, name, value) {
            Ok(()) => OK,
            Err(failure) => fail(out, FAIL, &failure.message()),
        }
    })
}

/// The UDP socket of a Lua object.
///
/// # Safety
/// `sock` must be null or come from [`udp_new`], not freed.
unsafe fn udp_socket<'a>(sock: *mut UdpSocket) -> Option<&'a mut UdpSocket> {
    // SAFETY: per the contract.
    unsafe { sock.as_mut() }
}

/// The checks of every UDP operation (as [`enter`]).
fn enter_udp(socket: &UdpSocket, out: &mut SocketOut) -> Result<usize, c_int> {
    enter_owned_by(socket.owner(), out)
}

/// `ngx.socket.udp()`: a new socket, or `None` with the error to raise.
pub(super) fn udp_new(out: *mut SocketOut) -> Option<UdpSocket> {
    created_here(out, UdpSocket::new)
}

/// The UDP socket's Lua object was collected.
///
/// # Safety
/// As [`tcp_free`].
pub(super) unsafe fn udp_free(sock: *mut UdpSocket) {
    crate::nginx::without_unwinding("UDP cosocket finalizer", || {
        // SAFETY: per the contract.
        unsafe { core::ptr::drop_in_place(sock) };
    });
}

/// `setpeername(host, port)`: `port` -1 for a unix path.
pub(super) fn udp_setpeername(
    sock: *mut UdpSocket,
    host: *const u8,
    host_len: usize,
    port: c_int,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { udp_socket(sock) }) else {
            return RAISE;
        };
        let owner = match enter_udp(socket, out) {
            Ok(owner) => owner,
            Err(code) => return code,
        };
        if let Err(code) = close_with_request(out) {
            return code;
        }
        // SAFETY: the Lua string passed for the call.
        let host = unsafe { bytes(host, host_len) };
        match socket.set_peer(host, u16::try_from(port).ok(), owner, &super::settings()) {
            Step::Done(()) => OK,
            Step::Wait => {
                crate::lua::record_request(Request::Io(socket.io_wait()));
                WAIT
            }
            Step::Failed(failure) => fail(out, FAIL, &failure.message()),
        }
    })
}

pub(super) fn udp_send(
    sock: *mut UdpSocket,
    data: *const u8,
    len: usize,
    out: *mut SocketOut,
) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { udp_socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter_udp(socket, out) {
            return code;
        }
        if !socket.is_open() {
            if super::settings().log_errors {
                log_error("attempt to send data on a closed socket");
            }
            return fail(out, FAIL, "closed");
        }
        // SAFETY: the Lua string passed for the call.
        match socket.send(unsafe { bytes(data, len) }) {
            Ok(()) => OK,
            Err(failure) => fail(out, FAIL, &failure.message()),
        }
    })
}

pub(super) fn udp_receive(sock: *mut UdpSocket, size: usize, out: *mut SocketOut) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { udp_socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter_udp(socket, out) {
            return code;
        }
        let default_timeout = super::settings().read_timeout;
        let log_errors = super::settings().log_errors;
        // Taken first: the read's result borrows the socket.
        let io = socket.io_wait();
        match socket.receive(size, default_timeout) {
            Step::Done(data) => {
                set_data(out, data);
                OK
            }
            Step::Wait => {
                crate::lua::record_request(Request::Io(io));
                WAIT
            }
            Step::Failed(failure) => {
                if failure == Failure::Timeout && log_errors {
                    log_error("lua udp socket read timed out");
                }
                fail(out, FAIL, &failure.message())
            }
        }
    })
}

/// `settimeout(ms)`: 0 goes back to the directive's.
pub(super) fn udp_set_timeout(sock: *mut UdpSocket, ms: f64, out: *mut SocketOut) -> c_int {
    guarded(out, |_| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { udp_socket(sock) }) else {
            return RAISE;
        };
        socket.set_timeout((ms > 0.0).then_some(ms as u64));
        OK
    })
}

pub(super) fn udp_close(sock: *mut UdpSocket, out: *mut SocketOut) -> c_int {
    guarded(out, |out| {
        // SAFETY: the Lua object's socket.
        let Some(socket) = (unsafe { udp_socket(sock) }) else {
            return RAISE;
        };
        if let Err(code) = enter_udp(socket, out) {
            return code;
        }
        if socket.is_reading() {
            return fail(out, FAIL, "socket busy reading");
        }
        if socket.close() {
            OK
        } else {
            fail(out, FAIL, "closed")
        }
    })
}
