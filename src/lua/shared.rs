//! `ngx.shared.NAME`: dictionary objects over the shared-memory store.
//!
//! Each dictionary is a table `{ [1] = <zone pointer> }` sharing one
//! metatable of methods, as in OpenResty: a method called with `.` instead of
//! `:` finds no zone in its first argument and raises `bad "zone" argument`.

use std::cell::RefCell;

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::ngx_api::raise;
use super::output::format_number;
use crate::nginx;
use crate::shdict::{
    decode_value, SharedZone, Store, StoreError, Value as StoreValue, WriteMode, MAX_KEY_LEN,
};

thread_local! {
    /// Reused for every read so that copying a value out of the zone does not
    /// allocate in the common case (and never while the zone is locked).
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
}

fn zone_of<'a>(lua: &Lua, dict: &Value) -> mlua::Result<&'a SharedZone> {
    let ptr = match dict {
        Value::Table(t) => match t.raw_get::<Value>(1)? {
            Value::LightUserData(ud) if !ud.0.is_null() => ud.0,
            _ => return Err(raise(lua, "bad \"zone\" argument")),
        },
        _ => return Err(raise(lua, "bad \"zone\" argument")),
    };
    // SAFETY: only register_zones stores these pointers, to SharedZone
    // objects in the configuration pool, which outlives the Lua state.
    Ok(unsafe { &*ptr.cast::<SharedZone>() })
}

fn store_of(lua: &Lua, zone: &SharedZone) -> mlua::Result<Store> {
    zone.store()
        .ok_or_else(|| raise(lua, "shared dict zone is not initialised yet"))
}

/// A key as OpenResty accepts it, or the `nil, err` message.
enum Key {
    Valid(Vec<u8>),
    Invalid(&'static str),
}

fn key_of(lua: &Lua, key: &Value) -> mlua::Result<Key> {
    let bytes = match key {
        Value::Nil => return Ok(Key::Invalid("nil key")),
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
        Key::Invalid("empty key")
    } else if bytes.len() > MAX_KEY_LEN {
        Key::Invalid("key too long")
    } else {
        Key::Valid(bytes)
    })
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

fn err_string(lua: &Lua, msg: &str) -> mlua::Result<Value> {
    Ok(Value::String(lua.create_string(msg)?))
}

fn get(lua: &Lua, args: MultiValue, allow_stale: bool) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let dict = args.next().unwrap_or(Value::Nil);
    let zone = zone_of(lua, &dict)?;
    let key = match key_of(lua, &args.next().unwrap_or(Value::Nil))? {
        Key::Valid(k) => k,
        Key::Invalid(msg) => return Ok(MultiValue::from_iter([Value::Nil, err_string(lua, msg)?])),
    };
    let store = store_of(lua, zone)?;
    READ_BUFFER.with(|buf| {
        let mut buf = buf.borrow_mut();
        let Some(found) = store.get(&key, nginx::now_ms(), allow_stale, &mut buf) else {
            return Ok(MultiValue::from_iter([Value::Nil]));
        };
        let value = match decode_value(found.kind, &buf) {
            StoreValue::Str(bytes) => Value::String(lua.create_string(bytes)?),
            StoreValue::Number(n) => Value::Number(n),
            StoreValue::Bool(b) => Value::Boolean(b),
        };
        let flags = if found.user_flags == 0 {
            Value::Nil
        } else {
            Value::Number(f64::from(found.user_flags))
        };
        if allow_stale {
            Ok(MultiValue::from_iter([
                value,
                flags,
                Value::Boolean(found.stale),
            ]))
        } else if found.user_flags == 0 {
            Ok(MultiValue::from_iter([value]))
        } else {
            Ok(MultiValue::from_iter([value, flags]))
        }
    })
}

