//! `cjson.encode`: Lua values to JSON text.

use std::ffi::c_void;

use mlua::{Lua, MultiValue, Table, Value};

use super::options::{Config, InvalidNumbers};
use super::{
    bad_argument, empty_array, registry_table, Outcome, ARRAY_MT_KEY, EMPTY_ARRAY_MT_KEY,
    HARD_NESTING_LIMIT, INT_MAX,
};
use crate::lua::error_text;
use crate::lua::raise::lua_type_name;
use crate::text::json::{self, Style};
use crate::text::number::format_g;

struct Encoder {
    config: Config,
    array_mt: *const c_void,
    empty_array_mt: *const c_void,
    out: Vec<u8>,
}

impl Encoder {
    fn string(&mut self, bytes: &[u8]) {
        let escape_slash = self.config.escape_forward_slash;
        json::append_string(bytes, Style::LuaCjson { escape_slash }, &mut self.out);
    }

    fn number(&mut self, number: f64) -> Result<(), String> {
        if number.is_finite() {
            // The option allows 1 to 16 only.
            let precision = self.config.number_precision as i32;
            format_g(number, precision, &mut self.out);
            return Ok(());
        }
        match self.config.encode_invalid_numbers {
            InvalidNumbers::Raise => {
                Err("Cannot serialise number: must not be NaN or Infinity".to_string())
            }
            InvalidNumbers::Null => {
                self.out.extend_from_slice(b"null");
                Ok(())
            }
            InvalidNumbers::Javascript => {
                let text: &[u8] = if number.is_nan() {
                    b"NaN"
                } else if number < 0.0 {
                    b"-Infinity"
                } else {
                    b"Infinity"
                };
                self.out.extend_from_slice(text);
                Ok(())
            }
        }
    }

    /// Appends a value; `Ok(false)` when it was skipped as unsupported.
    fn value(&mut self, value: &Value, depth: i64) -> Result<bool, String> {
        match value {
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Integer(i) => self.number(*i as f64)?,
            Value::Number(n) => self.number(*n)?,
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Table(t) => self.table(t, depth + 1)?,
            Value::LightUserData(p) if p.0.is_null() => self.out.extend_from_slice(b"null"),
            Value::LightUserData(p) if p.0 == empty_array().0 => self.out.extend_from_slice(b"[]"),
            other => {
                if self.config.skip_unsupported_value_types {
                    return Ok(false);
                }
                return Err(format!(
                    "Cannot serialise {}: type not supported",
                    lua_type_name(other)
                ));
            }
        }
        Ok(true)
    }

    /// The array length of a table whose keys are all positive integers,
    /// None for an object (or a too sparse array turned into one).
    fn array_length(&self, table: &Table) -> Result<Option<usize>, String> {
        let mut max = 0.0f64;
        let mut items = 0.0f64;
        for pair in table.pairs::<Value, Value>() {
            let (key, _) = pair.map_err(|e| error_text(&e))?;
            let k = match key {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => return Ok(None),
            };
            if k < 1.0 || k.floor() != k {
                return Ok(None);
            }
            max = max.max(k);
            items += 1.0;
        }
        let config = &self.config;
        if config.sparse_ratio > 0
            && max > items * config.sparse_ratio as f64
            && max > config.sparse_safe as f64
        {
            if !config.sparse_convert {
                return Err("Cannot serialise table: excessively sparse array".to_string());
            }
            return Ok(None);
        }
        if max > INT_MAX as f64 {
            // Sparse arrays allowed, but lua-cjson's int length would
            // overflow: written as an object rather than billions of nulls.
            return Ok(None);
        }
        Ok(Some(max as usize))
    }

    /// Appends an array's or object's item after what was written since
    /// `rollback` (its comma, its key), which an item skipped as
    /// unsupported takes back.
    fn item(
        &mut self,
        item: &Value,
        depth: i64,
        rollback: usize,
        first: &mut bool,
    ) -> Result<(), String> {
        if self.value(item, depth)? {
            *first = false;
        } else {
            self.out.truncate(rollback);
        }
        Ok(())
    }

    fn table(&mut self, table: &Table, depth: i64) -> Result<(), String> {
        if depth > self.config.encode_max_depth || depth > HARD_NESTING_LIMIT {
            return Err(format!("Cannot serialise, excessive nesting ({depth})"));
        }
        let metatable = table.metatable().map(|mt| mt.to_pointer());
        if metatable == Some(self.array_mt) {
            return self.array(table, table.raw_len(), depth);
        }
        match self.array_length(table)? {
            Some(len) if len > 0 || !self.config.empty_table_as_object => {
                self.array(table, len, depth)
            }
            _ if metatable == Some(self.empty_array_mt) => self.array(table, 0, depth),
            _ => self.object(table, depth),
        }
    }

