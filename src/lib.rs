//! An nginx dynamic module giving a stock nginx OpenResty's shared
//! dictionaries (`lua_shared_dict`, `ngx.shared.DICT`) and the `*_by_lua*`
//! directives that use them, on LuaJIT.
//!
//! Layers, each using only those below (`scripts/lib/check-layers.py`):
//! top: `directives`, [`conf`] and [`http`], nginx's entry points; then [`lua`];
//! then [`request`], the request primitives; bottom: [`shdict`], [`regex`], [`text`], [`nginx`], [`phase`].

#[cfg(not(any(test, memcheck_build)))]
mod allocator;
pub mod conf;
pub mod http;
pub mod log_capture;
pub mod lua;
pub mod nginx;
pub mod nginx_ffi;
pub mod phase;
pub mod regex;
pub mod request;
pub mod shdict;
pub mod text;

// Unit tests link without nginx: there the table is compiled but not
// referenced, so the linker drops it and the nginx symbols it reaches.
#[cfg_attr(test, allow(dead_code))]
mod directives;

use nginx_sys::ngx_module_t;

/// The module object nginx finds through `ngx_modules` after `load_module`.
///
/// Unit tests link without nginx, so there it carries no directives (whose
/// handlers would pull in nginx's symbols); other code only reads its
/// `ctx_index`.
#[cfg_attr(not(test), used, no_mangle)]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_lua_shdict_module: ngx_module_t = ngx_module_t {
    #[cfg(not(test))]
    ctx: core::ptr::addr_of!(directives::MODULE_CTX) as _,
    #[cfg(not(test))]
    commands: core::ptr::addr_of_mut!(directives::COMMANDS) as *mut nginx_sys::ngx_command_t,
    type_: nginx_sys::NGX_HTTP_MODULE as _,
    #[cfg(not(test))]
    init_module: Some(http::lifecycle::init_module),
    #[cfg(not(test))]
    init_process: Some(http::lifecycle::init_process),
    #[cfg(not(test))]
    exit_process: Some(http::lifecycle::exit_process),
    #[cfg(not(test))]
    exit_master: Some(http::lifecycle::exit_master),
    ..ngx_module_t::default()
};

#[cfg(not(test))]
ngx::ngx_modules!(ngx_http_lua_shdict_module);

/// See [`allocator`].
#[cfg(not(any(test, memcheck_build)))]
#[global_allocator]
static ALLOCATOR: allocator::ModuleAllocator = allocator::ModuleAllocator;
