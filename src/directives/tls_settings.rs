//! The `lua_ssl_*` directives (any level): the client TLS settings of
//! cosockets' `sslhandshake`. The context is made when the levels merge
//! (`conf::TlsConf`); what can be checked here is, so that a bad value
//! names its own line.

use core::ffi::{c_char, c_void};

use nginx_sys::{ngx_command_t, ngx_conf_full_name, ngx_conf_t, ngx_str_t, NGX_OK};

use super::config_file::{bytes, conf_args, directive_name};
use crate::conf::{guarded, LocConf};

/// `cmd->offset` of each directive [`set_tls_setting`] handles.
pub(crate) const PROTOCOLS: usize = 0;
pub(crate) const CIPHERS: usize = 1;
pub(crate) const TRUSTED_CERTIFICATE: usize = 2;
pub(crate) const VERIFY_DEPTH: usize = 3;

/// The `lua_ssl_*` directives, by `cmd->offset`.
///
/// # Safety
/// Called by nginx while reading the configuration, with its arguments.
pub(crate) unsafe extern "C" fn set_tls_setting(
    cf: *mut ngx_conf_t,
    cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guarded(cf, || {
        // SAFETY: nginx passes our LocConf for this level.
        let tls = unsafe { &mut (*conf.cast::<LocConf>()).socket.tls };
        let name = directive_name(cmd);
        if !cfg!(ngx_feature = "http_ssl") {
            return Err(format!(
                "\"{name}\" directive needs an nginx built with the SSL module"
            ));
        }
        let duplicate = || format!("\"{name}\" directive is duplicate");
        let args = conf_args(cf);
        // SAFETY: nginx passes the command being handled, one of ours.
        match unsafe { (*cmd).offset } {
            PROTOCOLS => {
                if tls.protocols.is_some() {
                    return Err(duplicate());
                }
                tls.protocols = Some(protocol_bits(&args[1..])?);
            }
            CIPHERS => {
                if tls.ciphers.is_some() {
                    return Err(duplicate());
                }
                tls.ciphers = Some(args[1]);
            }
            TRUSTED_CERTIFICATE => {
                if tls.trusted_certificate.is_some() {
                    return Err(duplicate());
                }
                tls.trusted_certificate = Some(readable_file(cf, args[1])?);
            }
            _ => {
                if tls.verify_depth.is_some() {
                    return Err(duplicate());
                }
                let depth = core::str::from_utf8(bytes(&args[1]))
                    .ok()
                    .and_then(|text| text.parse::<isize>().ok())
                    .filter(|&depth| depth >= 0)
                    .ok_or_else(|| "invalid number".to_string())?;
                tls.verify_depth = Some(depth);
            }
        }
        Ok(())
    })
}

/// nginx's protocol bits for `lua_ssl_protocols`' names.
fn protocol_bits(names: &[ngx_str_t]) -> Result<usize, String> {
    #[cfg(ngx_feature = "http_ssl")]
    use crate::request::socket::tls::PROTOCOL_NAMES;
    #[cfg(not(ngx_feature = "http_ssl"))]
    const PROTOCOL_NAMES: [(&str, u32); 0] = [];
    let mut bits = 0;
    for name in names {
        let name = bytes(name);
        let bit = PROTOCOL_NAMES
            .iter()
            .find(|(known, _)| known.as_bytes() == name)
            .map(|&(_, bit)| bit as usize)
            .ok_or_else(|| format!("invalid value \"{}\"", String::from_utf8_lossy(name)))?;
        bits |= bit;
    }
    Ok(bits)
}

/// The full path of `path` (relative to nginx's configuration directory,
/// as nginx's own certificate directives take it), which must be a
/// readable file.
fn readable_file(cf: *mut ngx_conf_t, path: ngx_str_t) -> Result<ngx_str_t, String> {
    let mut full = path;
    // SAFETY: cf and its cycle are valid while reading the configuration;
    // the full name is allocated from the cycle's pool and NUL-terminated.
    if unsafe { ngx_conf_full_name((*cf).cycle, &mut full, 1) } != NGX_OK as isize {
        return Err("failed to resolve the certificate path".into());
    }
    use std::os::unix::ffi::OsStrExt;
    let file = std::path::Path::new(std::ffi::OsStr::from_bytes(bytes(&full)));
    if let Err(error) = std::fs::File::open(file) {
        return Err(format!(
            "cannot read the certificates in \"{}\": {error}",
            file.display()
        ));
    }
    Ok(full)
}
