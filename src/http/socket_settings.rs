//! The cosocket settings where Lua code connects: the location's
//! `lua_socket_*` directives (the `http` block's outside requests, as for
//! OpenResty's timers) and nginx's `resolver` and `resolver_timeout`.

use nginx_sys::{
    ngx_cycle, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_module, ngx_http_module,
};

use crate::conf::lookup::ctx_index;
use crate::conf::{request_confs, SocketConf};
use crate::request::socket::SocketSettings;
use crate::request::HttpRequest;

/// The settings for a socket connecting in `request` (or outside any).
pub(super) fn socket_settings(request: Option<HttpRequest>) -> SocketSettings {
    let (ours, core) = match request {
        Some(r) => {
            // SAFETY: a live request's loc_conf array holds the core
            // module's location configuration at its index.
            let core = unsafe {
                *(*r.as_ptr()).loc_conf.add(ngx_http_core_module.ctx_index)
                    as *const ngx_http_core_loc_conf_t
            };
            (request_confs(r).1.socket, core)
        }
        None => http_level(),
    };
    let mut settings = SocketSettings {
        connect_timeout: ours.connect_timeout.unwrap_or(60_000),
        send_timeout: ours.send_timeout.unwrap_or(60_000),
        read_timeout: ours.read_timeout.unwrap_or(60_000),
        buffer_size: ours.buffer_size.unwrap_or(4096),
        pool_size: ours.pool_size.unwrap_or(30),
        keepalive_timeout: ours.keepalive_timeout.unwrap_or(60_000),
        log_errors: ours.log_errors.unwrap_or(true),
        resolver: core::ptr::null_mut(),
        resolver_timeout: 30_000,
        tls: ours.tls.context,
    };
    // SAFETY: the core location configuration lives as long as the cycle.
    if let Some(core) = unsafe { core.as_ref() } {
        settings.resolver = core.resolver;
        settings.resolver_timeout = core.resolver_timeout as u64;
    }
    settings
}

/// The `http` block's settings: ours and nginx's core location
/// configuration.
fn http_level() -> (SocketConf, *const ngx_http_core_loc_conf_t) {
    // SAFETY: the running cycle's http configuration context, when there
    // is one, holds every http module's location configuration of the
    // `http` level.
    unsafe {
        let http = *(*ngx_cycle).conf_ctx.add(ngx_http_module.index);
        let Some(ctx) = (http as *mut ngx_http_conf_ctx_t).as_ref() else {
            return (SocketConf::default(), core::ptr::null());
        };
        let ours = (*ctx.loc_conf.add(ctx_index()))
            .cast::<crate::conf::LocConf>()
            .as_ref()
            .map(|loc| loc.socket)
            .unwrap_or_default();
        let core =
            *ctx.loc_conf.add(ngx_http_core_module.ctx_index) as *const ngx_http_core_loc_conf_t;
        (ours, core)
    }
}
