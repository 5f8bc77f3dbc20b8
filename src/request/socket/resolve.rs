//! Host names through nginx's resolver (the `resolver` directive where the
//! socket connects), for `connect`.

use std::net::SocketAddr;

use nginx_sys::{
    ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start, ngx_resolver_ctx_t,
    ngx_resolver_strerror, ngx_str_t, NGX_OK,
};

use super::{wake, Core, Failure, SocketSettings};

/// Where a name's resolution stands.
pub(super) enum Resolution {
    Pending(*mut ngx_resolver_ctx_t),
    Found(SocketAddr),
    Failed(String),
}

/// What nginx's `ngx_resolve_start` returns when no resolver is set.
const NO_RESOLVER: *mut ngx_resolver_ctx_t = usize::MAX as *mut ngx_resolver_ctx_t;

/// Starts resolving `host` for `core`; the answer may already be in
/// `core.resolution` on return (nginx's cache answers at once).
pub(super) fn start(
    core: *mut Core,
    settings: &SocketSettings,
    host: &[u8],
    port: u16,
) -> Result<(), Failure> {
    let no_resolver = || {
        Failure::Text(format!(
            "no resolver defined to resolve \"{}\"",
            String::from_utf8_lossy(host)
        ))
    };
    if settings.resolver.is_null() {
        return Err(no_resolver());
    }
    // SAFETY: core is live (the caller's); the name is copied into it and
    // lives until the resolution is done or cancelled.
    unsafe {
        (*core).resolve_name.clear();
        (*core).resolve_name.extend_from_slice(host);
        (*core).resolve_port = port;
        let mut temp: ngx_resolver_ctx_t = core::mem::zeroed();
        temp.name = ngx_str_t {
            len: host.len(),
            data: (*core).resolve_name.as_mut_ptr(),
        };
        let ctx = ngx_resolve_start(settings.resolver, &mut temp);
        if ctx.is_null() {
            return Err(Failure::Text("failed to start the resolver".into()));
        }
        if ctx == NO_RESOLVER {
            return Err(no_resolver());
        }
        (*ctx).name = temp.name;
        (*ctx).handler = Some(on_resolved);
        (*ctx).data = core.cast();
        (*ctx).timeout = settings.resolver_timeout as nginx_sys::ngx_msec_t;
        (*core).resolution = Some(Resolution::Pending(ctx));
        if ngx_resolve_name(ctx) != NGX_OK as isize {
            (*core).resolution = None;
            return Err(Failure::Text(format!(
                "{} could not be resolved",
                String::from_utf8_lossy(host)
            )));
        }
    }
    Ok(())
}

/// Stops a resolution the socket no longer waits for.
pub(super) fn cancel(resolution: Option<Resolution>) {
    if let Some(Resolution::Pending(ctx)) = resolution {
        // SAFETY: a context nginx handed us and has not answered yet.
        unsafe { ngx_resolve_name_done(ctx) };
    }
}

unsafe extern "C" fn on_resolved(ctx: *mut ngx_resolver_ctx_t) {
    // SAFETY: the context is ours, its data the live core that started it
    // (a core cancels its resolution before it goes).
    unsafe {
        let core = (*ctx).data.cast::<Core>();
        let name = String::from_utf8_lossy(&(*core).resolve_name).into_owned();
        let resolution = if (*ctx).state != 0 || (*ctx).naddrs == 0 {
            let state = (*ctx).state;
            let reason = std::ffi::CStr::from_ptr(ngx_resolver_strerror(state));
            Resolution::Failed(format!(
                "{name} could not be resolved ({state}: {})",
                reason.to_string_lossy()
            ))
        } else {
            let addr = &*(*ctx).addrs;
            match sockaddr_to_std(addr.sockaddr.cast_const().cast(), (*core).resolve_port) {
                Some(found) => Resolution::Found(found),
                None => Resolution::Failed(format!("{name} could not be resolved")),
            }
        };
        ngx_resolve_name_done(ctx);
        (*core).resolution = Some(resolution);
        wake(core, super::Direction::Write);
    }
}

/// An IPv4 or IPv6 socket address with `port`.
///
/// # Safety
/// `sa` must point to a socket address of its family's size.
unsafe fn sockaddr_to_std(sa: *const libc::sockaddr, port: u16) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*sa.cast::<libc::sockaddr_in>();
                let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::new(ip.into(), port))
            }
            libc::AF_INET6 => {
                let sin6 = &*sa.cast::<libc::sockaddr_in6>();
                let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::new(ip.into(), port))
            }
            _ => None,
        }
    }
}
