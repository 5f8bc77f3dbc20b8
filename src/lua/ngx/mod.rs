//! The `ngx` table: output, exit, status, logging, time, variables, request
//! and worker information, constants. Names, return values and error texts
//! follow OpenResty's lua-nginx-module.

mod arguments;
mod config;
mod digests;
mod escaping;
pub mod location;
mod output;
pub mod regex;
pub mod request;
pub mod required;
mod time;

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};
use nginx_sys::NGX_LOG_DEBUG;

use super::output::append_scalar;
use super::raise::{api_function, lua_type_name, raise, CALLER_LEVEL};
use crate::nginx::{self, Log};
use crate::phase::Phase;
use crate::request::subrequest::METHODS;
use crate::request::HttpRequest;
use crate::text::args::{parse_query, ParsedArgs};

const HTTP_STATUS_CONSTANTS: &[(&str, i64)] = &[
    ("HTTP_CONTINUE", 100),
    ("HTTP_SWITCHING_PROTOCOLS", 101),
    ("HTTP_OK", 200),
    ("HTTP_CREATED", 201),
    ("HTTP_ACCEPTED", 202),
    ("HTTP_NO_CONTENT", 204),
    ("HTTP_PARTIAL_CONTENT", 206),
    ("HTTP_SPECIAL_RESPONSE", 300),
    ("HTTP_MOVED_PERMANENTLY", 301),
    ("HTTP_MOVED_TEMPORARILY", 302),
    ("HTTP_SEE_OTHER", 303),
    ("HTTP_NOT_MODIFIED", 304),
    ("HTTP_TEMPORARY_REDIRECT", 307),
    ("HTTP_PERMANENT_REDIRECT", 308),
    ("HTTP_BAD_REQUEST", 400),
    ("HTTP_UNAUTHORIZED", 401),
    ("HTTP_PAYMENT_REQUIRED", 402),
    ("HTTP_FORBIDDEN", 403),
    ("HTTP_NOT_FOUND", 404),
    ("HTTP_NOT_ALLOWED", 405),
    ("HTTP_NOT_ACCEPTABLE", 406),
    ("HTTP_REQUEST_TIMEOUT", 408),
    ("HTTP_CONFLICT", 409),
    ("HTTP_GONE", 410),
    ("HTTP_UPGRADE_REQUIRED", 426),
    ("HTTP_TOO_MANY_REQUESTS", 429),
    ("HTTP_CLOSE", 444),
    ("HTTP_ILLEGAL", 451),
    ("HTTP_INTERNAL_SERVER_ERROR", 500),
    ("HTTP_NOT_IMPLEMENTED", 501),
    ("HTTP_METHOD_NOT_IMPLEMENTED", 501),
    ("HTTP_BAD_GATEWAY", 502),
    ("HTTP_SERVICE_UNAVAILABLE", 503),
    ("HTTP_GATEWAY_TIMEOUT", 504),
    ("HTTP_VERSION_NOT_SUPPORTED", 505),
    ("HTTP_INSUFFICIENT_STORAGE", 507),
];

const LOG_LEVEL_CONSTANTS: &[(&str, i64)] = &[
    ("STDERR", 0),
    ("EMERG", 1),
    ("ALERT", 2),
    ("CRIT", 3),
    ("ERR", 4),
    ("WARN", 5),
    ("NOTICE", 6),
    ("INFO", 7),
    ("DEBUG", 8),
];

const RESULT_CONSTANTS: &[(&str, i64)] = &[
    ("OK", 0),
    ("ERROR", -1),
    ("AGAIN", -2),
    ("DONE", -4),
    ("DECLINED", -5),
];

/// The request the running chunk serves, or OpenResty's error outside one.
pub(crate) fn request() -> mlua::Result<HttpRequest> {
    refuse_stand_in_request()?;
    let r = super::current_request().ok_or_else(|| raise("no request object found"))?;
    // SAFETY: the pointer is set only while the handler for this live
    // request runs the chunk.
    unsafe { HttpRequest::from_raw(r) }.ok_or_else(|| raise("no request object found"))
}

/// Key of the registry table mapping each live request to its `ngx.ctx`.
pub const REQUEST_CTX_KEY: &str = "ngx_lua_shdict.request_ctx";

