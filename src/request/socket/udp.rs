//! UDP cosockets (`ngx.socket.udp`): a datagram socket connected to one
//! peer, on nginx's event loop. `send` writes one datagram at once;
//! `receive` waits (with the read timeout) for the next one.

use core::ffi::c_void;
use core::ptr;

use nginx_sys::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_event_connect_peer, ngx_event_t,
    ngx_handle_read_event, ngx_msec_t, ngx_peer_connection_t, ngx_str_t, NGX_AGAIN, NGX_OK,
};

use super::resolve::Lookup;
use super::{
    clear_read_timer, disown, fill_sockaddr, last_errno, own, peer_connection, take_connection,
    write_peer_name, Failure, IoWait, Owned, SockaddrStorage, SocketSettings, Step, Target, Waiter,
    NOT_OWNED,
};

/// The largest datagram `receive` takes without a size.
pub const MAX_DATAGRAM: usize = 65536;

struct UdpCore {
    conn: *mut ngx_connection_t,
    peer: ngx_peer_connection_t,
    peer_name: Vec<u8>,
    peer_name_str: ngx_str_t,
    sockaddr: SockaddrStorage,
    waiter: Option<Waiter>,
    timed_out: bool,
    reading: bool,
    read_timeout: Option<u64>,
    buffer: Vec<u8>,
    owner: usize,
    /// Its place in the owner's list of sockets.
    owned_slot: usize,
    /// `setpeername` with a host name: the resolver's answer.
    lookup: Lookup,
    resolving: bool,
}

/// What a `ngx.socket.udp()` object holds.
pub struct UdpSocket {
    core: Box<UdpCore>,
}

impl Default for UdpSocket {
    fn default() -> Self {
        UdpSocket::new()
    }
}

impl UdpSocket {
    pub fn new() -> UdpSocket {
        UdpSocket {
            core: Box::new(UdpCore {
                conn: ptr::null_mut(),
                // SAFETY: all-zero is a valid peer connection.
                peer: unsafe { core::mem::zeroed() },
                peer_name: Vec::new(),
                peer_name_str: ngx_str_t {
                    len: 0,
                    data: ptr::null_mut(),
                },
                // SAFETY: all-zero is a valid sockaddr_storage.
                sockaddr: SockaddrStorage(unsafe { core::mem::zeroed() }),
                waiter: None,
                timed_out: false,
                reading: false,
                read_timeout: None,
                buffer: Vec::new(),
                owner: 0,
                owned_slot: NOT_OWNED,
                lookup: Lookup::default(),
                resolving: false,
            }),
        }
    }

    pub fn owner(&self) -> usize {
        self.core.owner
    }

    pub fn is_open(&self) -> bool {
        !self.core.conn.is_null()
    }

    /// Whether a `receive` waits on the socket.
    pub fn is_reading(&self) -> bool {
        self.core.reading
    }

    /// `settimeout(ms)`: `None` goes back to the directive's.
    pub fn set_timeout(&mut self, ms: Option<u64>) {
        self.core.read_timeout = ms;
    }

    pub fn io_wait(&mut self) -> IoWait {
        unsafe fn register(socket: *mut c_void, waiter: Waiter) {
            // SAFETY: per `IoWait::wait_with`.
            unsafe { (*socket.cast::<UdpSocket>()).core.waiter = Some(waiter) }
        }
        IoWait {
            socket: (self as *mut UdpSocket).cast(),
            register,
        }
    }

    /// `setpeername(host, port)`: an IP address, a host name (through
    /// `settings`' resolver) or `unix:path` for a datagram unix socket.
    /// The socket is bound to `owner`. Calls after a wait (resolving) take
    /// the same arguments.
    pub fn set_peer(
        &mut self,
        host: &[u8],
        port: Option<u16>,
        owner: usize,
        settings: &SocketSettings,
    ) -> Step<()> {
        if self.core.resolving {
            return self.after_resolving(host, port);
        }
        self.close();
        let core = &mut *self.core;
        let me: *mut UdpCore = core;
        if core.owner != owner {
            if core.owner != 0 {
                disown(core.owner, udp_owned(me));
            }
            core.owner = owner;
        }
        own(owner, udp_owned(me));
        let target = match port {
            // `setpeername(host)`: port 0, as OpenResty.
            None if !host.starts_with(b"unix:") => Target::parse(host, Some(0)),
            _ => Target::parse(host, port),
        };
        if let Target::Name { host: name, port } = &target {
            core.resolving = true;
            // SAFETY: the core is boxed and cancels its lookup before it
            // goes.
            let started = unsafe {
                core.lookup
                    .start(settings, name, *port, me.cast(), wake_udp)
            };
            if let Err(failure) = started {
                core.resolving = false;
                return Step::Failed(failure);
            }
            return self.after_resolving(host, Some(*port));
        }
        self.connect_to(&target, host, port)
    }

