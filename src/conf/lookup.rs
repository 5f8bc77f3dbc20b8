//! Where nginx keeps the module's configuration: found by the module's
//! context index from a directive's configuration context, a request, or
//! a cycle.

use nginx_sys::{ngx_conf_t, ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_module};

use super::{LocConf, MainConf};
use crate::request::HttpRequest;

/// The module's index in nginx's per-module configuration arrays.
pub fn ctx_index() -> usize {
    // SAFETY: a plain read of a field nginx sets while numbering the
    // modules, before any configuration is read; workers never write it.
    unsafe { crate::ngx_http_lua_shdict_module.ctx_index }
}

/// Our main configuration in an `http` configuration context.
///
/// # Safety
/// `ctx` must be a live `http` configuration context whose main
/// configurations are created.
pub unsafe fn in_http_context<'a>(ctx: *mut ngx_http_conf_ctx_t) -> &'a mut MainConf {
    // SAFETY: per the contract; our slot holds the MainConf create_main_conf
    // made.
    unsafe { &mut *(*(*ctx).main_conf.add(ctx_index())).cast::<MainConf>() }
}

/// Our main configuration, for a directive handler of ours.
pub(crate) fn main_conf<'a>(cf: *mut ngx_conf_t) -> &'a mut MainConf {
    // SAFETY: our directives are only accepted inside `http`, where the conf
    // context is an http one.
    unsafe { in_http_context((*cf).ctx.cast()) }
}

/// Our main and location configurations for a request.
pub fn request_confs<'a>(req: HttpRequest) -> (&'a MainConf, &'a LocConf) {
    // SAFETY: the request's conf arrays hold our confs at our index for
    // every request routed to a location of an http block.
    unsafe {
        let r = req.as_ptr();
        let main = &*(*(*r).main_conf.add(ctx_index())).cast::<MainConf>();
        let loc = &*(*(*r).loc_conf.add(ctx_index())).cast::<LocConf>();
        (main, loc)
    }
}

/// Our main configuration in `cycle`, if it has an `http` block.
pub(crate) fn cycle_main_conf<'a>(cycle: *mut ngx_cycle_t) -> Option<&'a MainConf> {
    // SAFETY: a cycle's conf_ctx has one slot per module; the http slot, when
    // set, is the http block's configuration context.
    unsafe {
        let http = *(*cycle).conf_ctx.add(ngx_http_module.index);
        let ctx = (http as *mut ngx_http_conf_ctx_t).as_mut()?;
        Some(in_http_context(ctx))
    }
}
