//! The operations under `tcp.lua`'s methods: argument conversion,
//! OpenResty's returns and error texts, and the wait protocol (see the
//! module above).

use core::cell::RefCell;

use mlua::{AnyUserData, IntoLuaMulti, Lua, MultiValue, Table, UserData, Value};
use nginx_sys::NGX_LOG_ERR;

use super::{allowed_here, running_thread, settings};
use crate::lua::raise::{api_function, internal_chunk_name, lua_type_name, raise_plain};
use crate::lua::scheduler::Request;
use crate::lua::scheduler::{park_sentinel, wait_here};
use crate::request::socket::inbox::Want;
use crate::request::socket::pool::PoolOptions;
use crate::request::socket::{Busy, Failure, Received, Step, Target, TcpSocket};

/// The Rust side of a `ngx.socket.tcp()` object.
struct Core(TcpSocket);

impl UserData for Core {}

thread_local! {
    /// Where `send` flattens its argument (kept for the next call).
    static SEND_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

type Results = mlua::Result<MultiValue>;

fn nil_err(lua: &Lua, err: impl AsRef<[u8]>) -> Results {
    (Value::Nil, lua.create_string(err)?).into_lua_multi(lua)
}

fn park(lua: &Lua) -> Results {
    park_sentinel().into_lua_multi(lua)
}

/// Checks the context and that the socket belongs to the running request;
/// gives the running thread's owner key and waiter.
fn enter(socket: &TcpSocket) -> mlua::Result<(usize, crate::request::socket::Waiter)> {
    allowed_here()?;
    let (owner, waiter) = running_thread()?;
    if socket.owner() != 0 && socket.owner() != owner {
        return Err(raise_plain("bad request"));
    }
    Ok((owner, waiter))
}

/// Another thread's operation is waiting on the socket.
fn busy_text(busy: Busy) -> &'static str {
    match busy {
        Busy::Connecting => "socket busy connecting",
        Busy::Reading => "socket busy reading",
        Busy::Writing => "socket busy writing",
    }
}

/// Parks the running thread until the socket's next event.
fn wait_on(socket: &mut TcpSocket, waiter: crate::request::socket::Waiter) {
    socket.wait_with(waiter);
    crate::lua::record_request(Request::Io);
}

/// Logs a failure as OpenResty does with `lua_socket_log_errors on`.
fn log_failure(socket: &TcpSocket, what: &str, failure: &Failure) {
    if !socket.settings().is_none_or(|s| s.log_errors) {
        return;
    }
    let line = match failure {
        Failure::Timeout if what == "connect" => format!(
            "lua tcp socket connect timed out, when connecting to {}",
            String::from_utf8_lossy(socket.peer_name())
        ),
        Failure::Timeout if what == "send" => "lua tcp socket write timed out".to_string(),
        Failure::Timeout => "lua tcp socket read timed out".to_string(),
        Failure::Os(errno) if what == "connect" => format!(
            "connect() failed ({errno}: {})",
            crate::request::socket::os_error_text(*errno)
                .get(..1)
                .map(|first| first.to_ascii_uppercase())
                .unwrap_or_default()
                + crate::request::socket::os_error_text(*errno)
                    .get(1..)
                    .unwrap_or("")
        ),
        _ => return,
    };
    log_error(&line);
}

