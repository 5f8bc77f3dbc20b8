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

use std::cell::Cell;
use std::ffi::c_void;
use std::rc::Rc;

use super::raise::lua_type_name;
use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

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

/// What `encode_invalid_numbers` selects for NaN and the infinities.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InvalidNumbers {
    Raise,
    Javascript,
    Null,
}

#[derive(Clone, Copy)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    number_precision: i64,
    encode_invalid_numbers: InvalidNumbers,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
    empty_table_as_object: bool,
    decode_array_with_array_mt: bool,
    escape_forward_slash: bool,
    skip_unsupported_value_types: bool,
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

type Settings = Rc<Cell<Config>>;

/// `%.{precision}g`, as lua-cjson formats numbers.
fn format_number(out: &mut Vec<u8>, number: f64, precision: i64) {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is large enough for any %g output of a double with
    // at most 16 significant digits, and snprintf never writes past its size.
    let len = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%.*g".as_ptr(),
            precision as libc::c_int,
            number,
        )
    };
    let len = (len.max(0) as usize).min(buf.len() - 1);
    out.extend_from_slice(&buf[..len]);
}

/// The escape lua-cjson writes for a byte of a string, if any.
fn escape_of(byte: u8, escape_slash: bool) -> Option<&'static [u8]> {
    const CONTROL: [&[u8]; 32] = [
        b"\\u0000", b"\\u0001", b"\\u0002", b"\\u0003", b"\\u0004", b"\\u0005", b"\\u0006",
        b"\\u0007", b"\\b", b"\\t", b"\\n", b"\\u000b", b"\\f", b"\\r", b"\\u000e", b"\\u000f",
        b"\\u0010", b"\\u0011", b"\\u0012", b"\\u0013", b"\\u0014", b"\\u0015", b"\\u0016",
        b"\\u0017", b"\\u0018", b"\\u0019", b"\\u001a", b"\\u001b", b"\\u001c", b"\\u001d",
        b"\\u001e", b"\\u001f",
    ];
    match byte {
        0..=31 => Some(CONTROL[byte as usize]),
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        b'/' if escape_slash => Some(b"\\/"),
        127 => Some(b"\\u007f"),
        _ => None,
    }
}

struct Encoder {
    config: Config,
    array_mt: *const c_void,
    empty_array_mt: *const c_void,
    out: Vec<u8>,
}

impl Encoder {
    fn string(&mut self, bytes: &[u8]) {
        self.out.reserve(bytes.len() + 2);
        self.out.push(b'"');
        let escape_slash = self.config.escape_forward_slash;
        for &byte in bytes {
            match escape_of(byte, escape_slash) {
                Some(escaped) => self.out.extend_from_slice(escaped),
                None => self.out.push(byte),
            }
        }
        self.out.push(b'"');
    }

    fn number(&mut self, number: f64) -> Result<(), String> {
        if number.is_finite() {
            format_number(&mut self.out, number, self.config.number_precision);
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
            let (key, _) = pair.map_err(|e| super::error_text(&e))?;
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
            let item: Value = table.raw_get(i).map_err(|e| super::error_text(&e))?;
            if self.value(&item, depth)? {
                first = false;
            } else {
                self.out.truncate(rollback);
            }
        }
        self.out.push(b']');
        Ok(())
    }

    fn object(&mut self, table: &Table, depth: i64) -> Result<(), String> {
        self.out.push(b'{');
        let mut first = true;
        for pair in table.pairs::<Value, Value>() {
            let (key, item) = pair.map_err(|e| super::error_text(&e))?;
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
            if self.value(&item, depth)? {
                first = false;
            } else {
                self.out.truncate(rollback);
            }
        }
        self.out.push(b'}');
        Ok(())
    }
}

#[derive(Debug)]
enum Token {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    /// What was wrong, as the error message says it.
    Error(&'static str),
}

impl Token {
    fn describe(&self) -> &'static str {
        match self {
            Token::ObjectBegin => "T_OBJ_BEGIN",
            Token::ObjectEnd => "T_OBJ_END",
            Token::ArrayBegin => "T_ARR_BEGIN",
            Token::ArrayEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(what) => what,
        }
    }
}

fn hex_value(byte: u8) -> Option<u32> {
    (byte as char).to_digit(16)
}

