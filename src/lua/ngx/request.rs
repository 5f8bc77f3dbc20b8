//! The request and response side of the `ngx` API: `ngx.header`,
//! `ngx.resp.get_headers`, `ngx.req.*` beyond the basics, `ngx.redirect`,
//! `ngx.exec`, `ngx.flush`, `ngx.eof`.

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{allow_in, request, OUTPUT_PHASES};
use crate::lua::raise::{api_function, lua_type_name, raise};
use crate::phase::Phase;
use crate::request::body::{self, BodyRead};

/// The default `max_headers` of `get_headers`, as in OpenResty.
const DEFAULT_MAX_HEADERS: usize = 100;

/// Where the request's headers may change, and the response's be set
/// (after the header was sent, a response header write only logs an
/// error): every phase with a request, as in OpenResty.
pub(super) const REQUEST_HEADER_PHASES: &[Phase] = &[
    Phase::Set,
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
    Phase::HeaderFilter,
    Phase::BodyFilter,
    Phase::Log,
];
const HEADER_PHASES: &[Phase] = REQUEST_HEADER_PHASES;

/// A Lua value as header text: strings and numbers (as Lua prints them).
fn header_text(lua: &Lua, value: &Value) -> mlua::Result<Vec<u8>> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Number(_) | Value::Integer(_) | Value::Boolean(_) => {
            let tostring: Function = lua.globals().get("tostring")?;
            let s: mlua::LuaString = tostring.call(value.clone())?;
            Ok(s.as_bytes().to_vec())
        }
        other => Err(raise(format!(
            "bad header value of type {}",
            lua_type_name(other)
        ))),
    }
}

fn header_key(value: &Value) -> mlua::Result<Vec<u8>> {
    match value {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        other => Err(raise(format!(
            "bad header name of type {}",
            lua_type_name(other)
        ))),
    }
}

/// `{name = value | {values...}}` with at most `max` headers (0: all), keys
/// lower-cased unless `raw`; plus `"truncated"` when cut (logged at debug
/// level, naming `which` headers).
fn headers_table(
    lua: &Lua,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    max: usize,
    raw: bool,
    which: &str,
) -> mlua::Result<MultiValue> {
    if max > 0 && headers.len() > max {
        super::log_debug(&format!(
            "lua exceeding {which} header limit {} > {max}",
            headers.len()
        ));
    }
    let table = lua.create_table()?;
    let mut truncated = false;
    for (count, (key, value)) in headers.into_iter().enumerate() {
        if max > 0 && count == max {
            truncated = true;
            break;
        }
        let key = if raw { key } else { key.to_ascii_lowercase() };
        let key = lua.create_string(&key)?;
        let value = Value::String(lua.create_string(&value)?);
        match table.raw_get::<Value>(key.clone())? {
            Value::Nil => table.raw_set(key, value)?,
            Value::Table(list) => list.raw_push(value)?,
            first => table.raw_set(key, lua.create_sequence_from([first, value])?)?,
        }
    }
    if !raw {
        // Lookups by any spelling (`h["Content-Type"]`, `h.content_type`)
        // find the lower-cased entry, as OpenResty's table does.
        let meta = lua.create_table()?;
        meta.set(
            "__index",
            lua.create_function(|lua, (t, key): (Table, mlua::LuaString)| {
                let normal: Vec<u8> = key
                    .as_bytes()
                    .iter()
                    .map(|&b| {
                        if b == b'_' {
                            b'-'
                        } else {
                            b.to_ascii_lowercase()
                        }
                    })
                    .collect();
                t.raw_get::<Value>(lua.create_string(&normal)?)
            })?,
        )?;
        table.set_metatable(Some(meta))?;
    }
    let truncated = if truncated {
        Value::String(lua.create_string("truncated")?)
    } else {
        Value::Nil
    };
    mlua::IntoLuaMulti::into_lua_multi((table, truncated), lua)
}

fn max_headers(value: Option<f64>) -> mlua::Result<usize> {
    match value {
        None => Ok(DEFAULT_MAX_HEADERS),
        Some(n) if n >= 0.0 => Ok(n as usize),
        Some(_) => Err(raise("bad number of max headers")),
    }
}

