//! The directive table and HTTP module context nginx reads from the module.

mod config_file;
pub mod lua_block;
mod lua_code;
mod set_by_lua;
mod settings;
mod socket_settings;
mod tls_settings;
mod zones;

use core::ffi::CStr;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_module_t, ngx_str_t, NGX_CONF_1MORE, NGX_CONF_2MORE,
    NGX_CONF_BLOCK, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_CONF_TAKE1, NGX_CONF_TAKE2,
    NGX_CONF_TAKE23, NGX_HTTP_LIF_CONF, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SIF_CONF, NGX_HTTP_SRV_CONF,
};

use crate::phase::Phase;

type DirectiveHandler = unsafe extern "C" fn(
    *mut ngx_conf_t,
    *mut ngx_command_t,
    *mut core::ffi::c_void,
) -> *mut core::ffi::c_char;

/// nginx matches directive names with `strcmp`: they must be NUL-terminated.
const fn directive_name(name: &'static CStr) -> ngx_str_t {
    ngx_str_t {
        len: name.count_bytes(),
        data: name.as_ptr() as *mut u8,
    }
}

const LOCATION: u32 = NGX_HTTP_LOC_CONF | NGX_HTTP_LIF_CONF;
const ANY_LEVEL: u32 = NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | LOCATION;
/// Where nginx's own `set` may appear: set_by_lua* goes there too.
const SET_CONTEXTS: u32 = NGX_HTTP_SRV_CONF | NGX_HTTP_SIF_CONF | LOCATION;

/// How a `*_by_lua*` directive carries its code.
#[derive(Clone, Copy)]
enum Form {
    Inline,
    Block,
    File,
}

const fn command(
    name: &'static CStr,
    contexts: u32,
    arguments: u32,
    set: DirectiveHandler,
    conf: usize,
    offset: usize,
) -> ngx_command_t {
    ngx_command_t {
        name: directive_name(name),
        type_: (contexts | arguments) as usize,
        set: Some(set),
        conf,
        offset,
        post: core::ptr::null_mut(),
    }
}

/// A `*_by_lua*` directive; its phase travels in `offset` to the generic
/// handlers.
const fn lua_command(name: &'static CStr, phase: Phase, form: Form) -> ngx_command_t {
    let (contexts, conf) = match phase {
        Phase::Init | Phase::InitWorker | Phase::ExitWorker => {
            (NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET)
        }
        Phase::Content => (LOCATION, NGX_HTTP_LOC_CONF_OFFSET),
        // set_by_lua* takes a variable and arguments: see its commands.
        Phase::Set => (SET_CONTEXTS, NGX_HTTP_LOC_CONF_OFFSET),
        // Timers have no directive.
        Phase::Timer => (0, NGX_HTTP_LOC_CONF_OFFSET),
        Phase::ServerRewrite => (
            NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF,
            NGX_HTTP_LOC_CONF_OFFSET,
        ),
        Phase::Rewrite | Phase::Access | Phase::HeaderFilter | Phase::BodyFilter | Phase::Log => {
            (ANY_LEVEL, NGX_HTTP_LOC_CONF_OFFSET)
        }
    };
    let (arguments, set): (u32, DirectiveHandler) = match form {
        Form::Inline => (NGX_CONF_TAKE1, lua_code::set_by_lua_inline),
        Form::Block => (NGX_CONF_BLOCK | NGX_CONF_NOARGS, lua_code::set_by_lua_block),
        Form::File => (NGX_CONF_TAKE1, lua_code::set_by_lua_file),
    };
    command(name, contexts, arguments, set, conf, phase.index())
}

