//! Host names through nginx's resolver (the `resolver` directive where the
//! socket connects), for TCP's `connect` and UDP's `setpeername`.

use core::ffi::c_void;
use std::net::SocketAddr;

use nginx_sys::{
    ngx_resolve_name, ngx_resolve_name_done, ngx_resolve_start, ngx_resolver_ctx_t,
    ngx_resolver_strerror, ngx_str_t, NGX_OK,
};

use super::{Failure, SocketSettings};

/// Where a name's resolution stands.
pub(super) enum Resolution {
    Pending(*mut ngx_resolver_ctx_t),
    Found(SocketAddr),
    Failed(String),
}

/// What nginx's `ngx_resolve_start` returns when no resolver is set.
const NO_RESOLVER: *mut ngx_resolver_ctx_t = usize::MAX as *mut ngx_resolver_ctx_t;

/// A socket's name lookup: the name (nginx's context points at it), the
/// port to connect to, the answer once in, and whom to wake for it. It
/// lives in the socket's boxed state, so its address is stable.
pub(super) struct Lookup {
    name: Vec<u8>,
    port: u16,
    resolution: Option<Resolution>,
    socket: *mut c_void,
    on_answer: unsafe fn(*mut c_void),
}

impl Default for Lookup {
    fn default() -> Self {
        unsafe fn nobody(_: *mut c_void) {}
        Lookup {
            name: Vec::new(),
            port: 0,
            resolution: None,
            socket: core::ptr::null_mut(),
            on_answer: nobody,
        }
    }
}

impl Lookup {
    /// Starts resolving `host` for `socket`, which `on_answer` wakes when
    /// the answer is in; the answer may be in on return (nginx's cache
    /// answers at once).
    ///
    /// # Safety
    /// `socket` must stay live until the answer is in or [`Lookup::cancel`]
    /// ran; the lookup must not move meanwhile.
    pub(super) unsafe fn start(
        &mut self,
        settings: &SocketSettings,
        host: &[u8],
        port: u16,
        socket: *mut c_void,
        on_answer: unsafe fn(*mut c_void),
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
        self.cancel();
        self.name.clear();
        self.name.extend_from_slice(host);
        self.port = port;
        self.socket = socket;
        self.on_answer = on_answer;
        // SAFETY: the name lives in the lookup until the resolution is
        // done or cancelled; the context's data is the lookup (which does
        // not move, per the contract).
        unsafe {
            let mut temp: ngx_resolver_ctx_t = core::mem::zeroed();
            temp.name = ngx_str_t {
                len: self.name.len(),
                data: self.name.as_mut_ptr(),
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
            (*ctx).data = (self as *mut Lookup).cast();
            (*ctx).timeout = settings.resolver_timeout as nginx_sys::ngx_msec_t;
            self.resolution = Some(Resolution::Pending(ctx));
            if ngx_resolve_name(ctx) != NGX_OK as isize {
                self.resolution = None;
                return Err(Failure::Text(format!(
                    "{} could not be resolved",
                    String::from_utf8_lossy(host)
                )));
            }
        }
        Ok(())
    }

    /// The answer: `None` while nginx has not given it (or nothing was
    /// asked).
    pub(super) fn answer(&mut self) -> Option<Result<SocketAddr, Failure>> {
        match self.resolution.take()? {
            Resolution::Pending(ctx) => {
                self.resolution = Some(Resolution::Pending(ctx));
                None
            }
            Resolution::Found(addr) => Some(Ok(addr)),
            Resolution::Failed(text) => Some(Err(Failure::Text(text))),
        }
    }

    /// Stops a resolution nobody waits for any more.
    pub(super) fn cancel(&mut self) {
        if let Some(Resolution::Pending(ctx)) = self.resolution.take() {
            // SAFETY: a context nginx handed us and has not answered yet.
            unsafe { ngx_resolve_name_done(ctx) };
        }
    }

    /// Back to a new socket's state, keeping the name's memory.
    pub(super) fn reset(&mut self) {
        self.cancel();
        self.name.clear();
    }
}

unsafe extern "C" fn on_resolved(ctx: *mut ngx_resolver_ctx_t) {
    // SAFETY: the context is ours, its data the lookup that started it,
    // live until answered (a socket cancels its lookup before it goes).
    unsafe {
        let lookup = (*ctx).data.cast::<Lookup>();
        let name = String::from_utf8_lossy(&(*lookup).name).into_owned();
        let resolution = if (*ctx).state != 0 || (*ctx).naddrs == 0 {
            let state = (*ctx).state;
            let reason = std::ffi::CStr::from_ptr(ngx_resolver_strerror(state));
            Resolution::Failed(format!(
                "{name} could not be resolved ({state}: {})",
                reason.to_string_lossy()
            ))
        } else {
            let addr = &*(*ctx).addrs;
            match sockaddr_to_std(addr.sockaddr.cast_const().cast(), (*lookup).port) {
                Some(found) => Resolution::Found(found),
                None => Resolution::Failed(format!("{name} could not be resolved")),
            }
        };
        ngx_resolve_name_done(ctx);
        (*lookup).resolution = Some(resolution);
        ((*lookup).on_answer)((*lookup).socket);
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
