//! `coroutine.*` as handlers see it (`coroutines.lua`): user coroutines
//! pass a waiting API's sentinel up to their thread, and the scheduler's
//! bookkeeping shows in `coroutine.status`.

use mlua::{Function, Lua, Table, Value};

use super::api::{abandon_wait, ended_thread_status};
use super::SchedulerTables;
use crate::lua::raise::api_function;

/// Registry key of `scheduler.lua`'s `wait_here`, which the module's
/// yielding API wrappers call once they recorded what they wait for.
pub const WAIT_HERE_KEY: &str = "ngx_lua_shdict.wait_here";

/// The function a yielding API wrapper calls to wait (see
/// [`WAIT_HERE_KEY`]).
pub fn wait_here(lua: &Lua) -> mlua::Result<Function> {
    lua.named_registry_value(WAIT_HERE_KEY)
}

fn weak_keyed_table(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set("__mode", "k")?;
    table.set_metatable(Some(meta))?;
    Ok(table)
}

/// Installs `coroutine.*` and `wait_here`; must run before the yielding
/// APIs are installed (they use `wait_here`).
pub fn install_coroutines(lua: &Lua) -> mlua::Result<SchedulerTables> {
    let waiting = weak_keyed_table(lua)?;
    let tables = SchedulerTables {
        waiting: lua.create_registry_value(waiting.clone())?,
        light_threads: lua.create_registry_value(weak_keyed_table(lua)?)?,
    };
    let ended_status = api_function(lua, |_, co: Value| {
        Ok(match &co {
            Value::Thread(co) => ended_thread_status(co),
            _ => None,
        })
    })?;
    let abandon_wait = lua.create_function(|_, ()| {
        abandon_wait();
        Ok(())
    })?;
    let make: Function = lua
        .load(include_str!("coroutines.lua"))
        .set_name(crate::lua::raise::internal_chunk_name("coroutine"))
        .into_function()?;
    let wait_here: Function = make.call((
        lua.globals().get::<Table>("coroutine")?,
        park_sentinel(),
        waiting,
        ended_status,
        abandon_wait,
    ))?;
    lua.set_named_registry_value(WAIT_HERE_KEY, wait_here)?;
    Ok(tables)
}

/// The sentinel an API function returns to say "wait", and which waiting
/// coroutines yield up their chain.
pub fn park_sentinel() -> Value {
    static PARK: u8 = 0;
    Value::LightUserData(mlua::LightUserData(
        core::ptr::addr_of!(PARK).cast_mut().cast(),
    ))
}