pub(crate) static mut COMMANDS: [ngx_command_t; 60] = [
    command(
        c"lua_shared_dict",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE2,
        zones::set_lua_shared_dict,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_shared_dict_persist",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE23,
        zones::set_lua_shared_dict_persist,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_shared_dict_status",
        NGX_HTTP_LOC_CONF,
        NGX_CONF_NOARGS,
        zones::set_lua_shared_dict_status,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    lua_command(c"init_by_lua", Phase::Init, Form::Inline),
    lua_command(c"init_by_lua_block", Phase::Init, Form::Block),
    lua_command(c"init_by_lua_file", Phase::Init, Form::File),
    lua_command(c"init_worker_by_lua", Phase::InitWorker, Form::Inline),
    lua_command(c"init_worker_by_lua_block", Phase::InitWorker, Form::Block),
    lua_command(c"init_worker_by_lua_file", Phase::InitWorker, Form::File),
    lua_command(c"exit_worker_by_lua", Phase::ExitWorker, Form::Inline),
    lua_command(c"exit_worker_by_lua_block", Phase::ExitWorker, Form::Block),
    lua_command(c"exit_worker_by_lua_file", Phase::ExitWorker, Form::File),
    command(
        c"set_by_lua",
        SET_CONTEXTS,
        NGX_CONF_2MORE,
        set_by_lua::set_by_lua_inline,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        c"set_by_lua_block",
        SET_CONTEXTS,
        NGX_CONF_BLOCK | NGX_CONF_TAKE1,
        set_by_lua::set_by_lua_block,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        c"set_by_lua_file",
        SET_CONTEXTS,
        NGX_CONF_2MORE,
        set_by_lua::set_by_lua_file,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    lua_command(
        c"server_rewrite_by_lua_block",
        Phase::ServerRewrite,
        Form::Block,
    ),
    lua_command(
        c"server_rewrite_by_lua_file",
        Phase::ServerRewrite,
        Form::File,
    ),
    lua_command(c"rewrite_by_lua", Phase::Rewrite, Form::Inline),
    lua_command(c"rewrite_by_lua_block", Phase::Rewrite, Form::Block),
    lua_command(c"rewrite_by_lua_file", Phase::Rewrite, Form::File),
    lua_command(c"access_by_lua", Phase::Access, Form::Inline),
    lua_command(c"access_by_lua_block", Phase::Access, Form::Block),
    lua_command(c"access_by_lua_file", Phase::Access, Form::File),
    lua_command(c"content_by_lua", Phase::Content, Form::Inline),
    lua_command(c"content_by_lua_block", Phase::Content, Form::Block),
    lua_command(c"content_by_lua_file", Phase::Content, Form::File),
    lua_command(c"header_filter_by_lua", Phase::HeaderFilter, Form::Inline),
    lua_command(
        c"header_filter_by_lua_block",
        Phase::HeaderFilter,
        Form::Block,
    ),
    lua_command(
        c"header_filter_by_lua_file",
        Phase::HeaderFilter,
        Form::File,
    ),
    lua_command(c"body_filter_by_lua", Phase::BodyFilter, Form::Inline),
    lua_command(c"body_filter_by_lua_block", Phase::BodyFilter, Form::Block),
    lua_command(c"body_filter_by_lua_file", Phase::BodyFilter, Form::File),
    lua_command(c"log_by_lua", Phase::Log, Form::Inline),
    lua_command(c"log_by_lua_block", Phase::Log, Form::Block),
    lua_command(c"log_by_lua_file", Phase::Log, Form::File),
    // `offset` tells package.path (0) from package.cpath (1).
    command(
        c"lua_package_path",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_lua_package_path,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_package_cpath",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_lua_package_path,
        NGX_HTTP_MAIN_CONF_OFFSET,
        1,
    ),
    command(
        c"lua_code_cache",
        ANY_LEVEL,
        NGX_CONF_FLAG,
        settings::set_lua_code_cache,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_capture_error_log",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_capture_error_log,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_transform_underscores_in_response_headers",
        ANY_LEVEL,
        NGX_CONF_FLAG,
        settings::set_location_flag,
        NGX_HTTP_LOC_CONF_OFFSET,
        2,
    ),
    command(
        c"lua_need_request_body",
        ANY_LEVEL,
        NGX_CONF_FLAG,
        settings::set_location_flag,
        NGX_HTTP_LOC_CONF_OFFSET,
        1,
    ),
    command(
        c"rewrite_by_lua_no_postpone",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_FLAG,
        settings::set_no_postpone,
        NGX_HTTP_MAIN_CONF_OFFSET,
        0,
    ),
    command(
        c"access_by_lua_no_postpone",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_FLAG,
        settings::set_no_postpone,
        NGX_HTTP_MAIN_CONF_OFFSET,
        1,
    ),
    command(
        c"lua_check_client_abort",
        ANY_LEVEL,
        NGX_CONF_FLAG,
        settings::set_location_flag,
        NGX_HTTP_LOC_CONF_OFFSET,
        0,
    ),
    command(
        c"lua_max_pending_timers",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_main_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        settings::MAX_PENDING_TIMERS,
    ),
    command(
        c"lua_max_running_timers",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_main_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        settings::MAX_RUNNING_TIMERS,
    ),
    command(
        c"lua_regex_cache_max_entries",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_main_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        settings::REGEX_CACHE_MAX_ENTRIES,
    ),
    command(
        c"lua_regex_match_limit",
        NGX_HTTP_MAIN_CONF,
        NGX_CONF_TAKE1,
        settings::set_main_number,
        NGX_HTTP_MAIN_CONF_OFFSET,
        settings::REGEX_MATCH_LIMIT,
    ),
    command(
        c"lua_socket_connect_timeout",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::CONNECT_TIMEOUT,
    ),
    command(
        c"lua_socket_send_timeout",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::SEND_TIMEOUT,
    ),
    command(
        c"lua_socket_read_timeout",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::READ_TIMEOUT,
    ),
    command(
        c"lua_socket_keepalive_timeout",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::KEEPALIVE_TIMEOUT,
    ),
    command(
        c"lua_socket_buffer_size",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::BUFFER_SIZE,
    ),
    command(
        c"lua_socket_pool_size",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::POOL_SIZE,
    ),
    command(
        c"lua_socket_log_errors",
        ANY_LEVEL,
        NGX_CONF_FLAG,
        socket_settings::set_socket_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        socket_settings::LOG_ERRORS,
    ),
    command(
        c"lua_ssl_protocols",
        ANY_LEVEL,
        NGX_CONF_1MORE,
        tls_settings::set_tls_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        tls_settings::PROTOCOLS,
    ),
    command(
        c"lua_ssl_ciphers",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        tls_settings::set_tls_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        tls_settings::CIPHERS,
    ),
    command(
        c"lua_ssl_trusted_certificate",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        tls_settings::set_tls_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        tls_settings::TRUSTED_CERTIFICATE,
    ),
    command(
        c"lua_ssl_verify_depth",
        ANY_LEVEL,
        NGX_CONF_TAKE1,
        tls_settings::set_tls_setting,
        NGX_HTTP_LOC_CONF_OFFSET,
        tls_settings::VERIFY_DEPTH,
    ),
    ngx_command_t::empty(),
];

pub(crate) static MODULE_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: None,
    postconfiguration: Some(crate::http::register_phase_handlers),
    create_main_conf: Some(crate::conf::create_main_conf),
    init_main_conf: Some(crate::conf::init_main_conf),
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(crate::conf::create_loc_conf),
    merge_loc_conf: Some(crate::conf::merge_loc_conf),
};
