//! `ngx.shared.NAME`: dictionary objects over the shared-memory store.
//!
//! Each dictionary is a table `{ [1] = <zone pointer> }` sharing one
//! metatable of methods, as in OpenResty: a method called with `.` instead of
//! `:` finds no zone in its first argument and raises `bad "zone" argument`.
//! Arguments are checked in the order and with the wording of lua-resty-core.

use std::cell::RefCell;

use mlua::{IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Value};

use super::output::format_number;
use super::raise::{api_function, lua_type_name, raise};
use crate::nginx;
use crate::shdict::{
    decode_value, ListEnd, SharedZone, Store, Value as StoreValue, ValueKind, WriteMode, ZoneStats,
    MAX_KEY_LEN,
};

/// Keys `get_keys()` returns when no limit is given.
const DEFAULT_GET_KEYS_LIMIT: usize = 1024;

thread_local! {
    /// Reused for every read so that copying a value out of the zone does not
    /// allocate in the common case (and never while the zone is locked).
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

/// The arguments of a method call, taken in order.
struct Args(std::vec::IntoIter<Value>);

impl Args {
    fn new(args: MultiValue) -> Args {
        Args(args.into_vec().into_iter())
    }

    fn next(&mut self) -> Value {
        self.0.next().unwrap_or(Value::Nil)
    }
}

fn zone_of<'a>(dict: &Value) -> mlua::Result<&'a SharedZone> {
    let ptr = match dict {
        Value::Table(t) => match t.raw_get::<Value>(1)? {
            Value::LightUserData(ud) if !ud.0.is_null() => ud.0,
            _ => return Err(raise("bad \"zone\" argument")),
        },
        _ => return Err(raise("bad \"zone\" argument")),
    };
    // SAFETY: only register_zones stores these pointers, to SharedZone
    // objects in the configuration pool, which outlives the Lua state.
    Ok(unsafe { &*ptr.cast::<SharedZone>() })
}

fn store_of(dict: &Value) -> mlua::Result<Store> {
    zone_of(dict)?
        .store()
        .ok_or_else(|| raise("shared dict zone is not initialised yet"))
}

/// A key as OpenResty accepts it: any value but nil, through `tostring`.
fn key_of(lua: &Lua, key: &Value) -> mlua::Result<Result<Vec<u8>, &'static str>> {
    let bytes = match key {
        Value::Nil => return Ok(Err("nil key")),
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Number(n) => {
            let mut out = Vec::new();
            format_number(*n, &mut out);
            out
        }
        Value::Integer(i) => {
            let mut out = Vec::new();
            format_number(*i as f64, &mut out);
            out
        }
        other => {
            let tostring: mlua::Function = lua.globals().get("tostring")?;
            let s: mlua::LuaString = tostring.call(other.clone())?;
            s.as_bytes().to_vec()
        }
    };
    Ok(if bytes.is_empty() {
        Err("empty key")
    } else if bytes.len() > MAX_KEY_LEN {
        Err("key too long")
    } else {
        Ok(bytes)
    })
}

/// The zone and key a keyed method starts with; `Err` holds the `nil, err`
/// to return for a bad key.
fn zone_and_key(lua: &Lua, args: &mut Args) -> mlua::Result<Result<(Store, Vec<u8>), MultiValue>> {
    let store = store_of(&args.next())?;
    Ok(match key_of(lua, &args.next())? {
        Ok(key) => Ok((store, key)),
        Err(msg) => Err(failure(lua, msg)?),
    })
}

/// `nil, err`.
fn failure(lua: &Lua, message: &str) -> mlua::Result<MultiValue> {
    (Value::Nil, lua.create_string(message)?).into_lua_multi(lua)
}

/// A number, or a string Lua would convert to one (`tonumber`).
fn to_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        Value::String(s) => {
            let text = s.to_str().ok()?;
            let text = text.trim();
            text.parse::<f64>().ok().or_else(|| {
                let hex = text
                    .strip_prefix("0x")
                    .or_else(|| text.strip_prefix("0X"))?;
                i64::from_str_radix(hex, 16).ok().map(|n| n as f64)
            })
        }
        _ => None,
    }
}

/// Seconds (fractional) to an absolute expiry in ms; 0 for never. Sub-ms
/// exptimes truncate to 0, i.e. never, as OpenResty's `exptime * 1000` does.
fn expiry_from_seconds(seconds: f64, now_ms: u64) -> u64 {
    let ms = (seconds * 1000.0) as u64;
    if ms == 0 {
        0
    } else {
        now_ms + ms
    }
}