/// Raises OpenResty's error when the running phase may not use an API.
pub(super) fn allow_in(phases: &[Phase]) -> mlua::Result<()> {
    match super::current_phase() {
        Some(phase) if phases.contains(&phase) => Ok(()),
        Some(phase) => Err(raise(format!(
            "API disabled in the context of {}",
            phase.context_name()
        ))),
        None => Ok(()),
    }
}

/// Phases that may write a response body.
pub(super) const OUTPUT_PHASES: &[Phase] = &[
    Phase::ServerRewrite,
    Phase::Rewrite,
    Phase::Access,
    Phase::Content,
];

/// Registry key of `ngx.ctx` in `init_worker_by_lua*` and
/// `exit_worker_by_lua*`, which run once per worker without a scheduler.
const PROCESS_CTX_KEY: &str = "ngx_lua_shdict.process_ctx";

/// `ngx.ctx` of the running request, created on first use. A timer's
/// callback (with its light threads) and a worker's init or exit code have
/// one of their own, as OpenResty's stand-in request has.
fn request_ctx(lua: &Lua) -> mlua::Result<Table> {
    if runs_with_stand_in_request() {
        return stand_in_ctx(lua, None);
    }
    let r = request()?;
    let map: Table = lua.named_registry_value(REQUEST_CTX_KEY)?;
    let key = LightUserData(r.as_ptr().cast());
    if let Value::Table(ctx) = map.raw_get::<Value>(key)? {
        return Ok(ctx);
    }
    let ctx = lua.create_table()?;
    set_request_ctx(lua, r, ctx.clone())?;
    Ok(ctx)
}

/// The stand-in request's `ngx.ctx` (replaced by `new` when given).
fn stand_in_ctx(lua: &Lua, new: Option<Table>) -> mlua::Result<Table> {
    if let Some(scheduler) = super::scheduler::current() {
        let mut scheduler = scheduler
            .try_borrow_mut()
            .map_err(|_| raise("API disabled in this context"))?;
        return scheduler.run_ctx(lua, new);
    }
    let ctx = match new {
        Some(table) => table,
        None => match lua.named_registry_value::<Value>(PROCESS_CTX_KEY)? {
            Value::Table(table) => return Ok(table),
            _ => lua.create_table()?,
        },
    };
    lua.set_named_registry_value(PROCESS_CTX_KEY, ctx.clone())?;
    Ok(ctx)
}

/// Makes `ctx` the `ngx.ctx` of request `r`.
pub(super) fn set_request_ctx(lua: &Lua, r: HttpRequest, ctx: Table) -> mlua::Result<()> {
    let map: Table = lua.named_registry_value(REQUEST_CTX_KEY)?;
    let slot = LightUserData(r.as_ptr().cast());
    if map.raw_get::<Value>(slot)?.is_nil() {
        // The table goes with the request.
        let lua = lua.clone();
        r.at_end(move || {
            if let Ok(map) = lua.named_registry_value::<Table>(REQUEST_CTX_KEY) {
                let _ = map.raw_remove(slot);
            }
        });
    }
    map.raw_set(slot, ctx)
}

