//! The module's configuration structures, as nginx creates, merges and
//! hands them to the handlers, and the lookups that find them.

pub mod lookup;
pub mod packages;

pub use self::lookup::request_confs;
pub(crate) use self::lookup::{cycle_main_conf, main_conf};

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use nginx_sys::{ngx_conf_t, ngx_pcalloc, ngx_pool_cleanup_add, ngx_str_t};

use crate::lua::{ChunkId, LuaRuntime};
use crate::nginx::conf_emerg;
use crate::phase::Phase;
use crate::request::socket::TlsContext;
use crate::shdict::SharedZone;

pub const NGX_CONF_OK: *mut c_char = ptr::null_mut();

pub const NGX_CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;

/// OpenResty's default for `lua_regex_cache_max_entries`.
const DEFAULT_REGEX_CACHE_MAX_ENTRIES: usize = 1024;

/// `http`-level configuration: the zones and the Lua state of this cycle.
#[derive(Default)]
pub struct MainConf {
    zones: Vec<NonNull<SharedZone>>,
    runtime: Option<Box<LuaRuntime>>,
    pub init: Option<ChunkId>,
    pub init_worker: Option<ChunkId>,
    pub exit_worker: Option<ChunkId>,
    /// Phases some location runs Lua in: their handlers get registered.
    pub server_rewrite_used: bool,
    pub rewrite_used: bool,
    /// `rewrite_by_lua_no_postpone` / `access_by_lua_no_postpone`.
    pub rewrite_no_postpone: Option<bool>,
    pub access_no_postpone: Option<bool>,
    pub access_used: bool,
    pub log_used: bool,
    /// `lua_max_pending_timers` / `lua_max_running_timers`, when set.
    pub max_pending_timers: Option<usize>,
    pub max_running_timers: Option<usize>,
    /// `lua_regex_cache_max_entries` / `lua_regex_match_limit`, when set.
    pub regex_cache_max_entries: Option<usize>,
    pub regex_match_limit: Option<u32>,
    /// `lua_capture_error_log`: the buffer's size, when set.
    pub capture_error_log: Option<usize>,
    pub header_filter_used: bool,
    pub body_filter_used: bool,
    /// `lua_package_path` / `lua_package_cpath`, applied by init_main_conf.
    pub package_path: Option<Vec<u8>>,
    pub package_cpath: Option<Vec<u8>>,
}

impl MainConf {
    pub fn runtime(&self) -> Option<&LuaRuntime> {
        self.runtime.as_deref()
    }

    pub fn zones(&self) -> impl Iterator<Item = &SharedZone> {
        // SAFETY: zones live in the configuration pool, as long as this conf.
        self.zones.iter().map(|z| unsafe { z.as_ref() })
    }

    /// A declared zone, to change its settings while the configuration is
    /// read.
    pub(crate) fn zone_mut(&mut self, name: &[u8]) -> Option<&mut SharedZone> {
        self.zones
            .iter_mut()
            // SAFETY: zones live in the configuration pool, as long as this
            // conf, and only the configuration reader changes them.
            .map(|z| unsafe { z.as_mut() })
            .find(|z| z.name() == name)
    }

    /// Declares a zone (`lua_shared_dict`).
    pub(crate) fn add_zone(&mut self, zone: NonNull<SharedZone>) {
        self.zones.push(zone);
    }

    pub(crate) fn runtime_mut(&mut self) -> Result<&mut LuaRuntime, String> {
        if self.runtime.is_none() {
            let runtime =
                LuaRuntime::new().map_err(|e| format!("failed to create the Lua state: {e}"))?;
            self.runtime = Some(Box::new(runtime));
        }
        Ok(self.runtime.as_deref_mut().expect("runtime just created"))
    }
}

/// `location`-level configuration (also created at `http` and `server`
/// level, where rewrite/access/log handlers may be set and are inherited).
#[derive(Default, Clone, Copy)]
pub struct LocConf {
    pub server_rewrite: Option<ChunkId>,
    pub rewrite: Option<ChunkId>,
    pub access: Option<ChunkId>,
    pub content: Option<ChunkId>,
    pub header_filter: Option<ChunkId>,
    pub body_filter: Option<ChunkId>,
    pub log: Option<ChunkId>,
    /// `lua_code_cache`; unset means inherited, on at the top.
    pub code_cache: Option<bool>,
    /// `lua_need_request_body`; unset means inherited, off at the top.
    pub need_request_body: Option<bool>,
    /// `lua_transform_underscores_in_response_headers`; unset means
    /// inherited, on at the top.
    pub transform_underscores: Option<bool>,
    /// `lua_check_client_abort`; unset means inherited, off at the top.
    pub check_client_abort: Option<bool>,
    /// The `lua_socket_*` directives.
    pub socket: SocketConf,
}