    fn array(&mut self, table: &Table, len: usize, depth: i64) -> Result<(), String> {
        self.out.push(b'[');
        let mut first = true;
        for i in 1..=len {
            let rollback = self.out.len();
            if !first {
                self.out.push(b',');
            }
            let item: Value = table.raw_get(i).map_err(|e| error_text(&e))?;
            self.item(&item, depth, rollback, &mut first)?;
        }
        self.out.push(b']');
        Ok(())
    }

    fn object(&mut self, table: &Table, depth: i64) -> Result<(), String> {
        self.out.push(b'{');
        let mut first = true;
        for pair in table.pairs::<Value, Value>() {
            let (key, item) = pair.map_err(|e| error_text(&e))?;
            let rollback = self.out.len();
            if !first {
                self.out.push(b',');
            }
            match &key {
                Value::String(s) => self.string(&s.as_bytes()),
                Value::Integer(i) => {
                    self.out.push(b'"');
                    self.number(*i as f64)?;
                    self.out.push(b'"');
                }
                Value::Number(n) => {
                    self.out.push(b'"');
                    self.number(*n)?;
                    self.out.push(b'"');
                }
                other => {
                    return Err(format!(
                        "Cannot serialise {}: table key must be a number or string",
                        lua_type_name(other)
                    ))
                }
            }
            self.out.push(b':');
            self.item(&item, depth, rollback, &mut first)?;
        }
        self.out.push(b'}');
        Ok(())
    }
}

pub(super) fn encode(lua: &Lua, config: Config, args: &MultiValue) -> Outcome {
    if args.len() != 1 {
        return Err(bad_argument(1, "encode", "expected 1 argument"));
    }
    let pointer = |key| {
        registry_table(lua, key)
            .map(|t| t.to_pointer())
            .map_err(|e| error_text(&e))
    };
    let mut encoder = Encoder {
        config,
        array_mt: pointer(ARRAY_MT_KEY)?,
        empty_array_mt: pointer(EMPTY_ARRAY_MT_KEY)?,
        out: Vec::new(),
    };
    encoder.value(&args[0], 0)?;
    let text = lua
        .create_string(&encoder.out)
        .map_err(|e| error_text(&e))?;
    Ok(MultiValue::from_iter([Value::String(text)]))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{lua_with_cjson, run};

    #[test]
    fn encodes_scalars_and_arrays() {
        let lua = lua_with_cjson();
        let cases = [
            ("cjson.encode(1)", "1"),
            ("cjson.encode(0.1)", "0.1"),
            ("cjson.encode(-0.0)", "-0"),
            ("cjson.encode(1e20)", "1e+20"),
            ("cjson.encode(3.14159265358979)", "3.1415926535898"),
            ("cjson.encode(2^53)", "9.007199254741e+15"),
            (
                "cjson.encode('a/b\"c\\\\d\\n\\1\\127')",
                r#""a\/b\"c\\d\n\u0001\u007f""#,
            ),
            ("cjson.encode({1, 2, 'x'})", r#"[1,2,"x"]"#),
            ("cjson.encode({[1]=1, [3]=3})", "[1,null,3]"),
            ("cjson.encode({})", "{}"),
            ("cjson.encode(cjson.empty_array)", "[]"),
            ("cjson.encode({a = cjson.null})", r#"{"a":null}"#),
            ("cjson.encode(setmetatable({}, cjson.empty_array_mt))", "[]"),
            (
                "cjson.encode(setmetatable({1, 2}, cjson.array_mt))",
                "[1,2]",
            ),
            ("cjson.encode({[2] = 'x'})", r#"[null,"x"]"#),
            ("cjson.encode({[1.5] = 'x'})", r#"{"1.5":"x"}"#),
            ("cjson.encode(true)", "true"),
            ("cjson.encode(nil)", "null"),
        ];
        for (code, expected) in cases {
            assert_eq!(run(&lua, &format!("return {code}")), expected, "{code}");
        }
    }

    #[test]
    fn reports_encode_errors() {
        let lua = lua_with_cjson();
        let cases = [
            (
                "cjson.encode({[1]=1, [2]=2, [20]=3})",
                "Cannot serialise table: excessively sparse array",
            ),
            (
                "cjson.encode(function() end)",
                "Cannot serialise function: type not supported",
            ),
            (
                "cjson.encode({[true] = 1})",
                "Cannot serialise boolean: table key must be a number or string",
            ),
            (
                "cjson.encode(0/0)",
                "Cannot serialise number: must not be NaN or Infinity",
            ),
            (
                "cjson.encode()",
                "bad argument #1 to 'encode' (expected 1 argument)",
            ),
            (
                "(function() local t = {} t[1] = t return cjson.encode(t) end)()",
                "Cannot serialise, excessive nesting (1001)",
            ),
        ];
        for (code, expected) in cases {
            let got = run(
                &lua,
                &format!("local ok, err = pcall(function() return {code} end) return err"),
            );
            assert_eq!(got, expected, "{code}");
        }
    }
}