fn set_constants(table: &Table, constants: &[(&str, i64)]) -> mlua::Result<()> {
    for &(name, value) in constants {
        table.set(name, value)?;
    }
    Ok(())
}

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let ngx = lua.create_table()?;
    set_constants(&ngx, HTTP_STATUS_CONSTANTS)?;
    for &(bit, name) in METHODS {
        ngx.set(format!("HTTP_{}", String::from_utf8_lossy(name)), bit)?;
    }
    set_constants(&ngx, LOG_LEVEL_CONSTANTS)?;
    set_constants(&ngx, RESULT_CONSTANTS)?;
    ngx.set("null", LightUserData(core::ptr::null_mut()))?;

    output::install(lua, &ngx)?;
    ngx.set("log", log_function(lua)?)?;
    ngx.set("exit", exit_function(lua)?)?;
    ngx.set("var", variables_table(lua)?)?;
    ngx.set("req", request_table(lua)?)?;
    ngx.set("worker", worker_table(lua)?)?;
    request::install(lua, &ngx)?;
    super::timer::install(lua, &ngx)?;
    let tostring: Function = lua.globals().get("tostring")?;
    escaping::install(lua, &ngx, &tostring)?;
    digests::install(lua, &ngx, &tostring)?;
    time::install(lua, &ngx)?;
    config::install(lua, &ngx)?;
    location::install(lua, &ngx)?;
    regex::install(lua, &ngx)?;
    super::scheduler::install(lua, &ngx)?;
    super::socket::install(lua, &ngx)?;
    ngx.set("shared", lua.create_table()?)?;
    // Outside set_by_lua* and body_filter_by_lua* (which put theirs here
    // while they run), an empty table, as OpenResty's.
    ngx.set("arg", lua.create_table()?)?;
    ngx.set(
        "get_phase",
        api_function(lua, |_, ()| {
            Ok(super::current_phase().map(Phase::name).unwrap_or("init"))
        })?,
    )?;
    lua.set_named_registry_value(REQUEST_CTX_KEY, lua.create_table()?)?;
    ngx.set_metatable(Some(status_metatable(lua)?))?;

    lua.globals().set("ngx", ngx.clone())?;
    lua.globals().set("print", print_function(lua)?)?;
    lua.register_module("ngx", ngx)?;
    Ok(())
}

/// Appends one `ngx.log`/`print` argument as OpenResty formats it.
fn append_log_argument(
    lua: &Lua,
    func: &str,
    index: usize,
    value: &Value,
    out: &mut Vec<u8>,
) -> mlua::Result<()> {
    match value {
        Value::Table(t) => {
            let has_tostring = t
                .metatable()
                .map(|m| m.contains_key("__tostring").unwrap_or(false))
                .unwrap_or(false);
            if !has_tostring {
                return Err(raise(format!("bad argument #{index} to '{func}' (expected table to have __tostring metamethod)"),
                ));
            }
            let tostring: Function = lua.globals().get("tostring")?;
            let text: mlua::LuaString = tostring.call(value.clone())?;
            out.extend_from_slice(&text.as_bytes());
        }
        other => append_scalar(other, out).map_err(|type_name| {
            raise(
                format!(
                    "bad argument #{index} to '{func}' (string, number, boolean, or nil expected, got {type_name})"
                ),
            )
        })?,
    }
    Ok(())
}

fn log_target() -> Option<Log> {
    match super::current_request() {
        // SAFETY: set only while the live request's chunk runs.
        Some(r) => unsafe { HttpRequest::from_raw(r) }.and_then(|r| r.log()),
        None => Log::cycle(),
    }
}

/// Writes `[lua] source:line: func(): message` at `level`, skipping all the
/// formatting when the log would drop the line anyway.
fn write_lua_log(
    lua: &Lua,
    func: &str,
    level: usize,
    args: &[Value],
    first_index: usize,
) -> mlua::Result<()> {
    let Some(log) = log_target().filter(|log| log.enabled(level)) else {
        return Ok(());
    };
    let mut line = b"[lua] ".to_vec();
    let position = lua.inspect_stack(CALLER_LEVEL, |debug| {
        let source = debug.source();
        let src = source.short_src.map(|s| s.into_owned()).unwrap_or_default();
        let current = debug.current_line().map(|l| l as i64).unwrap_or(-1);
        let name = debug.names().name.map(|n| n.into_owned());
        (src, current, name)
    });
    if let Some((src, current, name)) = position {
        line.extend_from_slice(format!("{src}:{current}: ").as_bytes());
        if let Some(name) = name {
            line.extend_from_slice(format!("{name}(): ").as_bytes());
        }
    }
    for (i, value) in args.iter().enumerate() {
        append_log_argument(lua, func, first_index + i, value, &mut line)?;
    }
    log.write(level, &line);
    Ok(())
}

