//! Installs `ngx.socket.tcp`, `.stream` and `.connect`: `tcp.lua` over the
//! Lua C functions of [`super::calls`].

use mlua::{Function, Lua, Table};

use super::calls;
use super::ops;
use crate::lua::raise::internal_chunk_name;
use crate::lua::scheduler::wait_for_socket;

/// Installs them; returns what `tcp.lua` shares with the UDP sockets.
pub fn install(lua: &Lua, ngx: &Table, socket: &Table) -> mlua::Result<Table> {
    let operations = lua.create_table()?;
    let mut functions: Vec<(&str, mlua::ffi::lua_CFunction)> = vec![
        ("req_socket", calls::req_socket),
        ("new", calls::tcp_new),
        ("connect", calls::tcp_connect),
        ("send", calls::tcp_send),
        ("receive", calls::tcp_receive),
        ("receive_until", calls::tcp_receive_until),
        ("set_timeouts", calls::tcp_set_timeouts),
        ("setkeepalive", calls::tcp_setkeepalive),
        ("reused", calls::tcp_reused),
        ("close", calls::tcp_close),
        ("setoption", calls::tcp_setoption),
        ("gc", calls::tcp_gc),
    ];
    #[cfg(ngx_feature = "http_ssl")]
    functions.extend([
        (
            "sslhandshake",
            calls::tcp_sslhandshake as mlua::ffi::lua_CFunction,
        ),
        ("session_gc", calls::session_gc),
    ]);
    for (name, function) in functions {
        // SAFETY: each is a C function of calls.rs, which reads its
        // arguments defensively and raises nothing.
        operations.set(name, unsafe { lua.create_c_function(function)? })?;
    }
    let handle_meta = lua.create_table()?;
    handle_meta.set("__gc", operations.get::<Function>("gc")?)?;
    handle_meta.set("__metatable", false)?;
    #[cfg(ngx_feature = "http_ssl")]
    {
        let session_meta = lua.create_table()?;
        session_meta.set("__gc", operations.get::<Function>("session_gc")?)?;
        session_meta.set("__metatable", false)?;
        let key = calls::SESSION_META_KEY.to_str().expect("ASCII key");
        lua.set_named_registry_value(key, session_meta)?;
    }
    let spec = lua.create_table()?;
    spec.set("operations", operations)?;
    spec.set("handle_meta", handle_meta)?;
    let status = lua.create_table()?;
    for (name, code) in [
        ("OK", ops::OK),
        ("WAIT", ops::WAIT),
        ("FAIL", ops::FAIL),
        ("FAIL_PARTIAL", ops::FAIL_PARTIAL),
        ("RAISE", ops::RAISE),
        ("LAST_PIECE", ops::LAST_PIECE),
        ("PATTERN_REACHED", ops::PATTERN_REACHED),
    ] {
        status.set(name, code)?;
    }
    spec.set("status", status)?;
    let handshake = lua.create_table()?;
    for (name, code) in [
        ("SESSION", ops::HANDSHAKE_SESSION),
        ("GIVEN_SESSION", ops::HANDSHAKE_GIVEN_SESSION),
        ("TRUE", ops::HANDSHAKE_TRUE),
    ] {
        handshake.set(name, code)?;
    }
    spec.set("handshake", handshake)?;
    let options = lua.create_table()?;
    for (name, code) in ops::OPTIONS {
        options.set(name, code)?;
    }
    spec.set("options", options)?;
    let (tcp, connect, req_socket, shared): (Function, Function, Function, Table) = lua
        .load(include_str!("tcp.lua"))
        .set_name(internal_chunk_name("ngx.socket.tcp"))
        .call((spec, wait_for_socket(lua)?))?;
    socket.set("tcp", tcp.clone())?;
    socket.set("stream", tcp)?;
    socket.set("connect", connect)?;
    let req: Table = ngx.get("req")?;
    req.set("socket", req_socket)?;
    Ok(shared)
}
