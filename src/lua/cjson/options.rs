//! The module's settings (`encode_number_precision`, `encode_sparse_array`,
//! `decode_max_depth`, ...): what each instance keeps and the functions
//! that read and change it.

use mlua::{Lua, MultiValue, Value};

use super::{bad_argument, coerced_argument, Outcome, INT_MAX};

/// What `encode_invalid_numbers` selects for NaN and the infinities.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum InvalidNumbers {
    Raise,
    Javascript,
    Null,
}

#[derive(Clone, Copy)]
pub(super) struct Config {
    pub(super) sparse_convert: bool,
    pub(super) sparse_ratio: i64,
    pub(super) sparse_safe: i64,
    pub(super) encode_max_depth: i64,
    pub(super) decode_max_depth: i64,
    pub(super) number_precision: i64,
    pub(super) encode_invalid_numbers: InvalidNumbers,
    pub(super) decode_invalid_numbers: bool,
    pub(super) keep_buffer: bool,
    pub(super) empty_table_as_object: bool,
    pub(super) decode_array_with_array_mt: bool,
    pub(super) escape_forward_slash: bool,
    pub(super) skip_unsupported_value_types: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            number_precision: 14,
            encode_invalid_numbers: InvalidNumbers::Raise,
            decode_invalid_numbers: true,
            keep_buffer: true,
            empty_table_as_object: true,
            decode_array_with_array_mt: false,
            escape_forward_slash: true,
            skip_unsupported_value_types: false,
        }
    }
}

/// Pads the arguments of a setting function to `count`, refusing more.
fn setting_args(function: &str, args: &MultiValue, count: usize) -> Result<Vec<Value>, String> {
    if args.len() > count {
        return Err(bad_argument(
            count + 1,
            function,
            "found too many arguments",
        ));
    }
    let mut values: Vec<Value> = args.iter().cloned().collect();
    values.resize(count, Value::Nil);
    Ok(values)
}

/// An integer setting: unchanged for nil, else checked against the range
/// (lua-cjson names argument 1 in the range error whatever the position).
fn integer_option(
    lua: &Lua,
    function: &str,
    position: usize,
    value: &Value,
    setting: &mut i64,
    (min, max): (i64, i64),
) -> Result<Value, String> {
    if !value.is_nil() {
        let number = lua.coerce_number(value.clone());
        let number = coerced_argument(number, "number", value, position, function)?;
        let number = number as i64;
        if number < min || number > max {
            let range = format!("expected integer between {min} and {max}");
            return Err(bad_argument(1, function, &range));
        }
        *setting = number;
    }
    Ok(Value::Integer(*setting))
}

/// An option chosen by name, or true/false for the first two: its index.
fn enum_option(
    lua: &Lua,
    function: &str,
    position: usize,
    value: &Value,
    options: &[&str],
) -> Result<Option<usize>, String> {
    match value {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(usize::from(*b))),
        other => {
            let text = lua.coerce_string(other.clone());
            let text = coerced_argument(text, "string", other, position, function)?;
            let text = text.to_string_lossy();
            options
                .iter()
                .position(|option| *option == text)
                .map(Some)
                .ok_or_else(|| {
                    bad_argument(position, function, &format!("invalid option '{text}'"))
                })
        }
    }
}

/// An on/off setting: unchanged for nil; returns the (new) value.
fn flag_option(
    lua: &Lua,
    function: &str,
    value: &Value,
    setting: &mut bool,
) -> Result<Value, String> {
    if let Some(index) = enum_option(lua, function, 1, value, &["off", "on"])? {
        *setting = index == 1;
    }
    Ok(Value::Boolean(*setting))
}