fn log_function(lua: &Lua) -> mlua::Result<Function> {
    api_function(lua, |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        let level = match args.first() {
            Some(Value::Integer(i)) => *i as f64,
            Some(Value::Number(n)) => *n,
            Some(other) => {
                return Err(raise(format!(
                    "bad argument #1 to 'log' (number expected, got {})",
                    lua_type_name(other)
                )))
            }
            None => {
                return Err(raise(
                    "bad argument #1 to 'log' (number expected, got no value)",
                ))
            }
        };
        if !(0.0..=f64::from(NGX_LOG_DEBUG)).contains(&level) {
            return Err(raise(format!("bad log level: {level}")));
        }
        write_lua_log(lua, "log", level as usize, &args[1..], 2)
    })
}

fn print_function(lua: &Lua) -> mlua::Result<Function> {
    api_function(lua, |lua, args: MultiValue| {
        let args: Vec<Value> = args.into_iter().collect();
        write_lua_log(lua, "print", nginx_sys::NGX_LOG_NOTICE as usize, &args, 1)
    })
}

/// `ngx.exit` records the status and waits forever: the handler then
/// finishes the request. Written in Lua so the yield crosses
/// `pcall` and nested calls as OpenResty's does.
fn exit_function(lua: &Lua) -> mlua::Result<Function> {
    let record = api_function(lua, |_, status: f64| {
        allow_in(OUTPUT_PHASES)?;
        let r = request()?;
        // Statuses that drop the connection need no response.
        if !matches!(status as isize, -1 | 408 | 444 | 499) {
            request::refuse_abort_with_subrequests(r)?;
        }
        super::record_exit(status as isize);
        Ok(())
    })?;
    let wait_here = super::scheduler::wait_here(lua)?;
    // The argument check lives here so that its error points at the caller.
    lua.load(
        "local record, wait_here, type, error = ...\n\
         return function(status)\n\
             if type(status) ~= 'number' then\n\
                 error(\"bad argument #1 to 'exit' (number expected, got \" .. type(status) .. \")\", 2)\n\
             end\n\
             record(status)\n\
             return wait_here()\n\
         end",
    )
    .set_name(super::raise::internal_chunk_name("ngx.exit"))
    .call((
        record,
        wait_here,
        lua.globals().get::<Function>("type")?,
        lua.globals().get::<Function>("error")?,
    ))
}

fn status_metatable(lua: &Lua) -> mlua::Result<Table> {
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        api_function(lua, |lua, (_ngx, key): (Table, Value)| {
            if let Value::String(k) = &key {
                match k.as_bytes().as_ref() {
                    b"status" => return Ok(Value::Integer(request()?.status() as _)),
                    b"headers_sent" => return Ok(Value::Boolean(request()?.headers_sent())),
                    b"ctx" => return Ok(Value::Table(request_ctx(lua)?)),
                    b"is_subrequest" => return is_subrequest(),
                    _ => {}
                }
            }
            Ok(Value::Nil)
        })?,
    )?;
    meta.set(
        "__newindex",
        api_function(lua, |lua, (ngx, key, value): (Table, Value, Value)| {
            let name = match &key {
                Value::String(k) => k.as_bytes().to_vec(),
                _ => Vec::new(),
            };
            if name == b"ctx" {
                let Value::Table(table) = value else {
                    return Err(raise(format!(
                        "ctx should be a table while getting a {}",
                        lua_type_name(&value)
                    )));
                };
                if runs_with_stand_in_request() {
                    return stand_in_ctx(lua, Some(table)).map(drop);
                }
                return set_request_ctx(lua, request()?, table);
            }
            if name != b"status" {
                return ngx.raw_set(key, value);
            }
            let r = request()?;
            let status = match value {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                Value::String(s) => s.to_str()?.trim().parse::<f64>().unwrap_or(-1.0),
                _ => -1.0,
            };
            if r.headers_sent() {
                if let Some(log) = r.log() {
                    log.write(
                        nginx_sys::NGX_LOG_ERR as usize,
                        b"attempt to set ngx.status after sending out response headers",
                    );
                }
                return Ok(());
            }
            if !(100.0..=999.0).contains(&status) {
                return Err(raise("invalid HTTP status code"));
            }
            r.set_status(status as usize);
            Ok(())
        })?,
    )?;
    Ok(meta)
}

