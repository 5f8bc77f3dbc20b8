//! `lua_package_path`, `lua_package_cpath` and `lua_code_cache`.

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_log_error, ngx_conf_t, NGX_LOG_ALERT};

use super::{bytes, conf_args, directive_name, guarded, main_conf, LocConf, MainConf};

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
        let on = super::set_on_off(cf, cmd, &mut loc.code_cache)?;
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

/// Sets `package.path` and `package.cpath` from the directives, before any
/// Lua code runs (`init_by_lua*` included).
pub(super) fn apply_package_paths(cf: *mut ngx_conf_t, main: &MainConf) -> Result<(), String> {
    let Some(runtime) = main.runtime() else {
        return Ok(());
    };
    // An empty value leaves the default, as in OpenResty.
    let path = main.package_path.as_deref().filter(|p| !p.is_empty());
    let cpath = main.package_cpath.as_deref().filter(|p| !p.is_empty());
    if path.is_none() && cpath.is_none() {
        return Ok(());
    }
    // SAFETY: the cycle being configured and its prefix outlive this call.
    let prefix = unsafe { bytes(&(*(*cf).cycle).prefix) };
    runtime
        .set_package_paths(path, cpath, prefix)
        .map_err(|e| format!("failed to set the Lua package paths: {e}"))
}

/// After a location's settings are merged: under `lua_code_cache off`, its
/// handlers reload their files and modules on every run.
pub(super) fn merge_code_cache(cf: *mut ngx_conf_t, parent: &LocConf, child: &mut LocConf) {
    child.code_cache = child.code_cache.or(parent.code_cache);
    if child.code_cache != Some(false) {
        return;
    }
    let Some(runtime) = main_conf(cf).runtime.as_deref_mut() else {
        return;
    };
    for chunk in [child.rewrite, child.access, child.content, child.log]
        .into_iter()
        .flatten()
    {
        runtime.disable_code_cache(chunk);
    }
}