fn header_table(lua: &Lua) -> mlua::Result<Table> {
    let header = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        api_function(lua, |lua, (_t, name): (Value, Value)| {
            let name = header_key(&name)?;
            let r = request()?;
            let values = r.response_header(&name, super::response_names(r));
            Ok(match values.len() {
                0 => Value::Nil,
                1 => Value::String(lua.create_string(&values[0])?),
                _ => Value::Table(
                    lua.create_sequence_from(
                        values
                            .iter()
                            .map(|v| lua.create_string(v))
                            .collect::<mlua::Result<Vec<_>>>()?,
                    )?,
                ),
            })
        })?,
    )?;
    meta.set(
        "__newindex",
        api_function(lua, |lua, (_t, name, value): (Value, Value, Value)| {
            write_response_header(lua, &name, &value, true)
        })?,
    )?;
    header.set_metatable(Some(meta))?;
    Ok(header)
}

/// `ngx.header[name] = value` (`replace`) or `ngx.resp.add_header(name,
/// value)`: a string, number or boolean, a table of them for several
/// values; `nil` clears (and cannot be added).
pub(super) fn write_response_header(
    lua: &Lua,
    name: &Value,
    value: &Value,
    replace: bool,
) -> mlua::Result<()> {
    super::refuse_stand_in_request()?;
    allow_in(HEADER_PHASES)?;
    let name = header_key(name)?;
    let r = request()?;
    if !replace && value.is_nil() {
        return Err(raise("invalid header value"));
    }
    if r.headers_sent() {
        if let Some(log) = r.log() {
            let line = format!(
                "attempt to set ngx.header.HEADER after sending out response headers ({})",
                String::from_utf8_lossy(&name)
            );
            log.write(nginx_sys::NGX_LOG_ERR as usize, line.as_bytes());
        }
        return Ok(());
    }
    let values: Vec<Vec<u8>> = match value {
        Value::Nil => Vec::new(),
        Value::Table(list) => list
            .sequence_values::<Value>()
            .map(|v| header_text(lua, &v?))
            .collect::<mlua::Result<_>>()?,
        single => vec![header_text(lua, single)?],
    };
    if !replace && values.is_empty() {
        return Ok(());
    }
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    let written = if replace {
        r.set_response_header(&name, &refs, super::response_names(r))
    } else {
        r.add_response_header(&name, &refs, super::response_names(r))
    };
    written.map_err(|e| raise(e.to_string()))
}

/// nginx cannot cancel subrequests under way, so a handler waiting for
/// some cannot end with a response of its own.
pub(super) fn refuse_abort_with_subrequests(r: crate::request::HttpRequest) -> mlua::Result<()> {
    if crate::request::subrequest::pending(r) {
        return Err(raise("attempt to abort with pending subrequests"));
    }
    Ok(())
}

