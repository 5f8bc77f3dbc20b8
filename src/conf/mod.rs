//! Directive handlers and the module's configuration structures.

pub mod lua_block;
pub mod packages;
pub mod set_by_lua;
pub mod timers;

use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_get_full_name, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t,
    ngx_http_core_module, ngx_int_t, ngx_parse_size, ngx_pcalloc, ngx_pool_cleanup_add,
    ngx_read_file, ngx_shared_memory_add, ngx_str_t, NGX_ERROR, NGX_OK,
};

use self::lua_block::{LuaBlockScanner, Step};
use crate::lua::{ChunkId, LuaRuntime, Phase};
use crate::nginx::conf_emerg;
use crate::shdict::{init_shared_zone, SharedZone};

/// Smallest zone OpenResty accepts: two pages, one for the slab pool header.
const MIN_ZONE_SIZE: isize = 8192;

pub const NGX_CONF_OK: *mut c_char = ptr::null_mut();
pub const NGX_CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;

/// `http`-level configuration: the zones and the Lua state of this cycle.
#[derive(Default)]
pub struct MainConf {
    zones: Vec<NonNull<SharedZone>>,
    runtime: Option<Box<LuaRuntime>>,
    pub init: Option<ChunkId>,
    pub init_worker: Option<ChunkId>,
    pub exit_worker: Option<ChunkId>,
    /// Phases some location runs Lua in: their handlers get registered.
    pub rewrite_used: bool,
    pub access_used: bool,
    pub log_used: bool,
    /// `lua_max_pending_timers` / `lua_max_running_timers`, when set.
    pub max_pending_timers: Option<usize>,
    pub max_running_timers: Option<usize>,
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

    fn runtime_mut(&mut self) -> Result<&mut LuaRuntime, String> {
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
    pub rewrite: Option<ChunkId>,
    pub access: Option<ChunkId>,
    pub content: Option<ChunkId>,
    pub header_filter: Option<ChunkId>,
    pub body_filter: Option<ChunkId>,
    pub log: Option<ChunkId>,
    /// `lua_code_cache`; unset means inherited, on at the top.
    pub code_cache: Option<bool>,
    /// `lua_check_client_abort`; unset means inherited, off at the top.
    pub check_client_abort: Option<bool>,
}

impl LocConf {
    fn slot(&mut self, phase: Phase) -> Option<&mut Option<ChunkId>> {
        match phase {
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
    child.rewrite = child.rewrite.or(parent.rewrite);
    child.access = child.access.or(parent.access);
    child.log = child.log.or(parent.log);
    child.header_filter = child.header_filter.or(parent.header_filter);
    child.body_filter = child.body_filter.or(parent.body_filter);
    child.check_client_abort = child.check_client_abort.or(parent.check_client_abort);
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
        Ok(())
    })
}

/// Runs a directive handler body, turning its error text into an `[emerg]`
/// line with file and line, and a panic into a failed directive.
fn guarded(cf: *mut ngx_conf_t, body: impl FnOnce() -> Result<(), String>) -> *mut c_char {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => NGX_CONF_OK,
        Ok(Err(message)) => {
            // SAFETY: guarded runs inside nginx's directive callbacks with
            // their conf.
            unsafe { conf_emerg(cf, &message) };
            NGX_CONF_ERROR
        }
        Err(_) => {
            // SAFETY: as above.
            unsafe { conf_emerg(cf, "internal error (panic) while handling the directive") };
            NGX_CONF_ERROR
        }
    }
}

fn conf_args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx_str_t] {
    // SAFETY: during a directive handler cf->args holds the directive's words.
    unsafe {
        let args = (*cf).args;
        core::slice::from_raw_parts((*args).elts.cast::<ngx_str_t>(), (*args).nelts)
    }
}

use crate::nginx::str_bytes as bytes;

fn main_conf<'a>(cf: *mut ngx_conf_t) -> &'a mut MainConf {
    // SAFETY: our directives are only accepted inside `http`, where the conf
    // context is an http one holding our main conf at our ctx_index.
    unsafe {
        let ctx = (*cf).ctx.cast::<ngx_http_conf_ctx_t>();
        let index = crate::ngx_http_lua_shdict_module.ctx_index;
        &mut *(*(*ctx).main_conf.add(index)).cast::<MainConf>()
    }
}

