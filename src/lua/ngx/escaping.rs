//! `ngx.escape_uri`, `ngx.unescape_uri`, `ngx.encode_args`,
//! `ngx.decode_args` and `ngx.quote_sql_str`.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::arguments::{
    bad_argument, check_string, expect_count, ffi_string, lua_type_name, number_of,
};
use crate::lua::output::format_number;
use crate::lua::raise::{api_function, raise};
use crate::text::args::{parse_query, unescape_component, ParsedArgs};
use crate::text::escape::{escape_uri, escape_uri_into, quote_sql, UriEscape};

/// `ngx.decode_args`' default limit on the number of arguments.
const DEFAULT_MAX_ARGS: usize = 100;

/// One query argument value as `ngx.encode_args` writes it: `Some(text)`
/// for `key=text`, `None` for a bare key (`true`); `Err` names the type of
/// a value that cannot be written.
fn arg_value_text(value: &Value) -> Result<Option<Vec<u8>>, &'static str> {
    match value {
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        Value::Integer(i) => {
            let mut text = Vec::new();
            format_number(*i as f64, &mut text);
            Ok(Some(text))
        }
        Value::Number(n) => {
            let mut text = Vec::new();
            format_number(*n, &mut text);
            Ok(Some(text))
        }
        Value::Boolean(true) => Ok(None),
        other => Err(lua_type_name(Some(other))),
    }
}

fn push_arg(out: &mut Vec<u8>, key: &[u8], value: Option<&[u8]>) {
    if !out.is_empty() {
        out.push(b'&');
    }
    escape_uri_into(key, UriEscape::Component, out);
    if let Some(value) = value {
        out.push(b'=');
        escape_uri_into(value, UriEscape::Component, out);
    }
}

/// `ngx.encode_args`: the table's pairs in iteration order, keys and values
/// escaped as URI components; a table value gives one pair per element,
/// `true` a bare key, `false` nothing. `Err` is the message to raise.
pub fn encode_args(table: &Table) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair.map_err(|e| e.to_string())?;
        let Value::String(key) = key else {
            return Err("attempt to use a non-string key in the \"args\" option table".into());
        };
        let key = key.as_bytes();
        match &value {
            Value::Boolean(false) => {}
            Value::Table(values) => {
                for element in values.pairs::<Value, Value>() {
                    let (_, element) = element.map_err(|e| e.to_string())?;
                    if let Value::Boolean(false) = element {
                        continue;
                    }
                    let text = arg_value_text(&element)
                        .map_err(|t| format!("attempt to use {t} as query arg value"))?;
                    push_arg(&mut out, &key, text.as_deref());
                }
            }
            other => {
                let text = arg_value_text(other)
                    .map_err(|t| format!("attempt to use {t} as query arg value"))?;
                push_arg(&mut out, &key, text.as_deref());
            }
        }
    }
    Ok(out)
}

/// Query arguments as Lua sees them (`ngx.decode_args`, `get_uri_args`,
/// `get_post_args`): repeated keys collect their values in a list, bare
/// keys are `true`.
pub(super) fn args_table(lua: &Lua, parsed: ParsedArgs) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    for arg in parsed.args {
        let key = lua.create_string(&arg.key)?;
        let value = match arg.value {
            Some(v) => Value::String(lua.create_string(v)?),
            None => Value::Boolean(true),
        };
        match table.raw_get::<Value>(key.clone())? {
            Value::Nil => table.raw_set(key, value)?,
            Value::Table(list) => list.raw_push(value)?,
            first => table.raw_set(key, lua.create_sequence_from([first, value])?)?,
        }
    }
    Ok(table)
}

