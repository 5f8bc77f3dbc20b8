//! TLS on cosocket connections (`sslhandshake`): nginx's OpenSSL layer
//! over a connected socket, with the client contexts that the `lua_ssl_*`
//! directives configure. After the handshake the connection's `recv` and
//! `send` are nginx's TLS ones, so reads, sends and pools work unchanged.

use core::ffi::c_long;
use core::ptr::{self, NonNull};

use nginx_sys::{
    ngx_add_timer, ngx_conf_t, ngx_connection_t, ngx_create_pool, ngx_del_timer, ngx_log_t,
    ngx_msec_t, ngx_pcalloc, ngx_pool_cleanup_add, ngx_ssl_check_host, ngx_ssl_ciphers,
    ngx_ssl_cleanup_ctx, ngx_ssl_create, ngx_ssl_create_connection, ngx_ssl_handshake,
    ngx_ssl_set_session, ngx_ssl_shutdown, ngx_ssl_t, ngx_ssl_trusted_certificate, ngx_str_t,
    SSL_SESSION_free, SSL_ctrl, SSL_get1_session, SSL_get_verify_result, TLSEXT_NAMETYPE_host_name,
    TLSEXT_STATUSTYPE_ocsp, X509_verify_cert_error_string, NGX_AGAIN, NGX_OK, NGX_SSL_BUFFER,
    NGX_SSL_CLIENT, SSL_CTRL_SET_TLSEXT_HOSTNAME, SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE, SSL_SESSION,
    X509_V_OK,
};

use super::{wake, Core, Direction, Failure, State, Step, TcpSocket};

/// A client TLS context: the `lua_ssl_*` settings of a configuration level,
/// made while nginx reads the configuration and freed with its cycle.
#[derive(Clone, Copy, Debug)]
pub struct TlsContext(NonNull<ngx_ssl_t>);

/// What a [`TlsContext`] is made from.
pub struct TlsOptions {
    /// nginx's `NGX_SSL_*` protocol bits.
    pub protocols: usize,
    /// NUL-terminated, as nginx keeps directive arguments.
    pub ciphers: ngx_str_t,
    pub trusted_certificate: Option<ngx_str_t>,
    pub verify_depth: isize,
}

/// `lua_ssl_protocols`' default: OpenResty's current one.
pub const DEFAULT_PROTOCOLS: usize =
    (nginx_sys::NGX_SSL_TLSv1_1 | nginx_sys::NGX_SSL_TLSv1_2 | nginx_sys::NGX_SSL_TLSv1_3) as usize;

/// `lua_ssl_protocols`' names and nginx's bits for them.
pub const PROTOCOL_NAMES: [(&str, u32); 6] = [
    ("SSLv2", nginx_sys::NGX_SSL_SSLv2),
    ("SSLv3", nginx_sys::NGX_SSL_SSLv3),
    ("TLSv1", nginx_sys::NGX_SSL_TLSv1),
    ("TLSv1.1", nginx_sys::NGX_SSL_TLSv1_1),
    ("TLSv1.2", nginx_sys::NGX_SSL_TLSv1_2),
    ("TLSv1.3", nginx_sys::NGX_SSL_TLSv1_3),
];

/// Makes a client context in the configuration's pool; `None` when nginx
/// refused a setting (it has logged why, naming the directive's file and
/// line).
///
/// # Safety
/// `cf` must be the configuration being read.
pub unsafe fn new_context(cf: *mut ngx_conf_t, options: &TlsOptions) -> Option<TlsContext> {
    // SAFETY: per the contract; the context lives in the cycle's pool and
    // its cleanup frees OpenSSL's part with it.
    unsafe {
        let ssl = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_ssl_t>()).cast::<ngx_ssl_t>();
        let ssl = NonNull::new(ssl)?;
        (*ssl.as_ptr()).log = (*cf).log;
        if ngx_ssl_create(ssl.as_ptr(), options.protocols, ptr::null_mut()) != NGX_OK as isize {
            return None;
        }
        let cleanup = ngx_pool_cleanup_add((*cf).pool, 0);
        if cleanup.is_null() {
            ngx_ssl_cleanup_ctx(ssl.as_ptr().cast());
            return None;
        }
        (*cleanup).handler = Some(ngx_ssl_cleanup_ctx);
        (*cleanup).data = ssl.as_ptr().cast();
        let mut ciphers = options.ciphers;
        if ngx_ssl_ciphers(cf, ssl.as_ptr(), &mut ciphers, 0) != NGX_OK as isize {
            return None;
        }
        if let Some(mut certificate) = options.trusted_certificate {
            if ngx_ssl_trusted_certificate(cf, ssl.as_ptr(), &mut certificate, options.verify_depth)
                != NGX_OK as isize
            {
                return None;
            }
        }
        Some(TlsContext(ssl))
    }
}

/// An OpenSSL session, to resume a later handshake with (`sslhandshake`'s
/// first argument and result).
#[derive(Debug)]
pub struct TlsSession(NonNull<SSL_SESSION>);

