//! A built-in `cjson` and `cjson.safe`, for code written for OpenResty
//! (which bundles its fork of lua-cjson). `require "cjson"` finds this one
//! only when no `cjson.so` is on `package.cpath` (see `packages.rs`).
//!
//! Behaviour follows lua-cjson 2.1 as OpenResty ships it: numbers written
//! with `%.14g`, `/` escaped as `\/`, arrays recognised as tables whose keys
//! are exactly the integers 1..n (not too sparse), `cjson.null` (the same
//! NULL lightuserdata as `ngx.null`) for JSON null, `cjson.empty_array`,
//! `cjson.array_mt` and `cjson.empty_array_mt`, the same error texts. Each
//! module instance (`cjson`, `cjson.safe`, every `cjson.new()`) has its own
//! settings. Errors are raised as plain strings positioned at the calling
//! Lua code, as a C function's `luaL_error` gives them; `cjson.safe`'s
//! `encode` and `decode` return `nil, message` (without a position) instead.

mod decode;
mod encode;
mod options;

use std::cell::Cell;
use std::rc::Rc;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use crate::lua::raise::lua_type_name;
use decode::decode;
use encode::encode;
use options::{configure, Config, SETTINGS};

const MODULE_VERSION: &str = "2.1.0.14";
const ARRAY_MT_KEY: &str = "ngx_lua_shdict.cjson.array_mt";
const EMPTY_ARRAY_MT_KEY: &str = "ngx_lua_shdict.cjson.empty_array_mt";
const WRAPPER_KEY: &str = "ngx_lua_shdict.cjson.wrapper";
const INT_MAX: i64 = i32::MAX as i64;

/// Nesting beyond this fails whatever the configured maximum: lua-cjson is
/// bounded the same way by the Lua stack it needs per level, and our
/// recursion by the C stack.
const HARD_NESTING_LIMIT: i64 = 2000;

/// The identity of `cjson.empty_array`: the address of this static.
static EMPTY_ARRAY: u8 = 0;

fn empty_array() -> LightUserData {
    LightUserData(core::ptr::addr_of!(EMPTY_ARRAY).cast_mut().cast())
}

type Settings = Rc<Cell<Config>>;

/// The outcome of one module function: values, or an error to raise.
type Outcome = Result<MultiValue, String>;

/// `encode` or `decode`, under the settings of the instance called.
type Conversion = fn(&Lua, Config, &MultiValue) -> Outcome;

fn bad_argument(position: usize, function: &str, problem: &str) -> String {
    format!("bad argument #{position} to '{function}' ({problem})")
}

/// An argument as `lua.coerce_*` converted it, or lua-cjson's error for
/// one it could not: "<kind> expected, got <type>".
fn coerced_argument<T>(
    coerced: mlua::Result<Option<T>>,
    kind: &str,
    value: &Value,
    position: usize,
    function: &str,
) -> Result<T, String> {
    coerced.ok().flatten().ok_or_else(|| {
        let got = format!("{kind} expected, got {}", lua_type_name(value));
        bad_argument(position, function, &got)
    })
}

fn registry_table(lua: &Lua, key: &str) -> mlua::Result<Table> {
    lua.named_registry_value(key)
}

/// Wraps a Rust function returning `(true, results...)` or `(false,
/// message)` into one that returns the results or raises the message as a
/// plain string. `finish` is tail-called, so level 2 is the code that called
/// the module function: the message carries its position, as `luaL_error`
/// in a C function gives it.
fn lua_function(
    lua: &Lua,
    body: impl Fn(&Lua, MultiValue) -> Outcome + 'static,
) -> mlua::Result<Function> {
    let inner = lua.create_function(move |lua, args: MultiValue| {
        let mut results = MultiValue::new();
        match body(lua, args) {
            Ok(values) => {
                results.push_back(Value::Boolean(true));
                results.extend(values);
            }
            Err(message) => {
                results.push_back(Value::Boolean(false));
                results.push_back(Value::String(lua.create_string(message)?));
            }
        }
        Ok(results)
    })?;
    let wrapper: Function = lua.named_registry_value(WRAPPER_KEY)?;
    wrapper.call(inner)
}

