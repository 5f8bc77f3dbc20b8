//! `ngx.re` and `require "ngx.re"`: the Lua of `regex.lua` over the C-ABI
//! functions of `crate::regex`, set up once per Lua state.

use mlua::{Function, Lua, Table};
use nginx_sys::NGX_LOG_ERR;

use crate::lua::raise::internal_chunk_name;
use crate::nginx::Log;
use crate::regex::{ffi, flags, set_match_limit, NO_MATCH};

const SOURCE: &str = include_str!("regex.lua");

/// Registry key of the functions `regex.lua` returns.
const FUNCTIONS_KEY: &str = "ngx_lua_shdict.regex";

/// Runs `regex.lua` and sets `ngx.re`; `require "ngx.re"` then finds
/// [`module`].
pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let letters = lua.create_table()?;
    for (letter, bits) in flags::LETTERS {
        letters.raw_set(letter, bits)?;
    }
    let spec = lua.create_table()?;
    spec.raw_set("declarations", ffi::DECLARATIONS)?;
    spec.raw_set("flags", letters)?;
    spec.raw_set("no_match", NO_MATCH)?;
    spec.raw_set(
        "log_error",
        lua.create_function(|_, line: mlua::LuaString| {
            if let Some(log) = Log::cycle() {
                log.write(NGX_LOG_ERR as usize, &line.as_bytes());
            }
            Ok(())
        })?,
    )?;
    let functions: Table = lua
        .load(SOURCE)
        .set_name(internal_chunk_name("regex.lua"))
        .call(spec)?;
    let re = lua.create_table()?;
    for name in ["match", "find", "gmatch", "sub", "gsub"] {
        re.raw_set(name, functions.raw_get::<Function>(name)?)?;
    }
    ngx.set("re", re)?;
    lua.set_named_registry_value(FUNCTIONS_KEY, functions)
}

/// `require "ngx.re"`: `split` and `opt`.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let functions: Table = lua.named_registry_value(FUNCTIONS_KEY)?;
    let module = lua.create_table()?;
    for name in ["split", "opt"] {
        module.raw_set(name, functions.raw_get::<Function>(name)?)?;
    }
    Ok(module)
}

/// Applies `lua_regex_cache_max_entries` and `lua_regex_match_limit`.
pub fn configure(lua: &Lua, cache_max_entries: usize, match_limit: u32) -> mlua::Result<()> {
    let functions: Table = lua.named_registry_value(FUNCTIONS_KEY)?;
    functions
        .raw_get::<Function>("configure")?
        .call::<()>(cache_max_entries)?;
    set_match_limit(match_limit);
    Ok(())
}