impl Drop for TlsSession {
    fn drop(&mut self) {
        // SAFETY: we hold one reference to the session (SSL_get1_session).
        unsafe { SSL_SESSION_free(self.0.as_ptr()) };
    }
}

/// `sslhandshake`'s arguments.
pub struct Handshake<'a> {
    pub session: Option<&'a TlsSession>,
    pub server_name: Option<&'a [u8]>,
    pub verify: bool,
    /// Ask for the server's OCSP status (`send_status_req`).
    pub status_request: bool,
    /// `false` as the session argument: no session back.
    pub want_session: bool,
    /// Where nginx logs the handshake's failures (the request's log, so
    /// that its lines name the request); null for the cycle's.
    pub log: *mut ngx_log_t,
}

/// A finished handshake's result.
pub enum Handshaken {
    /// The connection's session.
    Session(Option<TlsSession>),
    /// Already handshaken and given a session: the caller's comes back.
    GivenSession,
    /// No session was wanted.
    Done,
}

/// A failed verification: OpenSSL's code and text.
fn verify_failure(code: c_long) -> Failure {
    // SAFETY: OpenSSL returns a static string for any code.
    let text = unsafe { core::ffi::CStr::from_ptr(X509_verify_cert_error_string(code)) };
    Failure::Verify {
        code,
        text: text.to_string_lossy().into_owned(),
    }
}

impl TcpSocket {
    /// `sslhandshake`: first call with the arguments; later calls (after a
    /// wait) with the same ones go on. A failure closes the connection.
    pub fn ssl_handshake(
        &mut self,
        context: TlsContext,
        handshake: &Handshake,
    ) -> Step<Handshaken> {
        let core = &mut *self.core;
        core.waits_on = Direction::Write;
        if core.state == State::Handshaking {
            return core.after_handshake(handshake);
        }
        if core.state != State::Connected || core.conn.is_null() {
            return Step::Failed(Failure::Closed);
        }
        let conn = core.conn;
        // SAFETY: our live connection.
        if let Some(ssl) = unsafe { (*conn).ssl.as_ref() } {
            if ssl.handshaked() != 0 {
                return Step::Done(session_result(conn, handshake, true));
            }
        }
        core.writer.timed_out = false;
        // nginx keeps a connection's TLS state in the connection's pool,
        // which connections made for cosockets have not (it goes when
        // the connection closes).
        // SAFETY: our live connection.
        unsafe {
            if (*conn).pool.is_null() {
                (*conn).pool = ngx_create_pool(128, (*conn).log);
                if (*conn).pool.is_null() {
                    return core.fail(Failure::Text("no memory".into()));
                }
            }
        }
        // SAFETY: our live connection and a context of the running cycle.
        let created = unsafe {
            ngx_ssl_create_connection(
                context.0.as_ptr(),
                conn,
                (NGX_SSL_BUFFER | NGX_SSL_CLIENT) as usize,
            )
        };
        if created != NGX_OK as isize {
            return core.fail(Failure::Text("failed to create ssl connection".into()));
        }
        // SAFETY: nginx just made the connection's TLS state.
        let ssl = unsafe { (*(*conn).ssl).connection };
        if let Some(session) = handshake.session {
            // SAFETY: as above; OpenSSL takes its own reference.
            if unsafe { ngx_ssl_set_session(conn, session.0.as_ptr()) } != NGX_OK as isize {
                return core.fail(Failure::Text("ssl set session failed".into()));
            }
        }
        if let Some(name) = handshake.server_name {
            core.server_name.clear();
            core.server_name.extend_from_slice(name);
            core.server_name.push(0);
            // SAFETY: OpenSSL copies the NUL-terminated name.
            let set = unsafe {
                SSL_ctrl(
                    ssl,
                    SSL_CTRL_SET_TLSEXT_HOSTNAME as i32,
                    TLSEXT_NAMETYPE_host_name as c_long,
                    core.server_name.as_mut_ptr().cast(),
                )
            };
            if set == 0 {
                return core.fail(Failure::Text("SSL_set_tlsext_host_name failed".into()));
            }
            core.server_name.pop();
        } else {
            core.server_name.clear();
        }
        if handshake.status_request {
            // SAFETY: a live TLS connection; the request type is a number.
            unsafe {
                SSL_ctrl(
                    ssl,
                    SSL_CTRL_SET_TLSEXT_STATUS_REQ_TYPE as i32,
                    TLSEXT_STATUSTYPE_ocsp as c_long,
                    ptr::null_mut(),
                )
            };
        }
        core.state = State::Handshaking;
        if !handshake.log.is_null() {
            // SAFETY: our live connection; the log outlives the handshake
            // (the connection goes back to the cycle's log when it ends).
            unsafe { set_log(conn, handshake.log) };
        }
        // SAFETY: as above; nginx calls the handler when a handshake that
        // had to wait ends (done, failed or timed out).
        let rc = unsafe {
            (*(*conn).ssl).handler = Some(on_handshake_end);
            ngx_ssl_handshake(conn)
        };
        if rc == NGX_AGAIN as isize {
            // SAFETY: our live connection; its timers go with it.
            unsafe { ngx_add_timer((*conn).read, core.connect_ms() as ngx_msec_t) };
            core.handshake_pending = true;
            return Step::Wait;
        }
        core.after_handshake(handshake)
    }
}

