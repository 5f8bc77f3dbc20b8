//! `ngx.socket.tcp`, `.stream`, `.connect` and `.udp`: the
//! cosocket API over the request layer's connections
//! ([`crate::request::socket`]).
//!
//! Each method is Lua code (`tcp.lua`, `udp.lua`) over one operation
//! (`ops.rs`), called as a plain Lua C function (`calls.rs`). An operation
//! that must wait records the wait for the scheduler (`Request::Io`), which
//! parks the thread and gives the connection its waiter; the Lua side
//! waits where it is and, once woken, calls the same operation again with
//! the same arguments, which goes on from where the connection stands.

mod calls;
mod ops;
mod tcp;
mod udp;

use mlua::{Lua, Table};

use crate::request::socket::SocketSettings;
use crate::request::HttpRequest;

/// Installs `ngx.socket`.
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let socket = lua.create_table()?;
    let shared = tcp::install(lua, ngx, &socket)?;
    udp::install(lua, &socket, shared)?;
    ngx.set("socket", socket)
}

/// Reads the `lua_socket_*` settings where a socket connects, installed by
/// the layer that reads the configuration (`None`: outside any request).
static SETTINGS: std::sync::OnceLock<fn(Option<HttpRequest>) -> SocketSettings> =
    std::sync::OnceLock::new();

/// Installs the reader of the `lua_socket_*` settings.
pub fn install_settings(reader: fn(Option<HttpRequest>) -> SocketSettings) {
    let _ = SETTINGS.set(reader);
}

/// The settings where the running code connects a socket.
fn settings() -> SocketSettings {
    let request = ops::running_request();
    match SETTINGS.get() {
        Some(reader) => reader(request),
        None => SocketSettings::default(),
    }
}