/// Where a directive sits, as `nginx.conf:12`: the chunk name suffix.
fn conf_position(cf: *mut ngx_conf_t, line: usize) -> String {
    // SAFETY: while parsing a file, conf_file names it.
    let name = unsafe { bytes(&(*(*cf).conf_file).file.name) };
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    format!("{}:{line}", String::from_utf8_lossy(base))
}

fn current_line(cf: *mut ngx_conf_t) -> usize {
    // SAFETY: conf_file is set while a file is being parsed.
    unsafe { (*(*cf).conf_file).line }
}

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
            main.zones.push(zone);
        }
        Ok(())
    })
}

/// Reads an `on|off` argument into `slot`, which must not be set yet.
fn set_on_off(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    slot: &mut Option<bool>,
) -> Result<bool, String> {
    let name = directive_name(cmd);
    if slot.is_some() {
        return Err(format!("\"{name}\" directive is duplicate"));
    }
    let value = bytes(&conf_args(cf)[1]);
    let on = if value.eq_ignore_ascii_case(b"on") {
        true
    } else if value.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return Err(format!(
            "invalid value \"{}\" in \"{name}\" directive, it must be \"on\" or \"off\"",
            String::from_utf8_lossy(value)
        ));
    };
    *slot = Some(on);
    Ok(on)
}

/// `lua_check_client_abort on|off`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_lua_check_client_abort(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let loc = unsafe { &mut *conf.cast::<LocConf>() };
        set_on_off(cf, cmd, &mut loc.check_client_abort).map(drop)
    })
}

/// The phase a `*_by_lua*` directive configures, kept in its command's
/// otherwise unused `offset` field.
fn phase_of(cmd: *mut ngx_command_t) -> Phase {
    // SAFETY: nginx passes the command being handled, one of ours.
    Phase::ALL[unsafe { (*cmd).offset }]
}

fn directive_name(cmd: *mut ngx_command_t) -> String {
    // SAFETY: as above; the name is a static string of ours.
    String::from_utf8_lossy(unsafe { bytes(&(*cmd).name) }).into_owned()
}

/// Records `chunk` for its phase: in the main conf for process-wide phases,
/// else in the location (installing our content handler for content).
fn install_chunk(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
    chunk: ChunkId,
) -> Result<(), String> {
    let phase = phase_of(cmd);
    let duplicate = || format!("\"{}\" directive is duplicate", directive_name(cmd));
    let main = main_conf(cf);
    let process_slot = match phase {
        Phase::Init => Some(&mut main.init),
        Phase::InitWorker => Some(&mut main.init_worker),
        Phase::ExitWorker => Some(&mut main.exit_worker),
        _ => None,
    };
    if let Some(slot) = process_slot {
        if slot.is_some() {
            return Err(duplicate());
        }
        *slot = Some(chunk);
        return Ok(());
    }
    match phase {
        Phase::Rewrite => main.rewrite_used = true,
        Phase::Access => main.access_used = true,
        Phase::Log => main.log_used = true,
        Phase::HeaderFilter => main.header_filter_used = true,
        Phase::BodyFilter => main.body_filter_used = true,
        _ => {}
    }
    // SAFETY: nginx passes our LocConf for this level.
    let loc = unsafe { &mut *conf.cast::<LocConf>() };
    let slot = loc.slot(phase).ok_or("not a location phase")?;
    if slot.is_some() {
        return Err(duplicate());
    }
    *slot = Some(chunk);
    if phase == Phase::Content {
        // SAFETY: the core module's location conf sits at its ctx_index in
        // the same http context.
        unsafe {
            let ctx = (*cf).ctx.cast::<ngx_http_conf_ctx_t>();
            let clcf = (*(*ctx).loc_conf.add(ngx_http_core_module.ctx_index))
                .cast::<ngx_http_core_loc_conf_t>();
            (*clcf).handler = Some(crate::http::content_handler);
        }
    }
    Ok(())
}

