//! `lua_shared_dict`, `lua_shared_dict_persist` and `lua_shared_dict_status`.

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_module,
    ngx_parse_size, ngx_pcalloc, ngx_shared_memory_add, NGX_ERROR,
};

use super::config_file::{bytes, conf_args, parse_ms, prefix_full_name};
use crate::conf::{guarded, main_conf};
use crate::shdict::{init_shared_zone, Persist, SharedZone};

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

/// How often a persistent zone is saved unless `interval=` says otherwise.
const DEFAULT_SAVE_INTERVAL_MS: u64 = 60_000;

/// `lua_shared_dict_persist NAME PATH [interval=TIME];`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_shared_dict_persist(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let args = conf_args(cf);
        let name = String::from_utf8_lossy(bytes(&args[1])).into_owned();
        let mut interval_ms = DEFAULT_SAVE_INTERVAL_MS;
        if let Some(option) = args.get(3) {
            let text = bytes(option);
            let invalid = || format!("invalid parameter \"{}\"", String::from_utf8_lossy(text));
            let value = text.strip_prefix(b"interval=").ok_or_else(invalid)?;
            interval_ms = parse_ms(value).filter(|&ms| ms > 0).ok_or_else(invalid)?;
        }
        if args[2].len == 0 {
            return Err("lua_shared_dict_persist needs a file path".into());
        }
        // In the configuration pool, as long-lived as the zone object.
        let path = prefix_full_name(cf, args[2]).ok_or("no memory")?;
        let main = main_conf(cf);
        if let Some(other) = main
            .zones()
            .find(|z| z.persist().is_some_and(|p| bytes(&p.path) == bytes(&path)))
        {
            return Err(format!(
                "zone \"{}\" is saved to \"{}\" already",
                String::from_utf8_lossy(other.name()),
                String::from_utf8_lossy(bytes(&path))
            ));
        }
        let zone = main.zone_mut(bytes(&args[1])).ok_or_else(|| {
            format!("unknown zone \"{name}\": declare it with lua_shared_dict before lua_shared_dict_persist")
        })?;
        if !zone.set_persist(Persist { path, interval_ms }) {
            return Err(format!("zone \"{name}\" is persisted already"));
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
