//! The `*_by_lua`, `*_by_lua_block` and `*_by_lua_file` directives of every
//! phase but `set`: compile (or register) the code and record it where its
//! phase runs it.

use core::ffi::{c_char, c_void};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_module,
};

use super::config_file::{
    bytes, conf_args, conf_position, current_line, directive_name, phase_of, read_lua_block,
    resolve_prefix_path,
};
use crate::conf::{guarded, main_conf, LocConf};
use crate::lua::ChunkId;
use crate::phase::Phase;

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
        Phase::ServerRewrite => main.server_rewrite_used = true,
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

pub(super) fn compile_inline(
    cf: *mut ngx_conf_t,
    phase: Phase,
    code: &[u8],
    line: usize,
) -> Result<ChunkId, String> {
    let chunk_name = format!("{}({})", phase.directive(), conf_position(cf, line));
    main_conf(cf)
        .runtime_mut()?
        .chunks_mut()
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
        let chunk = main_conf(cf)
            .runtime_mut()?
            .chunks_mut()
            .add_file(path, phase_of(cmd));
        install_chunk(cf, cmd, conf, chunk)
    })
}
