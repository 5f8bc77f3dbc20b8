//! `lua_shared_dict` and `lua_shared_dict_status`.

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_module,
    ngx_parse_size, ngx_pcalloc, ngx_shared_memory_add, NGX_ERROR,
};

use super::config_file::{bytes, conf_args};
use crate::conf::{guarded, main_conf};
use crate::shdict::{init_shared_zone, SharedZone};

/// Smallest zone OpenResty accepts: two pages, one for the slab pool header.
const MIN_ZONE_SIZE: isize = 8192;

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_shared_dict(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let args = conf_args(cf);
        let (name, size_arg) = (args[1], args[2]);
        let name_text = String::from_utf8_lossy(bytes(&name)).into_owned();
        if name.len == 0 {
            return Err(format!("invalid lua shared dict name \"{name_text}\""));
        }
        let mut size_str = size_arg;
        // SAFETY: ngx_parse_size only reads the string.
        let size = unsafe { ngx_parse_size(&mut size_str) };
        if size == NGX_ERROR as isize || size < MIN_ZONE_SIZE {
            return Err(format!(
                "invalid lua shared dict size \"{}\"",
                String::from_utf8_lossy(bytes(&size_arg))
            ));
        }
        if size as u64 > crate::shdict::layout::MAX_ZONE_SIZE {
            return Err(format!(
                "lua_shared_dict \"{name_text}\" is too large: zones hold at most 32g"
            ));
        }
        let main = main_conf(cf);
        if let Some(existing) = main.zones().find(|z| z.name() == bytes(&name)) {
            return Err(format!(
                "lua_shared_dict \"{name_text}\" is already defined as \"{}\"",
                String::from_utf8_lossy(existing.name())
            ));
        }
        // SAFETY: cf is valid; the zone object is allocated from the cycle
        // pool so it lives exactly as long as nginx's zone entry for it.
        unsafe {
            let zone =
                ngx_pcalloc((*cf).pool, core::mem::size_of::<SharedZone>()).cast::<SharedZone>();
            let zone = NonNull::new(zone).ok_or("no memory")?;
            ptr::write(zone.as_ptr(), SharedZone::new(name, size as usize));
            let tag = ptr::addr_of_mut!(crate::ngx_http_lua_shdict_module).cast::<c_void>();
            let mut shm_name = name;
            let shm_zone = ngx_shared_memory_add(cf, &mut shm_name, size as usize, tag);
            if shm_zone.is_null() {
                return Err(format!("failed to add shared memory zone \"{name_text}\""));
            }
            if !(*shm_zone).data.is_null() {
                return Err(format!(
                    "lua_shared_dict \"{name_text}\" is already defined as \"{name_text}\""
                ));
            }
            (*shm_zone).data = zone.as_ptr().cast();
            (*shm_zone).init = Some(init_shared_zone);
            main.add_zone(zone);
        }
        Ok(())
    })
}

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_shared_dict_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: the core module's location conf sits at its ctx_index in
        // this http context.
        unsafe {
            let ctx = (*cf).ctx.cast::<ngx_http_conf_ctx_t>();
            let clcf = (*(*ctx).loc_conf.add(ngx_http_core_module.ctx_index))
                .cast::<ngx_http_core_loc_conf_t>();
            (*clcf).handler = Some(crate::http::status::status_handler);
        }
        Ok(())
    })
}