pub(super) fn install(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    let to_string = tostring.clone();
    let escape = api_function(lua, move |lua, (s, kind): (Option<Value>, f64)| {
        let s = ffi_string(lua, &to_string, s)?;
        let kind = UriEscape::from_number(kind as i64).unwrap_or(UriEscape::Component);
        lua.create_string(escape_uri(&s.as_bytes(), kind))
    })?;
    // The type check raises at level 3, as lua-resty-core's does; only a
    // Lua function can place an error there.
    let escape_uri: Function = lua
        .load(
            "local escape, type, error = ...\n\
             return function(s, esc_type)\n\
                 if esc_type == nil then\n\
                     esc_type = 2\n\
                 elseif type(esc_type) ~= 'number' then\n\
                     error('\"type\" is not a number', 3)\n\
                 elseif esc_type < 0 or esc_type > 6 then\n\
                     error('\"type\" ' .. esc_type .. ' out of range', 3)\n\
                 end\n\
                 return escape(s, esc_type)\n\
             end",
        )
        .set_name("=ngx.escape_uri")
        .call((
            escape,
            lua.globals().get::<Function>("type")?,
            lua.globals().get::<Function>("error")?,
        ))?;
    ngx.set("escape_uri", escape_uri)?;

    let to_string = tostring.clone();
    ngx.set(
        "unescape_uri",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(unescape_component(&s.as_bytes()))
        })?,
    )?;

    ngx.set(
        "encode_args",
        api_function(lua, |lua, args: MultiValue| {
            expect_count(&args, 1, |n| format!("expecting 1 argument but seen {n}"))?;
            let Some(Value::Table(table)) = args.front() else {
                return Err(raise(bad_argument(1, "encode_args", "table", args.front())));
            };
            let encoded = encode_args(table).map_err(raise)?;
            lua.create_string(encoded)
        })?,
    )?;

    ngx.set(
        "decode_args",
        api_function(lua, |lua, args: MultiValue| {
            let n = args.len();
            if n != 1 && n != 2 {
                return Err(raise(format!("expecting 1 or 2 arguments but seen {n}")));
            }
            let query = check_string(lua, args.front(), 1, "decode_args")?;
            let max = if n == 2 {
                let value = args.get(1);
                let max = match value {
                    Some(v @ Value::String(_)) => lua.coerce_number(v.clone())?,
                    other => number_of(other),
                }
                .ok_or_else(|| raise(bad_argument(2, "decode_args", "number", value)))?;
                // Zero or less: no limit.
                if max >= 1.0 {
                    max as usize
                } else {
                    0
                }
            } else {
                DEFAULT_MAX_ARGS
            };
            let parsed = parse_query(&query.as_bytes(), max);
            let truncated = parsed.truncated;
            if truncated {
                super::log_debug(&format!("lua hit query args limit {max}"));
            }
            let mut results = MultiValue::new();
            results.push_back(Value::Table(args_table(lua, parsed)?));
            if truncated {
                results.push_back(Value::String(lua.create_string("truncated")?));
            }
            Ok(results)
        })?,
    )?;

    ngx.set(
        "quote_sql_str",
        api_function(lua, |lua, args: MultiValue| {
            expect_count(&args, 1, |_| "expecting one argument".to_string())?;
            let s = check_string(lua, args.front(), 1, "quote_sql_str")?;
            lua.create_string(quote_sql(&s.as_bytes()))
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(lua: &Lua, code: &str) -> Result<String, String> {
        let table: Table = lua.load(code).eval().unwrap();
        encode_args(&table).map(|bytes| String::from_utf8(bytes).unwrap())
    }

    #[test]
    fn encode_args_values_multi_values_and_booleans() {
        let lua = Lua::new();
        assert_eq!(encode(&lua, "return {}"), Ok(String::new()));
        assert_eq!(
            encode(&lua, "return {['b r'] = 'hello world'}"),
            Ok("b%20r=hello%20world".into())
        );
        assert_eq!(encode(&lua, "return {foo = 3}"), Ok("foo=3".into()));
        assert_eq!(encode(&lua, "return {pi = 3.25}"), Ok("pi=3.25".into()));
        assert_eq!(
            encode(&lua, "return {baz = {32, 'hello', true, false, 'x y'}}"),
            Ok("baz=32&baz=hello&baz&baz=x%20y".into())
        );
        assert_eq!(encode(&lua, "return {a = true}"), Ok("a".into()));
        assert_eq!(encode(&lua, "return {a = false}"), Ok(String::new()));
        assert_eq!(encode(&lua, "return {a = {}}"), Ok(String::new()));
    }

    #[test]
    fn encode_args_rejects_bad_keys_and_values() {
        let lua = Lua::new();
        assert_eq!(
            encode(&lua, "return {'positional'}"),
            Err("attempt to use a non-string key in the \"args\" option table".into())
        );
        assert_eq!(
            encode(&lua, "return {f = print}"),
            Err("attempt to use function as query arg value".into())
        );
        assert_eq!(
            encode(&lua, "return {t = {{}}}"),
            Err("attempt to use table as query arg value".into())
        );
        assert_eq!(
            encode(&lua, "return {n = {io.stdout}}"),
            Err("attempt to use userdata as query arg value".into())
        );
    }
}