fn log_error(line: &str) {
    let log = crate::lua::ngx::request()
        .ok()
        .and_then(|r| r.log())
        .or_else(crate::nginx::Log::cycle);
    if let Some(log) = log {
        log.write(NGX_LOG_ERR as usize, line.as_bytes());
    }
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn pool_options(options: &Value) -> mlua::Result<PoolOptions> {
    let mut pool = PoolOptions::default();
    let Value::Table(table) = options else {
        if matches!(options, Value::Nil) {
            return Ok(pool);
        }
        return Err(raise_plain(format!(
            "bad argument #4 to '?' (table expected, got {})",
            lua_type_name(options)
        )));
    };
    match table.raw_get::<Value>("pool")? {
        Value::Nil => {}
        Value::String(s) => pool.key = Some(s.as_bytes().to_vec()),
        number @ (Value::Integer(_) | Value::Number(_)) => {
            let mut text = Vec::new();
            crate::lua::output::format_number(number_of(&number).unwrap_or(0.0), &mut text);
            pool.key = Some(text);
        }
        other => {
            return Err(raise_plain(format!(
                "bad \"pool\" option type: {}",
                lua_type_name(&other)
            )))
        }
    }
    match table.raw_get::<Value>("pool_size")? {
        Value::Nil => {}
        value @ (Value::Integer(_) | Value::Number(_)) => {
            let size = number_of(&value).unwrap_or(0.0) as i64;
            if size <= 0 {
                return Err(raise_plain(format!(
                    "bad argument #4 to '?' (bad \"pool_size\" option value: {size})"
                )));
            }
            pool.size = Some(size as usize);
        }
        other => {
            return Err(raise_plain(format!(
                "bad argument #4 to '?' (bad \"pool_size\" option type: {})",
                lua_type_name(&other)
            )))
        }
    }
    match table.raw_get::<Value>("backlog")? {
        Value::Nil => {}
        value @ (Value::Integer(_) | Value::Number(_)) => {
            let backlog = number_of(&value).unwrap_or(0.0) as i64;
            if backlog < 0 {
                return Err(raise_plain(format!(
                    "bad argument #4 to '?' (bad \"backlog\" option value: {backlog})"
                )));
            }
            pool.backlog = Some(backlog as usize);
        }
        other => {
            return Err(raise_plain(format!(
                "bad argument #4 to '?' (bad \"backlog\" option type: {})",
                lua_type_name(&other)
            )))
        }
    }
    Ok(pool)
}

fn connect(lua: &Lua, ud: &AnyUserData, host: Value, port: Value, options: Value) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    let socket = &mut core.0;
    let (owner, waiter) = enter(socket)?;
    let host_bytes = match &host {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => {
            let mut text = Vec::new();
            crate::lua::output::format_number(number_of(&host).unwrap_or(0.0), &mut text);
            text
        }
        other => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (string expected, got {})",
                lua_type_name(other)
            )))
        }
    };
    let unix = host_bytes.starts_with(b"unix:");
    // A unix path may take the options third.
    let (port, options) = match (&port, unix) {
        (Value::Table(_), true) => (Value::Nil, port.clone()),
        _ => (port, options),
    };
    let port = if unix {
        None
    } else {
        let number = number_of(&port).unwrap_or(0.0) as i64;
        if !(0..=65535).contains(&number) {
            return nil_err(lua, format!("bad port number: {number}"));
        }
        if number == 0 {
            return nil_err(lua, "missing the port number");
        }
        Some(number as u16)
    };
    let options = pool_options(&options)?;
    if let Some(busy) = socket.busy() {
        if busy != Busy::Connecting {
            return nil_err(lua, busy_text(busy));
        }
    }
    if let Ok(r) = crate::lua::ngx::request() {
        // SAFETY: the running request is live, its state slot set up.
        if !unsafe { crate::request::state::own_sockets(r.as_ptr()) } {
            return nil_err(lua, "no memory");
        }
    }
    let target = Target::parse(&host_bytes, port);
    match socket.connect(&target, &options, &settings(), owner) {
        Step::Done(()) => 1.into_lua_multi(lua),
        Step::Wait => {
            wait_on(socket, waiter);
            park(lua)
        }
        Step::Failed(failure) => {
            log_failure(socket, "connect", &failure);
            nil_err(lua, failure.message())
        }
    }
}

/// Appends what `send` sends for `value` (an element of an array table
/// when `nested`).
fn flatten(value: &Value, nested: bool, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(s) => out.extend_from_slice(&s.as_bytes()),
        Value::Integer(_) | Value::Number(_) => {
            crate::lua::output::format_number(number_of(value).unwrap_or(0.0), out)
        }
        Value::Table(table) => {
            for item in table.clone().sequence_values::<Value>() {
                flatten(&item?, true, out)?;
            }
        }
        Value::Boolean(_) | Value::Nil if nested => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (bad data type {} found)",
                lua_type_name(value)
            )))
        }
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"nil"),
        other if nested => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (bad data type {} found)",
                lua_type_name(other)
            )))
        }
        other => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (string, number, boolean, nil, or array table expected, got {})",
                lua_type_name(other)
            )))
        }
    }
    Ok(())
}

