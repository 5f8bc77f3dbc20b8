//! The `ngx` utility functions: URI escaping and query strings, base64,
//! digests and checksums, SQL quoting, time formatting and parsing,
//! `ngx.config`, `ngx.worker.exiting()` and `ngx.is_subrequest`.
//!
//! Argument handling follows the implementation OpenResty actually runs:
//! the functions lua-resty-core reimplements over FFI (escaping, base64,
//! digests, time) turn a `nil`/`false` argument into `""` and anything else
//! into `tostring(arg)`, while those still written against the Lua C API
//! (`encode_args`, `decode_args`, `quote_sql_str`, `crc32_*`, `hmac_sha1`)
//! check their argument count and take only strings and numbers.
//!
//! MD5, SHA-1, base64 and the HTTP time formats are nginx's own code, and
//! CRC32 uses nginx's tables (its two loops are inline C in a header, so
//! they are written out here). HMAC-SHA1 is built over nginx's SHA-1, which
//! every nginx has, rather than OpenSSL's `HMAC`, which only SSL builds link.
//! The URI escape tables and unescaping are OpenResty's, which differ from
//! nginx's (OpenResty keeps `!*'()` unescaped in a URI component and decodes
//! `+` as a space), so they are written out here too.

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};
use nginx_sys::{time_t, tm};

use super::output::format_number;
use super::raise::{api_function, raise};
use crate::text::args::{parse_query, unescape_component, ParsedArgs};

/// What `ngx.config.ngx_lua_version` reports: the lua-nginx-module release
/// (0.10.26) whose API this module follows.
pub const NGX_LUA_VERSION: i64 = 10026;

/// `ngx.decode_args`' default limit on the number of arguments.
const DEFAULT_MAX_ARGS: usize = 100;

pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let tostring: Function = lua.globals().get("tostring")?;
    install_escaping(lua, ngx, &tostring)?;
    install_base64(lua, ngx, &tostring)?;
    install_digests(lua, ngx, &tostring)?;
    install_time(lua, ngx)?;
    install_config(lua, ngx)?;
    let worker: Table = ngx.get("worker")?;
    worker.set(
        "exiting",
        api_function(lua, |_, _: MultiValue| {
            Ok(crate::nginx_ffi::worker_exiting())
        })?,
    )?;
    Ok(())
}

/// `ngx.is_subrequest`, read through the `ngx` table's `__index`.
pub fn is_subrequest() -> mlua::Result<Value> {
    let r = super::current_request().ok_or_else(|| raise("no request found"))?;
    // SAFETY: the current request pointer is set only while a handler runs
    // Lua code for this live request; `main` is always set by nginx.
    let sub = unsafe { (*r).main != r };
    Ok(Value::Boolean(sub))
}

// ---------------------------------------------------------------------------
// Argument conventions
// ---------------------------------------------------------------------------

/// Lua's name for a value's type, as `type()` and error messages give it;
/// `None` is a missing argument.
fn lua_type_name(value: Option<&Value>) -> &'static str {
    value.map_or("no value", super::raise::lua_type_name)
}

/// The text of Lua's `bad argument #N to 'func' (T expected, got U)`.
fn bad_argument(index: usize, func: &str, expected: &str, got: Option<&Value>) -> String {
    format!(
        "bad argument #{index} to '{func}' ({expected} expected, got {})",
        lua_type_name(got)
    )
}

/// A string argument of a C-API function: strings, and numbers converted as
/// Lua converts them; anything else raises Lua's "bad argument" error.
fn check_string(
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
fn ffi_string(lua: &Lua, tostring: &Function, value: Option<Value>) -> mlua::Result<LuaString> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Nil) | Some(Value::Boolean(false)) => lua.create_string(""),
        Some(other) => tostring.call(other),
    }
}

fn number_of(value: Option<&Value>) -> Option<f64> {
    match value {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(n)) => Some(*n),
        _ => None,
    }
}