fn lua_value(lua: &Lua, kind: ValueKind, bytes: &[u8]) -> mlua::Result<Value> {
    Ok(match decode_value(kind, bytes) {
        StoreValue::Str(bytes) => Value::String(lua.create_string(bytes)?),
        StoreValue::Number(n) => Value::Number(n),
        StoreValue::Bool(b) => Value::Boolean(b),
    })
}

fn get(lua: &Lua, args: MultiValue, allow_stale: bool) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        let found = match store.get(&key, nginx::now_ms(), allow_stale, &mut buf) {
            Ok(Some(found)) => found,
            Ok(None) => return Value::Nil.into_lua_multi(lua),
            Err(e) => return failure(lua, &e.to_string()),
        };
        let value = lua_value(lua, found.kind, &buf)?;
        let flags = match found.user_flags {
            0 => Value::Nil,
            f => Value::Number(f64::from(f)),
        };
        if allow_stale {
            (value, flags, found.stale).into_lua_multi(lua)
        } else if found.user_flags == 0 {
            value.into_lua_multi(lua)
        } else {
            (value, flags).into_lua_multi(lua)
        }
    })
}

fn store_value(lua: &Lua, args: MultiValue, mode: WriteMode) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let store = store_of(&args.next())?;
    let (key_arg, value_arg, exptime_arg, flags_arg) =
        (args.next(), args.next(), args.next(), args.next());
    let exptime = match &exptime_arg {
        Value::Nil | Value::Boolean(false) => 0.0,
        v => match to_number(v) {
            Some(n) if n >= 0.0 => n,
            _ => return Err(raise("bad \"exptime\" argument")),
        },
    };
    let user_flags = match &flags_arg {
        Value::Nil | Value::Boolean(false) => 0,
        v => match to_number(v) {
            Some(n) => n as i64 as u32,
            None => return Err(raise("bad \"flags\" argument")),
        },
    };
    let key = match key_of(lua, &key_arg)? {
        Ok(key) => key,
        Err(msg) => return failure(lua, msg),
    };
    let string_bytes;
    let value = match &value_arg {
        Value::Nil => None,
        Value::String(s) => {
            string_bytes = s.as_bytes();
            Some(StoreValue::Str(&string_bytes))
        }
        Value::Boolean(b) => Some(StoreValue::Bool(*b)),
        Value::Number(n) => Some(StoreValue::Number(*n)),
        Value::Integer(i) => Some(StoreValue::Number(*i as f64)),
        _ => return failure(lua, "bad value type"),
    };
    let now = nginx::now_ms();
    match store.write(
        &key,
        value,
        expiry_from_seconds(exptime, now),
        user_flags,
        mode,
        now,
    ) {
        Ok(written) => (true, Value::Nil, written.forcible).into_lua_multi(lua),
        Err(e) => (false, lua.create_string(e.to_string())?, false).into_lua_multi(lua),
    }
}

/// An optional numeric argument of `incr`, with resty.core's error text.
fn optional_number(value: &Value, name: &str) -> mlua::Result<Option<f64>> {
    match value {
        Value::Nil | Value::Boolean(false) => Ok(None),
        v => to_number(v).map(Some).ok_or_else(|| {
            raise(format!(
                "bad {name} arg: number expected, got {}",
                lua_type_name(v)
            ))
        }),
    }
}

fn incr(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    let (value_arg, init_arg, init_ttl_arg) = (args.next(), args.next(), args.next());
    let delta = to_number(&value_arg).ok_or_else(|| {
        raise(format!(
            "bad value arg: number expected, got {}",
            lua_type_name(&value_arg)
        ))
    })?;
    let init = optional_number(&init_arg, "init")?;
    let init_ttl = match &init_ttl_arg {
        Value::Nil => 0.0,
        v => {
            let ttl = optional_number(v, "init_ttl")?.unwrap_or(0.0);
            if ttl < 0.0 {
                return Err(raise("bad \"init_ttl\" argument"));
            }
            if init.is_none() {
                return Err(raise("must provide \"init\" when providing \"init_ttl\""));
            }
            ttl
        }
    };
    let now = nginx::now_ms();
    let init = init.map(|n| (n, expiry_from_seconds(init_ttl, now)));
    match store.incr(&key, delta, init, now) {
        Ok((value, forcible)) if init.is_some() => {
            (value, Value::Nil, forcible).into_lua_multi(lua)
        }
        Ok((value, _)) => value.into_lua_multi(lua),
        Err(e) => failure(lua, &e.to_string()),
    }
}