/// The `lua_socket_*` directives of a level; unset means inherited, then
/// OpenResty's defaults.
#[derive(Default, Clone, Copy)]
pub struct SocketConf {
    /// Milliseconds.
    pub connect_timeout: Option<u64>,
    pub send_timeout: Option<u64>,
    pub read_timeout: Option<u64>,
    pub keepalive_timeout: Option<u64>,
    pub buffer_size: Option<usize>,
    pub pool_size: Option<usize>,
    pub log_errors: Option<bool>,
    /// The `lua_ssl_*` directives.
    pub tls: TlsConf,
}

/// The `lua_ssl_*` directives of a level, and the client context made
/// from them (shared with the levels below that set none of their own).
#[derive(Default, Clone, Copy)]
pub struct TlsConf {
    /// nginx's `NGX_SSL_*` protocol bits.
    pub protocols: Option<usize>,
    /// NUL-terminated (nginx's directive arguments are).
    pub ciphers: Option<ngx_str_t>,
    /// The full path.
    pub trusted_certificate: Option<ngx_str_t>,
    pub verify_depth: Option<isize>,
    pub context: Option<TlsContext>,
}

impl TlsConf {
    fn sets_any(&self) -> bool {
        self.protocols.is_some()
            || self.ciphers.is_some()
            || self.trusted_certificate.is_some()
            || self.verify_depth.is_some()
    }

    /// The level's settings (inheriting those it does not set) and its
    /// context: the parent's when it sets nothing of its own.
    fn merge(&mut self, cf: *mut ngx_conf_t, parent: &TlsConf) -> Result<(), ()> {
        if !self.sets_any() {
            *self = *parent;
            return Ok(());
        }
        self.protocols = self.protocols.or(parent.protocols);
        self.ciphers = self.ciphers.or(parent.ciphers);
        self.trusted_certificate = self.trusted_certificate.or(parent.trusted_certificate);
        self.verify_depth = self.verify_depth.or(parent.verify_depth);
        self.make_context(cf)
    }

    /// Makes the level's client context; nginx logs why it cannot.
    #[cfg(ngx_feature = "http_ssl")]
    fn make_context(&mut self, cf: *mut ngx_conf_t) -> Result<(), ()> {
        use crate::request::socket::tls::{new_context, TlsOptions, DEFAULT_PROTOCOLS};
        let options = TlsOptions {
            protocols: self.protocols.unwrap_or(DEFAULT_PROTOCOLS),
            ciphers: self.ciphers.unwrap_or(ngx_str_t {
                len: 7,
                data: c"DEFAULT".as_ptr() as *mut u8,
            }),
            trusted_certificate: self.trusted_certificate,
            verify_depth: self.verify_depth.unwrap_or(1),
        };
        // SAFETY: called while nginx reads the configuration.
        self.context = Some(unsafe { new_context(cf, &options) }.ok_or(())?);
        Ok(())
    }

    #[cfg(not(ngx_feature = "http_ssl"))]
    fn make_context(&mut self, _cf: *mut ngx_conf_t) -> Result<(), ()> {
        Ok(())
    }
}

impl SocketConf {
    fn inherit(&mut self, parent: &SocketConf) {
        self.connect_timeout = self.connect_timeout.or(parent.connect_timeout);
        self.send_timeout = self.send_timeout.or(parent.send_timeout);
        self.read_timeout = self.read_timeout.or(parent.read_timeout);
        self.keepalive_timeout = self.keepalive_timeout.or(parent.keepalive_timeout);
        self.buffer_size = self.buffer_size.or(parent.buffer_size);
        self.pool_size = self.pool_size.or(parent.pool_size);
        self.log_errors = self.log_errors.or(parent.log_errors);
    }
}

impl LocConf {
    pub(crate) fn slot(&mut self, phase: Phase) -> Option<&mut Option<ChunkId>> {
        match phase {
            Phase::ServerRewrite => Some(&mut self.server_rewrite),
            Phase::Rewrite => Some(&mut self.rewrite),
            Phase::Access => Some(&mut self.access),
            Phase::Content => Some(&mut self.content),
            Phase::HeaderFilter => Some(&mut self.header_filter),
            Phase::BodyFilter => Some(&mut self.body_filter),
            Phase::Log => Some(&mut self.log),
            _ => None,
        }
    }
}

