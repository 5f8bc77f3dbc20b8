//! How `lua_package_path`, `lua_package_cpath` and `lua_code_cache` apply
//! once the configuration is read.

use nginx_sys::ngx_conf_t;

use super::{main_conf, LocConf, MainConf};
use crate::nginx::str_bytes as bytes;

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
        runtime.chunks_mut().disable_code_cache(chunk);
    }
}