fn send(lua: &Lua, ud: &AnyUserData, data: Value) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    let socket = &mut core.0;
    let (_, waiter) = enter(socket)?;
    match socket.busy() {
        Some(Busy::Writing) | None => {}
        Some(busy) if !socket.is_connected() => return nil_err(lua, busy_text(busy)),
        Some(_) => {}
    }
    if !socket.is_connected() {
        if socket.settings().is_none_or(|s| s.log_errors) {
            log_error("attempt to send data on a closed socket");
        }
        return nil_err(lua, "closed");
    }
    let step = match &data {
        Value::String(s) => socket.send(&s.as_bytes()),
        other => SEND_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            buffer.clear();
            flatten(other, false, &mut buffer)?;
            Ok::<_, mlua::Error>(socket.send(&buffer))
        })?,
    };
    match step {
        Step::Done(n) => (n as f64).into_lua_multi(lua),
        Step::Wait => {
            wait_on(socket, waiter);
            park(lua)
        }
        Step::Failed(failure) => {
            log_failure(socket, "send", &failure);
            nil_err(lua, failure.message())
        }
    }
}

/// Turns what a read gave into Lua's returns.
fn received(
    lua: &Lua,
    socket: &mut TcpSocket,
    waiter: crate::request::socket::Waiter,
    want: Want,
) -> Results {
    let outcome = socket.receive(want);
    let (failure, partial) = match outcome {
        Received::Data(bytes) => return lua.create_string(bytes)?.into_lua_multi(lua),
        Received::LastPiece(bytes) => return (lua.create_string(bytes)?, true).into_lua_multi(lua),
        Received::PatternReached => return Value::Nil.into_lua_multi(lua),
        Received::Wait => {
            wait_on(socket, waiter);
            return park(lua);
        }
        Received::Failed { failure, partial } => (failure, lua.create_string(partial)?),
    };
    log_failure(socket, "receive", &failure);
    (Value::Nil, failure.message(), partial).into_lua_multi(lua)
}

/// The read a `receive` pattern asks for.
fn receive_pattern(pattern: &Value) -> mlua::Result<Want<'static>> {
    let bad = || raise_plain("bad argument #2 to '?' (bad pattern argument)");
    match pattern {
        Value::Nil => Ok(Want::Line),
        Value::String(s) => match &*s.as_bytes() {
            b"*l" | b"l" => Ok(Want::Line),
            b"*a" | b"a" => Ok(Want::All),
            text => match std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
            {
                Some(n) if n >= 0.0 => Ok(Want::Bytes(n as usize)),
                _ => Err(bad()),
            },
        },
        Value::Integer(_) | Value::Number(_) => match number_of(pattern) {
            Some(n) if n >= 0.0 => Ok(Want::Bytes(n as usize)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// The read checks of every receive method: context, owner, a read
/// already waiting, a closed socket.
fn start_read<'a>(
    lua: &Lua,
    core: &'a mut Core,
) -> mlua::Result<Result<(&'a mut TcpSocket, crate::request::socket::Waiter), MultiValue>> {
    let socket = &mut core.0;
    let (_, waiter) = enter(socket)?;
    if socket.read_closed() {
        if socket.settings().is_none_or(|s| s.log_errors) {
            log_error("attempt to receive data on a closed socket");
        }
        return Ok(Err(nil_err(lua, "closed")?));
    }
    Ok(Ok((socket, waiter)))
}

fn receive(lua: &Lua, ud: &AnyUserData, pattern: Value) -> Results {
    let want = receive_pattern(&pattern)?;
    let mut core = ud.borrow_mut::<Core>()?;
    match start_read(lua, &mut core)? {
        Ok((socket, waiter)) => received(lua, socket, waiter, want),
        Err(returns) => Ok(returns),
    }
}

fn receiveany(lua: &Lua, ud: &AnyUserData, max: Value) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    let (socket, waiter) = match start_read(lua, &mut core)? {
        Ok(ready) => ready,
        Err(returns) => return Ok(returns),
    };
    let max = match number_of(&max) {
        Some(n) if n > 0.0 => n as usize,
        Some(_) => return Err(raise_plain("bad argument #2 to '?' (bad max argument)")),
        None => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (number expected, got {})",
                lua_type_name(&max)
            )))
        }
    };
    received(lua, socket, waiter, Want::Any(max))
}

