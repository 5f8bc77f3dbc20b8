//! set_by_lua*: a step of nginx's rewrite-module script, so that it runs in
//! order with `set`, `if` and `rewrite` in the same block. Our code runs the
//! chunk and leaves its result on the script engine's stack; nginx's own
//! set-variable code, compiled right after ours (as `set` compiles it),
//! stores it.

use core::mem::size_of;
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use nginx_sys::{
    ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_script_code_pt,
    ngx_http_script_engine_t, ngx_int_t, ngx_module_t, ngx_pnalloc, ngx_str_t,
    NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_ERR, NGX_OK,
};

use crate::lua::{ChunkId, RunOutcome};
use crate::request::HttpRequest;

unsafe extern "C" {
    /// The rewrite module, whose per-location script we append to.
    pub static mut ngx_http_rewrite_module: ngx_module_t;
}

/// A null script code: pointing the engine's `ip` at it ends the script
/// (nginx's own equivalent is private to its script module).
static SCRIPT_EXIT: usize = 0;

/// The rewrite module's location configuration. nginx keeps this struct
/// private to its module; its layout has not changed since nginx 0.8, and
/// build/layout_checks.c checks it against the source being built with.
#[repr(C)]
pub struct RewriteLocConf {
    pub codes: *mut nginx_sys::ngx_array_t,
    pub stack_size: usize,
    pub log: isize,
    pub uninitialized_variable_warn: isize,
}

// The layout build/layout_checks.c asserts of nginx's structure.
const _: () = {
    use core::mem::{offset_of, size_of};
    let word = size_of::<usize>();
    assert!(offset_of!(RewriteLocConf, codes) == 0);
    assert!(offset_of!(RewriteLocConf, stack_size) == word);
    assert!(offset_of!(RewriteLocConf, log) == 2 * word);
    assert!(offset_of!(RewriteLocConf, uninitialized_variable_warn) == 3 * word);
    assert!(size_of::<RewriteLocConf>() == 4 * word);
};

/// Our script code: the engine calls `code` with `ip` pointing here.
#[repr(C)]
pub struct SetByLuaCode {
    pub code: ngx_http_script_code_pt,
    pub chunk: usize,
    /// Compiled directive arguments (`ngx.arg`), `nargs` of them.
    pub args: *mut ngx_http_complex_value_t,
    pub nargs: usize,
}

fn run_code(e: *mut ngx_http_script_engine_t, code: &SetByLuaCode) -> Result<Vec<u8>, String> {
    // SAFETY: the engine runs for a live request; the arguments were
    // compiled for this location at configuration time.
    let req = unsafe { HttpRequest::from_raw((*e).request) }.ok_or("no request")?;
    let mut args = Vec::with_capacity(code.nargs);
    for i in 0..code.nargs {
        let mut value = ngx_str_t {
            len: 0,
            data: ptr::null_mut(),
        };
        // SAFETY: as above.
        let rc = unsafe { ngx_http_complex_value(req.as_ptr(), code.args.add(i), &mut value) };
        if rc != NGX_OK as ngx_int_t {
            return Err("failed to evaluate set_by_lua* arguments".into());
        }
        let bytes = if value.len == 0 {
            Vec::new()
        } else {
            // SAFETY: nginx evaluated `len` bytes into the request pool.
            unsafe { core::slice::from_raw_parts(value.data, value.len) }.to_vec()
        };
        args.push(bytes);
    }
    let runtime = crate::conf::request_confs(req)
        .0
        .runtime()
        .ok_or("no Lua state")?;
    match runtime.run_set(ChunkId::from_index(code.chunk), req.as_ptr(), &args) {
        (RunOutcome::Failed(message), _) => Err(message),
        (_, value) => Ok(value.unwrap_or_default()),
    }
}

/// The script code the engine calls.
///
/// # Safety
/// Called by nginx's script engine with `ip` at one of our `SetByLuaCode`s.
pub unsafe extern "C" fn set_by_lua_code(e: *mut ngx_http_script_engine_t) {
    // SAFETY: per the contract; the code lives in the location's script.
    let code = unsafe { &*(*e).ip.cast::<SetByLuaCode>() };
    // SAFETY: step over our code, as every script code does.
    unsafe { (*e).ip = (*e).ip.add(size_of::<SetByLuaCode>()) };
    let result = catch_unwind(AssertUnwindSafe(|| run_code(e, code)))
        .unwrap_or_else(|_| Err("panic while running set_by_lua*".into()));
    // SAFETY: the engine's stack has room for one value (the rewrite module
    // sizes it for its own `set`, which pushes the same), and values live
    // in the request pool.
    unsafe {
        let r = (*e).request;
        match result {
            Ok(value) => {
                let data = ngx_pnalloc((*r).pool, value.len().max(1)).cast::<u8>();
                let sp = (*e).sp;
                ptr::write_bytes(sp, 0, 1);
                if !data.is_null() {
                    ptr::copy_nonoverlapping(value.as_ptr(), data, value.len());
                    (*sp).data = data;
                    (*sp).set_len(value.len() as u32);
                }
                (*sp).set_valid(1);
                (*e).sp = sp.add(1);
            }
            Err(message) => {
                if let Some(log) = HttpRequest::from_raw(r).and_then(|req| req.log()) {
                    let line = format!("failed to run set_by_lua*: {message}");
                    log.write(NGX_LOG_ERR as usize, line.as_bytes());
                }
                (*e).ip = ptr::addr_of!(SCRIPT_EXIT).cast_mut().cast();
                (*e).status = NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            }
        }
    }
}