fn variables_table(lua: &Lua) -> mlua::Result<Table> {
    let var = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.set(
        "__index",
        api_function(lua, |lua, (_t, name): (Value, Value)| {
            let r = request()?;
            let name = match name {
                Value::String(s) => s.as_bytes().to_vec(),
                // ngx.var[1]: a capture of the location's regex.
                Value::Integer(n) => {
                    let capture = usize::try_from(n).ok().and_then(|n| r.regex_capture(n));
                    return match capture {
                        Some(value) => Ok(Value::String(lua.create_string(value)?)),
                        None => Ok(Value::Nil),
                    };
                }
                other => {
                    return Err(raise(format!(
                        "bad variable name of type {}",
                        lua_type_name(&other)
                    )))
                }
            };
            match r.variable(&name) {
                Some(value) => Ok(Value::String(lua.create_string(value)?)),
                None => Ok(Value::Nil),
            }
        })?,
    )?;
    meta.set(
        "__newindex",
        api_function(
            lua,
            |_, (_t, name, value): (Value, mlua::LuaString, Value)| {
                let r = request()?;
                let value = match &value {
                    Value::Nil => None,
                    Value::String(s) => Some(s.as_bytes().to_vec()),
                    Value::Number(_) | Value::Integer(_) => {
                        let mut out = Vec::new();
                        super::output::append_scalar(&value, &mut out).ok();
                        Some(out)
                    }
                    other => {
                        return Err(raise(format!(
                            "bad variable value type {}",
                            lua_type_name(other)
                        )))
                    }
                };
                r.set_variable(&name.as_bytes(), value.as_deref())
                    .map_err(|e| raise(e.to_string()))
            },
        )?,
    )?;
    var.set_metatable(Some(meta))?;
    Ok(var)
}

fn request_table(lua: &Lua) -> mlua::Result<Table> {
    let req = lua.create_table()?;
    req.set(
        "get_method",
        api_function(lua, |lua, ()| {
            let r = request()?;
            lua.create_string(r.method_name())
        })?,
    )?;
    req.set(
        "set_method",
        api_function(lua, |_, method: Value| {
            // LuaJIT's conversion of the number to a C int truncates it.
            let number = match method {
                Value::Integer(n) => n,
                Value::Number(n) => n as i64,
                _ => return Err(raise("bad method number")),
            };
            if runs_with_stand_in_request() {
                return Err(raise("API disabled in the current context"));
            }
            let r = request_found()?;
            let &(bit, name) = METHODS
                .iter()
                .find(|(bit, _)| i64::from(*bit) == number)
                .ok_or_else(|| raise(format!("unsupported HTTP method: {number}")))?;
            r.set_method(bit, name);
            Ok(())
        })?,
    )?;
    req.set(
        "get_uri_args",
        api_function(lua, |lua, max: Option<f64>| {
            let r = request()?;
            let max = match max {
                Some(m) if m >= 0.0 => m as usize,
                Some(_) => {
                    return Err(raise(
                        "bad argument #1 to 'get_uri_args' (max_args must be non-negative)",
                    ))
                }
                None => 100,
            };
            parsed_args_table(lua, parse_query(r.query_string(), max), max)
        })?,
    )?;
    Ok(req)
}

/// `args, "truncated"?` as `get_uri_args` and `get_post_args` return them:
/// repeated keys become arrays, bare keys `true`.
fn parsed_args_table(lua: &Lua, parsed: ParsedArgs, max: usize) -> mlua::Result<(Table, Value)> {
    let truncated = parsed.truncated;
    if truncated {
        log_debug(&format!("lua hit query args limit {max}"));
    }
    let args = escaping::args_table(lua, parsed)?;
    let truncated = if truncated {
        Value::String(lua.create_string("truncated")?)
    } else {
        Value::Nil
    };
    Ok((args, truncated))
}

