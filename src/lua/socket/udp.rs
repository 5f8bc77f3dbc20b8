//! Installs `ngx.socket.udp`: `udp.lua` over the Lua C functions of
//! [`super::calls`].

use mlua::{Function, Lua, Table};

use super::calls;
use super::ops;
use crate::lua::raise::internal_chunk_name;
use crate::lua::scheduler::wait_for_socket;
use crate::request::socket::udp::MAX_DATAGRAM;

/// Installs it, with what `tcp.lua` shares (`send`'s argument conversion,
/// `setpeername`'s port checks).
pub fn install(lua: &Lua, socket: &Table, shared: Table) -> mlua::Result<()> {
    let operations = lua.create_table()?;
    let functions: [(&str, mlua::ffi::lua_CFunction); 7] = [
        ("new", calls::udp_new),
        ("setpeername", calls::udp_setpeername),
        ("send", calls::udp_send),
        ("receive", calls::udp_receive),
        ("set_timeout", calls::udp_set_timeout),
        ("close", calls::udp_close),
        ("gc", calls::udp_gc),
    ];
    for (name, function) in functions {
        // SAFETY: each is a C function of calls.rs, which reads its
        // arguments defensively and raises nothing.
        operations.set(name, unsafe { lua.create_c_function(function)? })?;
    }
    let handle_meta = lua.create_table()?;
    handle_meta.set("__gc", operations.get::<Function>("gc")?)?;
    handle_meta.set("__metatable", false)?;
    let spec = lua.create_table()?;
    spec.set("operations", operations)?;
    spec.set("handle_meta", handle_meta)?;
    let status = lua.create_table()?;
    for (name, code) in [("OK", ops::OK), ("WAIT", ops::WAIT), ("RAISE", ops::RAISE)] {
        status.set(name, code)?;
    }
    spec.set("status", status)?;
    spec.set("max_datagram", MAX_DATAGRAM)?;
    let udp: Function = lua
        .load(include_str!("udp.lua"))
        .set_name(internal_chunk_name("ngx.socket.udp"))
        .call((spec, wait_for_socket(lua)?, shared))?;
    socket.set("udp", udp)
}
