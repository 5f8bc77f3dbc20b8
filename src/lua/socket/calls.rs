//! The Lua C functions under `tcp.lua`'s methods: each reads its
//! arguments from the Lua stack, runs one operation of [`super::ops`] and
//! pushes its status and values. Cosocket code waits on the network, so it
//! mostly runs in LuaJIT's interpreter, where a plain C function is the
//! cheapest call (an FFI call costs several times more there).
//!
//! Each returns the status first (`ops::OK`, ...), then: for OK the value
//! of the method (data, a count, or nothing); for FAIL, RAISE and
//! FAIL_PARTIAL the error text (and the partial data); for LAST_PIECE the
//! data.

use core::ffi::c_int;

use mlua::ffi::{
    lua_State, lua_getfield, lua_newuserdata, lua_pushinteger, lua_pushlstring, lua_pushnil,
    lua_pushnumber, lua_pushvalue, lua_setmetatable, lua_tolstring, lua_tonumber, lua_touserdata,
    lua_type, LUA_REGISTRYINDEX, LUA_TNIL, LUA_TNONE,
};

use super::ops::{self, SocketOut};
use crate::request::socket::udp::UdpSocket;
use crate::request::socket::TcpSocket;

/// What an OK status returns besides itself.
enum OkValue {
    Nothing,
    Data,
    Number,
}

/// A socket handle: the socket, in the userdata's own memory (no
/// allocation of its own), and whether it was dropped (its finalizer ran).
#[repr(C)]
struct Handle<T> {
    socket: T,
    dropped: bool,
}

/// Pushes a new handle for `socket` with the metatable at stack index
/// `meta_index` (which the Lua side passes: a registry lookup by name costs
/// a handle some 300 instructions), or nil and the error when there is no
/// socket (with whether to raise it, when `with_raise`).
///
/// # Safety
/// `l` must be a live Lua state in a C function call.
unsafe fn push_handle<T>(
    l: *mut lua_State,
    socket: Option<T>,
    meta_index: c_int,
    out: &SocketOut,
    raise: Option<bool>,
) -> c_int {
    // SAFETY: per the contract; the userdata is as large as a handle and
    // aligned for it (Lua aligns userdata for any type).
    unsafe {
        let Some(socket) = socket else {
            lua_pushnil(l);
            lua_pushlstring(l, out.err.cast(), out.err_len);
            return match raise {
                Some(raise) => {
                    mlua::ffi::lua_pushboolean(l, c_int::from(raise));
                    3
                }
                None => 2,
            };
        };
        let handle = lua_newuserdata(l, core::mem::size_of::<Handle<T>>()).cast::<Handle<T>>();
        handle.write(Handle {
            socket,
            dropped: false,
        });
        lua_pushvalue(l, meta_index);
        lua_setmetatable(l, -2);
    }
    1
}

/// A handle's `__gc`: the socket is dropped once.
///
/// # Safety
/// As [`push_handle`], with a `Handle<T>` at index 1.
unsafe fn drop_handle<T>(l: *mut lua_State, free: unsafe fn(*mut T)) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let handle = lua_touserdata(l, 1).cast::<Handle<T>>();
        if !handle.is_null() && !(*handle).dropped {
            (*handle).dropped = true;
            free(core::ptr::addr_of_mut!((*handle).socket));
        }
    }
    0
}

/// The socket of the handle at stack index 1.
///
/// # Safety
/// `l` must be a live Lua state in a C function call.
unsafe fn handle(l: *mut lua_State) -> *mut TcpSocket {
    // SAFETY: per the contract; tcp.lua passes its handle at index 1.
    unsafe { socket_of::<TcpSocket>(l) }
}

/// The socket of the `Handle<T>` at stack index 1 (null once dropped).
///
/// # Safety
/// As [`handle`], with a `Handle<T>` (or nothing) at index 1.
unsafe fn socket_of<T>(l: *mut lua_State) -> *mut T {
    // SAFETY: per the contract.
    unsafe { socket_of_at(l, 1) }
}

