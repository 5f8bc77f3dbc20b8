//! Reading a directive: its arguments, where it stands in the file, and
//! `*_by_lua_block` bodies straight from the file.

use core::ptr;
use std::path::PathBuf;

use nginx_sys::{
    ngx_command_t, ngx_conf_t, ngx_get_full_name, ngx_int_t, ngx_read_file, ngx_str_t, NGX_OK,
};

use super::lua_block::{LuaBlockScanner, Step};
use crate::phase::Phase;

pub(crate) use crate::nginx::str_bytes as bytes;

pub(crate) fn conf_args<'a>(cf: *mut ngx_conf_t) -> &'a [ngx_str_t] {
    // SAFETY: during a directive handler cf->args holds the directive's words.
    unsafe {
        let args = (*cf).args;
        core::slice::from_raw_parts((*args).elts.cast::<ngx_str_t>(), (*args).nelts)
    }
}

/// Where a directive sits, as `nginx.conf:12`: the chunk name suffix.
pub(crate) fn conf_position(cf: *mut ngx_conf_t, line: usize) -> String {
    // SAFETY: while parsing a file, conf_file names it.
    let name = unsafe { bytes(&(*(*cf).conf_file).file.name) };
    let base = name.rsplit(|&b| b == b'/').next().unwrap_or(name);
    format!("{}:{line}", String::from_utf8_lossy(base))
}

pub(crate) fn current_line(cf: *mut ngx_conf_t) -> usize {
    // SAFETY: conf_file is set while a file is being parsed.
    unsafe { (*(*cf).conf_file).line }
}

/// Reads an `on|off` argument into `slot`, which must not be set yet.
pub(crate) fn set_on_off(
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

/// The phase a `*_by_lua*` directive configures, kept in its command's
/// otherwise unused `offset` field.
pub(crate) fn phase_of(cmd: *mut ngx_command_t) -> Phase {
    // SAFETY: nginx passes the command being handled, one of ours.
    Phase::ALL[unsafe { (*cmd).offset }]
}

pub(crate) fn directive_name(cmd: *mut ngx_command_t) -> String {
    // SAFETY: as above; the name is a static string of ours.
    String::from_utf8_lossy(unsafe { bytes(&(*cmd).name) }).into_owned()
}

/// `arg` made absolute against the nginx prefix (`-p`), allocated from the
/// configuration pool; `None` when nginx cannot.
pub(crate) fn prefix_full_name(cf: *mut ngx_conf_t, arg: ngx_str_t) -> Option<ngx_str_t> {
    let mut full = arg;
    // SAFETY: cf and its cycle are valid; the result is allocated from the
    // conf pool.
    let rc = unsafe { ngx_get_full_name((*cf).pool, &mut (*(*cf).cycle).prefix, &mut full) };
    (rc == NGX_OK as ngx_int_t).then_some(full)
}

/// Relative paths are relative to the nginx prefix (`-p`), as in OpenResty.
pub(crate) fn resolve_prefix_path(cf: *mut ngx_conf_t, arg: ngx_str_t) -> Result<PathBuf, String> {
    if arg.len == 0 {
        return Err("invalid location config: no runnable Lua code".into());
    }
    let full = prefix_full_name(cf, arg).ok_or_else(|| {
        format!(
            "failed to resolve the Lua file path \"{}\"",
            String::from_utf8_lossy(bytes(&arg))
        )
    })?;
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes(&full))))
}

/// A time argument (`500ms`, `10s`, `1m` ...) in ms, as nginx reads them;
/// `None` for a malformed one.
pub(crate) fn parse_ms(text: &[u8]) -> Option<u64> {
    let mut value = ngx_str_t {
        len: text.len(),
        data: text.as_ptr().cast_mut(),
    };
    // SAFETY: ngx_parse_time only reads the `len` bytes of the string.
    let ms = unsafe { nginx_sys::ngx_parse_time(&mut value, 0) };
    u64::try_from(ms).ok()
}

/// Consumes the raw text of a `*_by_lua_block` body from the configuration
/// file, up to and including its closing `}`, refilling nginx's buffer from
/// the file as needed (and copying what it reads into the `nginx -T` dump,
/// as nginx's own reader does). Keeps the line counter in step.
pub(crate) fn read_lua_block(cf: *mut ngx_conf_t) -> Result<Vec<u8>, String> {
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
