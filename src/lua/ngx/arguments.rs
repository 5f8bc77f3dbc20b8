//! How the `ngx` utility functions take their arguments, following the
//! implementation OpenResty actually runs: the functions lua-resty-core
//! reimplements over FFI (escaping, base64, digests, time) turn a
//! `nil`/`false` argument into `""` and anything else into `tostring(arg)`,
//! while those still written against the Lua C API (`encode_args`,
//! `decode_args`, `quote_sql_str`, `crc32_*`, `hmac_sha1`) check their
//! argument count and take only strings and numbers.

use mlua::{Function, Lua, LuaString, MultiValue, Value};

use crate::lua::raise::raise;

/// Lua's name for a value's type, as `type()` and error messages give it;
/// `None` is a missing argument.
pub(super) fn lua_type_name(value: Option<&Value>) -> &'static str {
    value.map_or("no value", crate::lua::raise::lua_type_name)
}

/// The text of Lua's `bad argument #N to 'func' (T expected, got U)`.
pub(super) fn bad_argument(
    index: usize,
    func: &str,
    expected: &str,
    got: Option<&Value>,
) -> String {
    format!(
        "bad argument #{index} to '{func}' ({expected} expected, got {})",
        lua_type_name(got)
    )
}

/// A string argument of a C-API function: strings, and numbers converted as
/// Lua converts them; anything else raises Lua's "bad argument" error.
pub(super) fn check_string(
    lua: &Lua,
    value: Option<&Value>,
    index: usize,
    func: &str,
) -> mlua::Result<LuaString> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(number @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(number.clone())?
            .ok_or_else(|| raise(bad_argument(index, func, "string", value))),
        other => Err(raise(bad_argument(index, func, "string", other))),
    }
}

/// A string argument of an FFI-based function: `nil` and `false` are `""`,
/// other non-strings go through `tostring`.
pub(super) fn ffi_string(
    lua: &Lua,
    tostring: &Function,
    value: Option<Value>,
) -> mlua::Result<LuaString> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Nil) | Some(Value::Boolean(false)) => lua.create_string(""),
        Some(other) => tostring.call(other),
    }
}

pub(super) fn number_of(value: Option<&Value>) -> Option<f64> {
    match value {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        _ => None,
    }
}

/// Raises `expecting ...` unless exactly `count` arguments were passed.
pub(super) fn expect_count(
    args: &MultiValue,
    count: usize,
    message: impl FnOnce(usize) -> String,
) -> mlua::Result<()> {
    if args.len() == count {
        Ok(())
    } else {
        Err(raise(message(args.len())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_errors_name_lua_types() {
        let lua = Lua::new();
        assert_eq!(
            bad_argument(1, "crc32_short", "string", Some(&Value::Nil)),
            "bad argument #1 to 'crc32_short' (string expected, got nil)"
        );
        assert_eq!(
            bad_argument(2, "decode_args", "number", None),
            "bad argument #2 to 'decode_args' (number expected, got no value)"
        );
        let table = Value::Table(lua.create_table().unwrap());
        assert_eq!(lua_type_name(Some(&table)), "table");
        assert_eq!(lua_type_name(Some(&Value::Integer(1))), "number");
        assert_eq!(
            lua_type_name(Some(&Value::LightUserData(mlua::LightUserData(
                core::ptr::null_mut()
            )))),
            "userdata"
        );
    }
}