/// The value of the `Handle<T>` at stack `index` (null once dropped).
///
/// # Safety
/// As [`handle`], with a `Handle<T>` (or nothing) at `index`.
unsafe fn socket_of_at<T>(l: *mut lua_State, index: c_int) -> *mut T {
    // SAFETY: per the contract.
    unsafe {
        let handle = lua_touserdata(l, index).cast::<Handle<T>>();
        if handle.is_null() || (*handle).dropped {
            return core::ptr::null_mut();
        }
        core::ptr::addr_of_mut!((*handle).socket)
    }
}

/// The string at `index`, or null and 0 for nil or none.
///
/// # Safety
/// As [`handle`]; the bytes stay valid while the value is on the stack.
unsafe fn string_arg(l: *mut lua_State, index: c_int) -> (*const u8, usize) {
    // SAFETY: per the contract.
    unsafe {
        let kind = lua_type(l, index);
        if kind == LUA_TNIL || kind == LUA_TNONE {
            return (core::ptr::null(), 0);
        }
        let mut len = 0;
        let ptr = lua_tolstring(l, index, &mut len);
        (ptr.cast(), len)
    }
}

/// # Safety
/// As [`handle`].
unsafe fn number_arg(l: *mut lua_State, index: c_int) -> f64 {
    // SAFETY: per the contract.
    unsafe { lua_tonumber(l, index) }
}

/// Pushes the status and its values; the count pushed.
///
/// # Safety
/// As [`handle`]; `out`'s pointers valid for the lengths they give.
unsafe fn finish(l: *mut lua_State, rc: c_int, out: &SocketOut, ok: OkValue) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        lua_pushinteger(l, rc as _);
        let bytes = |l, ptr: *const u8, len| {
            if ptr.is_null() {
                lua_pushlstring(l, c"".as_ptr(), 0);
            } else {
                lua_pushlstring(l, ptr.cast(), len);
            }
        };
        match rc {
            ops::OK => match ok {
                OkValue::Nothing => 1,
                OkValue::Data => {
                    bytes(l, out.data, out.len);
                    2
                }
                OkValue::Number => {
                    lua_pushnumber(l, out.number);
                    2
                }
            },
            ops::LAST_PIECE => {
                bytes(l, out.data, out.len);
                2
            }
            ops::FAIL | ops::RAISE => {
                bytes(l, out.err, out.err_len);
                2
            }
            ops::FAIL_PARTIAL => {
                bytes(l, out.err, out.err_len);
                bytes(l, out.data, out.len);
                3
            }
            _ => 1,
        }
    }
}

/// `tcp_new(metatable)`: a handle, or nil and the error to raise.
pub unsafe extern "C-unwind" fn tcp_new(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    let socket = ops::tcp_new(&mut out);
    // SAFETY: a C function call on a live state.
    unsafe { push_tcp_handle(l, socket, 1, &out, None) }
}

/// [`push_handle`] for a TCP socket, which then learns its place.
///
/// # Safety
/// As [`push_handle`].
unsafe fn push_tcp_handle(
    l: *mut lua_State,
    socket: Option<TcpSocket>,
    meta_index: c_int,
    out: &SocketOut,
    raise: Option<bool>,
) -> c_int {
    let placed = socket.is_some();
    // SAFETY: per the contract; a handle pushed is the new userdata on
    // top of the stack, a `Handle<TcpSocket>` that stays where it is.
    unsafe {
        let pushed = push_handle(l, socket, meta_index, out, raise);
        if placed {
            (*lua_touserdata(l, -1).cast::<Handle<TcpSocket>>())
                .socket
                .placed();
        }
        pushed
    }
}

/// `req_socket(raw, metatable)`: a handle reading the request body, or nil, the
/// error and whether to raise it.
pub unsafe extern "C-unwind" fn req_socket(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (rc, socket) = ops::req_socket(number_arg(l, 1) != 0.0, &mut out);
        push_tcp_handle(l, socket, 2, &out, Some(rc == ops::RAISE))
    }
}

/// A handle's `__gc`.
pub unsafe extern "C-unwind" fn tcp_gc(l: *mut lua_State) -> c_int {
    // SAFETY: a C function call on a live state, with a TCP handle.
    unsafe { drop_handle::<TcpSocket>(l, ops::tcp_free) }
}

