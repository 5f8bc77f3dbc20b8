//! The `lua_socket_*` directives (any level): timeouts, buffer and pool
//! sizes and error logging of cosockets, read as nginx reads its own
//! time, size, number and flag directives.

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_t, ngx_parse_size};

use super::config_file::{bytes, conf_args, directive_name, parse_ms, set_on_off};
use crate::conf::{guarded, LocConf};

/// `cmd->offset` of each directive [`set_socket_setting`] handles.
pub(crate) const CONNECT_TIMEOUT: usize = 0;
pub(crate) const SEND_TIMEOUT: usize = 1;
pub(crate) const READ_TIMEOUT: usize = 2;
pub(crate) const KEEPALIVE_TIMEOUT: usize = 3;
pub(crate) const BUFFER_SIZE: usize = 4;
pub(crate) const POOL_SIZE: usize = 5;
pub(crate) const LOG_ERRORS: usize = 6;

/// The `lua_socket_*` directives, by `cmd->offset`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_socket_setting(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let socket = unsafe { &mut (*conf.cast::<LocConf>()).socket };
        let name = directive_name(cmd);
        let duplicate = || format!("\"{name}\" directive is duplicate");
        let invalid = || format!("\"{name}\" directive invalid value");
        let mut value = conf_args(cf)[1];
        // SAFETY: nginx passes the command being handled, one of ours.
        let which = unsafe { (*cmd).offset };
        let time_slot = match which {
            CONNECT_TIMEOUT => Some(&mut socket.connect_timeout),
            SEND_TIMEOUT => Some(&mut socket.send_timeout),
            READ_TIMEOUT => Some(&mut socket.read_timeout),
            KEEPALIVE_TIMEOUT => Some(&mut socket.keepalive_timeout),
            _ => None,
        };
        if let Some(slot) = time_slot {
            if slot.is_some() {
                return Err(duplicate());
            }
            *slot = Some(parse_ms(bytes(&value)).ok_or_else(invalid)?);
            return Ok(());
        }
        match which {
            BUFFER_SIZE => {
                if socket.buffer_size.is_some() {
                    return Err(duplicate());
                }
                // SAFETY: as above.
                let size = unsafe { ngx_parse_size(&mut value) };
                if size <= 0 {
                    return Err(invalid());
                }
                socket.buffer_size = Some(size as usize);
            }
            POOL_SIZE => {
                if socket.pool_size.is_some() {
                    return Err(duplicate());
                }
                let size = core::str::from_utf8(bytes(&value))
                    .ok()
                    .and_then(|t| t.parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("\"{name}\" directive invalid number"))?;
                socket.pool_size = Some(size);
            }
            _ => {
                set_on_off(cf, cmd, &mut socket.log_errors)?;
            }
        }
        Ok(())
    })
}