/// `ngx.redirect` and `ngx.exec` record where to go and yield, like
/// `ngx.exit`, so they leave the chunk from any depth.
fn leaving_functions(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let record_redirect = api_function(lua, |_, (uri, status): (mlua::LuaString, Option<f64>)| {
        allow_in(OUTPUT_PHASES)?;
        let status = status.unwrap_or(302.0) as isize;
        if ![301, 302, 303, 307, 308].contains(&status) {
            return Err(raise(
                "only ngx.HTTP_MOVED_TEMPORARILY, ngx.HTTP_MOVED_PERMANENTLY, ngx.HTTP_PERMANENT_REDIRECT, ngx.HTTP_SEE_OTHER, and ngx.HTTP_TEMPORARY_REDIRECT are allowed",
            ));
        }
        let r = request()?;
        if r.headers_sent() {
            return Err(raise(
                "attempt to call ngx.redirect after sending out the headers",
            ));
        }
        refuse_abort_with_subrequests(r)?;
        r.set_response_header(
            b"location",
            &[&uri.as_bytes()],
            crate::request::headers::ResponseNames::AsGiven,
        )
        .map_err(|e| raise(e.to_string()))?;
        crate::lua::record_exit(status);
        Ok(())
    })?;
    let record_exec = api_function(
        lua,
        |_, (uri, args): (mlua::LuaString, Option<mlua::LuaString>)| {
            allow_in(OUTPUT_PHASES)?;
            let r = request()?;
            refuse_abort_with_subrequests(r)?;
            if r.headers_sent() {
                return Err(raise(
                    "attempt to call ngx.exec after sending out response headers",
                ));
            }
            let uri = uri.as_bytes().to_vec();
            if uri.is_empty() {
                return Err(raise("The uri argument is empty"));
            }
            let (path, mut query) = match uri.iter().position(|&b| b == b'?') {
                Some(q) => (uri[..q].to_vec(), uri[q + 1..].to_vec()),
                None => (uri, Vec::new()),
            };
            if let Some(args) = args {
                let args = args.as_bytes();
                if !args.is_empty() {
                    if !query.is_empty() {
                        query.push(b'&');
                    }
                    query.extend_from_slice(&args);
                }
            }
            crate::lua::record_exec(path, query);
            Ok(())
        },
    )?;
    // True when the coroutine must wait for the body (or leave with an error
    // status nginx chose, e.g. 413).
    let start_read_body = api_function(lua, |_, ()| {
        allow_in(OUTPUT_PHASES)?;
        let r = request()?;
        if r.body_was_read() {
            return Ok(false);
        }
        Ok(match body::start_reading(r) {
            BodyRead::Done => false,
            BodyRead::Pending => {
                crate::lua::record_request(crate::lua::scheduler::Request::ReadBody);
                true
            }
            BodyRead::Failed(status) => {
                crate::lua::record_exit(status);
                true
            }
        })
    })?;
    let wait_here = crate::lua::scheduler::wait_here(lua)?;
    let apply_set_uri = api_function(lua, |_, args: MultiValue| set_uri(args))?;
    let make: Function = lua
        .load(
            "local record_redirect, record_exec, start_read_body, wait_here, type, ngx, apply_set_uri = ...\n\
             local function redirect(uri, status)\n\
                 record_redirect(uri, status)\n\
                 return wait_here()\n\
             end\n\
             local function exec(uri, args)\n\
                 if type(args) == 'table' then args = ngx.encode_args(args) end\n\
                 record_exec(uri, args)\n\
                 return wait_here()\n\
             end\n\
             local function read_body()\n\
                 if start_read_body() then return wait_here() end\n\
             end\n\
             local function set_uri(...)\n\
                 if apply_set_uri(select('#', ...), ...) then return wait_here() end\n\
             end\n\
             return redirect, exec, read_body, set_uri",
        )
        .set_name(crate::lua::raise::internal_chunk_name("ngx.redirect"))
        .into_function()?;
    let (redirect, exec, read_body, set_uri): (Function, Function, Function, Function) = make
        .call((
            record_redirect,
            record_exec,
            start_read_body,
            wait_here,
            lua.globals().get::<Function>("type")?,
            ngx.clone(),
            apply_set_uri,
        ))?;
    ngx.set("redirect", redirect)?;
    ngx.set("exec", exec)?;
    let req: Table = ngx.get("req")?;
    req.set("read_body", read_body)?;
    req.set("set_uri", set_uri)?;
    install_body_setters(lua, &req)?;
    req.set(
        "raw_header",
        api_function(lua, |lua, without_request_line: Value| {
            if super::runs_with_stand_in_request() {
                return Err(raise("API disabled in the current context"));
            }
            let r = super::request_found()?;
            let without = !matches!(without_request_line, Value::Nil | Value::Boolean(false));
            lua.create_string(r.raw_header(without))
        })?,
    )?;
    Ok(())
}

/// Whether a Lua content handler's output ended the response already, as
/// `ngx.eof` sees it after the response: in `log_by_lua*`, and in a body
/// filter's last piece (OpenResty answers `nil, "seen eof"` there, before
/// its phase check).
fn response_ended_by_lua(lua: &Lua) -> mlua::Result<bool> {
    let last_piece = match crate::lua::current_phase() {
        Some(Phase::Log) => true,
        Some(Phase::BodyFilter) => {
            let ngx: Table = lua.globals().get("ngx")?;
            let arg: Table = ngx.raw_get("arg")?;
            arg.raw_get::<bool>(2).unwrap_or(false)
        }
        _ => false,
    };
    Ok(last_piece && request().is_ok_and(super::runs_lua_content))
}

/// The request a body setter changes: OpenResty's errors outside requests.
fn body_request() -> mlua::Result<crate::request::HttpRequest> {
    if super::runs_with_stand_in_request() {
        return Err(raise("API disabled in the current context"));
    }
    super::request_found()
}

/// Text argument `n` (1-based) as `luaL_checklstring` takes it: a string,
/// or a number as Lua writes it.
fn text_argument(args: &MultiValue, n: usize) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1).cloned().unwrap_or(Value::Nil) {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Integer(i) => {
            let mut text = Vec::new();
            crate::lua::output::format_number(i as f64, &mut text);
            Ok(text)
        }
        Value::Number(x) => {
            let mut text = Vec::new();
            crate::lua::output::format_number(x, &mut text);
            Ok(text)
        }
        other => Err(raise(format!(
            "bad argument #{n} to '?' (string expected, got {})",
            lua_type_name(&other)
        ))),
    }
}

