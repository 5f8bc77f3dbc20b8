//! The directive table and HTTP module context nginx reads from the module.

use nginx_sys::{
    ngx_command_t, ngx_http_module_t, ngx_str_t, NGX_CONF_BLOCK, NGX_CONF_NOARGS, NGX_CONF_TAKE1,
    NGX_CONF_TAKE2, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET,
};

/// nginx matches directive names with `strcmp`: they must be NUL-terminated.
const fn directive_name(name: &'static core::ffi::CStr) -> ngx_str_t {
    ngx_str_t {
        len: name.count_bytes(),
        data: name.as_ptr() as *mut u8,
    }
}

const LOCATION_CONTEXTS: u32 = NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;

pub(crate) static mut COMMANDS: [ngx_command_t; 6] = [
    ngx_command_t {
        name: directive_name(c"lua_shared_dict"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_TAKE2) as usize,
        set: Some(crate::conf::set_lua_shared_dict),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: core::ptr::null_mut(),
    },
    ngx_command_t {
        name: directive_name(c"content_by_lua"),
        type_: (LOCATION_CONTEXTS | NGX_CONF_TAKE1) as usize,
        set: Some(crate::conf::set_content_by_lua),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: core::ptr::null_mut(),
    },
    ngx_command_t {
        name: directive_name(c"content_by_lua_block"),
        type_: (LOCATION_CONTEXTS | NGX_CONF_BLOCK | NGX_CONF_NOARGS) as usize,
        set: Some(crate::conf::set_content_by_lua_block),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: core::ptr::null_mut(),
    },
    ngx_command_t {
        name: directive_name(c"content_by_lua_file"),
        type_: (LOCATION_CONTEXTS | NGX_CONF_TAKE1) as usize,
        set: Some(crate::conf::set_content_by_lua_file),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: core::ptr::null_mut(),
    },
    ngx_command_t {
        name: directive_name(c"lua_shared_dict_status"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as usize,
        set: Some(crate::conf::set_lua_shared_dict_status),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: core::ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

pub(crate) static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: None,
    create_main_conf: Some(crate::conf::create_main_conf),
    init_main_conf: Some(crate::conf::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(crate::conf::create_loc_conf),
    merge_loc_conf: None,
};
