//! `lua_max_pending_timers N;` and `lua_max_running_timers N;` (http).

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_log_error, ngx_conf_t, NGX_LOG_ALERT};

use super::config_file::{bytes, conf_args, directive_name, set_on_off};
use crate::conf::{guarded, main_conf, LocConf};

fn parse_limit(cf: *mut ngx_conf_t, cmd: *mut ngx_command_t) -> Result<usize, String> {
    let text = String::from_utf8_lossy(bytes(&conf_args(cf)[1])).into_owned();
    text.parse::<usize>().map_err(|_| {
        // SAFETY: nginx passes the command being handled, one of ours.
        let name = String::from_utf8_lossy(unsafe { bytes(&(*cmd).name) }).into_owned();
        format!("invalid value \"{text}\" in \"{name}\" directive")
    })
}

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_max_pending_timers(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        main_conf(cf).max_pending_timers = Some(parse_limit(cf, cmd)?);
        Ok(())
    })
}

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_max_running_timers(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        main_conf(cf).max_running_timers = Some(parse_limit(cf, cmd)?);
        Ok(())
    })
}

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

/// `lua_check_client_abort on|off`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_check_client_abort(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let loc = unsafe { &mut *conf.cast::<LocConf>() };
        set_on_off(cf, cmd, &mut loc.check_client_abort).map(drop)
    })
}
