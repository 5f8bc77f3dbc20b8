//! `ngx.location.capture` and `ngx.location.capture_multi`: the options
//! Lua gives, and the response tables it gets back. The subrequests
//! themselves are the HTTP layer's (`http::subrequest`).

use mlua::{Function, Lua, MultiValue, Table, Value};

use super::{allow_in, request, set_request_ctx, OUTPUT_PHASES};
use crate::lua::raise::{api_function, lua_type_name, raise};
use crate::lua::scheduler::{current_coroutine, park_sentinel, Request};
use crate::request::subrequest::{start_captures, Captured, SubrequestSpec, METHODS};
use crate::request::HttpRequest;

/// A number or string option as bytes (numbers formatted as Lua does).
fn text_of(lua: &Lua, value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(_) | Value::Number(_) => lua
            .coerce_string(value.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    }
}

fn args_option(lua: &Lua, value: &Value) -> mlua::Result<Vec<u8>> {
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Table(table) => super::escaping::encode_args(table).map_err(raise),
        other => text_of(lua, other).ok_or_else(|| raise("Bad args option value")),
    }
}

fn method_option(value: &Value, log_request: HttpRequest) -> mlua::Result<(u32, &'static [u8])> {
    let number = match value {
        Value::Nil => return Ok(METHODS[0]),
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => return Err(raise("Bad http request method")),
    };
    match METHODS.iter().find(|(bit, _)| f64::from(*bit) == number) {
        Some(&method) => Ok(method),
        None => {
            if let Some(log) = log_request.log() {
                let line = format!("unsupported HTTP method: {number}");
                log.write(nginx_sys::NGX_LOG_ERR as usize, line.as_bytes());
            }
            Err(raise("failed to adjust the subrequest: -1"))
        }
    }
}

fn vars_option(lua: &Lua, value: &Value) -> mlua::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let table = match value {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(table) => table,
        _ => return Err(raise("Bad vars option value")),
    };
    let mut vars = Vec::new();
    for pair in table.pairs::<Value, Value>() {
        let (key, value) = pair?;
        let Value::String(key) = key else {
            return Err(raise(
                "attempt to use a non-string key in the \"vars\" option table",
            ));
        };
        let value = text_of(lua, &value).ok_or_else(|| {
            raise(format!(
                "attempt to use bad variable value type {}",
                lua_type_name(&value)
            ))
        })?;
        vars.push((key.as_bytes().to_vec(), value));
    }
    Ok(vars)
}

fn flag_option(value: &Value, name: &str) -> mlua::Result<bool> {
    match value {
        Value::Nil => Ok(false),
        Value::Boolean(b) => Ok(*b),
        _ => Err(raise(format!("Bad {name} option value"))),
    }
}

/// One subrequest's URI and options: what to start and the `ctx` it gets.
fn parse_entry(
    lua: &Lua,
    uri_value: Value,
    options: Value,
    index: usize,
    req: HttpRequest,
) -> mlua::Result<(SubrequestSpec, Option<Table>)> {
    let uri = text_of(lua, &uri_value).ok_or_else(|| {
        raise(format!(
            "bad argument #1 to 'capture' (string expected, got {})",
            lua_type_name(&uri_value)
        ))
    })?;
    let mut spec = SubrequestSpec {
        uri,
        args: Vec::new(),
        method: METHODS[0],
        body: None,
        vars: Vec::new(),
        copy_all_vars: false,
        share_all_vars: false,
        always_forward_body: false,
    };
    let options = match options {
        Value::Nil => return Ok((spec, None)),
        Value::Table(options) => options,
        other => {
            return Err(raise(format!(
                "expecting table as the 2nd argument for subrequest {index}, but got {}",
                lua_type_name(&other)
            )))
        }
    };
    spec.args = args_option(lua, &options.raw_get("args")?)?;
    spec.method = method_option(&options.raw_get("method")?, req)?;
    spec.body = match options.raw_get::<Value>("body")? {
        Value::Nil => None,
        other => Some(text_of(lua, &other).ok_or_else(|| raise("Bad http request body"))?),
    };
    spec.vars = vars_option(lua, &options.raw_get("vars")?)?;
    spec.share_all_vars = flag_option(&options.raw_get("share_all_vars")?, "share_all_vars")?;
    spec.copy_all_vars = flag_option(&options.raw_get("copy_all_vars")?, "copy_all_vars")?;
    spec.always_forward_body = !matches!(
        options.raw_get::<Value>("always_forward_body")?,
        Value::Nil | Value::Boolean(false)
    );
    let ctx = match options.raw_get::<Value>("ctx")? {
        Value::Nil => None,
        Value::Table(ctx) => Some(ctx),
        other => {
            return Err(raise(format!(
                "Bad ctx option value type {}, expected a Lua table",
                lua_type_name(&other)
            )))
        }
    };
    Ok((spec, ctx))
}