impl Core {
    fn after_handshake(&mut self, handshake: &Handshake) -> Step<Handshaken> {
        let conn = self.conn;
        if conn.is_null() {
            self.state = State::Idle;
            return Step::Failed(Failure::Closed);
        }
        if self.handshake_pending {
            // Woken before nginx's handler ended the handshake (it has the
            // connection's events until then).
            return Step::Wait;
        }
        // SAFETY: our live connection.
        let handshaked = unsafe {
            let ssl = (*conn).ssl;
            !ssl.is_null() && (*ssl).handshaked() != 0
        };
        super::clear_read_timer(conn);
        // SAFETY: our live connection; the cycle's log lives as long as
        // the worker.
        unsafe { set_log(conn, (*nginx_sys::ngx_cycle).log) };
        if std::mem::take(&mut self.writer.timed_out) {
            return self.fail(Failure::Timeout);
        }
        if !handshaked {
            return self.fail(Failure::Text("handshake failed".into()));
        }
        self.state = State::Connected;
        if handshake.verify {
            // SAFETY: a live, handshaken TLS connection.
            let code = unsafe { SSL_get_verify_result((*(*conn).ssl).connection) };
            if code != X509_V_OK as c_long {
                return self.fail(verify_failure(code));
            }
            if !self.server_name.is_empty() {
                let mut name = ngx_str_t {
                    len: self.server_name.len(),
                    data: self.server_name.as_mut_ptr(),
                };
                // SAFETY: as above; nginx reads the name.
                if unsafe { ngx_ssl_check_host(conn, &mut name) } != NGX_OK as isize {
                    let name = String::from_utf8_lossy(&self.server_name).into_owned();
                    return self.fail(Failure::HostMismatch(name));
                }
            }
        }
        Step::Done(session_result(conn, handshake, false))
    }
}

/// The session answer of a handshake done now or before
/// (`already_handshaken`).
fn session_result(
    conn: *mut ngx_connection_t,
    handshake: &Handshake,
    already_handshaken: bool,
) -> Handshaken {
    if already_handshaken && handshake.session.is_some() {
        return Handshaken::GivenSession;
    }
    if !handshake.want_session {
        return Handshaken::Done;
    }
    // SAFETY: a live, handshaken TLS connection; we get our own reference.
    let session = unsafe { SSL_get1_session((*(*conn).ssl).connection) };
    Handshaken::Session(NonNull::new(session).map(TlsSession))
}

/// Makes the connection and its events log to `log`.
///
/// # Safety
/// `conn` must be live, `log` valid while the connection logs to it.
unsafe fn set_log(conn: *mut ngx_connection_t, log: *mut ngx_log_t) {
    // SAFETY: per the contract.
    unsafe {
        (*conn).log = log;
        (*(*conn).read).log = log;
        (*(*conn).write).log = log;
    }
}

/// nginx's end of a handshake that waited.
unsafe extern "C" fn on_handshake_end(conn: *mut ngx_connection_t) {
    // SAFETY: the connection is a live core's (set up by ssl_handshake; the
    // core closes the connection before it goes).
    unsafe {
        let core = (*conn).data.cast::<Core>();
        (*core).handshake_pending = false;
        if (*(*conn).read).timedout() != 0 || (*(*conn).write).timedout() != 0 {
            (*(*conn).read).set_timedout(0);
            (*(*conn).write).set_timedout(0);
            (*core).writer.timed_out = true;
        }
        // Events are ours again from here.
        (*(*conn).read).handler = Some(super::on_socket_event);
        (*(*conn).write).handler = Some(super::on_socket_event);
        if (*(*conn).read).timer_set() != 0 {
            ngx_del_timer((*conn).read);
        }
        wake(core, Direction::Write);
    }
}

/// Ends a connection's TLS (if any) before nginx closes it: a close
/// notify is sent when the socket takes it, never waited for.
///
/// # Safety
/// `conn` must be live.
pub(super) unsafe fn shut_down(conn: *mut ngx_connection_t) {
    // SAFETY: per the contract.
    unsafe {
        let ssl = (*conn).ssl;
        if ssl.is_null() {
            return;
        }
        (*ssl).set_no_wait_shutdown(1);
        if ngx_ssl_shutdown(conn) == NGX_AGAIN as isize {
            // It would wait to send: give up quietly, which frees the
            // TLS state now.
            (*conn).set_timedout(1);
            ngx_ssl_shutdown(conn);
        }
    }
}
