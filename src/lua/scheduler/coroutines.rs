//! `coroutine.*` as handlers see it (`coroutines.lua`): user coroutines
//! pass a waiting API's sentinel up to their thread, and the scheduler's
//! bookkeeping shows in `coroutine.status`.

use core::ffi::{c_int, c_void};

use mlua::ffi::{lua_State, lua_pushlightuserdata, lua_pushstring, lua_settop, lua_yield};
use mlua::{Function, Lua, Table, Value};

use super::api::{abandon_wait, ended_thread_status};
use super::SchedulerTables;
use crate::lua::raise::api_function;

/// Registry key of `scheduler.lua`'s `wait_here`, which the module's
/// yielding API wrappers call once they recorded what they wait for.
pub const WAIT_HERE_KEY: &str = "ngx_lua_shdict.wait_here";

/// Registry key of `scheduler.lua`'s `wait_for_socket`, the sockets'
/// `wait_here`.
const WAIT_FOR_SOCKET_KEY: &str = "ngx_lua_shdict.wait_for_socket";

/// The function a yielding API wrapper calls to wait (see
/// [`WAIT_HERE_KEY`]).
pub fn wait_here(lua: &Lua) -> mlua::Result<Function> {
    lua.named_registry_value(WAIT_HERE_KEY)
}

/// The function the socket wrappers call to wait (see
/// [`WAIT_FOR_SOCKET_KEY`]).
pub fn wait_for_socket(lua: &Lua) -> mlua::Result<Function> {
    lua.named_registry_value(WAIT_FOR_SOCKET_KEY)
}

extern "C" {
    // LuaJIT's (5.3's API, which mlua's 5.1 bindings do not declare).
    fn lua_isyieldable(state: *mut lua_State) -> c_int;
}

/// `yield_park()`: yields the park sentinel, as `coroutine.yield(PARK)`
/// would, from a C function: compiled code calling it goes on in the same
/// trace chain once resumed (LuaJIT stitches around C functions), where
/// coroutine.yield and pcall end the trace. Where the coroutine cannot
/// yield (inside a C call), returns the sentinel and LuaJIT's error text
/// instead of raising it from here.
unsafe extern "C-unwind" fn yield_park(state: *mut lua_State) -> c_int {
    // SAFETY: a C function call on a live state; lua_yield is this
    // function's last act, as LuaJIT requires.
    unsafe {
        lua_settop(state, 0);
        lua_pushlightuserdata(state, park_sentinel_pointer());
        if lua_isyieldable(state) == 0 {
            lua_pushstring(state, c"attempt to yield across C-call boundary".as_ptr());
            return 2;
        }
        lua_yield(state, 1)
    }
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
    // SAFETY: yield_park is a Lua C function.
    let yield_park = unsafe { lua.create_c_function(yield_park)? };
    let (wait_here, wait_for_socket): (Function, Function) = make.call((
        lua.globals().get::<Table>("coroutine")?,
        park_sentinel(),
        waiting,
        ended_status,
        abandon_wait,
        yield_park,
    ))?;
    lua.set_named_registry_value(WAIT_HERE_KEY, wait_here)?;
    lua.set_named_registry_value(WAIT_FOR_SOCKET_KEY, wait_for_socket)?;
    Ok(tables)
}

/// The sentinel an API function returns to say "wait", and which waiting
/// coroutines yield up their chain.
pub fn park_sentinel() -> Value {
    Value::LightUserData(mlua::LightUserData(park_sentinel_pointer()))
}

fn park_sentinel_pointer() -> *mut c_void {
    static PARK: u8 = 0;
    core::ptr::addr_of!(PARK).cast_mut().cast()
}