/// Raises `expecting ...` unless exactly `count` arguments were passed.
fn expect_count(
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

// ---------------------------------------------------------------------------
// URI escaping, query strings, SQL quoting
// ---------------------------------------------------------------------------

/// The escaping types of `ngx.escape_uri(str, type)`, numbered as OpenResty
/// numbers them (0 to 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriEscape {
    /// 0: a whole URI: space, `#`, `%`, `?`, controls and non-ASCII.
    Uri,
    /// 1: query arguments: as `Uri`, and `+`.
    Args,
    /// 2: a URI component (the default): all but letters, digits and
    /// `-._~!*'()`.
    Component,
    /// 3: space, `"`, `#`, `%`, `'`, controls and non-ASCII.
    Html,
    /// 4: space, `"`, `'`, controls and non-ASCII.
    Refresh,
    /// 5: memcached keys: space, `%` and controls below 0x20.
    Memcached,
    /// 6: mail auth: the same set as memcached.
    MailAuth,
}

impl UriEscape {
    pub fn from_number(n: i64) -> Option<UriEscape> {
        Some(match n {
            0 => UriEscape::Uri,
            1 => UriEscape::Args,
            2 => UriEscape::Component,
            3 => UriEscape::Html,
            4 => UriEscape::Refresh,
            5 => UriEscape::Memcached,
            6 => UriEscape::MailAuth,
            _ => return None,
        })
    }

    /// Whether `byte` is written as `%XX` by this type.
    pub fn escapes(self, byte: u8) -> bool {
        let control_or_high = !(0x20..0x7f).contains(&byte);
        match self {
            UriEscape::Uri => control_or_high || matches!(byte, b' ' | b'#' | b'%' | b'?'),
            UriEscape::Args => control_or_high || matches!(byte, b' ' | b'#' | b'%' | b'+' | b'?'),
            UriEscape::Component => {
                !(byte.is_ascii_alphanumeric()
                    || matches!(
                        byte,
                        b'-' | b'.' | b'_' | b'~' | b'!' | b'*' | b'\'' | b'(' | b')'
                    ))
            }
            UriEscape::Html => control_or_high || matches!(byte, b' ' | b'"' | b'#' | b'%' | b'\''),
            UriEscape::Refresh => control_or_high || matches!(byte, b' ' | b'"' | b'\''),
            UriEscape::Memcached | UriEscape::MailAuth => {
                byte < 0x20 || matches!(byte, b' ' | b'%')
            }
        }
    }
}