    fn after_resolving(&mut self, host: &[u8], port: Option<u16>) -> Step<()> {
        let core = &mut *self.core;
        match core.lookup.answer() {
            None => Step::Wait,
            Some(Err(failure)) => {
                core.resolving = false;
                Step::Failed(failure)
            }
            Some(Ok(addr)) => {
                core.resolving = false;
                self.connect_to(&Target::Inet(addr), host, port)
            }
        }
    }

    /// Makes the connected datagram socket; logs name it `host:port`.
    fn connect_to(&mut self, target: &Target, host: &[u8], port: Option<u16>) -> Step<()> {
        let core = &mut *self.core;
        let me: *mut UdpCore = core;
        let Some(socklen) = fill_sockaddr(&mut core.sockaddr, target) else {
            return Step::Failed(Failure::Text(format!(
                "failed to parse host name \"{}\"",
                String::from_utf8_lossy(host)
            )));
        };
        write_peer_name(host, port, &mut core.peer_name);
        core.peer_name_str = ngx_str_t {
            len: core.peer_name.len(),
            data: core.peer_name.as_mut_ptr(),
        };
        core.peer = peer_connection(
            &mut core.sockaddr,
            socklen,
            &mut core.peer_name_str,
            libc::SOCK_DGRAM,
        );
        // SAFETY: the peer fields are set as nginx wants them.
        let rc = unsafe { ngx_event_connect_peer(&mut core.peer) };
        let errno = last_errno();
        if rc != NGX_OK as isize || core.peer.connection.is_null() {
            if !core.peer.connection.is_null() {
                // SAFETY: the connection nginx made, not ours to keep.
                unsafe { ngx_close_connection(core.peer.connection) };
            }
            core.peer.connection = ptr::null_mut();
            return Step::Failed(Failure::Os(errno));
        }
        let conn = core.peer.connection;
        core.conn = conn;
        // SAFETY: the connection nginx just made for us; the core is boxed
        // and closes the connection before it goes.
        unsafe { take_connection(conn, me.cast(), on_udp_event, on_udp_write) };
        if matches!(target, Target::Unix(_)) {
            // A unix datagram socket gets an address of its own (Linux's
            // autobind), or the peer could not answer it.
            // SAFETY: all-zero is a valid sockaddr_un (the kernel reads only
            // the family; the rest is zeroed for tools that read more).
            let mut address: libc::sockaddr_un = unsafe { core::mem::zeroed() };
            address.sun_family = libc::AF_UNIX as libc::sa_family_t;
            // SAFETY: our socket; an address of the family alone asks the
            // kernel to pick one.
            let rc = unsafe {
                libc::bind(
                    (*conn).fd,
                    (&address as *const libc::sockaddr_un).cast(),
                    core::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
                )
            };
            if rc == -1 {
                let errno = last_errno();
                self.close();
                return Step::Failed(Failure::Os(errno));
            }
        }
        Step::Done(())
    }

    /// `send(data)`: one datagram.
    pub fn send(&mut self, data: &[u8]) -> Result<(), Failure> {
        let conn = self.core.conn;
        if conn.is_null() {
            return Err(Failure::Closed);
        }
        // SAFETY: our live connection; send reads at most `len` bytes.
        let n = unsafe {
            ((*conn).send.expect("connection send"))(conn, data.as_ptr().cast_mut(), data.len())
        };
        if n < 0 {
            return Err(Failure::Os(last_errno()));
        }
        if n as usize != data.len() {
            return Err(Failure::Text("failed to send the whole datagram".into()));
        }
        Ok(())
    }