fn write(lua: &Lua, args: MultiValue, mode: WriteMode) -> mlua::Result<MultiValue> {
    let mut args = args.into_iter();
    let dict = args.next().unwrap_or(Value::Nil);
    let zone = zone_of(lua, &dict)?;
    let key_arg = args.next().unwrap_or(Value::Nil);
    let value_arg = args.next().unwrap_or(Value::Nil);
    let exptime_arg = args.next().unwrap_or(Value::Nil);
    let flags_arg = args.next().unwrap_or(Value::Nil);

    let key = match key_of(lua, &key_arg)? {
        Key::Valid(k) => k,
        Key::Invalid(msg) => return Ok(MultiValue::from_iter([Value::Nil, err_string(lua, msg)?])),
    };
    let exptime = match &exptime_arg {
        Value::Nil => 0.0,
        v => match number_of(v) {
            Some(n) if n >= 0.0 => n,
            _ => return Err(raise(lua, "bad \"exptime\" argument")),
        },
    };
    let user_flags = match &flags_arg {
        Value::Nil => 0,
        v => match number_of(v) {
            Some(n) => n as i64 as u32,
            None => return Err(raise(lua, "bad \"flags\" argument")),
        },
    };
    let string_holder;
    let value = match &value_arg {
        Value::Nil => None,
        Value::String(s) => {
            string_holder = s.as_bytes();
            Some(StoreValue::Str(&string_holder))
        }
        Value::Boolean(b) => Some(StoreValue::Bool(*b)),
        v => match number_of(v) {
            Some(n) => Some(StoreValue::Number(n)),
            None => {
                return Ok(MultiValue::from_iter([
                    Value::Nil,
                    err_string(lua, "bad value type")?,
                ]));
            }
        },
    };
    let now = nginx::now_ms();
    let expires_ms = if exptime > 0.0 {
        now + ((exptime * 1000.0) as u64).max(1)
    } else {
        0
    };
    let store = store_of(lua, zone)?;
    match store.write(&key, value, expires_ms, user_flags, mode, now) {
        Ok(written) => Ok(MultiValue::from_iter([
            Value::Boolean(true),
            Value::Nil,
            Value::Boolean(written.forcible),
        ])),
        Err(e) => {
            let forcible = false;
            let msg = match e {
                StoreError::NoMemory => "no memory",
                StoreError::Exists => "exists",
                StoreError::NotFound => "not found",
            };
            Ok(MultiValue::from_iter([
                Value::Boolean(false),
                err_string(lua, msg)?,
                Value::Boolean(forcible),
            ]))
        }
    }
}

fn methods(lua: &Lua) -> mlua::Result<Table> {
    let methods = lua.create_table()?;
    methods.set(
        "get",
        lua.create_function(|lua, args: MultiValue| get(lua, args, false))?,
    )?;
    methods.set(
        "get_stale",
        lua.create_function(|lua, args: MultiValue| get(lua, args, true))?,
    )?;
    for (name, mode) in [
        ("set", WriteMode::Set),
        ("safe_set", WriteMode::SafeSet),
        ("add", WriteMode::Add),
        ("safe_add", WriteMode::SafeAdd),
        ("replace", WriteMode::Replace),
    ] {
        methods.set(
            name,
            lua.create_function(move |lua, args: MultiValue| write(lua, args, mode))?,
        )?;
    }
    methods.set(
        "delete",
        lua.create_function(|lua, args: MultiValue| {
            let mut args = args.into_iter();
            let dict = args.next().unwrap_or(Value::Nil);
            let key = args.next().unwrap_or(Value::Nil);
            write(
                lua,
                MultiValue::from_iter([dict, key, Value::Nil]),
                WriteMode::Set,
            )
        })?,
    )?;
    methods.set(
        "capacity",
        lua.create_function(|lua, dict: Value| Ok(zone_of(lua, &dict)?.size() as f64))?,
    )?;
    methods.set(
        "free_space",
        lua.create_function(|lua, dict: Value| {
            let zone = zone_of(lua, &dict)?;
            Ok(store_of(lua, zone)?.free_page_bytes() as f64)
        })?,
    )?;
    Ok(methods)
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