/// Appends `input` with the bytes `kind` escapes written as `%XX`
/// (upper-case hex).
pub fn escape_uri_into(input: &[u8], kind: UriEscape, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in input {
        if kind.escapes(byte) {
            out.extend_from_slice(&[
                b'%',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.push(byte);
        }
    }
}

pub fn escape_uri(input: &[u8], kind: UriEscape) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    escape_uri_into(input, kind, &mut out);
    out
}

/// `ngx.quote_sql_str`: a MySQL string literal, quotes included.
pub fn quote_sql(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 2);
    out.push(b'\'');
    for &byte in input {
        let escaped = match byte {
            0 => b'0',
            0x08 => b'b',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            26 => b'z',
            b'\\' | b'\'' | b'"' => byte,
            _ => {
                out.push(byte);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', escaped]);
    }
    out.push(b'\'');
    out
}

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

/// The Lua table `ngx.decode_args` returns: repeated keys collect their
/// values in a list, bare keys are `true`.
fn args_table(lua: &Lua, parsed: ParsedArgs) -> mlua::Result<Table> {
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

fn install_escaping(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
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

// ---------------------------------------------------------------------------
// base64
// ---------------------------------------------------------------------------

fn install_base64(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    let to_string = tostring.clone();
    ngx.set(
        "encode_base64",
        api_function(lua, move |lua, (s, no_padding): (Option<Value>, Value)| {
            let s = ffi_string(lua, &to_string, s)?;
            let no_padding = match no_padding {
                Value::Nil | Value::Boolean(false) => false,
                Value::Boolean(true) => true,
                other => {
                    return Err(raise(format!(
                        "bad no_padding: boolean expected, got {}",
                        lua_type_name(Some(&other))
                    )))
                }
            };
            let mut encoded = crate::nginx_ffi::encode_base64(&s.as_bytes());
            if no_padding {
                while encoded.last() == Some(&b'=') {
                    encoded.pop();
                }
            }
            lua.create_string(encoded)
        })?,
    )?;
    ngx.set(
        "decode_base64",
        api_function(lua, |lua, s: Option<Value>| {
            let Some(Value::String(s)) = s else {
                return Err(raise("string argument only"));
            };
            match crate::nginx_ffi::decode_base64(&s.as_bytes()) {
                Some(decoded) => Ok(Value::String(lua.create_string(decoded)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Digests and checksums
// ---------------------------------------------------------------------------

fn hex_lower(bytes: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|&b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
        .collect()
}

const SHA1_BLOCK: usize = 64;
const SHA1_LEN: usize = 20;

/// HMAC (RFC 2104) over a SHA-1 given as a function hashing the
/// concatenation of its parts.
fn hmac_sha1_with(
    sha1: impl Fn(&[&[u8]]) -> [u8; SHA1_LEN],
    key: &[u8],
    data: &[u8],
) -> [u8; SHA1_LEN] {
    let mut block = [0u8; SHA1_BLOCK];
    if key.len() > SHA1_BLOCK {
        block[..SHA1_LEN].copy_from_slice(&sha1(&[key]));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad = block.map(|b| b ^ 0x36);
    let outer_pad = block.map(|b| b ^ 0x5c);
    let inner = sha1(&[&inner_pad, data]);
    sha1(&[&outer_pad, &inner])
}

/// nginx's CRC32 with its 16-entry table, as `ngx_crc32_short` computes it.
fn crc32_short_with(table: &[u32; 16], data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc = table[((crc ^ u32::from(byte & 0xf)) & 0xf) as usize] ^ (crc >> 4);
        crc = table[((crc ^ u32::from(byte >> 4)) & 0xf) as usize] ^ (crc >> 4);
    }
    !crc
}

/// nginx's CRC32 with its 256-entry table, as `ngx_crc32_long` computes it.
fn crc32_long_with(table: &[u32; 256], data: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in data {
        crc = table[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn install_digests(lua: &Lua, ngx: &Table, tostring: &Function) -> mlua::Result<()> {
    let to_string = tostring.clone();
    ngx.set(
        "md5",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(hex_lower(&crate::nginx_ffi::md5(&s.as_bytes())))
        })?,
    )?;
    let to_string = tostring.clone();
    ngx.set(
        "md5_bin",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(crate::nginx_ffi::md5(&s.as_bytes()))
        })?,
    )?;
    let to_string = tostring.clone();
    ngx.set(
        "sha1_bin",
        api_function(lua, move |lua, s: Option<Value>| {
            let s = ffi_string(lua, &to_string, s)?;
            lua.create_string(crate::nginx_ffi::sha1(&[&s.as_bytes()]))
        })?,
    )?;
    ngx.set(
        "hmac_sha1",
        api_function(lua, |lua, args: MultiValue| {
            expect_count(&args, 2, |n| format!("expecting 2 arguments, but got {n}"))?;
            let key = check_string(lua, args.front(), 1, "hmac_sha1")?;
            let data = check_string(lua, args.get(1), 2, "hmac_sha1")?;
            let mac = hmac_sha1_with(crate::nginx_ffi::sha1, &key.as_bytes(), &data.as_bytes());
            lua.create_string(mac)
        })?,
    )?;
    for (name, long) in [("crc32_short", false), ("crc32_long", true)] {
        ngx.set(
            name,
            api_function(lua, move |lua, args: MultiValue| {
                expect_count(&args, 1, |n| format!("expecting one argument, but got {n}"))?;
                let s = check_string(lua, args.front(), 1, name)?;
                let crc = if long {
                    crc32_long_with(crate::nginx_ffi::crc32_table256(), &s.as_bytes())
                } else {
                    crc32_short_with(crate::nginx_ffi::crc32_table16(), &s.as_bytes())
                };
                Ok(f64::from(crc))
            })?,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// `YYYY-MM-DD` of a time broken down by `ngx_gmtime` (full year, month
/// from 1).
fn format_date(t: &tm) -> String {
    format!("{:04}-{:02}-{:02}", t.tm_year, t.tm_mon, t.tm_mday)
}

/// `YYYY-MM-DD HH:MM:SS` of a time broken down by `ngx_gmtime`.
fn format_date_time(t: &tm) -> String {
    format!(
        "{} {:02}:{:02}:{:02}",
        format_date(t),
        t.tm_hour,
        t.tm_min,
        t.tm_sec
    )
}

/// A `sec` argument of `http_time`/`cookie_time`, converted to C's `long`
/// as LuaJIT's FFI converts it (truncating).
fn seconds_argument(value: Option<&Value>) -> mlua::Result<time_t> {
    match value {
        Some(Value::Integer(i)) => Ok(*i as time_t),
        Some(Value::Number(n)) => Ok(*n as time_t),
        _ => Err(raise("number argument only")),
    }
}

fn install_time(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    ngx.set(
        "today",
        api_function(lua, |_, _: MultiValue| {
            Ok(format_date(&crate::nginx_ffi::gmtime(
                crate::nginx_ffi::local_seconds(),
            )))
        })?,
    )?;
    ngx.set(
        "localtime",
        api_function(lua, |_, _: MultiValue| {
            Ok(format_date_time(&crate::nginx_ffi::gmtime(
                crate::nginx_ffi::local_seconds(),
            )))
        })?,
    )?;
    ngx.set(
        "utctime",
        api_function(lua, |_, _: MultiValue| {
            Ok(format_date_time(&crate::nginx_ffi::gmtime(
                crate::nginx::cached_time().0 as time_t,
            )))
        })?,
    )?;
    ngx.set(
        "http_time",
        api_function(lua, |lua, args: MultiValue| {
            let sec = seconds_argument(args.front())?;
            lua.create_string(crate::nginx_ffi::http_time(sec))
        })?,
    )?;
    ngx.set(
        "cookie_time",
        api_function(lua, |lua, args: MultiValue| {
            let sec = seconds_argument(args.front())?;
            lua.create_string(crate::nginx_ffi::cookie_time(sec))
        })?,
    )?;
    ngx.set(
        "parse_http_time",
        api_function(lua, |_, args: MultiValue| {
            let Some(Value::String(s)) = args.front() else {
                return Err(raise("string argument only"));
            };
            Ok(match crate::nginx_ffi::parse_http_time(&s.as_bytes()) {
                Some(t) => Value::Number(t as f64),
                None => Value::Nil,
            })
        })?,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// ngx.config
// ---------------------------------------------------------------------------

fn install_config(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let config = match ngx.get::<Value>("config")? {
        Value::Table(t) => t,
        _ => {
            let t = lua.create_table()?;
            ngx.set("config", t.clone())?;
            t
        }
    };
    config.set("subsystem", "http")?;
    config.set("debug", ::ngx::log::DEBUG)?;
    config.set("nginx_version", i64::from(nginx_sys::nginx_version))?;
    config.set("ngx_lua_version", NGX_LUA_VERSION)?;
    config.set(
        "prefix",
        api_function(lua, |lua, _: MultiValue| {
            lua.create_string(crate::nginx_ffi::cycle_prefix())
        })?,
    )?;
    config.set(
        "nginx_configure",
        api_function(lua, |lua, _: MultiValue| {
            lua.create_string(nginx_sys::NGX_CONFIGURE.to_bytes())
        })?,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// nginx's functions and globals
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(input: &str, kind: UriEscape) -> String {
        String::from_utf8(escape_uri(input.as_bytes(), kind)).unwrap()
    }

    const PUNCTUATION: &str = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    #[test]
    fn component_escaping_keeps_only_unreserved_characters() {
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Component),
            "%20!%22%23%24%25%26'()*%2B%2C-.%2F%3A%3B%3C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~"
        );
        assert_eq!(escaped("AZaz09", UriEscape::Component), "AZaz09");
        assert_eq!(
            escape_uri(b"\x00\x1f\x7f\x80\xff", UriEscape::Component),
            b"%00%1F%7F%80%FF"
        );
    }

    #[test]
    fn uri_and_args_escaping() {
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Uri),
            "%20!\"%23$%25&'()*+,-./:;<=>%3F@[\\]^_`{|}~"
        );
        assert_eq!(
            escaped(PUNCTUATION, UriEscape::Args),
            "%20!\"%23$%25&'()*%2B,-./:;<=>%3F@[\\]^_`{|}~"
        );
        assert_eq!(escape_uri(b"\x01\x7f\xe4", UriEscape::Uri), b"%01%7F%E4");
    }

    #[test]
    fn html_refresh_and_memcached_escaping() {
        assert_eq!(
            escaped("a \"#%'<b>", UriEscape::Html),
            "a%20%22%23%25%27<b>"
        );
        assert_eq!(escaped("a \"#%'", UriEscape::Refresh), "a%20%22#%%27");
        assert_eq!(
            escape_uri(b"a %\t\x7f\xff", UriEscape::Memcached),
            b"a%20%25%09\x7f\xff"
        );
        assert_eq!(
            escape_uri(b"a %\t", UriEscape::MailAuth),
            escape_uri(b"a %\t", UriEscape::Memcached)
        );
        assert_eq!(UriEscape::from_number(7), None);
        assert_eq!(UriEscape::from_number(-1), None);
        assert_eq!(UriEscape::from_number(2), Some(UriEscape::Component));
    }

    #[test]
    fn sql_quoting_escapes_mysql_specials() {
        assert_eq!(quote_sql(b""), b"''");
        assert_eq!(
            quote_sql(b"a'b\"c\\d\ne\rf\tg\0h\x1ai\x08j"),
            b"'a\\'b\\\"c\\\\d\\ne\\rf\\tg\\0h\\zi\\bj'"
        );
        // Bytes of multi-byte UTF-8 characters pass as they are.
        assert_eq!(quote_sql("é'".as_bytes()), "'é\\''".as_bytes());
    }

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

    /// A stand-in digest recording what it hashed, to check HMAC's layout.
    fn recording_digest(parts: &[&[u8]]) -> [u8; SHA1_LEN] {
        let joined: Vec<u8> = parts.concat();
        let mut digest = [0u8; SHA1_LEN];
        digest[0] = (joined.len() & 0xff) as u8;
        digest[1] = joined.first().copied().unwrap_or(0);
        digest[2] = joined.get(SHA1_BLOCK).copied().unwrap_or(0);
        digest
    }

    #[test]
    fn hmac_pads_short_keys_and_hashes_long_ones() {
        // Short key: inner = H(K ^ ipad || data) = H of 64 + 4 bytes.
        let mac = hmac_sha1_with(recording_digest, b"key", b"data");
        // Outer hashes 64 bytes of padded key and the 20-byte inner digest.
        assert_eq!(mac[0], (SHA1_BLOCK + SHA1_LEN) as u8);
        assert_eq!(mac[1], b'k' ^ 0x5c);
        // The inner digest starts with its input length, 68.
        assert_eq!(mac[2], 68);
        // A key longer than a block is replaced by its digest first.
        let long_key = [0xaa; 80];
        let mac = hmac_sha1_with(recording_digest, &long_key, b"");
        assert_eq!(mac[1], 80 ^ 0x5c);
    }

    /// The standard reflected CRC-32 table (polynomial 0xEDB88320).
    fn crc_table(entries: usize, bits: u32) -> Vec<u32> {
        (0..entries as u32)
            .map(|mut c| {
                for _ in 0..bits {
                    c = if c & 1 != 0 {
                        0xEDB8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
                c
            })
            .collect()
    }

    #[test]
    fn crc32_both_tables_give_the_standard_checksum() {
        let short: [u32; 16] = crc_table(16, 4).try_into().unwrap();
        let long: [u32; 256] = crc_table(256, 8).try_into().unwrap();
        assert_eq!(crc32_short_with(&short, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_long_with(&long, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_long_with(&long, b"hello"), 907_060_870);
        assert_eq!(crc32_short_with(&short, b""), 0);
    }

    #[test]
    fn dates_are_zero_padded() {
        // SAFETY: `tm` is plain data; zeroes are a valid value.
        let mut t: tm = unsafe { core::mem::zeroed() };
        t.tm_year = 2010;
        t.tm_mon = 11;
        t.tm_mday = 8;
        t.tm_hour = 7;
        t.tm_min = 5;
        t.tm_sec = 3;
        assert_eq!(format_date(&t), "2010-11-08");
        assert_eq!(format_date_time(&t), "2010-11-08 07:05:03");
    }

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
