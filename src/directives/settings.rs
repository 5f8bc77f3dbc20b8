//! Settings directives: numbers and search paths (`http`), flags (any level).

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_log_error, ngx_conf_t, NGX_LOG_ALERT};

use super::config_file::{bytes, conf_args, directive_name, set_on_off};
use crate::conf::{guarded, main_conf, LocConf};

/// A number directive as nginx's `ngx_conf_set_num_slot` reads it: a
/// non-negative integer, set once.
fn set_number<T: TryFrom<usize>>(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    slot: &mut Option<T>,
) -> Result<(), String> {
    let name = directive_name(cmd);
    if slot.is_some() {
        return Err(format!("\"{name}\" directive is duplicate"));
    }
    let text = bytes(&conf_args(cf)[1]);
    let value = core::str::from_utf8(text)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<usize>().ok())
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("\"{name}\" directive invalid number"))?;
    *slot = Some(value);
    Ok(())
}

/// `lua_max_pending_timers N;`, `lua_max_running_timers N;`,
/// `lua_regex_cache_max_entries N;` and `lua_regex_match_limit N;`
/// (`http`), by `cmd->offset`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_main_number(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let main = main_conf(cf);
        // SAFETY: nginx passes the command being handled, one of ours.
        match unsafe { (*cmd).offset } {
            MAX_PENDING_TIMERS => set_number(cf, cmd, &mut main.max_pending_timers),
            MAX_RUNNING_TIMERS => set_number(cf, cmd, &mut main.max_running_timers),
            REGEX_CACHE_MAX_ENTRIES => set_number(cf, cmd, &mut main.regex_cache_max_entries),
            _ => set_number(cf, cmd, &mut main.regex_match_limit),
        }
    })
}

/// `cmd->offset` of the directives [`set_main_number`] handles.
pub(crate) const MAX_PENDING_TIMERS: usize = 0;
pub(crate) const MAX_RUNNING_TIMERS: usize = 1;
pub(crate) const REGEX_CACHE_MAX_ENTRIES: usize = 2;
pub(crate) const REGEX_MATCH_LIMIT: usize = 3;

/// Records a search path for `package.path` (`cmd->offset` 0) or
/// `package.cpath` (1); it is applied once the `http` block is read.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_package_path(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let value = bytes(&conf_args(cf)[1]).to_vec();
        let main = main_conf(cf);
        // SAFETY: nginx passes the command being handled, one of ours.
        let slot = match unsafe { (*cmd).offset } {
            0 => &mut main.package_path,
            _ => &mut main.package_cpath,
        };
        if slot.is_some() {
            return Err(format!(
                "\"{}\" directive is duplicate",
                directive_name(cmd)
            ));
        }
        *slot = Some(value);
        Ok(())
    })
}

/// `lua_code_cache on|off`, with OpenResty's warning for `off`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_code_cache(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let loc = unsafe { &mut *conf.cast::<LocConf>() };
        let on = set_on_off(cf, cmd, &mut loc.code_cache)?;
        if !on {
            // SAFETY: cf is the configuration being parsed; the message has
            // no format directives.
            unsafe {
                ngx_conf_log_error(
                    NGX_LOG_ALERT as usize,
                    cf,
                    0,
                    c"lua_code_cache is off; this will hurt performance".as_ptr(),
                )
            };
        }
        Ok(())
    })
}

/// Location flags: `lua_check_client_abort on|off` (`cmd->offset` 0),
/// `lua_need_request_body on|off` (1) and
/// `lua_transform_underscores_in_response_headers on|off` (2), at any level.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_location_flag(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let loc = unsafe { &mut *conf.cast::<LocConf>() };
        // SAFETY: nginx passes the command being handled, one of ours.
        let slot = match unsafe { (*cmd).offset } {
            0 => &mut loc.check_client_abort,
            1 => &mut loc.need_request_body,
            _ => &mut loc.transform_underscores,
        };
        set_on_off(cf, cmd, slot).map(drop)
    })
}

/// `rewrite_by_lua_no_postpone on|off` (`cmd->offset` 0) and
/// `access_by_lua_no_postpone on|off` (1), in `http`: with `on`, the Lua
/// handler runs first in its phase instead of after nginx's own handlers.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_no_postpone(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let main = main_conf(cf);
        // SAFETY: nginx passes the command being handled, one of ours.
        let slot = match unsafe { (*cmd).offset } {
            0 => &mut main.rewrite_no_postpone,
            _ => &mut main.access_no_postpone,
        };
        set_on_off(cf, cmd, slot).map(drop)
    })
}

/// `lua_capture_error_log SIZE;` (`http`): each worker keeps the latest
/// error log lines, up to `SIZE` bytes, for `ngx.errlog.get_logs`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_capture_error_log(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let main = main_conf(cf);
        if main.capture_error_log.is_some() {
            return Err(format!(
                "\"{}\" directive is duplicate",
                directive_name(cmd)
            ));
        }
        let mut value = conf_args(cf)[1];
        // SAFETY: a directive argument nginx owns during the call.
        let size = unsafe { nginx_sys::ngx_parse_size(&mut value) };
        if size <= 0 {
            return Err(format!(
                "invalid capture error log size \"{}\"",
                String::from_utf8_lossy(bytes(&value))
            ));
        }
        main.capture_error_log = Some(size as usize);
        Ok(())
    })
}