fn push(lua: &Lua, args: MultiValue, end: ListEnd) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    let value_arg = args.next();
    let string_bytes;
    let value = match &value_arg {
        Value::String(s) => {
            string_bytes = s.as_bytes();
            StoreValue::Str(&string_bytes)
        }
        Value::Number(n) => StoreValue::Number(*n),
        Value::Integer(i) => StoreValue::Number(*i as f64),
        _ => return failure(lua, "bad value type"),
    };
    match store.push(&key, value, end, nginx::now_ms()) {
        Ok(len) => (len as f64).into_lua_multi(lua),
        Err(e) => failure(lua, &e.to_string()),
    }
}

fn pop(lua: &Lua, args: MultiValue, end: ListEnd) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        match store.pop(&key, end, nginx::now_ms(), &mut buf) {
            Ok(Some(kind)) => lua_value(lua, kind, &buf)?.into_lua_multi(lua),
            Ok(None) => Value::Nil.into_lua_multi(lua),
            Err(e) => failure(lua, &e.to_string()),
        }
    })
}

fn llen(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    match store.llen(&key, nginx::now_ms()) {
        Ok(len) => (len as f64).into_lua_multi(lua),
        Err(e) => failure(lua, &e.to_string()),
    }
}

fn ttl(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let (store, key) = match zone_and_key(lua, &mut args)? {
        Ok(found) => found,
        Err(returns) => return Ok(returns),
    };
    match store.ttl_ms(&key, nginx::now_ms()) {
        Ok(ms) => (ms as f64 / 1000.0).into_lua_multi(lua),
        Err(e) => failure(lua, &e.to_string()),
    }
}

fn expire(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let store = store_of(&args.next())?;
    let (key_arg, exptime_arg) = (args.next(), args.next());
    let exptime = match to_number(&exptime_arg) {
        Some(n) if n >= 0.0 => n,
        _ => return Err(raise("bad \"exptime\" argument")),
    };
    let key = match key_of(lua, &key_arg)? {
        Ok(key) => key,
        Err(msg) => return failure(lua, msg),
    };
    let now = nginx::now_ms();
    match store.set_expiry(&key, expiry_from_seconds(exptime, now), now) {
        Ok(()) => true.into_lua_multi(lua),
        Err(e) => failure(lua, &e.to_string()),
    }
}

/// `max_count` of flush_expired/get_keys: a non-negative number or nil.
fn max_count(value: &Value, default: usize) -> mlua::Result<usize> {
    match value {
        Value::Nil => Ok(default),
        v => match to_number(v) {
            Some(n) if n >= 0.0 => Ok(n as usize),
            _ => Err(raise("bad \"max_count\" argument")),
        },
    }
}

fn flush_expired(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let store = store_of(&args.next())?;
    let max = max_count(&args.next(), 0)?;
    (store.flush_expired(nginx::now_ms(), max as u64) as f64).into_lua_multi(lua)
}

fn get_keys(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let mut args = Args::new(args);
    let store = store_of(&args.next())?;
    let max = max_count(&args.next(), DEFAULT_GET_KEYS_LIMIT)?;
    let (mut bytes, mut lens) = (Vec::new(), Vec::new());
    store.keys(nginx::now_ms(), max, &mut bytes, &mut lens);
    let keys = lua.create_table_with_capacity(lens.len(), 0)?;
    let mut offset = 0;
    for (i, len) in lens.into_iter().enumerate() {
        keys.raw_set(i + 1, lua.create_string(&bytes[offset..offset + len])?)?;
        offset += len;
    }
    keys.into_lua_multi(lua)
}

