//! `set_by_lua $var 'code' [args...]`, `set_by_lua_block $var { code }` and
//! `set_by_lua_file $var path [args...]`: compiled into the rewrite module's
//! script for the block they appear in, as nginx compiles `set`.

use core::ffi::{c_char, c_void};
use core::mem::size_of;
use core::ptr::{self, addr_of};

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_http_add_variable, ngx_http_compile_complex_value,
    ngx_http_compile_complex_value_t, ngx_http_complex_value_t, ngx_http_conf_ctx_t,
    ngx_http_get_variable_index, ngx_http_request_t, ngx_http_script_set_var_code,
    ngx_http_script_start_code, ngx_http_script_var_code_t, ngx_http_script_var_handler_code_t,
    ngx_http_script_var_set_handler_code, ngx_http_variable_value_t, ngx_int_t, ngx_pcalloc,
    ngx_str_t, NGX_ERROR, NGX_HTTP_VAR_CHANGEABLE, NGX_HTTP_VAR_WEAK, NGX_OK,
};

use super::config_file::{bytes, conf_args, current_line, read_lua_block, resolve_prefix_path};
use super::lua_code::compile_inline;
use crate::conf::{guarded, main_conf};
use crate::http::set_var::{
    ngx_http_rewrite_module, set_by_lua_code, RewriteLocConf, SetByLuaCode,
};
use crate::lua::ChunkId;
use crate::phase::Phase;

/// Value of a variable that no set_by_lua* (or `set`) has assigned yet in
/// this request: empty, as nginx's `set` variables are.
unsafe extern "C" fn unassigned_variable(
    _r: *mut ngx_http_request_t,
    v: *mut ngx_http_variable_value_t,
    _data: usize,
) -> ngx_int_t {
    // SAFETY: nginx passes a value slot to fill.
    unsafe {
        ptr::write_bytes(v, 0, 1);
        (*v).set_valid(1);
    }
    NGX_OK as ngx_int_t
}

/// Compiles the variable and the arguments, and appends our code plus
/// nginx's set-variable code to the rewrite script of this block.
fn compile_set(
    cf: *mut ngx_conf_t,
    variable: ngx_str_t,
    chunk: ChunkId,
    extra: &[ngx_str_t],
) -> Result<(), String> {
    let var_bytes = bytes(&variable);
    if var_bytes.first() != Some(&b'$') || var_bytes.len() < 2 {
        return Err(format!(
            "invalid variable name \"{}\"",
            String::from_utf8_lossy(var_bytes)
        ));
    }
    let mut name = ngx_str_t {
        len: variable.len - 1,
        // SAFETY: skipping the '$' of a string of at least two bytes.
        data: unsafe { variable.data.add(1) },
    };
    // SAFETY: configuration time, in the master; every pointer comes from
    // nginx or from the configuration pool.
    unsafe {
        let var = ngx_http_add_variable(
            cf,
            &mut name,
            (NGX_HTTP_VAR_CHANGEABLE | NGX_HTTP_VAR_WEAK) as usize,
        );
        if var.is_null() {
            return Err("failed to add the variable".into());
        }
        let index = ngx_http_get_variable_index(cf, &mut name);
        if index == NGX_ERROR as ngx_int_t {
            return Err("failed to index the variable".into());
        }
        if (*var).get_handler.is_none() {
            (*var).get_handler = Some(unassigned_variable);
            (*var).data = index as usize;
        }

        let args = ngx_pcalloc(
            (*cf).pool,
            extra.len().max(1) * size_of::<ngx_http_complex_value_t>(),
        )
        .cast::<ngx_http_complex_value_t>();
        if args.is_null() {
            return Err("no memory".into());
        }
        for (i, arg) in extra.iter().enumerate() {
            let mut value = *arg;
            let mut ccv: ngx_http_compile_complex_value_t = core::mem::zeroed();
            ccv.cf = cf;
            ccv.value = &mut value;
            ccv.complex_value = args.add(i);
            if ngx_http_compile_complex_value(&mut ccv) != NGX_OK as ngx_int_t {
                return Err(format!(
                    "invalid argument \"{}\"",
                    String::from_utf8_lossy(bytes(arg))
                ));
            }
        }

        let ctx = (*cf).ctx.cast::<ngx_http_conf_ctx_t>();
        let rewrite_index = (*addr_of!(ngx_http_rewrite_module)).ctx_index;
        let lcf = (*(*ctx).loc_conf.add(rewrite_index)).cast::<RewriteLocConf>();
        let code =
            ngx_http_script_start_code((*cf).pool, &mut (*lcf).codes, size_of::<SetByLuaCode>())
                .cast::<SetByLuaCode>();
        if code.is_null() {
            return Err("no memory".into());
        }
        ptr::write(
            code,
            SetByLuaCode {
                code: Some(set_by_lua_code),
                chunk: chunk.index(),
                args,
                nargs: extra.len(),
            },
        );
        if let Some(set_handler) = (*var).set_handler {
            let vhcode = ngx_http_script_start_code(
                (*cf).pool,
                &mut (*lcf).codes,
                size_of::<ngx_http_script_var_handler_code_t>(),
            )
            .cast::<ngx_http_script_var_handler_code_t>();
            if vhcode.is_null() {
                return Err("no memory".into());
            }
            (*vhcode).code = Some(ngx_http_script_var_set_handler_code);
            (*vhcode).handler = Some(set_handler);
            (*vhcode).data = (*var).data;
        } else {
            let vcode = ngx_http_script_start_code(
                (*cf).pool,
                &mut (*lcf).codes,
                size_of::<ngx_http_script_var_code_t>(),
            )
            .cast::<ngx_http_script_var_code_t>();
            if vcode.is_null() {
                return Err("no memory".into());
            }
            (*vcode).code = Some(ngx_http_script_set_var_code);
            (*vcode).index = index as usize;
        }
    }
    Ok(())
}

/// `set_by_lua $var 'code' [args...];`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_inline(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let args = conf_args(cf);
        let code = bytes(&args[2]).to_vec();
        let chunk = compile_inline(cf, Phase::Set, &code, current_line(cf))?;
        compile_set(cf, args[1], chunk, &args[3..])
    })
}

/// `set_by_lua_block $var { code }`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_block(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let start_line = current_line(cf);
        let variable = conf_args(cf)[1];
        let code = read_lua_block(cf)?;
        let chunk = compile_inline(cf, Phase::Set, &code, start_line)?;
        compile_set(cf, variable, chunk, &[])
    })
}

/// `set_by_lua_file $var path [args...];`
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_by_lua_file(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        let args = conf_args(cf);
        let path = resolve_prefix_path(cf, args[2])?;
        let chunk = main_conf(cf)
            .runtime_mut()?
            .chunks_mut()
            .add_file(path, Phase::Set);
        compile_set(cf, args[1], chunk, &args[3..])
    })
}
