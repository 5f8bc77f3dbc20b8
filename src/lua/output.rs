//! How `ngx.say`, `ngx.print` and `ngx.log` turn Lua values into bytes,
//! matching OpenResty: numbers as LuaJIT prints them, `nil`/`true`/`false`,
//! `ngx.null` as `null`, array tables flattened in order.
//!
//! Printable values are read straight off a Lua stack (`ngx.say` is a plain
//! Lua C function, see `ngx_output`); callers holding an mlua `Value` go
//! through [`append_printable`].

use core::ffi::c_int;

use mlua::ffi::{self, lua_State};
use mlua::{Lua, Value};

use crate::text::number::format_g;

/// Formats a Lua number as LuaJIT's `tostring` does (`%.14g`).
pub fn format_number(n: f64, out: &mut Vec<u8>) {
    format_g(n, 14, out);
}

/// Why a value cannot be printed: the text that goes inside
/// `bad argument #N to 'say' (...)`.
#[derive(Debug, PartialEq, Eq)]
pub enum PrintError {
    NonArrayTable,
    BadType(&'static str),
    BadTableElement(&'static str),
}

impl PrintError {
    pub fn argument_message(&self, arg: usize, func: &str) -> String {
        let detail = match self {
            PrintError::NonArrayTable => "non-array table found".to_string(),
            PrintError::BadType(t) => format!(
                "string, number, boolean, nil, ngx.null, or array table expected, but got {t}"
            ),
            PrintError::BadTableElement(t) => format!("bad data type {t} found"),
        };
        format!("bad argument #{arg} to '{func}' ({detail})")
    }
}

/// Appends one `ngx.say`/`ngx.print` argument held as an mlua value (the
/// body filter's `ngx.arg[1]`).
pub fn append_printable(lua: &Lua, value: &Value, out: &mut Vec<u8>) -> Result<(), PrintError> {
    let mut result = Ok(());
    // SAFETY: the closure reads the one value exec_raw pushed, at index 1,
    // and leaves the stack balanced.
    let pushed = unsafe {
        lua.exec_raw::<()>(value, |state| {
            result = append_printable_at(state, 1, out);
        })
    };
    match pushed {
        Ok(()) => result,
        Err(_) => Err(PrintError::NonArrayTable),
    }
}

/// Appends the printable value at stack index `idx` (absolute).
///
/// # Safety
/// `state` is a live Lua state and `idx` a valid absolute index in it.
pub unsafe fn append_printable_at(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Vec<u8>,
) -> Result<(), PrintError> {
    // SAFETY: per this function's contract.
    unsafe {
        if ffi::lua_type(state, idx) == ffi::LUA_TTABLE {
            append_array_table(state, idx, out, 0)
        } else {
            append_scalar_at(state, idx, out).map_err(PrintError::BadType)
        }
    }
}

/// Appends a string, number, boolean, `nil` or `ngx.null`; any other type is
/// returned by name.
pub fn append_scalar(value: &Value, out: &mut Vec<u8>) -> Result<(), &'static str> {
    match value {
        Value::String(s) => out.extend_from_slice(&s.as_bytes()),
        Value::Number(n) => format_number(*n, out),
        // LuaJIT numbers are doubles: print them as such, whatever mlua made of them.
        Value::Integer(i) => format_number(*i as f64, out),
        Value::Boolean(b) => append_boolean(*b, out),
        Value::Nil => out.extend_from_slice(b"nil"),
        Value::LightUserData(ud) if ud.0.is_null() => out.extend_from_slice(b"null"),
        other => return Err(super::raise::lua_type_name(other)),
    }
    Ok(())
}

fn append_boolean(b: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// [`append_scalar`] for the value at stack index `idx`.
///
/// # Safety
/// As [`append_printable_at`].
unsafe fn append_scalar_at(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    // SAFETY: per this function's contract; strings stay on the stack
    // while their bytes are copied.
    unsafe {
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let bytes = ffi::lua_tolstring(state, idx, &mut len);
                out.extend_from_slice(core::slice::from_raw_parts(bytes.cast::<u8>(), len));
            }
            ffi::LUA_TNUMBER => format_number(ffi::lua_tonumber(state, idx), out),
            ffi::LUA_TBOOLEAN => append_boolean(ffi::lua_toboolean(state, idx) != 0, out),
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(state, idx).is_null() => {
                out.extend_from_slice(b"null")
            }
            other => return Err(type_name(other)),
        }
    }
    Ok(())
}

