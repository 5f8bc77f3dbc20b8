//! `ngx.socket.tcp`, `ngx.socket.stream` and `ngx.socket.connect`: the
//! cosocket API over the request layer's connections
//! ([`crate::request::socket`]).
//!
//! Each method is a Lua function (`tcp.lua`) over one Rust operation. An
//! operation that must wait gives the connection the running thread as its
//! waiter, parks the thread (`Wait::Io`) and returns the park sentinel;
//! the Lua side waits where it is and, once woken, calls the same
//! operation again with the same arguments, which goes on from where the
//! connection stands.

mod tcp;

use mlua::{Lua, Table};

use crate::lua::ngx::allow_in;
use crate::lua::raise::raise;
use crate::lua::scheduler::{current, SCHEDULED_PHASES};
use crate::phase::Phase;
use crate::request::socket::{SocketSettings, Waiter};
use crate::request::HttpRequest;

/// Installs `ngx.socket`.
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let socket = lua.create_table()?;
    tcp::install(lua, &socket)?;
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
    let request = crate::lua::ngx::request().ok();
    match SETTINGS.get() {
        Some(reader) => reader(request),
        None => SocketSettings {
            connect_timeout: 60_000,
            send_timeout: 60_000,
            read_timeout: 60_000,
            buffer_size: 4096,
            pool_size: 30,
            keepalive_timeout: 60_000,
            log_errors: true,
            resolver: core::ptr::null_mut(),
            resolver_timeout: 30_000,
        },
    }
}

/// Refuses cosockets where OpenResty does: `no request found` in
/// `init_by_lua*`, `API disabled in the context of ...` in the phases that
/// cannot wait.
fn allowed_here() -> mlua::Result<()> {
    if crate::lua::current_phase().is_none_or(|p| p == Phase::Init) {
        return Err(raise("no request found"));
    }
    allow_in(SCHEDULED_PHASES)
}

/// The running handler's owner key (its request or timer) and the waiter
/// that resumes the running thread.
fn running_thread() -> mlua::Result<(usize, Waiter)> {
    let shared = current().ok_or_else(|| raise("no request found"))?;
    let scheduler = shared
        .try_borrow()
        .map_err(|_| raise("API disabled in this context"))?;
    let co = scheduler
        .current()
        .ok_or_else(|| raise("no running coroutine"))?;
    let owner = scheduler.owner();
    Ok((
        owner.data as usize,
        Waiter {
            data: owner.data,
            wake: owner.wake_io,
            co,
        },
    ))
}