/// Starts the subrequests (`uri, options` pairs, their shape checked by
/// `location.lua`) and returns the sentinel that makes the Lua wrapper wait
/// for them.
fn capture_multi(lua: &Lua, args: MultiValue) -> mlua::Result<Value> {
    allow_in(OUTPUT_PHASES)?;
    let req = request()?;
    let count = args.len().div_ceil(2);
    let mut specs = Vec::with_capacity(count);
    let mut contexts = Vec::with_capacity(count);
    let mut args = args.into_iter();
    for index in 0..count {
        let uri = args.next().unwrap_or(Value::Nil);
        let options = args.next().unwrap_or(Value::Nil);
        let (spec, ctx) = parse_entry(lua, uri, options, index, req)?;
        specs.push(spec);
        contexts.push(ctx);
    }
    let co = current_coroutine().ok_or_else(|| raise("no co ctx found"))?;
    let subrequests = start_captures(req, co, &specs).map_err(|e| raise(e.to_string()))?;
    for (sr, ctx) in subrequests.into_iter().zip(contexts) {
        // SAFETY: subrequests just created live as long as the main request.
        if let (Some(ctx), Some(sr)) = (ctx, unsafe { HttpRequest::from_raw(sr) }) {
            // Only running out of memory fails here, and the subrequests
            // are under way: they go on without the table.
            let _ = set_request_ctx(lua, sr, ctx);
        }
    }
    crate::lua::record_request(Request::Subrequests);
    Ok(park_sentinel())
}

/// Registry key of `location.lua`'s result table builder.
pub const RESPONSE_BUILDER_KEY: &str = "ngx_lua_shdict.capture_response";

/// The tables the waiting coroutine resumes with, one per subrequest,
/// built by `builder` (see [`RESPONSE_BUILDER_KEY`]).
pub(crate) fn response_tables(
    lua: &Lua,
    builder: &Function,
    responses: Vec<Captured>,
) -> mlua::Result<MultiValue> {
    let mut tables = MultiValue::with_capacity(responses.len());
    for response in responses {
        let mut args = MultiValue::with_capacity(4 + 2 * response.headers.len());
        args.push_back(Value::Integer(response.status as _));
        args.push_back(Value::String(lua.create_string(&response.body)?));
        args.push_back(Value::Boolean(response.truncated));
        args.push_back(
            response
                .content_length
                .map_or(Value::Nil, |n| Value::Number(n as f64)),
        );
        for (name, value) in response.headers {
            args.push_back(Value::String(lua.create_string(&name)?));
            args.push_back(Value::String(lua.create_string(&value)?));
        }
        tables.push_back(builder.call::<Value>(args)?);
    }
    Ok(tables)
}

pub fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    let capture_op = api_function(lua, capture_multi)?;
    let make: Function = lua
        .load(include_str!("location.lua"))
        .set_name(crate::lua::raise::internal_chunk_name("ngx.location"))
        .into_function()?;
    let (location, response): (Table, Function) = make.call((
        park_sentinel(),
        capture_op,
        crate::lua::scheduler::wait_here(lua)?,
    ))?;
    lua.set_named_registry_value(RESPONSE_BUILDER_KEY, response)?;
    ngx.set("location", location)?;
    Ok(())
}
