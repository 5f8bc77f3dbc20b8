//! `resty.lrucache` and `resty.lrucache.pureffi`: the per-worker level-1
//! cache that OpenResty code puts in front of `ngx.shared.DICT`, built in so
//! that `require` finds both without any Lua files installed.
//!
//! The cache is Lua (`lrucache.lua`, registered in `package.preload`) over
//! Lua tables and an FFI array, not Rust: every operation is a handful of
//! loads and stores that LuaJIT compiles into the caller's trace, where a
//! call into Rust would stop the trace and cost more than the whole
//! operation (README, "resty.lrucache", has the measurements). Its clock
//! reads nginx's cached time through the FFI for the same reason.
//!
//! Each worker has its own caches: the state is per process, and caches
//! created before the fork are copied, not shared.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};

use mlua::{Function, LightUserData, Lua, Table};
use nginx_sys::{ngx_time_t, ngx_uint_t, time_t};

const CACHE_SOURCE: &str = include_str!("lrucache.lua");
const CLOCK_SOURCE: &str = include_str!("clock.lua");

/// The module names, and whether each takes only string keys.
const MODULES: [(&str, bool); 2] = [("resty.lrucache", false), ("resty.lrucache.pureffi", true)];

// clock.lua declares `ngx_time_t` as its first two fields, sized below; that
// only holds if `msec` follows `sec` without padding.
const _: () = assert!(offset_of!(ngx_time_t, sec) == 0);
const _: () = assert!(offset_of!(ngx_time_t, msec) == size_of::<time_t>());

/// Registers both modules in `package.preload`, with nginx's cached time as
/// their clock.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    install_with_clock(lua, nginx_clock(lua)?)
}

/// Registers both modules with `clock`, a Lua function returning seconds
/// since the epoch.
fn install_with_clock(lua: &Lua, clock: Function) -> mlua::Result<()> {
    let define: Function = lua
        .load(CACHE_SOURCE)
        .set_name("@resty/lrucache.lua")
        .call(clock)?;
    let make_loader = lua
        .load(
            "local define, strings_only = ...\n\
             return function() return define(strings_only) end",
        )
        .set_name("=resty.lrucache")
        .into_function()?;
    let preload: Table = lua.globals().get::<Table>("package")?.get("preload")?;
    for (name, strings_only) in MODULES {
        let loader: Function = make_loader.call((define.clone(), strings_only))?;
        preload.set(name, loader)?;
    }
    Ok(())
}

/// A Lua function reading nginx's `ngx_cached_time`, as `ngx.now()` does.
fn nginx_clock(lua: &Lua) -> mlua::Result<Function> {
    // The address of the variable, not its value: nginx points it at a new
    // `ngx_time_t` each time it updates the time.
    let cached_time = &raw const nginx_sys::ngx_cached_time;
    let time_struct = format!(
        "const struct {{ int{}_t sec; uint{}_t msec; }}",
        time_t::BITS,
        ngx_uint_t::BITS
    );
    lua.load(CLOCK_SOURCE)
        .set_name("@resty/lrucache/clock.lua")
        .call((LightUserData(cached_time as *mut c_void), time_struct))
}

#[cfg(test)]
mod tests;