/// A slot already taken is refused before any code is compiled, so the error
/// is about the duplicate rather than the code.
fn ensure_free(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> Result<(), String> {
    let phase = phase_of(cmd);
    let main = main_conf(cf);
    let taken = match phase {
        Phase::Init => main.init.is_some(),
        Phase::InitWorker => main.init_worker.is_some(),
        Phase::ExitWorker => main.exit_worker.is_some(),
        // SAFETY: nginx passes our LocConf for this level.
        _ => unsafe { &mut *conf.cast::<LocConf>() }
            .slot(phase)
            .is_some_and(|slot| slot.is_some()),
    };
    if taken {
        return Err(format!(
            "\"{}\" directive is duplicate",
            directive_name(cmd)
        ));
    }
    Ok(())
}

fn compile_inline(
    cf: *mut ngx_conf_t,
    phase: Phase,
    code: &[u8],
    line: usize,
) -> Result<ChunkId, String> {
    let chunk_name = format!("{}({})", phase.directive(), conf_position(cf, line));
    main_conf(cf)
        .runtime_mut()?
        .add_inline(code, &chunk_name, phase)
        .map_err(|e| format!("failed to load inlined Lua code: {e}"))
}

/// `*_by_lua 'code';`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_inline(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        ensure_free(cf, cmd, conf)?;
        let code = bytes(&conf_args(cf)[1]).to_vec();
        let chunk = compile_inline(cf, phase_of(cmd), &code, current_line(cf))?;
        install_chunk(cf, cmd, conf, chunk)
    })
}

/// `*_by_lua_block { code }`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_block(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let start_line = current_line(cf);
        // Read the block even for a duplicate, so the error names its line
        // and parsing stays in step.
        let code = read_lua_block(cf)?;
        ensure_free(cf, cmd, conf)?;
        let chunk = compile_inline(cf, phase_of(cmd), &code, start_line)?;
        install_chunk(cf, cmd, conf, chunk)
    })
}

/// `*_by_lua_file path;`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_file(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        ensure_free(cf, cmd, conf)?;
        let path = resolve_prefix_path(cf, conf_args(cf)[1])?;
        let chunk = main_conf(cf).runtime_mut()?.add_file(path, phase_of(cmd));
        install_chunk(cf, cmd, conf, chunk)
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

/// Relative paths are relative to the nginx prefix (`-p`), as in OpenResty.
fn resolve_prefix_path(cf: *mut ngx_conf_t, arg: ngx_str_t) -> Result<PathBuf, String> {
    if arg.len == 0 {
        return Err("invalid location config: no runnable Lua code".into());
    }
    let mut full = arg;
    // SAFETY: cf and its cycle are valid; the result is allocated from the
    // conf pool.
    let rc = unsafe { ngx_get_full_name((*cf).pool, &mut (*(*cf).cycle).prefix, &mut full) };
    if rc != NGX_OK as ngx_int_t {
        return Err(format!(
            "failed to resolve the Lua file path \"{}\"",
            String::from_utf8_lossy(bytes(&arg))
        ));
    }
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes(&full))))
}

/// Consumes the raw text of a `*_by_lua_block` body from the configuration
/// file, up to and including its closing `}`, refilling nginx's buffer from
/// the file as needed (and copying what it reads into the `nginx -T` dump,
/// as nginx's own reader does). Keeps the line counter in step.
fn read_lua_block(cf: *mut ngx_conf_t) -> Result<Vec<u8>, String> {
    let mut scanner = LuaBlockScanner::default();
    let mut code = Vec::new();
    // SAFETY: while a directive handler runs, conf_file, its buffer and file
    // are nginx's live reading state; we advance them exactly as nginx's
    // tokenizer would.
    unsafe {
        let conf_file = (*cf).conf_file;
        let buf = (*conf_file).buffer;
        loop {
            while (*buf).pos < (*buf).last {
                let byte = *(*buf).pos;
                (*buf).pos = (*buf).pos.add(1);
                if byte == b'\n' {
                    (*conf_file).line += 1;
                }
                match scanner.feed(byte) {
                    Step::Code => code.push(byte),
                    Step::End => return Ok(code),
                }
            }
            let file = &mut (*conf_file).file;
            if file.fd == -1 {
                return Err("unexpected end of parameter, expecting \"}\"".into());
            }
            let file_size = file.info.st_size;
            if file.offset >= file_size {
                return Err("unexpected end of file, expecting \"}\"".into());
            }
            let room = (*buf).end.offset_from((*buf).start) as i64;
            let size = (file_size - file.offset).min(room) as usize;
            let n = ngx_read_file(file, (*buf).start, size, file.offset);
            if n < 0 {
                return Err("failed to read the configuration file".into());
            }
            if n as usize != size {
                return Err(format!(
                    "the configuration file read returned only {n} bytes instead of {size}"
                ));
            }
            (*buf).pos = (*buf).start;
            (*buf).last = (*buf).start.add(size);
            let dump = (*conf_file).dump;
            if !dump.is_null() {
                ptr::copy_nonoverlapping((*buf).pos, (*dump).last, size);
                (*dump).last = (*dump).last.add(size);
            }
        }
    }
}
