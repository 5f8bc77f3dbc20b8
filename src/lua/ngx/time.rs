//! `ngx.time`, `ngx.now`, `ngx.today`, `ngx.localtime`, `ngx.utctime`,
//! `ngx.update_time`, `ngx.http_time`, `ngx.cookie_time` and
//! `ngx.parse_http_time`, on nginx's cached clock and formats.

use mlua::{Lua, MultiValue, Table, Value};
use nginx_sys::{time_t, tm};

use crate::lua::raise::{api_function, raise};
use crate::nginx;

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

pub(super) fn install(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    install_clock(lua, ngx)?;
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

/// `ngx.time`, `ngx.now` and `ngx.update_time`: nginx's cached clock.
fn install_clock(lua: &Lua, ngx: &Table) -> mlua::Result<()> {
    ngx.set(
        "time",
        api_function(lua, |_, ()| Ok(nginx::cached_time().0 as f64))?,
    )?;
    ngx.set(
        "now",
        api_function(lua, |_, ()| {
            let (sec, msec) = nginx::cached_time();
            Ok(sec as f64 + msec as f64 / 1000.0)
        })?,
    )?;
    ngx.set(
        "update_time",
        api_function(lua, |_, ()| {
            nginx::update_time();
            Ok(())
        })?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
