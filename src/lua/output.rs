//! How `ngx.say`, `ngx.print` and `ngx.log` turn Lua values into bytes,
//! matching OpenResty: numbers as LuaJIT prints them, `nil`/`true`/`false`,
//! `ngx.null` as `null`, array tables flattened in order.

use mlua::{Table, Value};

/// Formats a Lua number as LuaJIT's `tostring` does (`%.14g`).
pub fn format_number(n: f64, out: &mut Vec<u8>) {
    if n.is_nan() {
        out.extend_from_slice(if n.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if n == n.trunc() && n.abs() < 1e14 {
        // The common case, integral values, without a libc call.
        if n == 0.0 && n.is_sign_negative() {
            out.extend_from_slice(b"-0");
        } else {
            out.extend_from_slice((n as i64).to_string().as_bytes());
        }
        return;
    }
    let mut buf = [0u8; 32];
    // SAFETY: the format takes exactly one double; snprintf writes at most
    // buf.len() bytes including the terminating NUL.
    let written =
        unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.14g".as_ptr(), n) };
    let len = usize::try_from(written).unwrap_or(0).min(buf.len() - 1);
    out.extend_from_slice(&buf[..len]);
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

/// Appends one `ngx.say`/`ngx.print` argument.
pub fn append_printable(value: &Value, out: &mut Vec<u8>) -> Result<(), PrintError> {
    match value {
        Value::Table(table) => append_array_table(table, out, 0),
        other => append_scalar(other, out).map_err(PrintError::BadType),
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
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"nil"),
        Value::LightUserData(ud) if ud.0.is_null() => out.extend_from_slice(b"null"),
        other => return Err(super::raise::lua_type_name(other)),
    }
    Ok(())
}

/// Tables deeper than this are taken for cycles.
const MAX_TABLE_DEPTH: usize = 100;

fn append_array_table(table: &Table, out: &mut Vec<u8>, depth: usize) -> Result<(), PrintError> {
    if depth > MAX_TABLE_DEPTH {
        return Err(PrintError::NonArrayTable);
    }
    let len = table.raw_len();
    let mut count = 0usize;
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair.map_err(|_| PrintError::NonArrayTable)?;
        let index = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Err(PrintError::NonArrayTable),
        };
        if index < 1.0 || index != index.trunc() || index > len as f64 {
            return Err(PrintError::NonArrayTable);
        }
        count += 1;
    }
    if count != len {
        return Err(PrintError::NonArrayTable);
    }
    for i in 1..=len {
        let element: Value = table.raw_get(i).map_err(|_| PrintError::NonArrayTable)?;
        match &element {
            Value::Table(inner) => append_array_table(inner, out, depth + 1)?,
            other => append_scalar(other, out).map_err(PrintError::BadTableElement)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn scalars_and_tables_print_like_openresty() {
        let lua = mlua::Lua::new();
        let table: Table = lua
            .load(r#"return {"a", 1, {true, false}, "b"}"#)
            .eval()
            .unwrap();
        let mut out = Vec::new();
        append_printable(&Value::Table(table), &mut out).unwrap();
        append_printable(&Value::Nil, &mut out).unwrap();
        append_printable(
            &Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"a1truefalsebnilnull");
    }

    #[test]
    fn hash_tables_and_functions_are_rejected() {
        let lua = mlua::Lua::new();
        let hash: Table = lua.load("return {a = 1}").eval().unwrap();
        let mut out = Vec::new();
        assert_eq!(
            append_printable(&Value::Table(hash), &mut out),
            Err(PrintError::NonArrayTable)
        );
        let func: mlua::Function = lua.load("return function() end").eval().unwrap();
        let err = append_printable(&Value::Function(func), &mut out).unwrap_err();
        assert_eq!(
            err.argument_message(1, "say"),
            "bad argument #1 to 'say' (string, number, boolean, nil, ngx.null, or array table expected, but got function)"
        );
    }
}