/// Whether strtod would accept something strict JSON does not: a leading
/// `+`, hexadecimal, leading zeros, infinity or NaN.
fn is_lax_number(text: &[u8]) -> bool {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    if at(0) == b'+' {
        return true;
    }
    let start = usize::from(at(0) == b'-');
    let first = at(start);
    if first == b'0' {
        let second = at(start + 1);
        return second | 0x20 == b'x' || second.is_ascii_digit();
    }
    if first <= b'9' {
        return false;
    }
    let word = |w: &[u8]| text.len() >= start + 3 && text[start..start + 3].eq_ignore_ascii_case(w);
    word(b"inf") || word(b"nan")
}

struct Decoder<'a> {
    lua: &'a Lua,
    /// The input followed by a NUL, which ends it as it does lua-cjson's.
    data: Vec<u8>,
    pos: usize,
    depth: i64,
    config: Config,
    array_mt: Option<Table>,
}

impl Decoder<'_> {
    fn byte(&self, at: usize) -> u8 {
        self.data.get(at).copied().unwrap_or(0)
    }

    /// The next token and the (0-based) offset it was found at.
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.byte(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let start = self.pos;
        let single = match self.byte(start) {
            b'{' => Some(Token::ObjectBegin),
            b'}' => Some(Token::ObjectEnd),
            b'[' => Some(Token::ArrayBegin),
            b']' => Some(Token::ArrayEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(token) = single {
            self.pos += 1;
            return (token, start);
        }
        let rest = &self.data[start..self.data.len() - 1];
        match self.byte(start) {
            0 => (Token::End, start),
            b'"' => self.string_token(),
            b'-' | b'0'..=b'9' => {
                if !self.config.decode_invalid_numbers && is_lax_number(rest) {
                    return (Token::Error("invalid number"), start);
                }
                self.number_token()
            }
            _ if rest.starts_with(b"true") => {
                self.pos += 4;
                (Token::Boolean(true), start)
            }
            _ if rest.starts_with(b"false") => {
                self.pos += 5;
                (Token::Boolean(false), start)
            }
            _ if rest.starts_with(b"null") => {
                self.pos += 4;
                (Token::Null, start)
            }
            b'+' | b'i' | b'I' | b'n' | b'N'
                if self.config.decode_invalid_numbers && is_lax_number(rest) =>
            {
                self.number_token()
            }
            _ => (Token::Error("invalid token"), start),
        }
    }

    fn number_token(&mut self) -> (Token, usize) {
        let start = self.pos;
        let mut end: *mut libc::c_char = core::ptr::null_mut();
        // SAFETY: `data` ends with a NUL, so strtod stops inside it; `end`
        // is set to a position within the same buffer.
        let (number, consumed) = unsafe {
            let begin = self.data.as_ptr().add(start).cast::<libc::c_char>();
            let number = libc::strtod(begin, &mut end);
            (number, end.offset_from(begin) as usize)
        };
        if consumed == 0 {
            return (Token::Error("invalid number"), start);
        }
        self.pos += consumed;
        (Token::Number(number), start)
    }

    /// Appends the character of a `\uXXXX` escape (or a surrogate pair of
    /// them) at `pos` as UTF-8; the escape's length, None if invalid.
    fn unicode_escape(&self, at: usize, out: &mut Vec<u8>) -> Option<usize> {
        let hex4 = |from: usize| -> Option<u32> {
            (0..4).try_fold(0u32, |acc, i| {
                Some(acc << 4 | hex_value(self.byte(from + i))?)
            })
        };
        let mut code = hex4(at + 2)?;
        let mut len = 6;
        if code & 0xF800 == 0xD800 {
            if code & 0x400 != 0 {
                return None;
            }
            if self.byte(at + 6) != b'\\' || self.byte(at + 7) != b'u' {
                return None;
            }
            let low = hex4(at + 8)?;
            if low & 0xFC00 != 0xDC00 {
                return None;
            }
            code = (((code & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let ch = char::from_u32(code)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Some(len)
    }

    fn string_token(&mut self) -> (Token, usize) {
        let start = self.pos;
        self.pos += 1;
        let mut text = Vec::new();
        loop {
            let byte = self.byte(self.pos);
            match byte {
                b'"' => break,
                0 => return (Token::Error("unexpected end of string"), self.pos),
                b'\\' => {
                    let translated = match self.byte(self.pos + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => match self.unicode_escape(self.pos, &mut text) {
                            Some(len) => {
                                self.pos += len;
                                continue;
                            }
                            None => return (Token::Error("invalid unicode escape code"), self.pos),
                        },
                        _ => return (Token::Error("invalid escape code"), self.pos),
                    };
                    text.push(translated);
                    self.pos += 2;
                }
                _ => {
                    text.push(byte);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        (Token::Str(text), start)
    }

    fn expected(what: &str, token: &Token, at: usize) -> String {
        format!(
            "Expected {what} but found {} at character {}",
            token.describe(),
            at + 1
        )
    }

    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > self.config.decode_max_depth || self.depth > HARD_NESTING_LIMIT {
            return Err(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth, self.pos
            ));
        }
        Ok(())
    }

    fn lua_error(e: mlua::Error) -> String {
        super::error_text(&e)
    }

    fn value(&mut self, token: Token, at: usize) -> Result<Value, String> {
        Ok(match token {
            Token::Str(text) => {
                Value::String(self.lua.create_string(text).map_err(Self::lua_error)?)
            }
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => Value::NULL,
            Token::ObjectBegin => Value::Table(self.object()?),
            Token::ArrayBegin => Value::Table(self.array()?),
            other => return Err(Self::expected("value", &other, at)),
        })
    }

    fn object(&mut self) -> Result<Table, String> {
        self.descend()?;
        let table = self.lua.create_table().map_err(Self::lua_error)?;
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ObjectEnd) {
            self.depth -= 1;
            return Ok(table);
        }
        loop {
            let Token::Str(key) = token else {
                return Err(Self::expected("object key string", &token, at));
            };
            let key = self.lua.create_string(key).map_err(Self::lua_error)?;
            let (colon, colon_at) = self.next_token();
            if !matches!(colon, Token::Colon) {
                return Err(Self::expected("colon", &colon, colon_at));
            }
            let (item, item_at) = self.next_token();
            let item = self.value(item, item_at)?;
            table.raw_set(key, item).map_err(Self::lua_error)?;
            let (after, after_at) = self.next_token();
            match after {
                Token::ObjectEnd => {
                    self.depth -= 1;
                    return Ok(table);
                }
                Token::Comma => {}
                other => return Err(Self::expected("comma or object end", &other, after_at)),
            }
            (token, at) = self.next_token();
        }
    }

    fn array(&mut self) -> Result<Table, String> {
        self.descend()?;
        let table = self.lua.create_table().map_err(Self::lua_error)?;
        if self.config.decode_array_with_array_mt {
            table
                .set_metatable(self.array_mt.clone())
                .map_err(Self::lua_error)?;
        }
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ArrayEnd) {
            self.depth -= 1;
            return Ok(table);
        }
        let mut index = 1;
        loop {
            let item = self.value(token, at)?;
            table.raw_set(index, item).map_err(Self::lua_error)?;
            index += 1;
            let (after, after_at) = self.next_token();
            match after {
                Token::ArrayEnd => {
                    self.depth -= 1;
                    return Ok(table);
                }
                Token::Comma => {}
                other => return Err(Self::expected("comma or array end", &other, after_at)),
            }
            (token, at) = self.next_token();
        }
    }

    fn document(&mut self) -> Result<Value, String> {
        let input_len = self.data.len() - 1;
        if input_len >= 2 && (self.data[0] == 0 || self.data[1] == 0) {
            return Err("JSON parser does not support UTF-16 or UTF-32".to_string());
        }
        let (token, at) = self.next_token();
        let value = self.value(token, at)?;
        let (rest, rest_at) = self.next_token();
        if !matches!(rest, Token::End) {
            return Err(Self::expected("the end", &rest, rest_at));
        }
        Ok(value)
    }
}

/// The outcome of one module function: values, or an error to raise.
type Outcome = Result<MultiValue, String>;

fn bad_argument(position: usize, function: &str, problem: &str) -> String {
    format!("bad argument #{position} to '{function}' ({problem})")
}

fn registry_table(lua: &Lua, key: &str) -> mlua::Result<Table> {
    lua.named_registry_value(key)
}

fn encode(lua: &Lua, config: Config, args: &MultiValue) -> Outcome {
    if args.len() != 1 {
        return Err(bad_argument(1, "encode", "expected 1 argument"));
    }
    let pointer = |key| {
        registry_table(lua, key)
            .map(|t| t.to_pointer())
            .map_err(|e| super::error_text(&e))
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
        .map_err(|e| super::error_text(&e))?;
    Ok(MultiValue::from_iter([Value::String(text)]))
}

fn decode(lua: &Lua, config: Config, args: &MultiValue) -> Outcome {
    if args.len() != 1 {
        return Err(bad_argument(1, "decode", "expected 1 argument"));
    }
    let text = lua
        .coerce_string(args[0].clone())
        .ok()
        .flatten()
        .ok_or_else(|| {
            let got = format!("string expected, got {}", lua_type_name(&args[0]));
            bad_argument(1, "decode", &got)
        })?;
    let mut data = text.as_bytes().to_vec();
    data.push(0);
    let array_mt = if config.decode_array_with_array_mt {
        Some(registry_table(lua, ARRAY_MT_KEY).map_err(|e| super::error_text(&e))?)
    } else {
        None
    };
    let mut decoder = Decoder {
        lua,
        data,
        pos: 0,
        depth: 0,
        config,
        array_mt,
    };
    let value = decoder.document()?;
    Ok(MultiValue::from_iter([value]))
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
        let number = lua
            .coerce_number(value.clone())
            .ok()
            .flatten()
            .ok_or_else(|| {
                let got = format!("number expected, got {}", lua_type_name(value));
                bad_argument(position, function, &got)
            })?;
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
            let text = lua
                .coerce_string(other.clone())
                .ok()
                .flatten()
                .ok_or_else(|| {
                    let got = format!("string expected, got {}", lua_type_name(other));
                    bad_argument(position, function, &got)
                })?;
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
fn configure(lua: &Lua, name: &str, config: &mut Config, args: &MultiValue) -> Outcome {
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

const SETTINGS: &[&str] = &[
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

    let shared = settings.clone();
    module.set(
        "encode",
        lua_function(lua, move |lua, args| {
            let outcome = encode(lua, shared.get(), &args);
            protect(lua, safe, outcome, &args)
        })?,
    )?;
    let shared = settings.clone();
    module.set(
        "decode",
        lua_function(lua, move |lua, args| {
            let outcome = decode(lua, shared.get(), &args);
            protect(lua, safe, outcome, &args)
        })?,
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lua: &Lua, code: &str) -> String {
        lua.load(code)
            .eval::<String>()
            .unwrap_or_else(|e| panic!("{code}: {e}"))
    }

    fn lua_with_cjson() -> Lua {
        let lua = Lua::new();
        let cjson = new_module(&lua, false).unwrap();
        lua.globals().set("cjson", cjson).unwrap();
        lua.globals()
            .set("safe", new_module(&lua, true).unwrap())
            .unwrap();
        lua
    }

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

    #[test]
    fn decodes_and_reports_errors() {
        let lua = lua_with_cjson();
        let cases = [
            (
                r#"local t = cjson.decode('{"a":[1,2,{"b":null}],"c":"\\u00e9\\ud83d\\ude00"}')
                   return tostring(t.a[2]) .. tostring(t.a[3].b == cjson.null) .. t.c"#,
                "2true\u{e9}\u{1f600}",
            ),
            (
                "return select(2, pcall(cjson.decode, 'x'))",
                "Expected value but found invalid token at character 1",
            ),
            (
                "return select(2, pcall(cjson.decode, ''))",
                "Expected value but found T_END at character 1",
            ),
            (
                "return select(2, pcall(cjson.decode, '[1,2'))",
                "Expected comma or array end but found T_END at character 5",
            ),
            (
                r#"return select(2, pcall(cjson.decode, '{"a" 1}'))"#,
                "Expected colon but found T_NUMBER at character 6",
            ),
            (
                "return select(2, pcall(cjson.decode, '\"abc'))",
                "Expected value but found unexpected end of string at character 5",
            ),
            (
                "return select(2, pcall(cjson.decode, '1 2'))",
                "Expected the end but found T_NUMBER at character 3",
            ),
            (
                "return select(2, pcall(cjson.decode, string.rep('[', 1001)))",
                "Found too many nested data structures (1001) at character 1001",
            ),
            (
                "local v, err = safe.decode('{') return tostring(v) .. ' ' .. err",
                "nil Expected object key string but found T_END at character 2",
            ),
            (
                "return tostring(cjson.decode('0x10')) .. ' ' .. tostring(cjson.decode(' -1.5e3 '))",
                "16 -1500",
            ),
        ];
        for (code, expected) in cases {
            assert_eq!(run(&lua, code), expected, "{code}");
        }
    }

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