/// Creates the shared pieces once per Lua state.
fn ensure_shared(lua: &Lua) -> mlua::Result<()> {
    if lua
        .named_registry_value::<Option<Function>>(WRAPPER_KEY)?
        .is_some()
    {
        return Ok(());
    }
    let wrapper: Function = lua
        .load(
            "local error = ...\n\
             local function finish(ok, ...)\n\
                 if ok then return ... end\n\
                 error((...), 2)\n\
             end\n\
             return function(f)\n\
                 return function(...) return finish(f(...)) end\n\
             end",
        )
        .set_name("=cjson")
        .call(lua.globals().get::<Function>("error")?)?;
    lua.set_named_registry_value(WRAPPER_KEY, wrapper)?;
    lua.set_named_registry_value(ARRAY_MT_KEY, lua.create_table()?)?;
    lua.set_named_registry_value(EMPTY_ARRAY_MT_KEY, lua.create_table()?)?;
    Ok(())
}

/// A new module instance with default settings: `require "cjson"` (`safe`
/// false) or `require "cjson.safe"` (`safe` true).
pub fn new_module(lua: &Lua, safe: bool) -> mlua::Result<Table> {
    ensure_shared(lua)?;
    let settings: Settings = Rc::new(Cell::new(Config::default()));
    let module = lua.create_table()?;

    let conversions: [(&str, Conversion); 2] = [("encode", encode), ("decode", decode)];
    for (name, convert) in conversions {
        let shared = settings.clone();
        module.set(
            name,
            lua_function(lua, move |lua, args| {
                let outcome = convert(lua, shared.get(), &args);
                protect(lua, safe, outcome, &args)
            })?,
        )?;
    }
    for name in SETTINGS {
        let shared = settings.clone();
        module.set(
            *name,
            lua_function(lua, move |lua, args| {
                let mut config = shared.get();
                let results = configure(lua, name, &mut config, &args)?;
                shared.set(config);
                Ok(results)
            })?,
        )?;
    }
    module.set(
        "new",
        lua.create_function(move |lua, ()| new_module(lua, safe))?,
    )?;
    module.set("null", Value::NULL)?;
    module.set("empty_array", empty_array())?;
    module.set("array_mt", registry_table(lua, ARRAY_MT_KEY)?)?;
    module.set("empty_array_mt", registry_table(lua, EMPTY_ARRAY_MT_KEY)?)?;
    module.set("_NAME", if safe { "cjson.safe" } else { "cjson" })?;
    module.set("_VERSION", MODULE_VERSION)?;
    Ok(module)
}

/// In safe mode a conversion error becomes `nil, message`; a wrong number
/// of arguments is still raised.
fn protect(lua: &Lua, safe: bool, outcome: Outcome, args: &MultiValue) -> Outcome {
    match outcome {
        Err(message) if safe && args.len() == 1 => Ok(MultiValue::from_iter([
            Value::Nil,
            Value::String(lua.create_string(message).map_err(|e| e.to_string())?),
        ])),
        other => other,
    }
}

/// What the unit tests of each part share: a Lua state with `cjson` and
/// `safe` (a `cjson.safe`) as globals, and a way to run code in it.
#[cfg(test)]
mod test_support {
    use super::*;

    pub(super) fn run(lua: &Lua, code: &str) -> String {
        lua.load(code)
            .eval::<String>()
            .unwrap_or_else(|e| panic!("{code}: {e}"))
    }

    pub(super) fn lua_with_cjson() -> Lua {
        let lua = Lua::new();
        let cjson = new_module(&lua, false).unwrap();
        lua.globals().set("cjson", cjson).unwrap();
        lua.globals()
            .set("safe", new_module(&lua, true).unwrap())
            .unwrap();
        lua
    }
}