/// The one text argument of `set_body_data` and `append_body`.
fn only_text_argument(args: &MultiValue) -> mlua::Result<Vec<u8>> {
    if args.len() != 1 {
        return Err(raise(format!(
            "expecting 1 arguments but seen {}",
            args.len()
        )));
    }
    text_argument(args, 1)
}

/// `ngx.req.set_body_data`, `init_body`, `append_body`, `finish_body` and
/// `set_body_file`, with OpenResty's argument counts and errors.
fn install_body_setters(lua: &Lua, req: &Table) -> mlua::Result<()> {
    let edited = |result: Result<(), crate::request::body_edit::BodyEditError>| {
        result.map_err(|e| raise(e.to_string()))
    };
    req.set(
        "set_body_data",
        api_function(lua, move |_, args: MultiValue| {
            let data = only_text_argument(&args)?;
            edited(body_request()?.set_body_data(&data))
        })?,
    )?;
    req.set(
        "init_body",
        api_function(lua, move |_, args: MultiValue| {
            if args.len() > 1 {
                return Err(raise(format!(
                    "expecting 0 or 1 argument but seen {}",
                    args.len()
                )));
            }
            let size = match args.front() {
                None => None,
                Some(Value::Integer(n)) => Some(*n as f64),
                Some(Value::Number(n)) => Some(*n),
                Some(other) => {
                    return Err(raise(format!(
                        "bad argument #1 to '?' (number expected, got {})",
                        lua_type_name(other)
                    )))
                }
            };
            let r = body_request()?;
            let size = match size {
                Some(n) if n < 0.0 => {
                    return Err(raise(format!("bad size argument: {}", n as i64)))
                }
                Some(n) => Some(n as usize),
                None => None,
            };
            edited(r.init_body(size))
        })?,
    )?;
    req.set(
        "append_body",
        api_function(lua, move |_, args: MultiValue| {
            let data = only_text_argument(&args)?;
            edited(body_request()?.append_body(&data))
        })?,
    )?;
    req.set(
        "finish_body",
        api_function(lua, move |_, args: MultiValue| {
            if !args.is_empty() {
                return Err(raise(format!(
                    "expecting 0 argument but seen {}",
                    args.len()
                )));
            }
            edited(body_request()?.finish_body())
        })?,
    )?;
    req.set(
        "set_body_file",
        api_function(lua, move |_, args: MultiValue| {
            if !(1..=2).contains(&args.len()) {
                return Err(raise(format!(
                    "expecting 1 or 2 arguments but seen {}",
                    args.len()
                )));
            }
            let path = text_argument(&args, 1)?;
            let r = body_request()?;
            let delete = match args.get(1) {
                None => false,
                Some(Value::Boolean(b)) => *b,
                Some(other) => {
                    return Err(raise(format!(
                        "bad argument #2 to '?' (boolean expected, got {})",
                        lua_type_name(other)
                    )))
                }
            };
            edited(r.set_body_file(&path, delete))
        })?,
    )?;
    Ok(())
}

/// `ngx.req.set_uri(uri, jump?, binary?)` after its argument count (first
/// in `args`): checks the arguments in OpenResty's order, with its errors,
/// and sets the URI. True for a jump, which leaves the handler: the
/// locations are searched again once the rewrite phase ends.
fn set_uri(mut args: MultiValue) -> mlua::Result<bool> {
    let count = match args.pop_front() {
        Some(Value::Integer(n)) => n as usize,
        _ => 0,
    };
    if !(1..=3).contains(&count) {
        return Err(raise(format!(
            "expecting 1, 2 or 3 arguments but seen {count}"
        )));
    }
    if super::runs_with_stand_in_request() {
        return Err(raise("API disabled in the current context"));
    }
    let r = super::request_found()?;
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Nil);
    let boolean = |i: usize| match arg(i) {
        Value::Boolean(b) => Ok(b),
        other => Err(raise(format!(
            "bad argument #{} to '?' (boolean expected, got {})",
            i + 1,
            lua_type_name(&other)
        ))),
    };
    let uri = text_argument(&args, 1)?;
    if uri.is_empty() {
        return Err(raise("attempt to use zero-length uri"));
    }
    let binary = count >= 3 && boolean(2)?;
    if !binary {
        if let Some(&unsafe_byte) = uri.iter().find(|&&b| is_unsafe_uri_byte(b)) {
            return Err(raise(format!(
                "unsafe byte \"0x{unsafe_byte:02x}\" in uri \"{}\" (maybe you want to set the 'binary' argument?)",
                escaped_for_log(&uri)
            )));
        }
    }
    let jump = count >= 2 && boolean(1)?;
    if jump {
        allow_in(&[Phase::ServerRewrite, Phase::Rewrite])?;
        refuse_abort_with_subrequests(r)?;
    }
    r.set_uri(&uri, jump).map_err(|e| raise(e.to_string()))?;
    if jump {
        crate::lua::record_exit(nginx_sys::NGX_OK as isize);
    }
    Ok(jump)
}