fn receiveuntil(
    lua: &Lua,
    ud: &AnyUserData,
    pattern: mlua::LuaString,
    inclusive: bool,
    size: Value,
) -> Results {
    let chunk = match &size {
        Value::Nil => None,
        value => match number_of(value) {
            Some(n) if n >= 1.0 => Some(n as usize),
            Some(_) => None,
            None => {
                return Err(raise_plain(format!(
                    "bad argument #1 to '?' (number expected, got {})",
                    lua_type_name(value)
                )))
            }
        },
    };
    let mut core = ud.borrow_mut::<Core>()?;
    let pattern = pattern.as_bytes();
    match start_read(lua, &mut core)? {
        Ok((socket, waiter)) => received(
            lua,
            socket,
            waiter,
            Want::Until {
                pattern: &pattern,
                inclusive,
                chunk,
            },
        ),
        Err(returns) => Ok(returns),
    }
}

/// A timeout argument: `None` for nil, milliseconds otherwise (0, or
/// anything not a number, means the directive's value).
fn timeout_ms(value: &Value) -> mlua::Result<Option<u64>> {
    if matches!(value, Value::Nil) {
        return Ok(None);
    }
    let ms = number_of(value).unwrap_or(0.0);
    if !(0.0..2_147_483_648.0).contains(&ms) {
        return Err(raise_plain("bad timeout value"));
    }
    Ok(Some(ms as u64))
}

fn settimeouts(ud: &AnyUserData, connect: Value, send: Value, read: Value) -> mlua::Result<()> {
    let (connect, send, read) = (
        timeout_ms(&connect)?,
        timeout_ms(&send)?,
        timeout_ms(&read)?,
    );
    let mut core = ud.borrow_mut::<Core>()?;
    core.0
        .set_timeouts(connect.or(Some(0)), send.or(Some(0)), read.or(Some(0)));
    Ok(())
}

fn setkeepalive(lua: &Lua, ud: &AnyUserData, timeout: Value, size: Value) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    let socket = &mut core.0;
    enter(socket)?;
    if !socket.is_connected() {
        return nil_err(lua, "closed");
    }
    let settings = socket.settings().copied().unwrap_or_else(settings);
    let timeout = match timeout_ms(&timeout)? {
        Some(ms) => ms,
        None => settings.keepalive_timeout,
    };
    let size = match &size {
        Value::Nil => None,
        value => {
            let n = number_of(value).unwrap_or(0.0) as i64;
            if n <= 0 {
                return Err(raise_plain(format!(
                    "bad argument #3 to '?' (bad \"pool_size\" option value: {n})"
                )));
            }
            Some(n as usize)
        }
    };
    if let Some(busy) = socket.busy() {
        return nil_err(lua, busy_text(busy));
    }
    match socket.set_keepalive(timeout, size) {
        Ok(()) => 1.into_lua_multi(lua),
        Err(failure) => nil_err(lua, failure.message()),
    }
}

fn reused(lua: &Lua, ud: &AnyUserData) -> Results {
    let core = ud.borrow::<Core>()?;
    enter(&core.0)?;
    match core.0.reused_times() {
        Some(n) => n.into_lua_multi(lua),
        None => nil_err(lua, "closed"),
    }
}

fn close(lua: &Lua, ud: &AnyUserData) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    enter(&core.0)?;
    if let Some(busy) = core.0.busy() {
        return nil_err(lua, busy_text(busy));
    }
    if core.0.close() {
        1.into_lua_multi(lua)
    } else {
        nil_err(lua, "closed")
    }
}