/// Lua's name for a type tag, as `type()` gives it.
fn type_name(tag: c_int) -> &'static str {
    match tag {
        ffi::LUA_TNIL => "nil",
        ffi::LUA_TBOOLEAN => "boolean",
        ffi::LUA_TNUMBER => "number",
        ffi::LUA_TSTRING => "string",
        ffi::LUA_TTABLE => "table",
        ffi::LUA_TFUNCTION => "function",
        ffi::LUA_TTHREAD => "thread",
        ffi::LUA_TLIGHTUSERDATA | ffi::LUA_TUSERDATA => "userdata",
        // LuaJIT's FFI values.
        _ => "cdata",
    }
}

/// Tables deeper than this are taken for cycles.
const MAX_TABLE_DEPTH: usize = 100;

/// # Safety
/// As [`append_printable_at`], with a table at `idx`.
unsafe fn append_array_table(
    state: *mut lua_State,
    idx: c_int,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), PrintError> {
    // SAFETY: per this function's contract. Every push below is popped
    // before returning, and lua_checkstack makes room for them.
    unsafe {
        if depth > MAX_TABLE_DEPTH || ffi::lua_checkstack(state, 3) == 0 {
            return Err(PrintError::NonArrayTable);
        }
        let len = ffi::lua_objlen(state, idx);
        let mut count = 0usize;
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, idx) != 0 {
            // The key at -2, the value at -1.
            let in_array = ffi::lua_type(state, -2) == ffi::LUA_TNUMBER && {
                let index = ffi::lua_tonumber(state, -2);
                index >= 1.0 && index == index.trunc() && index <= len as f64
            };
            ffi::lua_settop(state, -2);
            if !in_array {
                ffi::lua_settop(state, -2);
                return Err(PrintError::NonArrayTable);
            }
            count += 1;
        }
        if count != len {
            return Err(PrintError::NonArrayTable);
        }
        for i in 1..=len {
            ffi::lua_rawgeti(state, idx, i as _);
            let element = ffi::lua_gettop(state);
            let appended = if ffi::lua_type(state, element) == ffi::LUA_TTABLE {
                append_array_table(state, element, out, depth + 1)
            } else {
                append_scalar_at(state, element, out).map_err(PrintError::BadTableElement)
            };
            ffi::lua_settop(state, -2);
            appended?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Table;

    fn number(n: f64) -> String {
        let mut out = Vec::new();
        format_number(n, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    #[allow(clippy::approx_constant)] // 3.14159 is the documented example value
    fn numbers_print_like_luajit() {
        assert_eq!(number(32.0), "32");
        assert_eq!(number(3.14159), "3.14159");
        assert_eq!(number(-7.0), "-7");
        assert_eq!(number(0.1), "0.1");
        assert_eq!(number(1.0 / 3.0), "0.33333333333333");
        assert_eq!(number(1e15), "1e+15");
        assert_eq!(number(123456789012345.0), "1.2345678901234e+14");
        assert_eq!(number(12345678901234.0), "12345678901234");
        assert_eq!(number(1e-5), "1e-05");
        assert_eq!(number(0.0001), "0.0001");
        assert_eq!(number(2.5e-10), "2.5e-10");
        assert_eq!(number(f64::INFINITY), "inf");
        assert_eq!(number(f64::NEG_INFINITY), "-inf");
        assert_eq!(number(-0.0), "-0");
        assert_eq!(number(100.5), "100.5");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-99999999999999.0), "-99999999999999");
        assert_eq!(number(10.0), "10");
    }

    #[test]
    fn scalars_and_tables_print_like_openresty() {
        let lua = Lua::new();
        let table: Table = lua
            .load(r#"return {"a", 1, {true, false}, "b"}"#)
            .eval()
            .unwrap();
        let mut out = Vec::new();
        append_printable(&lua, &Value::Table(table), &mut out).unwrap();
        append_printable(&lua, &Value::Nil, &mut out).unwrap();
        append_printable(
            &lua,
            &Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"a1truefalsebnilnull");
    }

    #[test]
    fn hash_tables_and_functions_are_rejected() {
        let lua = Lua::new();
        let hash: Table = lua.load("return {a = 1}").eval().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            append_printable(&lua, &Value::Table(hash), &mut out),
            Err(PrintError::NonArrayTable)
        );
        let func: mlua::Function = lua.load("return function() end").eval().unwrap();
        let err = append_printable(&lua, &Value::Function(func), &mut out).unwrap_err();
        assert_eq!(
            err.argument_message(1, "say"),
            "bad argument #1 to 'say' (string, number, boolean, nil, ngx.null, or array table expected, but got function)"
        );
    }
}