/// Applies one setting function of the module to `config`.
pub(super) fn configure(lua: &Lua, name: &str, config: &mut Config, args: &MultiValue) -> Outcome {
    let single = |args: &MultiValue| setting_args(name, args, 1).map(|mut v| v.remove(0));
    let results: Vec<Value> = match name {
        "encode_sparse_array" => {
            let values = setting_args(name, args, 3)?;
            let convert = flag_option(lua, name, &values[0], &mut config.sparse_convert)?;
            let range = (0, INT_MAX);
            let ratio = integer_option(lua, name, 2, &values[1], &mut config.sparse_ratio, range)?;
            let safe = integer_option(lua, name, 3, &values[2], &mut config.sparse_safe, range)?;
            vec![convert, ratio, safe]
        }
        "encode_max_depth" => {
            let value = single(args)?;
            let depth = &mut config.encode_max_depth;
            vec![integer_option(lua, name, 1, &value, depth, (1, INT_MAX))?]
        }
        "decode_max_depth" => {
            let value = single(args)?;
            let depth = &mut config.decode_max_depth;
            vec![integer_option(lua, name, 1, &value, depth, (1, INT_MAX))?]
        }
        "encode_number_precision" => {
            let value = single(args)?;
            let precision = &mut config.number_precision;
            vec![integer_option(lua, name, 1, &value, precision, (1, 16))?]
        }
        "encode_invalid_numbers" => {
            let value = single(args)?;
            let options = ["off", "on", "null"];
            if let Some(index) = enum_option(lua, name, 1, &value, &options)? {
                config.encode_invalid_numbers = match index {
                    0 => InvalidNumbers::Raise,
                    1 => InvalidNumbers::Javascript,
                    _ => InvalidNumbers::Null,
                };
            }
            vec![match config.encode_invalid_numbers {
                InvalidNumbers::Raise => Value::Boolean(false),
                InvalidNumbers::Javascript => Value::Boolean(true),
                InvalidNumbers::Null => {
                    Value::String(lua.create_string("null").map_err(|e| e.to_string())?)
                }
            }]
        }
        _ => {
            let value = single(args)?;
            let setting = match name {
                "decode_invalid_numbers" => &mut config.decode_invalid_numbers,
                "encode_keep_buffer" => &mut config.keep_buffer,
                "encode_empty_table_as_object" => &mut config.empty_table_as_object,
                "decode_array_with_array_mt" => &mut config.decode_array_with_array_mt,
                "encode_escape_forward_slash" => &mut config.escape_forward_slash,
                _ => &mut config.skip_unsupported_value_types,
            };
            vec![flag_option(lua, name, &value, setting)?]
        }
    };
    Ok(MultiValue::from_iter(results))
}

pub(super) const SETTINGS: &[&str] = &[
    "encode_sparse_array",
    "encode_max_depth",
    "decode_max_depth",
    "encode_number_precision",
    "encode_invalid_numbers",
    "decode_invalid_numbers",
    "encode_keep_buffer",
    "encode_empty_table_as_object",
    "decode_array_with_array_mt",
    "encode_escape_forward_slash",
    "encode_skip_unsupported_value_types",
];

#[cfg(test)]
mod tests {
    use super::super::test_support::{lua_with_cjson, run};

    #[test]
    fn settings_apply_per_instance() {
        let lua = lua_with_cjson();
        let code = r#"
            local out = {}
            out[#out + 1] = tostring(cjson.encode_empty_table_as_object(false))
            out[#out + 1] = cjson.encode({})
            out[#out + 1] = safe.encode({})
            cjson.decode_array_with_array_mt(true)
            out[#out + 1] = cjson.encode(cjson.decode('[]'))
            out[#out + 1] = tostring(getmetatable(cjson.decode('[1]')) == cjson.array_mt)
            local convert, ratio, safe_max = cjson.encode_sparse_array(true)
            out[#out + 1] = tostring(convert) .. "," .. ratio .. "," .. safe_max
            out[#out + 1] = cjson.encode({[1] = 1, [20] = 2}):sub(1, 1)
            out[#out + 1] = tostring(cjson.encode_number_precision(3))
            out[#out + 1] = cjson.encode(3.14159)
            out[#out + 1] = select(2, pcall(cjson.encode_number_precision, 17))
            out[#out + 1] = tostring(cjson.encode_invalid_numbers("null"))
            out[#out + 1] = cjson.encode(1/0)
            out[#out + 1] = select(2, pcall(cjson.encode_max_depth, 1, 2))
            cjson.encode_escape_forward_slash(false)
            out[#out + 1] = cjson.encode("a/b")
            return table.concat(out, " ")
        "#;
        assert_eq!(
            run(&lua, code),
            "false [] {} [] true true,2,10 { 3 3.14 bad argument #1 to \
             'encode_number_precision' (expected integer between 1 and 16) null null \
             bad argument #2 to 'encode_max_depth' (found too many arguments) \"a/b\""
        );
    }
}
