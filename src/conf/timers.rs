//! `lua_max_pending_timers N;` and `lua_max_running_timers N;` (http).

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t};

use super::{bytes, conf_args, guarded, main_conf};

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
