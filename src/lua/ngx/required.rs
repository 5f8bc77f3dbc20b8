//! lua-resty-core's `ngx.*` modules that code loads by name, built in:
//! `require "ngx.base64"` finds them before `package.path` (lua-resty-core's
//! own files need OpenResty's C functions). Each returns what the original
//! returns, with its argument checks and error values.

use mlua::{Function, Lua, Table, Value};

use crate::lua::raise::{api_function, raise};
use crate::nginx;
use crate::nginx_ffi::{decode_base64, encode_base64, Base64};
use crate::phase::Phase;

/// Puts the searcher of these modules in `package.loaders` right after the
/// resty.core stand-ins' (see `packages`), before the path searchers.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let module = lua.create_function(|lua, name: String| {
        module(lua, &name, crate::lua::packages::RESTY_CORE_VERSION)
    })?;
    let searcher: Function = lua
        .load(
            "local module = ...\n\
             return function(name)\n\
                 if name:sub(1, 4) ~= 'ngx.' then return nil end\n\
                 local found = module(name)\n\
                 if found then return function() return found end end\n\
             end",
        )
        .set_name("=require")
        .call(module)?;
    let loaders: Table = lua.globals().get::<Table>("package")?.get("loaders")?;
    let table_insert: Function = lua.globals().get::<Table>("table")?.get("insert")?;
    table_insert.call((&loaders, 3, searcher))
}

/// The bundled module `name`, or `None` when it is not one of them.
pub fn module(lua: &Lua, name: &str, version: &str) -> mlua::Result<Option<Table>> {
    let module = match name {
        "ngx.base64" => base64_module(lua)?,
        "ngx.process" => process_module(lua)?,
        "ngx.errlog" => errlog_module(lua)?,
        "ngx.resp" => resp_module(lua)?,
        "ngx.req" => req_module(lua)?,
        "ngx.re" => super::regex::module(lua)?,
        "ngx.semaphore" => crate::lua::scheduler::semaphore::module(lua)?,
        _ => return Ok(None),
    };
    module.set("version", version)?;
    Ok(Some(module))
}

/// `ngx.base64`: the URL-safe alphabet, unpadded on output, padding
/// optional on input.
fn base64_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "encode_base64url",
        api_function(lua, |lua, s: Value| {
            let Value::String(s) = s else {
                return not_a_string(lua);
            };
            let encoded = encode_base64(&s.as_bytes(), Base64::Url);
            mlua::IntoLuaMulti::into_lua_multi(lua.create_string(encoded)?, lua)
        })?,
    )?;
    module.set(
        "decode_base64url",
        api_function(lua, |lua, s: Value| {
            let Value::String(s) = s else {
                return not_a_string(lua);
            };
            match decode_base64(&s.as_bytes(), Base64::Url) {
                Some(decoded) => {
                    mlua::IntoLuaMulti::into_lua_multi(lua.create_string(decoded)?, lua)
                }
                None => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "invalid input"), lua),
            }
        })?,
    )?;
    Ok(module)
}

/// `ngx.process`: what kind of process runs the code, its master's pid,
/// leaving gracefully. Privileged agents need a patch to nginx's core that
/// stock nginx lacks, so enabling one fails as it does for OpenResty's
/// module on a stock nginx.
fn process_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "type",
        api_function(lua, |_, _: mlua::MultiValue| Ok(nginx::process_type()))?,
    )?;
    module.set(
        "get_master_pid",
        api_function(lua, |_, _: mlua::MultiValue| Ok(nginx::master_pid()))?,
    )?;
    module.set(
        "signal_graceful_exit",
        api_function(lua, |_, _: mlua::MultiValue| {
            nginx::request_graceful_exit();
            Ok(())
        })?,
    )?;
    module.set(
        "enable_privileged_agent",
        api_function(lua, |lua, connections: Value| {
            // lua-resty-core's checks: `connections or 512` must be a
            // number not below 0.
            let bad_connections = match connections {
                Value::Nil | Value::Boolean(false) => false,
                Value::Integer(n) => n < 0,
                Value::Number(n) => n < 0.0,
                _ => true,
            };
            let phase = crate::lua::current_phase().unwrap_or(Phase::Init);
            let failure = if phase != Phase::Init {
                "API disabled in the current context"
            } else if bad_connections {
                "bad 'connections' argument: number expected and greater than 0"
            } else {
                "missing privileged agent process patch in the nginx core"
            };
            mlua::IntoLuaMulti::into_lua_multi((Value::Nil, failure), lua)
        })?,
    )?;
    Ok(module)
}