    /// `receive(size)`: the next datagram, at most `size` bytes of it.
    pub fn receive(&mut self, size: usize, default_timeout: u64) -> Step<&[u8]> {
        let core = &mut *self.core;
        let conn = core.conn;
        if conn.is_null() {
            core.reading = false;
            return Step::Failed(Failure::Closed);
        }
        if std::mem::take(&mut core.timed_out) {
            core.reading = false;
            return Step::Failed(Failure::Timeout);
        }
        core.buffer.resize(size.max(1), 0);
        // SAFETY: our live connection; recv writes at most `size` bytes.
        let n = unsafe {
            ((*conn).recv.expect("connection recv"))(conn, core.buffer.as_mut_ptr(), size.max(1))
        };
        if n >= 0 {
            core.reading = false;
            clear_read_timer(conn);
            return Step::Done(&core.buffer[..n as usize]);
        }
        if n != NGX_AGAIN as isize {
            core.reading = false;
            clear_read_timer(conn);
            return Step::Failed(Failure::Os(last_errno()));
        }
        core.reading = true;
        // SAFETY: our live connection; nginx arms the read event.
        unsafe {
            if ngx_handle_read_event((*conn).read, 0) != NGX_OK as isize {
                core.reading = false;
                return Step::Failed(Failure::Text("failed to add read event".into()));
            }
            let ms = core.read_timeout.unwrap_or(default_timeout);
            ngx_add_timer((*conn).read, ms as ngx_msec_t);
        }
        Step::Wait
    }

    /// `close`: false when there was no socket.
    pub fn close(&mut self) -> bool {
        let core = &mut *self.core;
        core.waiter = None;
        core.reading = false;
        core.timed_out = false;
        core.lookup.cancel();
        core.resolving = false;
        if core.conn.is_null() {
            return false;
        }
        // SAFETY: our live connection; closing removes its events and
        // timers.
        unsafe { ngx_close_connection(core.conn) };
        core.conn = ptr::null_mut();
        true
    }
}

/// Closes a UDP socket whose owner ended.
unsafe fn release_udp(core: *mut c_void) {
    let core = core.cast::<UdpCore>();
    // SAFETY: per `Owned`: a live core.
    unsafe {
        (*core).waiter = None;
        (*core).reading = false;
        (*core).lookup.cancel();
        (*core).resolving = false;
        if !(*core).conn.is_null() {
            ngx_close_connection((*core).conn);
            (*core).conn = ptr::null_mut();
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.close();
        if self.core.owner != 0 {
            let me: *mut UdpCore = &mut *self.core;
            disown(self.core.owner, udp_owned(me));
        }
    }
}

/// Where a UDP core keeps its place in its owner's list.
unsafe fn udp_slot(core: *mut c_void) -> *mut usize {
    // SAFETY: per `Owned`: a live core.
    unsafe { ptr::addr_of_mut!((*core.cast::<UdpCore>()).owned_slot) }
}

fn udp_owned(core: *mut UdpCore) -> Owned {
    Owned {
        socket: core.cast(),
        release: release_udp,
        slot: udp_slot,
    }
}

/// The resolver answered a `setpeername`.
unsafe fn wake_udp(core: *mut c_void) {
    // SAFETY: the lookup's socket: a live core.
    unsafe { wake_waiter(core.cast()) }
}

/// Wakes the thread waiting on `core`, if any.
///
/// # Safety
/// `core` must be live.
unsafe fn wake_waiter(core: *mut UdpCore) {
    // SAFETY: per the contract.
    if let Some(waiter) = unsafe { (*core).waiter.take() } {
        crate::nginx::without_unwinding("UDP cosocket event", || {
            // SAFETY: the waiter's owner outlives its sockets' events.
            unsafe { (waiter.wake)(waiter.data, waiter.co) }
        });
    }
}

unsafe extern "C" fn on_udp_event(ev: *mut ngx_event_t) {
    // SAFETY: the event belongs to the live core's connection (closing it
    // or dropping the core removes its events).
    unsafe {
        let conn = (*ev).data.cast::<ngx_connection_t>();
        let core = (*conn).data.cast::<UdpCore>();
        if (*ev).timedout() != 0 {
            (*ev).set_timedout(0);
            (*core).timed_out = true;
        }
        wake_waiter(core);
    }
}

unsafe extern "C" fn on_udp_write(_ev: *mut ngx_event_t) {}