fn worker_table(lua: &Lua) -> mlua::Result<Table> {
    let worker = lua.create_table()?;
    worker.set("pid", api_function(lua, |_, ()| Ok(nginx::process_id()))?)?;
    worker.set("id", api_function(lua, |_, ()| Ok(nginx::worker_id()))?)?;
    worker.set(
        "count",
        api_function(lua, |_, ()| Ok(nginx::worker_count()))?,
    )?;
    worker.set(
        "pids",
        api_function(lua, |lua, _: MultiValue| {
            // The master has not started the workers yet, nor told a
            // starting worker of the others.
            if matches!(
                super::current_phase(),
                None | Some(Phase::Init | Phase::InitWorker)
            ) {
                let disabled = (Value::Nil, "API disabled in the current context");
                return mlua::IntoLuaMulti::into_lua_multi(disabled, lua);
            }
            mlua::IntoLuaMulti::into_lua_multi(
                lua.create_sequence_from(nginx::process_pids())?,
                lua,
            )
        })?,
    )?;
    Ok(worker)
}

/// Whether the running phase is one OpenResty runs with a stand-in request
/// (timers, `init_worker_by_lua*`, `exit_worker_by_lua*`): there the
/// request-changing APIs pass their argument checks, then answer `API
/// disabled in the current context`, where `init_by_lua*`, without any
/// request, says `no request found`.
pub(super) fn runs_with_stand_in_request() -> bool {
    matches!(
        super::current_phase(),
        Some(Phase::Timer | Phase::InitWorker | Phase::ExitWorker)
    )
}

/// `ngx.is_subrequest`, read through the `ngx` table's `__index`.
fn is_subrequest() -> mlua::Result<Value> {
    Ok(Value::Boolean(request_found()?.is_subrequest()))
}

/// Readers of a request's location settings the Lua API depends on,
/// installed by the layer that reads the configuration.
pub struct LocationSettings {
    /// `lua_check_client_abort`.
    pub checks_client_abort: fn(HttpRequest) -> bool,
    /// `lua_transform_underscores_in_response_headers`.
    pub transforms_underscores: fn(HttpRequest) -> bool,
    /// Whether the location's content handler is `content_by_lua*`.
    pub has_lua_content: fn(HttpRequest) -> bool,
}

static LOCATION_SETTINGS: std::sync::OnceLock<LocationSettings> = std::sync::OnceLock::new();

/// Installs what [`client_abort_checked`] and [`response_names`] ask.
pub fn install_location_settings(settings: LocationSettings) {
    let _ = LOCATION_SETTINGS.set(settings);
}

/// Whether the running request's location has `lua_check_client_abort on`.
pub(crate) fn client_abort_checked() -> bool {
    match (request(), LOCATION_SETTINGS.get()) {
        (Ok(r), Some(settings)) => (settings.checks_client_abort)(r),
        _ => false,
    }
}

/// Whether `r`'s location answers with `content_by_lua*`.
pub(crate) fn runs_lua_content(r: HttpRequest) -> bool {
    LOCATION_SETTINGS
        .get()
        .is_some_and(|settings| (settings.has_lua_content)(r))
}

/// How `r`'s location reads response header names in `ngx.header` and
/// `ngx.resp.add_header`.
pub(crate) fn response_names(r: HttpRequest) -> crate::request::headers::ResponseNames {
    use crate::request::headers::ResponseNames;
    match LOCATION_SETTINGS.get() {
        Some(settings) if !(settings.transforms_underscores)(r) => ResponseNames::AsGiven,
        _ => ResponseNames::UnderscoresAsHyphens,
    }
}

/// Writes a debug-level line to the running request's log, or the cycle's
/// outside requests, as OpenResty's debug lines go.
pub(super) fn log_debug(line: &str) {
    let log = request().ok().and_then(|r| r.log()).or_else(Log::cycle);
    if let Some(log) = log {
        log.write(NGX_LOG_DEBUG as usize, line.as_bytes());
    }
}

/// The running request, for the APIs lua-resty-core writes in Lua, which
/// say `no request found` without one (those in C say `no request object
/// found`, see [`request`]).
pub(super) fn request_found() -> mlua::Result<HttpRequest> {
    refuse_stand_in_request()?;
    request().map_err(|_| raise("no request found"))
}

/// OpenResty runs timers and init_worker_by_lua with a stand-in request,
/// which its request APIs refuse with this error (before any check of
/// their own phase list).
pub(super) fn refuse_stand_in_request() -> mlua::Result<()> {
    if runs_with_stand_in_request() {
        return Err(raise("API disabled in the current context"));
    }
    Ok(())
}