/// `ngx.errlog`: lines written as they are, the log's level, and the lines
/// `lua_capture_error_log` keeps (`get_logs`, `set_filter_level`).
fn errlog_module(lua: &Lua) -> mlua::Result<Table> {
    const NO_CAPTURE: &str = "directive \"lua_capture_error_log\" is not set";
    let module = lua.create_table()?;
    module.set(
        "raw_log",
        api_function(lua, |_, (level, message): (Value, Value)| {
            // LuaJIT's conversion of the level to a C int truncates it.
            let level = match level {
                Value::Integer(n) => n as f64,
                Value::Number(n) => n.trunc(),
                _ => return Err(raise("bad argument #1 to 'raw_log' (must be a number)")),
            };
            let Value::String(message) = message else {
                return Err(raise("bad argument #2 to 'raw_log' (must be a string)"));
            };
            if !(0.0..=nginx_sys::NGX_LOG_DEBUG as f64).contains(&level) {
                return Err(raise("bad log level"));
            }
            if let Some(log) = current_log() {
                log.write(level as usize, &message.as_bytes());
            }
            Ok(())
        })?,
    )?;
    module.set(
        "get_sys_filter_level",
        api_function(lua, |_, _: mlua::MultiValue| {
            Ok(current_log().map_or(0, |log| log.level() as i64))
        })?,
    )?;
    module.set(
        "set_filter_level",
        api_function(lua, |lua, level: Value| {
            let level = match level {
                Value::Nil | Value::Boolean(false) => {
                    return mlua::IntoLuaMulti::into_lua_multi(
                        (Value::Nil, "missing \"level\" argument"),
                        lua,
                    )
                }
                Value::Integer(n) => n,
                Value::Number(n) => n as i64,
                other => {
                    return Err(raise(format!(
                        "bad argument #1 to 'set_filter_level' (number expected, got {})",
                        crate::lua::raise::lua_type_name(&other)
                    )))
                }
            };
            if !(nginx_sys::NGX_LOG_STDERR as i64..=nginx_sys::NGX_LOG_DEBUG as i64)
                .contains(&level)
            {
                let message = format!("bad log level: {level}");
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, message), lua);
            }
            if !crate::log_capture::configured() {
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, NO_CAPTURE), lua);
            }
            // nginx's "stderr" level is 0, which means unset here.
            crate::log_capture::set_filter_level(level.max(1) as usize);
            mlua::IntoLuaMulti::into_lua_multi(true, lua)
        })?,
    )?;
    module.set(
        "get_logs",
        api_function(lua, |lua, (max, res): (Value, Value)| {
            let max = match max {
                Value::Nil => 10,
                Value::Integer(n) => n.max(0) as usize,
                Value::Number(n) => n.max(0.0) as usize,
                other => {
                    return Err(raise(format!(
                        "bad argument #1 to 'get_logs' (number expected, got {})",
                        crate::lua::raise::lua_type_name(&other)
                    )))
                }
            };
            if !crate::log_capture::configured() {
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, NO_CAPTURE), lua);
            }
            let lines = crate::log_capture::take(max);
            let logs = match res {
                Value::Table(table) => table,
                _ => lua.create_table_with_capacity(lines.len() * 3, 0)?,
            };
            for (i, line) in lines.iter().enumerate() {
                logs.raw_set(3 * i + 1, line.level)?;
                logs.raw_set(3 * i + 2, line.time)?;
                logs.raw_set(3 * i + 3, lua.create_string(&line.text)?)?;
            }
            logs.raw_set(3 * lines.len() + 1, Value::Nil)?;
            mlua::IntoLuaMulti::into_lua_multi(logs, lua)
        })?,
    )?;
    Ok(module)
}

/// `ngx.resp`: `add_header(name, value)` adds values after the header's
/// own, where `ngx.header[name] = value` replaces them.
fn resp_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "add_header",
        api_function(lua, |lua, (name, value): (Value, Value)| {
            super::request::write_response_header(lua, &name, &value, false)
        })?,
    )?;
    Ok(module)
}

/// `ngx.req`: `add_header(name, value)` adds values after the request
/// header's own, where `ngx.req.set_header` replaces them.
fn req_module(lua: &Lua) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    module.set(
        "add_header",
        api_function(lua, |lua, (name, value): (Value, Value)| {
            let stand_in = super::runs_with_stand_in_request();
            let r = if stand_in {
                None
            } else {
                Some(super::request_found()?)
            };
            let name = match name {
                Value::Nil => return Err(raise("bad 'name' argument: string expected, got nil")),
                Value::String(s) => s.as_bytes().to_vec(),
                other => lua_tostring(lua, other)?,
            };
            let values: Vec<Vec<u8>> = match value {
                Value::Nil => {
                    return Err(raise(
                        "bad 'value' argument: string or table expected, got nil",
                    ))
                }
                Value::Table(list) => list
                    .sequence_values::<Value>()
                    .map(|v| lua_tostring(lua, v?))
                    .collect::<mlua::Result<_>>()?,
                single => vec![lua_tostring(lua, single)?],
            };
            if values.is_empty() {
                return Err(raise("bad 'value' argument: non-empty table expected"));
            }
            let disabled = || raise("API disabled in the current context");
            let r = r.ok_or_else(disabled)?;
            super::allow_in(super::request::REQUEST_HEADER_PHASES).map_err(|_| disabled())?;
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            r.add_request_header(&name, &refs)
                .map_err(|e| raise(e.to_string()))
        })?,
    )?;
    Ok(module)
}

/// Lua's `tostring` of a value, as lua-resty-core applies it to names and
/// values.
fn lua_tostring(lua: &Lua, value: Value) -> mlua::Result<Vec<u8>> {
    if let Value::String(s) = &value {
        return Ok(s.as_bytes().to_vec());
    }
    let tostring: Function = lua.globals().get("tostring")?;
    let text: mlua::LuaString = tostring.call(value)?;
    Ok(text.as_bytes().to_vec())
}

/// The log of the running request, or the cycle's outside requests.
fn current_log() -> Option<nginx::Log> {
    match crate::lua::ngx::request() {
        Ok(req) => req.log(),
        Err(_) => nginx::Log::cycle(),
    }
}

fn not_a_string(lua: &Lua) -> mlua::Result<mlua::MultiValue> {
    mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "must provide a string"), lua)
}
