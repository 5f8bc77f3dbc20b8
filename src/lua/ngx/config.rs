//! `ngx.config.*` and `ngx.worker.exiting()`.

use mlua::{Lua, MultiValue, Table, Value};

use crate::lua::raise::api_function;

/// What `ngx.config.ngx_lua_version` reports: the lua-nginx-module release
/// (0.10.26) whose API this module follows.
pub const NGX_LUA_VERSION: i64 = 10026;

pub(super) fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    install_config(lua, ngx)?;
    let worker: Table = ngx.get("worker")?;
    worker.set(
        "exiting",
        api_function(lua, |_, _: MultiValue| {
            Ok(crate::nginx_ffi::worker_exiting())
        })?,
    )
}

fn install_config(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let config = match ngx.get::<Value>("config")? {
        Value::Table(t) => t,
        _ => {
            let t = lua.create_table()?;
            ngx.set("config", t.clone())?;
            t
        }
    };
    config.set("subsystem", "http")?;
    config.set("debug", ::ngx::log::DEBUG)?;
    config.set("nginx_version", i64::from(nginx_sys::nginx_version))?;
    config.set("ngx_lua_version", NGX_LUA_VERSION)?;
    config.set(
        "prefix",
        api_function(lua, |lua, _: MultiValue| {
            lua.create_string(crate::nginx_ffi::cycle_prefix())
        })?,
    )?;
    config.set(
        "nginx_configure",
        api_function(lua, |lua, _: MultiValue| {
            lua.create_string(nginx_sys::NGX_CONFIGURE.to_bytes())
        })?,
    )?;
    Ok(())
}