/// Control bytes other than tab, which `set_uri` refuses unless `binary`.
fn is_unsafe_uri_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Bytes as OpenResty shows them in an error: control bytes, bytes past
/// ASCII, quotes and backslashes as `\xHH`.
fn escaped_for_log(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &b in bytes {
        if !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\' {
            text.push_str(&format!("\\x{b:02X}"));
        } else {
            text.push(char::from(b));
        }
    }
    text
}

pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    ngx.set("header", header_table(lua)?)?;
    leaving_functions(lua, ngx)?;
    ngx.set(
        "flush",
        api_function(lua, |lua, _wait: Value| {
            allow_in(OUTPUT_PHASES)?;
            if crate::lua::eof_sent() {
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "seen eof"), lua);
            }
            match request()?.flush() {
                Ok(()) => mlua::IntoLuaMulti::into_lua_multi(1, lua),
                Err(e) => mlua::IntoLuaMulti::into_lua_multi((Value::Nil, e.to_string()), lua),
            }
        })?,
    )?;
    ngx.set(
        "send_headers",
        api_function(lua, |lua, _: MultiValue| {
            allow_in(OUTPUT_PHASES)?;
            let r = request()?;
            if !r.headers_sent() {
                let rc = r.send_header_if_needed();
                if rc == nginx_sys::NGX_ERROR as nginx_sys::ngx_int_t || rc > 0 {
                    let failed = crate::request::OutputError::Filter.to_string();
                    return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, failed), lua);
                }
            }
            mlua::IntoLuaMulti::into_lua_multi(1, lua)
        })?,
    )?;
    ngx.set(
        "eof",
        api_function(lua, |lua, ()| {
            if response_ended_by_lua(lua)? {
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "seen eof"), lua);
            }
            allow_in(OUTPUT_PHASES)?;
            if crate::lua::eof_sent() {
                return mlua::IntoLuaMulti::into_lua_multi((Value::Nil, "seen eof"), lua);
            }
            let rc = request()?.finish_response();
            crate::lua::mark_eof();
            if rc == nginx_sys::NGX_ERROR as nginx_sys::ngx_int_t {
                return mlua::IntoLuaMulti::into_lua_multi(
                    (Value::Nil, "nginx output filter error"),
                    lua,
                );
            }
            mlua::IntoLuaMulti::into_lua_multi(1, lua)
        })?,
    )?;

    let resp = lua.create_table()?;
    resp.set(
        "get_headers",
        api_function(lua, |lua, (max, raw): (Option<f64>, Option<bool>)| {
            let max = max_headers(max)?;
            headers_table(
                lua,
                request()?.response_headers(),
                max,
                raw.unwrap_or(false),
                "response",
            )
        })?,
    )?;
    ngx.set("resp", resp)?;

    let req: Table = ngx.get("req")?;
    req.set(
        "get_headers",
        api_function(lua, |lua, (max, raw): (Option<f64>, Option<bool>)| {
            let max = max_headers(max)?;
            headers_table(
                lua,
                request()?.request_headers(),
                max,
                raw.unwrap_or(false),
                "request",
            )
        })?,
    )?;
    req.set(
        "get_body_data",
        api_function(lua, |lua, ()| match request()?.body_data() {
            Some(data) => Ok(Value::String(lua.create_string(data)?)),
            None => Ok(Value::Nil),
        })?,
    )?;
    req.set(
        "get_body_file",
        api_function(lua, |lua, ()| match request()?.body_file() {
            Some(path) => Ok(Value::String(lua.create_string(path)?)),
            None => Ok(Value::Nil),
        })?,
    )?;
    req.set(
        "get_post_args",
        api_function(lua, |lua, max: Option<f64>| {
            let r = request()?;
            if !r.body_was_read() {
                return Err(raise(
                    "no request body found; maybe you should turn on lua_need_request_body?",
                ));
            }
            if r.body_file().is_some() {
                return mlua::IntoLuaMulti::into_lua_multi(
                    (Value::Nil, "request body in temp file not supported"),
                    lua,
                );
            }
            let max = match max {
                Some(m) if m >= 0.0 => m as usize,
                Some(_) => {
                    return Err(raise(
                        "bad argument #1 to 'get_post_args' (max_args must be non-negative)",
                    ))
                }
                None => 100,
            };
            let parsed = crate::text::args::parse_query(&r.body_data().unwrap_or_default(), max);
            mlua::IntoLuaMulti::into_lua_multi(super::parsed_args_table(lua, parsed, max)?, lua)
        })?,
    )?;
    req.set(
        "discard_body",
        api_function(lua, |_, ()| {
            allow_in(OUTPUT_PHASES)?;
            request()?.discard_unread_body();
            Ok(())
        })?,
    )?;
    req.set(
        "set_header",
        api_function(lua, |lua, (name, value): (Value, Value)| {
            super::refuse_stand_in_request()?;
            allow_in(REQUEST_HEADER_PHASES)?;
            let name = header_key(&name)?;
            let values: Vec<Vec<u8>> = match &value {
                Value::Nil => Vec::new(),
                Value::Table(list) => list
                    .sequence_values::<Value>()
                    .map(|v| header_text(lua, &v?))
                    .collect::<mlua::Result<_>>()?,
                single => vec![header_text(lua, single)?],
            };
            let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
            request()?
                .set_request_header(&name, &refs)
                .map_err(|e| raise(e.to_string()))
        })?,
    )?;
    req.set(
        "clear_header",
        api_function(lua, |_, name: Value| {
            super::refuse_stand_in_request()?;
            allow_in(REQUEST_HEADER_PHASES)?;
            let name = header_key(&name)?;
            request()?
                .set_request_header(&name, &[])
                .map_err(|e| raise(e.to_string()))
        })?,
    )?;
    req.set(
        "http_version",
        api_function(lua, |_, ()| Ok(request()?.http_version()))?,
    )?;
    req.set(
        "start_time",
        api_function(lua, |_, ()| {
            // The stand-in request of a timer or init_worker_by_lua starts
            // when its code runs.
            if super::runs_with_stand_in_request() {
                let (sec, msec) = crate::nginx::cached_time();
                return Ok(sec as f64 + msec as f64 / 1000.0);
            }
            Ok(request()?.start_time())
        })?,
    )?;
    req.set(
        "is_internal",
        api_function(lua, |_, ()| Ok(request()?.is_internal()))?,
    )?;
    req.set(
        "set_uri_args",
        api_function(lua, |lua, args: Value| {
            let query = match &args {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Table(_) => {
                    let ngx: Table = lua.globals().get("ngx")?;
                    let encode: Function = ngx.get("encode_args")?;
                    let s: mlua::LuaString = encode.call(args.clone())?;
                    s.as_bytes().to_vec()
                }
                other => {
                    return Err(raise(format!(
                        "bad argument #1 to 'set_uri_args' (string or table expected, got {})",
                        lua_type_name(other)
                    )))
                }
            };
            request()?
                .set_query_string(&query)
                .map_err(|e| raise(e.to_string()))
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tables_find_any_spelling_unless_raw() {
        let lua = Lua::new();
        let headers = vec![
            (b"X-One".to_vec(), b"1".to_vec()),
            (b"X-Twice".to_vec(), b"a".to_vec()),
            (b"x-twice".to_vec(), b"b".to_vec()),
        ];
        let (table, truncated): (Table, Value) = lua
            .unpack_multi(headers_table(&lua, headers.clone(), 0, false, "request").unwrap())
            .unwrap();
        lua.globals().set("h", table).unwrap();
        let found: (String, String, String, String) = lua
            .load(r#"return h["x-one"], h["X-One"], h.x_one, table.concat(h.x_twice, ",")"#)
            .eval()
            .unwrap();
        assert_eq!(found, ("1".into(), "1".into(), "1".into(), "a,b".into()));
        assert!(truncated.is_nil());
        let (raw, _): (Table, Value) = lua
            .unpack_multi(headers_table(&lua, headers, 1, true, "request").unwrap())
            .unwrap();
        assert_eq!(raw.get::<String>("X-One").unwrap(), "1");
        assert!(raw.get::<Value>("x-one").unwrap().is_nil());
    }
}