/// `tcp_connect(handle, host, port, pool, pool_size, backlog)`.
pub unsafe extern "C-unwind" fn tcp_connect(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (host, host_len) = string_arg(l, 2);
        let (pool, pool_len) = string_arg(l, 4);
        let rc = ops::tcp_connect(
            handle(l),
            host,
            host_len,
            number_arg(l, 3) as c_int,
            pool,
            pool_len,
            number_arg(l, 5) as c_int,
            number_arg(l, 6) as c_int,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `tcp_send(handle, data)`; data nil goes on with a send that waited.
pub unsafe extern "C-unwind" fn tcp_send(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (data, len) = string_arg(l, 2);
        let rc = ops::tcp_send(handle(l), data, len, &mut out);
        finish(l, rc, &out, OkValue::Number)
    }
}

/// `tcp_receive(handle, kind, size)`.
pub unsafe extern "C-unwind" fn tcp_receive(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_receive(
            handle(l),
            number_arg(l, 2) as c_int,
            number_arg(l, 3) as usize,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Data)
    }
}

/// `tcp_receive_until(handle, pattern, inclusive, chunk)`.
pub unsafe extern "C-unwind" fn tcp_receive_until(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (pattern, len) = string_arg(l, 2);
        let rc = ops::tcp_receive_until(
            handle(l),
            pattern,
            len,
            number_arg(l, 3) as c_int,
            number_arg(l, 4) as usize,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Data)
    }
}