fn methods(lua: &Lua) -> mlua::Result<Table> {
    let methods = lua.create_table()?;
    let add = |name: &str,
               f: fn(&Lua, MultiValue) -> mlua::Result<MultiValue>|
     -> mlua::Result<()> { methods.set(name, api_function(lua, f)?) };
    add("get", |lua, args| get(lua, args, false))?;
    add("get_stale", |lua, args| get(lua, args, true))?;
    add("set", |lua, args| store_value(lua, args, WriteMode::Set))?;
    add("safe_set", |lua, args| {
        store_value(lua, args, WriteMode::SafeSet)
    })?;
    add("add", |lua, args| store_value(lua, args, WriteMode::Add))?;
    add("safe_add", |lua, args| {
        store_value(lua, args, WriteMode::SafeAdd)
    })?;
    add("replace", |lua, args| {
        store_value(lua, args, WriteMode::Replace)
    })?;
    add("delete", |lua, args| {
        let mut args = Args::new(args);
        let (dict, key) = (args.next(), args.next());
        store_value(lua, MultiValue::from_iter([dict, key]), WriteMode::Set)
    })?;
    add("incr", incr)?;
    add("lpush", |lua, args| push(lua, args, ListEnd::Head))?;
    add("rpush", |lua, args| push(lua, args, ListEnd::Tail))?;
    add("lpop", |lua, args| pop(lua, args, ListEnd::Head))?;
    add("rpop", |lua, args| pop(lua, args, ListEnd::Tail))?;
    add("llen", llen)?;
    add("ttl", ttl)?;
    add("expire", expire)?;
    add("flush_all", |lua, args| {
        store_of(&Args::new(args).next())?.flush_all();
        ().into_lua_multi(lua)
    })?;
    add("flush_expired", flush_expired)?;
    add("get_keys", get_keys)?;
    add("capacity", |lua, args| {
        (zone_of(&Args::new(args).next())?.size() as f64).into_lua_multi(lua)
    })?;
    add("stats", |lua, args| {
        let store = store_of(&Args::new(args).next())?;
        stats_table(lua, &store.stats(nginx::now_ms()))?.into_lua_multi(lua)
    })?;
    add("free_space", |lua, args| {
        (store_of(&Args::new(args).next())?.free_page_bytes() as f64).into_lua_multi(lua)
    })?;
    Ok(methods)
}

/// `dict:stats()`: our own method (OpenResty has none by that name).
fn stats_table(lua: &Lua, stats: &ZoneStats) -> mlua::Result<Table> {
    let c = &stats.counters;
    let table = lua.create_table()?;
    let figures: [(&str, f64); 12] = [
        ("capacity", stats.capacity as f64),
        ("free_space", stats.free_space as f64),
        ("used_bytes", c.used_bytes as f64),
        ("entries", c.entries as f64),
        ("lists", c.lists as f64),
        ("expired_pending", stats.expired_pending as f64),
        ("hits", c.hits as f64),
        ("misses", c.misses as f64),
        ("stores", c.stores as f64),
        ("evictions", c.evictions as f64),
        ("expirations", c.expirations as f64),
        ("no_memory", c.no_memory as f64),
    ];
    for (name, value) in figures {
        table.raw_set(name, value)?;
    }
    let pages = lua.create_table()?;
    pages.raw_set("total", stats.pages_total as f64)?;
    pages.raw_set("free", stats.pages_free as f64)?;
    table.raw_set("pages", pages)?;
    let slabs = lua.create_table_with_capacity(stats.slabs().len(), 0)?;
    for (i, class) in stats.slabs().iter().enumerate() {
        let row = lua.create_table()?;
        row.raw_set("size", class.size as f64)?;
        row.raw_set("total", class.total as f64)?;
        row.raw_set("used", class.used as f64)?;
        row.raw_set("requests", class.requests as f64)?;
        row.raw_set("failures", class.failures as f64)?;
        slabs.raw_set(i + 1, row)?;
    }
    table.raw_set("slabs", slabs)?;
    Ok(table)
}

/// Fills `ngx.shared` with one dictionary object per zone.
pub fn register_zones<'a>(
    lua: &Lua,
    zones: impl IntoIterator<Item = &'a SharedZone>,
) -> mlua::Result<()> {
    let ngx: Table = lua.globals().get("ngx")?;
    let shared: Table = ngx.get("shared")?;
    let meta = lua.create_table()?;
    meta.set("__index", methods(lua)?)?;
    for zone in zones {
        let dict = lua.create_table()?;
        let ptr = zone as *const SharedZone as *mut core::ffi::c_void;
        dict.raw_set(1, LightUserData(ptr))?;
        dict.set_metatable(Some(meta.clone()))?;
        shared.raw_set(lua.create_string(zone.name())?, dict)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_strings_convert_like_tonumber() {
        let lua = Lua::new();
        let s = |text: &str| Value::String(lua.create_string(text).unwrap());
        assert_eq!(to_number(&s(" 12 ")), Some(12.0));
        assert_eq!(to_number(&s("1.5e3")), Some(1500.0));
        assert_eq!(to_number(&s("0x10")), Some(16.0));
        assert_eq!(to_number(&s("abc")), None);
        assert_eq!(to_number(&Value::Boolean(true)), None);
    }

    #[test]
    fn sub_millisecond_exptime_means_never() {
        assert_eq!(expiry_from_seconds(0.0, 1000), 0);
        assert_eq!(expiry_from_seconds(0.0004, 1000), 0);
        assert_eq!(expiry_from_seconds(0.001, 1000), 1001);
        assert_eq!(expiry_from_seconds(1.5, 1000), 2500);
    }
}