fn setoption(lua: &Lua, ud: &AnyUserData, option: Value, value: Value) -> Results {
    let mut core = ud.borrow_mut::<Core>()?;
    enter(&core.0)?;
    let name = match &option {
        Value::String(s) => s.to_str()?.to_string(),
        other => {
            return Err(raise_plain(format!(
                "bad argument #2 to '?' (string expected, got {})",
                lua_type_name(other)
            )))
        }
    };
    let flag = |v: &Value| match v {
        Value::Boolean(b) => Some(i32::from(*b)),
        _ => None,
    };
    let (level, opt, number) = match name.as_str() {
        "keepalive" => (libc::SOL_SOCKET, libc::SO_KEEPALIVE, flag(&value)),
        "reuseaddr" => (libc::SOL_SOCKET, libc::SO_REUSEADDR, flag(&value)),
        "tcp-nodelay" => (libc::IPPROTO_TCP, libc::TCP_NODELAY, flag(&value)),
        "sndbuf" => (
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            number_of(&value).map(|n| n as i32),
        ),
        "rcvbuf" => (
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            number_of(&value).map(|n| n as i32),
        ),
        _ => return nil_err(lua, format!("unsupported option {name}")),
    };
    let Some(number) = number else {
        return nil_err(lua, format!("invalid value for option {name}"));
    };
    if !core.0.is_connected() {
        return Err(raise_plain("socket is never created nor connected"));
    }
    match core.0.set_option(level, opt, number) {
        Ok(()) => true.into_lua_multi(lua),
        Err(failure) => nil_err(lua, failure.message()),
    }
}

/// Installs `ngx.socket.tcp`, `.stream` and `.connect`.
pub fn install(lua: &Lua, socket: &Table) -> mlua::Result<()> {
    let ops = lua.create_table()?;
    ops.set(
        "new",
        api_function(lua, |lua, ()| {
            allowed_here()?;
            lua.create_userdata(Core(TcpSocket::new()))
        })?,
    )?;
    ops.set(
        "connect",
        api_function(
            lua,
            |lua, (ud, host, port, options): (AnyUserData, Value, Value, Value)| {
                connect(lua, &ud, host, port, options)
            },
        )?,
    )?;
    ops.set(
        "send",
        api_function(lua, |lua, (ud, data): (AnyUserData, Value)| {
            send(lua, &ud, data)
        })?,
    )?;
    ops.set(
        "receive",
        api_function(lua, |lua, (ud, pattern): (AnyUserData, Value)| {
            receive(lua, &ud, pattern)
        })?,
    )?;
    ops.set(
        "receiveany",
        api_function(lua, |lua, (ud, max): (AnyUserData, Value)| {
            receiveany(lua, &ud, max)
        })?,
    )?;
    ops.set(
        "receiveuntil",
        api_function(
            lua,
            |lua, (ud, pattern, inclusive, size): (AnyUserData, mlua::LuaString, bool, Value)| {
                receiveuntil(lua, &ud, pattern, inclusive, size)
            },
        )?,
    )?;
    ops.set(
        "settimeouts",
        api_function(
            lua,
            |_, (ud, c, s, r): (AnyUserData, Value, Value, Value)| settimeouts(&ud, c, s, r),
        )?,
    )?;
    ops.set(
        "setkeepalive",
        api_function(
            lua,
            |lua, (ud, timeout, size): (AnyUserData, Value, Value)| {
                setkeepalive(lua, &ud, timeout, size)
            },
        )?,
    )?;
    ops.set(
        "reused",
        api_function(lua, |lua, ud: AnyUserData| reused(lua, &ud))?,
    )?;
    ops.set(
        "close",
        api_function(lua, |lua, ud: AnyUserData| close(lua, &ud))?,
    )?;
    ops.set(
        "setoption",
        api_function(
            lua,
            |lua, (ud, option, value): (AnyUserData, Value, Value)| {
                setoption(lua, &ud, option, value)
            },
        )?,
    )?;
    let (tcp, connect): (mlua::Function, mlua::Function) = lua
        .load(include_str!("tcp.lua"))
        .set_name(internal_chunk_name("ngx.socket.tcp"))
        .call((park_sentinel(), wait_here(lua)?, ops))?;
    socket.set("tcp", tcp.clone())?;
    socket.set("stream", tcp)?;
    socket.set("connect", connect)?;
    Ok(())
}