/// `tcp_set_timeouts(handle, connect, send, read)`.
pub unsafe extern "C-unwind" fn tcp_set_timeouts(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_set_timeouts(
            handle(l),
            number_arg(l, 2),
            number_arg(l, 3),
            number_arg(l, 4),
            &mut out,
        );
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `tcp_setkeepalive(handle, timeout, size)`.
pub unsafe extern "C-unwind" fn tcp_setkeepalive(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_setkeepalive(
            handle(l),
            number_arg(l, 2),
            number_arg(l, 3) as c_int,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `tcp_reused(handle)`.
pub unsafe extern "C-unwind" fn tcp_reused(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_reused(handle(l), &mut out);
        finish(l, rc, &out, OkValue::Number)
    }
}

/// `tcp_close(handle)`.
pub unsafe extern "C-unwind" fn tcp_close(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_close(handle(l), &mut out);
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `tcp_setoption(handle, code, value)`.
pub unsafe extern "C-unwind" fn tcp_setoption(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::tcp_setoption(
            handle(l),
            number_arg(l, 2) as c_int,
            number_arg(l, 3) as c_int,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// Registry key of the metatable of TLS sessions (its `__gc` frees the
/// session).
#[cfg(ngx_feature = "http_ssl")]
pub const SESSION_META_KEY: &core::ffi::CStr = c"ngx_lua_shdict.tls_session";

/// The TLS session at `index`, if the value there is one of ours.
///
/// # Safety
/// As [`handle`].
#[cfg(ngx_feature = "http_ssl")]
unsafe fn session_arg<'a>(
    l: *mut lua_State,
    index: c_int,
) -> Option<&'a crate::request::socket::tls::TlsSession> {
    use mlua::ffi::{lua_getmetatable, lua_rawequal, lua_settop};
    // SAFETY: per the contract; the stack is put back as it was.
    unsafe {
        if lua_touserdata(l, index).is_null() || lua_getmetatable(l, index) == 0 {
            return None;
        }
        lua_getfield(l, LUA_REGISTRYINDEX, SESSION_META_KEY.as_ptr());
        let ours = lua_rawequal(l, -1, -2) != 0;
        lua_settop(l, -3);
        if !ours {
            return None;
        }
        socket_of_at::<crate::request::socket::tls::TlsSession>(l, index).as_ref()
    }
}

/// `tcp_sslhandshake(handle, session, server_name, verify, status_request)`:
/// `session` a session of ours, `false` for no session back, or nil.
#[cfg(ngx_feature = "http_ssl")]
pub unsafe extern "C-unwind" fn tcp_sslhandshake(l: *mut lua_State) -> c_int {
    use crate::request::socket::tls::Handshake;
    use mlua::ffi::{lua_gettop, lua_remove, lua_toboolean, LUA_TBOOLEAN};
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state; the session and the name
    // stay on the stack for the call.
    unsafe {
        let (name, name_len) = string_arg(l, 3);
        let handshake = Handshake {
            session: session_arg(l, 2),
            server_name: (!name.is_null()).then(|| core::slice::from_raw_parts(name, name_len)),
            verify: lua_toboolean(l, 4) != 0,
            status_request: lua_toboolean(l, 5) != 0,
            want_session: !(lua_type(l, 2) == LUA_TBOOLEAN && lua_toboolean(l, 2) == 0),
            log: ops::request_log(),
        };
        let mut session = None;
        let rc = ops::tcp_sslhandshake(handle(l), &handshake, &mut session, &mut out);
        if rc != ops::OK {
            return finish(l, rc, &out, OkValue::Nothing);
        }
        let pushed = finish(l, rc, &out, OkValue::Number);
        if out.number != ops::HANDSHAKE_SESSION {
            return pushed;
        }
        match session {
            Some(session) => {
                lua_getfield(l, LUA_REGISTRYINDEX, SESSION_META_KEY.as_ptr());
                let meta = lua_gettop(l);
                push_handle(l, Some(session), meta, &out, None);
                lua_remove(l, meta);
            }
            None => lua_pushnil(l),
        }
        pushed + 1
    }
}

/// A TLS session's `__gc`.
#[cfg(ngx_feature = "http_ssl")]
pub unsafe extern "C-unwind" fn session_gc(l: *mut lua_State) -> c_int {
    unsafe fn free(session: *mut crate::request::socket::tls::TlsSession) {
        // SAFETY: dropped once, by drop_handle.
        unsafe { core::ptr::drop_in_place(session) };
    }
    // SAFETY: a C function call on a live state, with a session handle.
    unsafe { drop_handle(l, free) }
}

/// The UDP socket of the handle at stack index 1.
///
/// # Safety
/// As [`handle`].
unsafe fn udp_handle(l: *mut lua_State) -> *mut UdpSocket {
    // SAFETY: per the contract; udp.lua passes its handle at index 1.
    unsafe { socket_of::<UdpSocket>(l) }
}

/// `udp_new(metatable)`: a handle, or nil and the error to raise.
pub unsafe extern "C-unwind" fn udp_new(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    let socket = ops::udp_new(&mut out);
    // SAFETY: a C function call on a live state.
    unsafe { push_handle(l, socket, 1, &out, None) }
}

/// A UDP handle's `__gc`.
pub unsafe extern "C-unwind" fn udp_gc(l: *mut lua_State) -> c_int {
    // SAFETY: a C function call on a live state, with a UDP handle.
    unsafe { drop_handle::<UdpSocket>(l, ops::udp_free) }
}

/// `udp_setpeername(handle, host, port)`.
pub unsafe extern "C-unwind" fn udp_setpeername(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (host, host_len) = string_arg(l, 2);
        let rc = ops::udp_setpeername(
            udp_handle(l),
            host,
            host_len,
            number_arg(l, 3) as c_int,
            &mut out,
        );
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `udp_send(handle, data)`.
pub unsafe extern "C-unwind" fn udp_send(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let (data, len) = string_arg(l, 2);
        let rc = ops::udp_send(udp_handle(l), data, len, &mut out);
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `udp_receive(handle, size)`.
pub unsafe extern "C-unwind" fn udp_receive(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::udp_receive(udp_handle(l), number_arg(l, 2) as usize, &mut out);
        finish(l, rc, &out, OkValue::Data)
    }
}

/// `udp_set_timeout(handle, ms)`.
pub unsafe extern "C-unwind" fn udp_set_timeout(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::udp_set_timeout(udp_handle(l), number_arg(l, 2), &mut out);
        finish(l, rc, &out, OkValue::Nothing)
    }
}

/// `udp_close(handle)`.
pub unsafe extern "C-unwind" fn udp_close(l: *mut lua_State) -> c_int {
    let mut out = SocketOut::default();
    // SAFETY: a C function call on a live state.
    unsafe {
        let rc = ops::udp_close(udp_handle(l), &mut out);
        finish(l, rc, &out, OkValue::Nothing)
    }
}