/// # Safety
/// Called by nginx with its parent and child location configurations.
pub(crate) unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    parent: *mut c_void,
    child: *mut c_void,
) -> *mut c_char {
    // SAFETY: both are LocConf objects made by create_loc_conf.
    let (parent, child) = unsafe { (&*parent.cast::<LocConf>(), &mut *child.cast::<LocConf>()) };
    // Content handlers belong to their location; the other phases inherit.
    child.server_rewrite = child.server_rewrite.or(parent.server_rewrite);
    child.rewrite = child.rewrite.or(parent.rewrite);
    child.access = child.access.or(parent.access);
    child.log = child.log.or(parent.log);
    child.header_filter = child.header_filter.or(parent.header_filter);
    child.body_filter = child.body_filter.or(parent.body_filter);
    child.check_client_abort = child.check_client_abort.or(parent.check_client_abort);
    child.need_request_body = child.need_request_body.or(parent.need_request_body);
    child.transform_underscores = child.transform_underscores.or(parent.transform_underscores);
    child.socket.inherit(&parent.socket);
    if child.socket.tls.merge(cf, &parent.socket.tls).is_err() {
        return NGX_CONF_ERROR;
    }
    packages::merge_code_cache(cf, parent, child);
    NGX_CONF_OK
}

/// Allocates `T::default()` in the configuration pool and drops it when the
/// pool (the cycle) goes away.
unsafe fn alloc_in_conf_pool<T: Default>(cf: *mut ngx_conf_t) -> *mut c_void {
    unsafe extern "C" fn drop_value<T>(data: *mut c_void) {
        // SAFETY: registered below for exactly this initialised T, and
        // dropped exactly once, when the pool is destroyed.
        crate::nginx::without_unwinding("configuration cleanup", || unsafe {
            ptr::drop_in_place(data.cast::<T>())
        });
    }
    // SAFETY: cf is valid during configuration; the pool returns memory
    // aligned for any type nginx uses (NGX_ALIGNMENT).
    unsafe {
        let pool = (*cf).pool;
        let value = ngx_pcalloc(pool, core::mem::size_of::<T>()).cast::<T>();
        if value.is_null() {
            return ptr::null_mut();
        }
        let cleanup = ngx_pool_cleanup_add(pool, 0);
        if cleanup.is_null() {
            return ptr::null_mut();
        }
        ptr::write(value, T::default());
        (*cleanup).handler = Some(drop_value::<T>);
        (*cleanup).data = value.cast();
        value.cast()
    }
}

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: called by nginx with a valid conf.
    unsafe { alloc_in_conf_pool::<MainConf>(cf) }
}

/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    // SAFETY: called by nginx with a valid conf.
    unsafe { alloc_in_conf_pool::<LocConf>(cf) }
}

/// After the whole `http` block is read: every zone is known, so
/// `ngx.shared` can be filled.
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn init_main_conf(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes the MainConf create_main_conf made.
        let main = unsafe { &*conf.cast::<MainConf>() };
        if let Some(runtime) = main.runtime() {
            runtime
                .register_zones(main.zones())
                .map_err(|e| format!("failed to register lua_shared_dict zones: {e}"))?;
        }
        packages::apply_package_paths(cf, main)?;
        http_level_tls_context(cf)?;
        crate::log_capture::configure(main.capture_error_log.unwrap_or(0));
        if let Some(runtime) = main.runtime() {
            runtime
                .configure_regex(
                    main.regex_cache_max_entries
                        .unwrap_or(DEFAULT_REGEX_CACHE_MAX_ENTRIES),
                    main.regex_match_limit.unwrap_or(0),
                )
                .map_err(|e| format!("failed to configure ngx.re: {e}"))?;
        }
        Ok(())
    })
}

/// Makes the `http` level's TLS client context, which every level without
/// `lua_ssl_*` directives of its own (and timers) uses. It is made here,
/// with the `http` block read and before the levels below merge.
fn http_level_tls_context(cf: *mut ngx_conf_t) -> Result<(), String> {
    // SAFETY: during init_main_conf cf->ctx is the http block's context,
    // whose loc_conf array holds our http-level LocConf.
    let http = unsafe {
        let ctx = (*cf).ctx.cast::<nginx_sys::ngx_http_conf_ctx_t>();
        (*(*ctx).loc_conf.add(lookup::ctx_index())).cast::<LocConf>()
    };
    // SAFETY: made by create_loc_conf; nothing else holds it now.
    let tls = unsafe { &mut (*http).socket.tls };
    tls.make_context(cf)
        .map_err(|()| "failed to set up TLS for cosockets".to_string())
}

/// Runs a directive handler body, turning its error text into an `[emerg]`
/// line with file and line, and a panic into a failed directive.
pub(crate) fn guarded(
    cf: *mut ngx_conf_t,
    body: impl FnOnce() -> Result<(), String>,
) -> *mut c_char {
    let message = crate::nginx::guarded(
        || body().err(),
        || Some("internal error (panic) while handling the directive".to_string()),
    );
    match message {
        None => NGX_CONF_OK,
        Some(message) => {
            // SAFETY: guarded runs inside nginx's directive callbacks with
            // their conf.
            unsafe { conf_emerg(cf, &message) };
            NGX_CONF_ERROR
        }
    }
}
