//! Raising errors as OpenResty does: plain strings, positioned at the Lua
//! code that called the API function (`error(msg, 2)`).
//!
//! mlua turns an `Err` returned by a Rust callback into its own error
//! userdata, so user code that `pcall`s an API call would get an object where
//! OpenResty gives a string. API functions therefore report "raise this" as a
//! sentinel first return value, and a small Lua wrapper around each of them
//! raises the message with `error`.

use mlua::{FromLuaMulti, Function, IntoLuaMulti, LightUserData, Lua, MultiValue, Value};

const WRAPPER_KEY: &str = "ngx_lua_shdict.raise_wrapper";

/// Chunk names of the module's own Lua wrappers start with this; error
/// positions skip their frames. Use [`internal_chunk_name`].
pub const INTERNAL_CHUNK: &str = "ngx_lua_shdict";

/// The chunk name for one of the module's Lua wrappers.
pub fn internal_chunk_name(what: &str) -> String {
    format!("={INTERNAL_CHUNK}:{what}")
}

/// The sentinel's identity: the address of this static.
static RAISE_SENTINEL: u8 = 0;

fn sentinel() -> Value {
    Value::LightUserData(LightUserData(
        core::ptr::addr_of!(RAISE_SENTINEL).cast_mut().cast(),
    ))
}

/// An error that API functions raise to their Lua caller as a string.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Raised(pub String);

/// An error raised without the caller's position, as OpenResty's C
/// functions raise theirs (`luaL_error` from a C function).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RaisedPlain(pub String);

/// The error to return from an API function to raise `message` in Lua.
pub fn raise(message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Raised(message.into()))
}

/// As [`raise`], without the caller's position in front.
pub fn raise_plain(message: impl Into<String>) -> mlua::Error {
    mlua::Error::external(RaisedPlain(message.into()))
}

/// Compiles the wrapper factory once per Lua state.
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let factory: Function = lua
        .load(
            "local RAISE, error = ...\n\
             local function pass(first, ...)\n\
                 if first == RAISE then return error((...), 0) end\n\
                 return first, ...\n\
             end\n\
             return function(f)\n\
                 return function(...) return pass(f(...)) end\n\
             end",
        )
        .set_name(internal_chunk_name("raise"))
        .call((sentinel(), lua.globals().get::<Function>("error")?))?;
    lua.set_named_registry_value(WRAPPER_KEY, factory)
}

/// Stack level of the Lua code that called an API function, seen from inside
/// the Rust callback: 0 is the callback, 1 the wrapper, 2 the caller.
pub const CALLER_LEVEL: usize = 2;

/// `source:line: ` of the API function's caller, as `error(msg, 2)` would
/// prefix it; empty when the caller is not Lua code.
fn caller_position(lua: &Lua) -> String {
    // Skip our own Lua wrappers (ngx.exit, ngx.sleep, ...): the position is
    // the user's code that called them.
    for level in CALLER_LEVEL..CALLER_LEVEL + 4 {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source().short_src.map(|s| s.into_owned());
            (source, debug.current_line())
        });
        match frame {
            Some((Some(source), _)) if source.starts_with(INTERNAL_CHUNK) => continue,
            Some((Some(source), Some(line))) => return format!("{source}:{line}: "),
            _ => return String::new(),
        }
    }
    String::new()
}

/// Creates an API function whose `raise` errors reach Lua as plain strings.
pub fn api_function<A, R, F>(lua: &Lua, func: F) -> mlua::Result<Function>
where
    A: FromLuaMulti,
    R: IntoLuaMulti,
    F: Fn(&Lua, A) -> mlua::Result<R> + 'static,
{
    let inner = lua.create_function(move |lua, args: A| match func(lua, args) {
        Ok(results) => results.into_lua_multi(lua),
        Err(mlua::Error::ExternalError(cause)) => {
            let message = match (
                cause.downcast_ref::<Raised>(),
                cause.downcast_ref::<RaisedPlain>(),
            ) {
                (Some(Raised(message)), _) => format!("{}{message}", caller_position(lua)),
                (_, Some(RaisedPlain(message))) => message.clone(),
                _ => return Err(mlua::Error::ExternalError(cause)),
            };
            Ok(MultiValue::from_iter([
                sentinel(),
                Value::String(lua.create_string(message)?),
            ]))
        }
        Err(other) => Err(other),
    })?;
    let factory: Function = lua.named_registry_value(WRAPPER_KEY)?;
    factory.call(inner)
}

/// Lua's name for a value's type, as `type()` and error messages give it
/// (mlua would say "integer" for some numbers).
pub fn lua_type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        _ => "cdata",
    }
}
