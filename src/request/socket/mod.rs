//! Cosocket connections: non-blocking TCP connections on nginx's event
//! loop, for the Lua layer's `ngx.socket.tcp`. Nothing here knows Lua.
//!
//! Each operation is a call that either finishes at once or says
//! [`Step::Wait`]: the caller then hands its [`Waiter`] over, parks, and,
//! once woken by an event (readiness, a timer, a resolver answer), calls the
//! same operation again with the same arguments. The operation goes on
//! from where the connection stands: bytes already received wait in the
//! [`inbox`], a send in progress keeps its unsent rest, a connect its
//! state.
//!
//! Connections belong to a request or timer run (their owner, bound at
//! connect time): [`release_owned_by`] closes those left open when the
//! owner ends. [`pool`] keeps idle connections for `setkeepalive`.

pub mod downstream;
pub mod inbox;
pub mod pool;
mod resolve;
#[cfg(ngx_feature = "http_ssl")]
pub mod tls;
pub mod udp;

use core::ffi::c_void;
use core::ptr::{self, NonNull};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use nginx_sys::{
    ngx_add_timer, ngx_close_connection, ngx_connection_t, ngx_cycle, ngx_del_timer,
    ngx_event_connect_peer, ngx_event_get_peer, ngx_event_t, ngx_handle_read_event,
    ngx_handle_write_event, ngx_msec_t, ngx_peer_connection_t, ngx_resolver_t, ngx_str_t,
    NGX_AGAIN, NGX_ERROR, NGX_OK,
};

use self::inbox::{Inbox, Taken, Want};
use self::pool::PoolOptions;
use self::resolve::Lookup;

/// How a waiting operation's caller is woken: `wake(data, co)`.
#[derive(Clone, Copy)]
pub struct Waiter {
    pub data: *mut c_void,
    pub wake: unsafe fn(data: *mut c_void, co: usize),
    pub co: usize,
}

/// A socket an operation waits on, as the scheduler hands it the waiting
/// thread once that thread is parked.
#[derive(Debug)]
pub struct IoWait {
    socket: *mut c_void,
    register: unsafe fn(*mut c_void, Waiter),
}

impl IoWait {
    /// Gives the socket its waiter.
    pub fn wait_with(self, waiter: Waiter) {
        // SAFETY: made by `TcpSocket::io_wait` or `UdpSocket::io_wait` for a
        // socket that the yielding Lua frame keeps alive until it is woken.
        unsafe { (self.register)(self.socket, waiter) }
    }
}

/// The `lua_socket_*` settings and resolver in force where a socket
/// connects.
#[derive(Clone, Copy)]
pub struct SocketSettings {
    pub connect_timeout: u64,
    pub send_timeout: u64,
    pub read_timeout: u64,
    pub buffer_size: usize,
    pub pool_size: usize,
    pub keepalive_timeout: u64,
    pub log_errors: bool,
    pub resolver: *mut ngx_resolver_t,
    pub resolver_timeout: u64,
    /// The `lua_ssl_*` client context for `sslhandshake`.
    pub tls: Option<TlsContext>,
}

#[cfg(ngx_feature = "http_ssl")]
pub use self::tls::TlsContext;

/// An nginx built without TLS has no client contexts.
#[cfg(not(ngx_feature = "http_ssl"))]
#[derive(Clone, Copy, Debug)]
pub enum TlsContext {}

/// Why an operation failed, in OpenResty's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    /// The peer closed, or the socket is not connected.
    Closed,
    /// A system error: its message with a lower-case first letter.
    Os(i32),
    Text(String),
    /// The peer's certificate failed verification: OpenSSL's code and
    /// text.
    Verify {
        code: core::ffi::c_long,
        text: String,
    },
    /// The peer's certificate is not for this server name.
    HostMismatch(String),
}

impl Failure {
    pub fn message(&self) -> String {
        match self {
            Failure::Timeout => "timeout".into(),
            Failure::Closed => "closed".into(),
            Failure::Os(errno) => os_error_text(*errno),
            Failure::Text(text) => text.clone(),
            Failure::Verify { code, text } => format!("{code}: {text}"),
            Failure::HostMismatch(_) => "certificate host mismatch".into(),
        }
    }
}

/// nginx's text for `errno`, as its logs give it ("Connection refused").
pub fn os_error_log_text(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: ngx_strerror writes at most `size` bytes into the buffer and
    // returns the end of what it wrote.
    let end = unsafe { nginx_sys::ngx_strerror(errno, buf.as_mut_ptr(), buf.len()) };
    let len = (end as usize)
        .saturating_sub(buf.as_ptr() as usize)
        .min(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// nginx's text for `errno`, first letter in lower case (as OpenResty
/// returns it: "connection refused").
pub fn os_error_text(errno: i32) -> String {
    let mut text = os_error_log_text(errno);
    if let Some(first) = text.get(..1) {
        let lower = first.to_ascii_lowercase();
        text.replace_range(..1, &lower);
    }
    text
}

pub(super) fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An operation's outcome.
#[derive(Debug)]
pub enum Step<T> {
    Done(T),
    /// Not yet: park, then call again.
    Wait,
    Failed(Failure),
}

/// Where to connect.
#[derive(Debug, Clone)]
pub enum Target {
    Inet(SocketAddr),
    Unix(Vec<u8>),
    /// A name for nginx's resolver.
    Name {
        host: Vec<u8>,
        port: u16,
    },
}

impl Target {
    /// `host` and `port` as `connect` takes them: `unix:PATH`, an IP
    /// address (IPv6 with or without brackets) or a name.
    pub fn parse(host: &[u8], port: Option<u16>) -> Target {
        if let Some(path) = host.strip_prefix(b"unix:") {
            return Target::Unix(path.to_vec());
        }
        let port = port.unwrap_or(0);
        let text = std::str::from_utf8(host).unwrap_or("");
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Target::Inet(SocketAddr::new(ip, port)),
            Err(_) => Target::Name {
                host: host.to_vec(),
                port,
            },
        }
    }
}

/// The two halves of a connection, each with its own waiting thread and
/// timer: a thread may read while another writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Read,
    /// Sending, and everything before the connection is up (resolving,
    /// queueing, connecting).
    Write,
}

/// One direction's waiting thread and whether its timer fired.
#[derive(Default)]
struct Side {
    waiter: Option<Waiter>,
    /// The thread whose operation is in progress, for OpenResty's
    /// `socket busy ...` errors to other threads.
    thread: Option<usize>,
    timed_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No connection (never connected, closed, or failed).
    Idle,
    /// Waiting for the resolver.
    Resolving,
    /// Waiting in a pool's backlog for a free connection.
    Queued,
    /// `connect()` in progress.
    Connecting,
    Connected,
    /// Connected, with a TLS handshake in progress.
    Handshaking,
}

/// What a busy socket is doing, for OpenResty's `socket busy ...` errors
/// when another thread uses it meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    Connecting,
    Reading,
    Writing,
}

/// A connection's state, boxed so that nginx's events can point at it.
struct Core {
    state: State,
    conn: *mut ngx_connection_t,
    peer: ngx_peer_connection_t,
    /// `peer.name` points here: `host:port` or the unix path, for logs.
    peer_name: Vec<u8>,
    peer_name_str: ngx_str_t,
    sockaddr: SockaddrStorage,
    target: Option<Target>,
    /// The TLS server name being verified (`sslhandshake`).
    server_name: Vec<u8>,
    /// A handshake waits for nginx to end it.
    handshake_pending: bool,
    /// The name being resolved, when connecting to one.
    lookup: Lookup,
    reader: Side,
    writer: Side,
    /// The direction of the operation that last said [`Step::Wait`].
    waits_on: Direction,
    /// The peer closed its side: nothing more will arrive.
    eof: bool,
    /// A read failed with "closed": later reads fail at once.
    read_closed: bool,
    /// The connection is the client's (`ngx.req.socket()`): never closed
    /// here, and read only up to the body's end.
    downstream: Option<downstream::Downstream>,
    inbox: Inbox,
    /// A send that did not complete at once: the bytes left, and how many
    /// the call sends in all.
    unsent: Vec<u8>,
    unsent_from: usize,
    send_total: Option<usize>,
    reading: bool,
    settings: Option<SocketSettings>,
    connect_timeout: Option<u64>,
    send_timeout: Option<u64>,
    read_timeout: Option<u64>,
    /// The owner the connection is bound to (0 before any connect).
    owner: usize,
    /// Its place in the owner's list of sockets ([`NOT_OWNED`]: none).
    owned_slot: usize,
    pool_key: Option<Vec<u8>>,
    /// The pool the connect found, for `setkeepalive`.
    pool: Option<pool::PoolHandle>,
    /// Counted in its pool's connections (for `backlog`).
    counted_in_pool: bool,
    reused: u32,
    /// A timer of its own, for a queued connect.
    queue_timer: ngx_event_t,
    /// Wakes a queued connect from nginx's posted events: a connection
    /// freed in one request's code must not run another's Lua there.
    queue_wake: ngx_event_t,
    /// Nothing to shut down: no connection, operation, lookup, queue or
    /// timer, and in no owner's list (a new core, or one whose owner
    /// ended). Dropping the socket then leaves the core as it is, to be
    /// reset when reused: the collector mostly finalizes a socket long
    /// after its request, when its core has left the cache (`perf`: the
    /// shutdown's loads ran at a tenth of an instruction a cycle).
    quiet: bool,
    /// The socket owning the core, once placed in a Lua object's memory
    /// ([`TcpSocket::placed`]); null otherwise.
    socket: *mut TcpSocket,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct SockaddrStorage(libc::sockaddr_storage);

/// A TCP cosocket's connection: what a `ngx.socket.tcp()` object holds.
pub struct TcpSocket {
    /// Its own core (leaked from its box, taken back for reuse when the
    /// socket drops), or the worker's released core once its owner ended.
    core: CoreRef,
    /// Set once the socket's owner ended and its core went back for reuse
    /// (the socket then refers to the worker's released core): what it
    /// keeps for a connect of its own later (OpenResty's objects outlive
    /// their request and may connect again).
    kept: Option<Kept>,
}

/// Small, as it is in every socket object: the timeouts in milliseconds
/// (0: none set; longer than `u32::MAX` kept as that, some 49 days), and
/// `lua_socket_log_errors` (none: the socket never connected).
#[derive(Clone, Copy)]
struct Kept {
    timeouts_ms: [u32; 3],
    log_errors: Option<bool>,
}

impl Kept {
    fn of(core: &Core) -> Kept {
        let ms = |timeout: Option<u64>| timeout.map_or(0, |ms| ms.min(u64::from(u32::MAX)) as u32);
        Kept {
            timeouts_ms: [
                ms(core.connect_timeout),
                ms(core.send_timeout),
                ms(core.read_timeout),
            ],
            log_errors: core.settings.map(|settings| settings.log_errors),
        }
    }

    /// The connect, send and read timeouts it keeps.
    fn timeouts(&self) -> [Option<u64>; 3] {
        self.timeouts_ms
            .map(|ms| (ms != 0).then_some(u64::from(ms)))
    }
}

/// A socket's core, owned by the socket (see [`TcpSocket::core`]).
struct CoreRef(NonNull<Core>);

impl core::ops::Deref for CoreRef {
    type Target = Core;
    fn deref(&self) -> &Core {
        // SAFETY: a core a socket refers to is live: its own (leaked box,
        // freed only by the socket's drop) or the released one (leaked for
        // the worker's life).
        unsafe { self.0.as_ref() }
    }
}

impl core::ops::DerefMut for CoreRef {
    fn deref_mut(&mut self) -> &mut Core {
        // SAFETY: as in `deref`; the worker is single-threaded and no
        // method of a socket reaches another socket's core, so no other
        // reference to the core lives meanwhile.
        unsafe { self.0.as_mut() }
    }
}

/// The core of every socket whose owner ended while the socket object
/// lived: closed and bound to nobody, as its own core was after the end
/// (operations answer "closed"; `connect` and `settimeouts` first take a
/// core of the socket's own again). Its own core went back for reuse at
/// the owner's end, while still in the cache, instead of when the
/// collector finalizes the object.
fn released_core() -> NonNull<Core> {
    thread_local! {
        static RELEASED: Cell<Option<NonNull<Core>>> = const { Cell::new(None) };
    }
    RELEASED.with(|released| {
        released.get().unwrap_or_else(|| {
            let core = NonNull::from(Box::leak(Box::new(Core::new())));
            released.set(Some(core));
            core
        })
    })
}

/// A reset core for a socket: a spare one, or a new one.
fn own_core() -> CoreRef {
    let core = match SPARE_CORES.with(|spare| spare.borrow_mut().pop()) {
        Some(mut core) => {
            core.recycle();
            core
        }
        None => Box::new(Core::new()),
    };
    CoreRef(NonNull::from(Box::leak(core)))
}

fn keep_spare(core: Box<Core>) {
    SPARE_CORES.with(|cores| {
        let mut cores = cores.borrow_mut();
        if cores.len() < SPARE_CORES_KEPT {
            cores.push(core);
        }
    });
}

impl Default for TcpSocket {
    fn default() -> Self {
        TcpSocket::new()
    }
}

thread_local! {
    /// Connected sockets by owner, closed when their owner ends.
    static OWNED: RefCell<HashMap<usize, Vec<Owned>, rustc_hash::FxBuildHasher>> =
        RefCell::new(HashMap::default());
    /// Emptied lists of [`OWNED`], to reuse.
    static SPARE_LISTS: RefCell<Vec<Vec<Owned>>> = const { RefCell::new(Vec::new()) };
    /// Cores of dropped sockets, to reuse (with their buffers); boxed
    /// because nginx's events point at them.
    #[allow(clippy::vec_box)]
    static SPARE_CORES: RefCell<Vec<Box<Core>>> = const { RefCell::new(Vec::new()) };
}

/// How many cores (with their buffers) a worker keeps for reuse.
const SPARE_CORES_KEPT: usize = 256;

/// A socket of an owner: its state, what closes it when the owner ends,
/// and where it keeps its place in the owner's list (so that taking it out
/// is not a search: a loop may connect thousands of sockets in one run).
#[derive(Clone, Copy)]
pub(super) struct Owned {
    pub socket: *mut c_void,
    pub release: unsafe fn(*mut c_void),
    pub slot: unsafe fn(*mut c_void) -> *mut usize,
}

/// An [`Owned::slot`] of a socket in no owner's list.
pub(super) const NOT_OWNED: usize = usize::MAX;

fn spare_list() -> Vec<Owned> {
    SPARE_LISTS
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default()
}

fn return_list(mut list: Vec<Owned>) {
    list.clear();
    SPARE_LISTS.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < 64 {
            spare.push(list);
        }
    });
}

/// The request or timer run `owner` is over: its sockets' connections
/// close (their objects answer "closed" from now on).
pub fn release_owned_by(owner: usize) {
    let Some(sockets) = OWNED.with(|owned| owned.borrow_mut().remove(&owner)) else {
        return;
    };
    for socket in &sockets {
        // SAFETY: a socket is in the table only while alive (its drop takes
        // it out), and nothing else uses it while the owner ends.
        unsafe {
            *(socket.slot)(socket.socket) = NOT_OWNED;
            (socket.release)(socket.socket);
        }
    }
    return_list(sockets);
}

/// Closes a TCP core whose owner ended. A socket object placed in Lua's
/// memory lets go of it: the core goes back for reuse now, in the cache.
unsafe fn release_tcp(core: *mut c_void) {
    let core = core.cast::<Core>();
    // SAFETY: per `Owned`: a live core; its `socket`, when set, is the
    // live socket owning it (its drop unsets it), which owns the core
    // through a leaked box.
    unsafe {
        (*core).reader.waiter = None;
        (*core).writer.waiter = None;
        (*core).shut(false);
        let socket = core::mem::replace(&mut (*core).socket, ptr::null_mut());
        if socket.is_null() {
            // Its owner's list let go of it (release_owned_by).
            (*core).quiet = true;
            return;
        }
        (*socket).kept = Some(Kept::of(&*core));
        (*socket).core = CoreRef(released_core());
        keep_spare(Box::from_raw(core));
    }
}

/// Where a TCP core keeps its place in its owner's list.
unsafe fn tcp_slot(core: *mut c_void) -> *mut usize {
    // SAFETY: per `Owned`: a live core.
    unsafe { ptr::addr_of_mut!((*core.cast::<Core>()).owned_slot) }
}

fn tcp_owned(core: *mut Core) -> Owned {
    Owned {
        socket: core.cast(),
        release: release_tcp,
        slot: tcp_slot,
    }
}

/// Puts a live socket in `owner`'s list, unless it is there already (a
/// socket changing owners leaves the old one's first).
pub(super) fn own(owner: usize, socket: Owned) {
    // SAFETY: per `Owned`: a live socket.
    let slot = unsafe { (socket.slot)(socket.socket) };
    // SAFETY: as above.
    if unsafe { *slot } != NOT_OWNED {
        return;
    }
    OWNED.with(|owned| {
        let mut owned = owned.borrow_mut();
        let list = owned.entry(owner).or_insert_with(spare_list);
        // SAFETY: as above.
        unsafe { *slot = list.len() };
        list.push(socket);
    });
}

/// Takes a socket out of `owner`'s list.
pub(super) fn disown(owner: usize, socket: Owned) {
    // SAFETY: per `Owned`: a live socket.
    let slot = unsafe { (socket.slot)(socket.socket) };
    // SAFETY: as above.
    let at = core::mem::replace(unsafe { &mut *slot }, NOT_OWNED);
    if at == NOT_OWNED {
        return;
    }
    OWNED.with(|owned| {
        let mut owned = owned.borrow_mut();
        let Some(list) = owned.get_mut(&owner) else {
            return;
        };
        if list.get(at).is_some_and(|o| o.socket == socket.socket) {
            list.swap_remove(at);
            if let Some(moved) = list.get(at) {
                // SAFETY: every socket in a list is live.
                unsafe { *(moved.slot)(moved.socket) = at };
            }
        }
        if list.is_empty() {
            if let Some(list) = owned.remove(&owner) {
                return_list(list);
            }
        }
    });
}

impl TcpSocket {
    pub fn new() -> TcpSocket {
        TcpSocket {
            core: own_core(),
            kept: None,
        }
    }

    /// A released socket takes a core of its own again, with what it kept.
    fn own_core_again(&mut self) {
        let Some(kept) = self.kept.take() else {
            return;
        };
        self.core = own_core();
        let [connect, send, read] = kept.timeouts();
        self.core.connect_timeout = connect;
        self.core.send_timeout = send;
        self.core.read_timeout = read;
        self.placed();
    }

    /// The socket is at its place for good (in a Lua object's memory): the
    /// end of its owner may now let it go of its core (`release_tcp`).
    pub fn placed(&mut self) {
        let me: *mut TcpSocket = self;
        if self.kept.is_none() {
            self.core.socket = me;
        }
    }

    /// The owner the socket was last connected for (0: never).
    pub fn owner(&self) -> usize {
        self.core.owner
    }

    pub fn is_connected(&self) -> bool {
        self.core.state == State::Connected
    }

    /// Whether reading is over: not connected, or a read found the peer
    /// gone.
    pub fn read_closed(&self) -> bool {
        !self.is_connected() || self.core.read_closed
    }

    /// The operations of other threads than `co` in progress on the
    /// socket, among `kinds`: the first found.
    pub fn busy_for(&self, co: usize, kinds: &[Busy]) -> Option<Busy> {
        let core = &*self.core;
        let others_write = core.writer.thread != Some(co);
        let others_read = core.reader.thread != Some(co);
        let connecting = matches!(
            core.state,
            State::Resolving | State::Queued | State::Connecting | State::Handshaking
        );
        [
            (Busy::Connecting, connecting && others_write),
            (Busy::Reading, core.reading && others_read),
            (Busy::Writing, core.send_total.is_some() && others_write),
        ]
        .into_iter()
        .find(|(kind, busy)| *busy && kinds.contains(kind))
        .map(|(kind, _)| kind)
    }

    /// Whether an operation waits on the socket.
    pub fn busy(&self) -> bool {
        let core = &*self.core;
        core.reading
            || core.send_total.is_some()
            || matches!(
                core.state,
                State::Resolving | State::Queued | State::Connecting | State::Handshaking
            )
    }

    /// The thread to wake at the next event of the operation that said
    /// [`Step::Wait`].
    pub fn wait_with(&mut self, waiter: Waiter) {
        let side = match self.core.waits_on {
            Direction::Read => &mut self.core.reader,
            Direction::Write => &mut self.core.writer,
        };
        side.thread = Some(waiter.co);
        side.waiter = Some(waiter);
    }

    /// What the scheduler needs to give this socket its waiter (the
    /// operation that said [`Step::Wait`] is called again once woken).
    pub fn io_wait(&mut self) -> IoWait {
        unsafe fn register(socket: *mut c_void, waiter: Waiter) {
            // SAFETY: per `IoWait::wait_with`.
            unsafe { (*socket.cast::<TcpSocket>()).wait_with(waiter) }
        }
        IoWait {
            socket: (self as *mut TcpSocket).cast(),
            register,
        }
    }

    /// `settimeouts(connect, send, read)`: `None` keeps a value as it is,
    /// `Some(0)` goes back to the directive's.
    pub fn set_timeouts(&mut self, connect: Option<u64>, send: Option<u64>, read: Option<u64>) {
        self.own_core_again();
        let set = |slot: &mut Option<u64>, value: Option<u64>| match value {
            Some(0) => *slot = None,
            Some(ms) => *slot = Some(ms),
            None => {}
        };
        set(&mut self.core.connect_timeout, connect);
        set(&mut self.core.send_timeout, send);
        set(&mut self.core.read_timeout, read);
    }

    /// Whether the socket reads the client's connection
    /// (`ngx.req.socket()`).
    pub fn is_downstream(&self) -> bool {
        self.core.downstream.is_some()
    }

    /// Whether the socket is the client's connection itself
    /// (`ngx.req.socket(true)`), which it may write to.
    pub fn is_raw_downstream(&self) -> bool {
        self.core.downstream.as_ref().is_some_and(|d| d.is_raw())
    }

    /// How many times the connection came from a pool.
    pub fn reused_times(&self) -> Option<u32> {
        (self.core.state == State::Connected).then_some(self.core.reused)
    }

    /// The peer's name as logs give it (`host:port`).
    pub fn peer_name(&self) -> &[u8] {
        &self.core.peer_name
    }

    pub fn settings(&self) -> Option<&SocketSettings> {
        self.core.settings.as_ref()
    }

    /// Whether the socket's failures are logged (`lua_socket_log_errors`
    /// where it connected); none if it never connected.
    pub fn log_errors(&self) -> Option<bool> {
        if let Some(kept) = &self.kept {
            return kept.log_errors;
        }
        self.core.settings.map(|settings| settings.log_errors)
    }

    /// `connect`: first call with the target; later calls (after a wait)
    /// with the same arguments go on.
    pub fn connect(
        &mut self,
        host: &[u8],
        port: Option<u16>,
        options: &PoolOptions,
        settings: &SocketSettings,
        owner: usize,
    ) -> Step<()> {
        self.own_core_again();
        let core = &mut *self.core;
        core.waits_on = Direction::Write;
        match core.state {
            State::Resolving => return core.after_resolving(),
            State::Queued => return core.after_queue(options),
            State::Connecting => return core.finish_connecting(),
            State::Idle | State::Connected | State::Handshaking => {}
        }
        // A new connect: the connection the socket had closes.
        core.shut(false);
        core.settings = Some(*settings);
        core.reader.timed_out = false;
        core.writer.timed_out = false;
        core.eof = false;
        core.read_closed = false;
        core.reused = 0;
        // `host:port` as given (or the unix path): the name logs give and
        // the default pool name, made without parsing the address so that
        // a connect served by the pool stays cheap.
        write_peer_name(host, port, &mut core.peer_name);
        core.bind_to(owner);
        core.pool = None;
        let key = core.pool_key.get_or_insert_with(Vec::new);
        key.clear();
        key.extend_from_slice(options.key.as_deref().unwrap_or(&core.peer_name));
        if let Some(step) = core.take_from_pool(options) {
            return step;
        }
        let target = Target::parse(host, port);
        core.target = Some(target.clone());
        match &target {
            Target::Name { host, port } => core.resolve_then_connect(settings, host, *port),
            _ => core.start_connect(),
        }
    }

    /// `send`: the bytes to send (the same on calls after a wait); the
    /// count sent in all.
    pub fn send(&mut self, data: &[u8]) -> Step<usize> {
        self.core.waits_on = Direction::Write;
        self.core.send(data)
    }

    /// `receive`, `receiveany` and `receiveuntil`'s iterator.
    pub fn receive(&mut self, want: Want) -> Received<'_> {
        self.core.receive(want)
    }

    /// `setkeepalive`: the connection goes to its pool for `timeout_ms`
    /// (0: no limit); the socket is closed either way.
    pub fn set_keepalive(
        &mut self,
        timeout_ms: u64,
        pool_size: Option<usize>,
    ) -> Result<(), Failure> {
        let core = &mut *self.core;
        if core.state != State::Connected || core.conn.is_null() {
            return Err(Failure::Closed);
        }
        if !core.inbox.is_empty() {
            return Err(Failure::Text("unread data in buffer".into()));
        }
        if core.send_total.is_some() || core.reading {
            return Err(Failure::Text("connection in dubious state".into()));
        }
        // SAFETY: our live connection.
        if core.eof || !unsafe { pool::still_usable(core.conn) } {
            // The peer closed it (or sent more than was read).
            core.shut(false);
            return Err(Failure::Closed);
        }
        let settings = core.settings.unwrap_or_else(default_settings);
        let size = pool_size.unwrap_or(settings.pool_size);
        let conn = core.conn;
        core.conn = ptr::null_mut();
        core.state = State::Idle;
        let counted = core.counted_in_pool;
        core.counted_in_pool = false;
        let key = core.pool_key.as_deref().unwrap_or_default();
        pool::keep(
            key,
            core.pool.take(),
            size,
            conn,
            core.reused,
            counted,
            timeout_ms,
        );
        Ok(())
    }

    /// `close`: false when there was no connection.
    pub fn close(&mut self) -> bool {
        let was_open = !self.core.conn.is_null() || self.core.state != State::Idle;
        self.core.shut(false);
        was_open
    }

    /// Sets a socket option on the connection (`setoption`).
    pub fn set_option(&mut self, level: i32, name: i32, value: i32) -> Result<(), Failure> {
        if self.core.conn.is_null() {
            return Err(Failure::Closed);
        }
        // SAFETY: a live connection's descriptor; the value is an int.
        let rc = unsafe {
            libc::setsockopt(
                (*self.core.conn).fd,
                level,
                name,
                (&value as *const i32).cast(),
                core::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if rc == -1 {
            return Err(Failure::Os(last_errno()));
        }
        Ok(())
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        if self.kept.is_some() {
            // The released core is the worker's.
            return;
        }
        let core: *mut Core = self.core.0.as_ptr();
        self.core.socket = ptr::null_mut();
        if !self.core.quiet {
            self.core.reader = Side::default();
            self.core.writer = Side::default();
            self.core.shut(false);
            if self.core.owner != 0 {
                disown(self.core.owner, tcp_owned(core));
            }
        }
        // The core goes back for a new socket, which resets everything but
        // its buffers' memory (TcpSocket::new).
        // SAFETY: the socket's own core, from the box `new` leaked; the
        // socket does not use it after this, its last use.
        keep_spare(unsafe { Box::from_raw(core) });
    }
}

/// What `receive` gives back.
pub enum Received<'a> {
    Data(&'a [u8]),
    /// A chunked `receiveuntil` piece ending at its pattern.
    LastPiece(&'a [u8]),
    /// A chunked `receiveuntil` reached its pattern with nothing before it.
    PatternReached,
    Wait,
    Failed {
        failure: Failure,
        partial: &'a [u8],
    },
}

/// `host:port` as given (or the unix path, or the host alone without a
/// port) into `name`: the name logs give, and the default pool name.
pub(super) fn write_peer_name(host: &[u8], port: Option<u16>, name: &mut Vec<u8>) {
    name.clear();
    name.extend_from_slice(host);
    if let Some(port) = port.filter(|_| !host.starts_with(b"unix:")) {
        name.push(b':');
        push_decimal(u32::from(port), name);
    }
}

/// A peer connection for nginx's `ngx_event_connect_peer`: `sockaddr` and
/// `name` (which must stay put until the connect returns), of socket type
/// `kind`, logging to the cycle's log (a connection may outlive its
/// request in a pool).
pub(super) fn peer_connection(
    sockaddr: &mut SockaddrStorage,
    socklen: libc::socklen_t,
    name: &mut ngx_str_t,
    kind: libc::c_int,
) -> ngx_peer_connection_t {
    // SAFETY: all-zero is a valid peer connection (nginx starts from
    // ngx_memzero too).
    let mut peer: ngx_peer_connection_t = unsafe { core::mem::zeroed() };
    peer.sockaddr = ptr::addr_of_mut!(sockaddr.0).cast();
    peer.socklen = socklen;
    peer.name = name;
    peer.get = Some(ngx_event_get_peer);
    // SAFETY: the cycle log lives as long as the worker.
    peer.log = unsafe { (*ngx_cycle).log };
    peer.set_log_error(nginx_sys::ngx_connection_log_error_e_NGX_ERROR_ERR);
    peer.type_ = kind;
    peer.tries = 1;
    peer
}

/// Makes `conn` (a live connection of ours) point at `data` with these
/// event handlers, logging to the cycle's log.
///
/// # Safety
/// `conn` must be live; `data` must stay valid while the handlers may run.
pub(super) unsafe fn take_connection(
    conn: *mut ngx_connection_t,
    data: *mut c_void,
    on_read: unsafe extern "C" fn(*mut ngx_event_t),
    on_write: unsafe extern "C" fn(*mut ngx_event_t),
) {
    // SAFETY: per the contract.
    unsafe {
        (*conn).data = data;
        (*(*conn).read).handler = Some(on_read);
        (*(*conn).write).handler = Some(on_write);
        (*conn).log = (*ngx_cycle).log;
        (*(*conn).read).log = (*conn).log;
        (*(*conn).write).log = (*conn).log;
    }
}

/// Closes a connection of ours, ending its TLS first if it speaks it.
///
/// # Safety
/// `conn` must be live; it is gone after the call.
pub(super) unsafe fn close_connection(conn: *mut ngx_connection_t) {
    // SAFETY: per the contract; the pool (made for TLS state) is read
    // before nginx frees the connection, and destroyed after.
    unsafe {
        #[cfg(ngx_feature = "http_ssl")]
        tls::shut_down(conn);
        let pool = (*conn).pool;
        ngx_close_connection(conn);
        if !pool.is_null() {
            nginx_sys::ngx_destroy_pool(pool);
        }
    }
}

/// Appends `n` in decimal (what `write!` does, without its formatting
/// machinery on the connect path).
pub(super) fn push_decimal(n: u32, out: &mut Vec<u8>) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Settings for a socket used before any connect.
fn default_settings() -> SocketSettings {
    SocketSettings::default()
}

impl Default for SocketSettings {
    /// OpenResty's defaults, without a resolver.
    fn default() -> SocketSettings {
        SocketSettings {
            connect_timeout: 60_000,
            send_timeout: 60_000,
            read_timeout: 60_000,
            buffer_size: 4096,
            pool_size: 30,
            keepalive_timeout: 60_000,
            log_errors: true,
            resolver: ptr::null_mut(),
            resolver_timeout: 30_000,
            tls: None,
        }
    }
}

impl Core {
    fn new() -> Core {
        Core {
            state: State::Idle,
            conn: ptr::null_mut(),
            // SAFETY: all-zero is a valid peer connection (nginx
            // starts from ngx_memzero too).
            peer: unsafe { core::mem::zeroed() },
            peer_name: Vec::new(),
            peer_name_str: ngx_str_t {
                len: 0,
                data: ptr::null_mut(),
            },
            // SAFETY: all-zero is a valid sockaddr_storage.
            sockaddr: SockaddrStorage(unsafe { core::mem::zeroed() }),
            target: None,
            server_name: Vec::new(),
            handshake_pending: false,
            lookup: Lookup::default(),
            reader: Side::default(),
            writer: Side::default(),
            waits_on: Direction::Write,
            eof: false,
            read_closed: false,
            downstream: None,
            inbox: Inbox::default(),
            unsent: Vec::new(),
            unsent_from: 0,
            send_total: None,
            reading: false,
            settings: None,
            connect_timeout: None,
            send_timeout: None,
            read_timeout: None,
            owner: 0,
            owned_slot: NOT_OWNED,
            pool_key: None,
            pool: None,
            counted_in_pool: false,
            reused: 0,
            // SAFETY: an all-zero event is nginx's own initial state.
            queue_timer: unsafe { core::mem::zeroed() },
            // SAFETY: as above.
            queue_wake: unsafe { core::mem::zeroed() },
            quiet: true,
            socket: ptr::null_mut(),
        }
    }

    /// Back to a new socket's state, keeping its buffers' memory.
    fn recycle(&mut self) {
        let (mut inbox, mut unsent, mut peer_name, mut lookup, mut server_name, pool_key) = (
            std::mem::take(&mut self.inbox),
            std::mem::take(&mut self.unsent),
            std::mem::take(&mut self.peer_name),
            std::mem::take(&mut self.lookup),
            std::mem::take(&mut self.server_name),
            self.pool_key.take(),
        );
        inbox.clear();
        unsent.clear();
        peer_name.clear();
        lookup.reset();
        server_name.clear();
        *self = Core {
            inbox,
            unsent,
            peer_name,
            lookup,
            server_name,
            pool_key: pool_key.map(|mut key| {
                key.clear();
                key
            }),
            ..Core::new()
        };
    }

    fn side(&mut self, direction: Direction) -> &mut Side {
        match direction {
            Direction::Read => &mut self.reader,
            Direction::Write => &mut self.writer,
        }
    }

    fn settings(&self) -> SocketSettings {
        self.settings.unwrap_or_else(default_settings)
    }

    fn connect_ms(&self) -> u64 {
        self.connect_timeout
            .unwrap_or(self.settings().connect_timeout)
    }

    fn send_ms(&self) -> u64 {
        self.send_timeout.unwrap_or(self.settings().send_timeout)
    }

    fn read_ms(&self) -> u64 {
        self.read_timeout.unwrap_or(self.settings().read_timeout)
    }

    /// Binds the core to `owner` (leaving the owner it had), whose end
    /// closes its connection; it is no longer quiet.
    fn bind_to(&mut self, owner: usize) {
        let me: *mut Core = self;
        if self.owner != owner && self.owner != 0 {
            disown(self.owner, tcp_owned(me));
        }
        self.owner = owner;
        self.quiet = false;
        own(owner, tcp_owned(me));
    }

    /// Closes the connection (if any) and forgets every operation.
    /// `keep_inbox`: leave the received bytes (a failed read's partial
    /// result is handed out from there).
    fn shut(&mut self, keep_inbox: bool) {
        let me: *mut Core = self;
        self.lookup.cancel();
        if self.state == State::Queued {
            if let Some(key) = &self.pool_key {
                pool::leave_queue(key, me);
            }
        }
        crate::nginx::disarm_event(&mut self.queue_timer);
        crate::nginx::disarm_event(&mut self.queue_wake);
        if let Some(downstream) = self.downstream.take() {
            // The client's connection stays the request's.
            downstream.detach(self.conn);
            self.conn = ptr::null_mut();
        }
        if !self.conn.is_null() {
            // SAFETY: our live connection; closing removes its events and
            // timers.
            unsafe { close_connection(self.conn) };
            self.conn = ptr::null_mut();
            if self.counted_in_pool {
                if let Some(key) = &self.pool_key {
                    pool::connection_closed(key);
                }
            }
        }
        self.counted_in_pool = false;
        self.state = State::Idle;
        self.handshake_pending = false;
        self.send_total = None;
        self.unsent.clear();
        self.unsent_from = 0;
        self.reading = false;
        if !keep_inbox {
            self.inbox.clear();
        }
    }

    /// A failure that ends the connection.
    fn fail<T>(&mut self, failure: Failure) -> Step<T> {
        self.shut(false);
        Step::Failed(failure)
    }

    fn take_from_pool(&mut self, options: &PoolOptions) -> Option<Step<()>> {
        // Taken out for the call and put back: no copy of the name.
        let key = self.pool_key.take()?;
        let step = self.take_from_pool_named(&key, options);
        self.pool_key = Some(key);
        step
    }

    fn take_from_pool_named(&mut self, key: &[u8], options: &PoolOptions) -> Option<Step<()>> {
        let settings = self.settings();
        match pool::take(key, options, settings.pool_size) {
            pool::Taken::Connection {
                conn,
                reused,
                counted,
                pool,
            } => {
                self.pool = Some(pool);
                self.adopt(conn);
                self.reused = reused + 1;
                self.counted_in_pool = counted;
                self.state = State::Connected;
                Some(Step::Done(()))
            }
            pool::Taken::Connect { counted, pool } => {
                self.pool = pool;
                self.counted_in_pool = counted;
                None
            }
            pool::Taken::Queue => {
                let me: *mut Core = self;
                if !pool::join_queue(key, me) {
                    return Some(Step::Failed(Failure::Text(
                        "too many waiting connect operations".into(),
                    )));
                }
                self.state = State::Queued;
                self.queue_timer.handler = Some(on_queue_timeout);
                self.queue_timer.data = me.cast();
                // SAFETY: the cycle log lives as long as the worker.
                self.queue_timer.log = unsafe { (*ngx_cycle).log };
                // SAFETY: the core is boxed (it does not move) and takes its
                // timer out of the tree before it goes.
                unsafe { ngx_add_timer(&mut self.queue_timer, self.connect_ms() as ngx_msec_t) };
                Some(Step::Wait)
            }
        }
    }

    /// A queued connect was woken (a connection of the pool came free, or
    /// its time ran out).
    fn after_queue(&mut self, options: &PoolOptions) -> Step<()> {
        if std::mem::take(&mut self.writer.timed_out) {
            self.state = State::Idle;
            return Step::Failed(Failure::Timeout);
        }
        let key = self.pool_key.clone().unwrap_or_default();
        let me: *mut Core = self;
        pool::leave_queue(&key, me);
        if self.queue_timer.timer_set() != 0 {
            // SAFETY: the timer is in nginx's tree.
            unsafe { ngx_del_timer(&mut self.queue_timer) };
        }
        self.state = State::Idle;
        if let Some(step) = self.take_from_pool(options) {
            return step;
        }
        match self.target.clone() {
            Some(Target::Name { host, port }) => {
                let settings = self.settings();
                self.resolve_then_connect(&settings, &host, port)
            }
            _ => self.start_connect(),
        }
    }

    fn resolve_then_connect(
        &mut self,
        settings: &SocketSettings,
        host: &[u8],
        port: u16,
    ) -> Step<()> {
        unsafe fn wake_writer(core: *mut c_void) {
            // SAFETY: the lookup's socket: a live core.
            unsafe { wake(core.cast(), Direction::Write) }
        }
        let me: *mut Core = self;
        self.state = State::Resolving;
        // SAFETY: the core is boxed and cancels its lookup before it goes.
        match unsafe {
            self.lookup
                .start(settings, host, port, me.cast(), wake_writer)
        } {
            Ok(()) => self.after_resolving(),
            Err(failure) => {
                self.state = State::Idle;
                Step::Failed(failure)
            }
        }
    }

    fn after_resolving(&mut self) -> Step<()> {
        match self.lookup.answer() {
            None => Step::Wait,
            Some(Err(failure)) => {
                self.state = State::Idle;
                Step::Failed(failure)
            }
            Some(Ok(addr)) => {
                // Logs keep the name the caller gave (`peer_name`).
                self.target = Some(Target::Inet(addr));
                self.start_connect()
            }
        }
    }

    fn start_connect(&mut self) -> Step<()> {
        let Some(target) = self.target.clone() else {
            return Step::Failed(Failure::Closed);
        };
        let socklen = match fill_sockaddr(&mut self.sockaddr, &target) {
            Some(len) => len,
            None => {
                return Step::Failed(Failure::Text(format!(
                    "failed to parse host name \"{}\"",
                    String::from_utf8_lossy(&self.peer_name)
                )))
            }
        };
        self.peer_name_str = ngx_str_t {
            len: self.peer_name.len(),
            data: self.peer_name.as_mut_ptr(),
        };
        self.peer = peer_connection(
            &mut self.sockaddr,
            socklen,
            &mut self.peer_name_str,
            libc::SOCK_STREAM,
        );
        self.state = State::Connecting;
        // SAFETY: the peer fields are set as nginx wants them.
        let rc = unsafe { ngx_event_connect_peer(&mut self.peer) };
        let errno = last_errno();
        if rc == nginx_sys::NGX_DECLINED as isize {
            // Refused at once; nginx closed the socket.
            self.peer.connection = ptr::null_mut();
            return self.fail(Failure::Os(errno));
        }
        if rc == NGX_ERROR as isize || self.peer.connection.is_null() {
            self.peer.connection = ptr::null_mut();
            return self.fail(Failure::Text("failed to connect".into()));
        }
        let conn = self.peer.connection;
        self.adopt(conn);
        if rc == NGX_OK as isize {
            self.state = State::Connected;
            return Step::Done(());
        }
        // SAFETY: our live connection.
        unsafe { ngx_add_timer((*conn).write, self.connect_ms() as ngx_msec_t) };
        Step::Wait
    }

    /// Makes `conn` the socket's connection, its events ours.
    fn adopt(&mut self, conn: *mut ngx_connection_t) {
        self.conn = conn;
        let me: *mut Core = self;
        // SAFETY: a live connection handed to us; the core is boxed and
        // closes or hands on the connection before it goes.
        unsafe { take_connection(conn, me.cast(), on_socket_event, on_socket_event) };
    }

    fn finish_connecting(&mut self) -> Step<()> {
        let conn = self.conn;
        if conn.is_null() {
            self.state = State::Idle;
            return Step::Failed(Failure::Closed);
        }
        if std::mem::take(&mut self.writer.timed_out) {
            return self.fail(Failure::Timeout);
        }
        let mut err: libc::c_int = 0;
        let mut len = core::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live connection's descriptor; err and len are ours.
        let rc = unsafe {
            libc::getsockopt(
                (*conn).fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc == -1 {
            err = last_errno();
        }
        if err != 0 {
            return self.fail(Failure::Os(err));
        }
        // SAFETY: our live connection.
        let writable = unsafe { (*(*conn).write).ready() != 0 };
        if !writable {
            return Step::Wait;
        }
        // SAFETY: our live connection.
        unsafe {
            if (*(*conn).write).timer_set() != 0 {
                ngx_del_timer((*conn).write);
            }
        }
        self.state = State::Connected;
        Step::Done(())
    }

    fn send(&mut self, data: &[u8]) -> Step<usize> {
        if self.state != State::Connected || self.conn.is_null() {
            return Step::Failed(Failure::Closed);
        }
        let conn = self.conn;
        if self.send_total.is_none() {
            // A timeout left from an earlier call means nothing now.
            self.writer.timed_out = false;
            match send_some(conn, data) {
                Ok(n) if n == data.len() => return Step::Done(n),
                Ok(n) => {
                    self.unsent.clear();
                    self.unsent.extend_from_slice(&data[n..]);
                    self.unsent_from = 0;
                    self.send_total = Some(data.len());
                }
                Err(errno) => return self.fail(Failure::Os(errno)),
            }
        } else {
            if std::mem::take(&mut self.writer.timed_out) {
                return self.fail(Failure::Timeout);
            }
            loop {
                let rest = &self.unsent[self.unsent_from..];
                if rest.is_empty() {
                    break;
                }
                match send_some(conn, rest) {
                    Ok(0) => break,
                    Ok(n) => self.unsent_from += n,
                    Err(errno) => return self.fail(Failure::Os(errno)),
                }
            }
            if self.unsent_from == self.unsent.len() {
                let total = self.send_total.take().unwrap_or(0);
                self.unsent.clear();
                self.unsent_from = 0;
                // SAFETY: our live connection.
                unsafe {
                    if (*(*conn).write).timer_set() != 0 {
                        ngx_del_timer((*conn).write);
                    }
                }
                return Step::Done(total);
            }
        }
        // SAFETY: our live connection; nginx arms the write event.
        unsafe {
            if ngx_handle_write_event((*conn).write, 0) != NGX_OK as isize {
                return self.fail(Failure::Text("failed to add write event".into()));
            }
            ngx_add_timer((*conn).write, self.send_ms() as ngx_msec_t);
        }
        Step::Wait
    }

    fn receive(&mut self, want: Want) -> Received<'_> {
        if self.conn.is_null() || self.state != State::Connected {
            return Received::Failed {
                failure: Failure::Closed,
                partial: &[],
            };
        }
        let conn = self.conn;
        let timed_out = std::mem::take(&mut self.reader.timed_out);
        let buffer_size = self.settings().buffer_size.max(1);
        loop {
            match self.inbox.take(want, self.eof) {
                Taken::Data { range, at_pattern } => {
                    self.reading = false;
                    clear_read_timer(conn);
                    let bytes = self.inbox.bytes(range);
                    return if at_pattern {
                        Received::LastPiece(bytes)
                    } else {
                        Received::Data(bytes)
                    };
                }
                Taken::PatternReached => {
                    self.reading = false;
                    clear_read_timer(conn);
                    return Received::PatternReached;
                }
                Taken::Closed(range) => {
                    // The peer closed its side: what came is the partial
                    // result; the connection stays for sending.
                    self.reading = false;
                    self.read_closed = true;
                    clear_read_timer(conn);
                    return Received::Failed {
                        failure: Failure::Closed,
                        partial: self.inbox.bytes(range),
                    };
                }
                Taken::NeedMore => {}
            }
            if timed_out {
                // A read timeout keeps the connection, and hands back
                // what arrived.
                self.reading = false;
                clear_read_timer(conn);
                let range = self.inbox.take_all();
                return Received::Failed {
                    failure: Failure::Timeout,
                    partial: self.inbox.bytes(range),
                };
            }
            let rest = self.downstream.as_ref().and_then(|d| d.rest);
            if rest == Some(0) {
                // The body is all read: what follows on the connection
                // is not this socket's.
                self.eof = true;
                continue;
            }
            let spare = self.inbox.spare(buffer_size);
            let size = rest.map_or(spare.len(), |rest| spare.len().min(rest as usize));
            // SAFETY: our live connection; recv writes at most `size`
            // bytes into the spare room.
            let n = unsafe {
                ((*conn).recv.expect("connection recv"))(conn, spare.as_mut_ptr().cast(), size)
            };
            if n > 0 {
                // SAFETY: recv wrote n bytes.
                unsafe { self.inbox.filled(n as usize) };
                if let Some(downstream) = &mut self.downstream {
                    downstream.consumed(n as u64);
                }
                continue;
            }
            if n == 0 {
                self.eof = true;
                continue;
            }
            if n == NGX_AGAIN as isize {
                break;
            }
            let errno = last_errno();
            let range = self.inbox.take_all();
            self.shut(true);
            return Received::Failed {
                failure: Failure::Os(errno),
                partial: self.inbox.bytes(range),
            };
        }
        self.reading = true;
        self.waits_on = Direction::Read;
        // SAFETY: our live connection; nginx arms the read event.
        unsafe {
            if ngx_handle_read_event((*conn).read, 0) != NGX_OK as isize {
                return Received::Failed {
                    failure: Failure::Text("failed to add read event".into()),
                    partial: &[],
                };
            }
            ngx_add_timer((*conn).read, self.read_ms() as ngx_msec_t);
        }
        Received::Wait
    }
}

pub(super) fn clear_read_timer(conn: *mut ngx_connection_t) {
    // SAFETY: a live connection.
    unsafe {
        if (*(*conn).read).timer_set() != 0 {
            ngx_del_timer((*conn).read);
        }
    }
}

/// Sends what the connection takes now: the count, 0 when it takes
/// nothing, or the errno of a failure.
fn send_some(conn: *mut ngx_connection_t, data: &[u8]) -> Result<usize, i32> {
    if data.is_empty() {
        return Ok(0);
    }
    // SAFETY: a live connection; send reads at most `len` bytes.
    let n = unsafe {
        ((*conn).send.expect("connection send"))(conn, data.as_ptr().cast_mut(), data.len())
    };
    if n >= 0 {
        Ok(n as usize)
    } else if n == NGX_AGAIN as isize {
        Ok(0)
    } else {
        Err(last_errno())
    }
}

pub(super) fn fill_sockaddr(
    storage: &mut SockaddrStorage,
    target: &Target,
) -> Option<libc::socklen_t> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    storage.0 = unsafe { core::mem::zeroed() };
    let base = ptr::addr_of_mut!(storage.0);
    match target {
        Target::Inet(SocketAddr::V4(addr)) => {
            let sin = base.cast::<libc::sockaddr_in>();
            // SAFETY: sockaddr_storage is large enough for any address.
            unsafe {
                (*sin).sin_family = libc::AF_INET as libc::sa_family_t;
                (*sin).sin_port = addr.port().to_be();
                (*sin).sin_addr.s_addr = u32::from_ne_bytes(addr.ip().octets());
            }
            Some(core::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        Target::Inet(SocketAddr::V6(addr)) => {
            let sin6 = base.cast::<libc::sockaddr_in6>();
            // SAFETY: as above.
            unsafe {
                (*sin6).sin6_family = libc::AF_INET6 as libc::sa_family_t;
                (*sin6).sin6_port = addr.port().to_be();
                (*sin6).sin6_addr.s6_addr = addr.ip().octets();
                (*sin6).sin6_scope_id = addr.scope_id();
            }
            Some(core::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
        Target::Unix(path) => {
            let sun = base.cast::<libc::sockaddr_un>();
            // SAFETY: as above; the path is checked to fit with its NUL.
            unsafe {
                if path.len() >= (*sun).sun_path.len() || path.is_empty() {
                    return None;
                }
                (*sun).sun_family = libc::AF_UNIX as libc::sa_family_t;
                for (slot, &b) in (*sun).sun_path.iter_mut().zip(path.iter()) {
                    *slot = b as libc::c_char;
                }
            }
            Some(core::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t)
        }
        Target::Name { .. } => None,
    }
}

/// The read or write event of a socket's connection: a timer that fired
/// is remembered, and the waiting thread woken to try again.
unsafe extern "C" fn on_socket_event(ev: *mut ngx_event_t) {
    // SAFETY: the event belongs to a connection adopted by a live core
    // (closing the connection or dropping the core removes its events).
    unsafe {
        let conn = (*ev).data.cast::<ngx_connection_t>();
        let core = (*conn).data.cast::<Core>();
        let direction = if ev == (*conn).read {
            Direction::Read
        } else {
            Direction::Write
        };
        if (*ev).timedout() != 0 {
            (*ev).set_timedout(0);
            (*core).side(direction).timed_out = true;
        }
        wake(core, direction);
    }
}

/// Wakes the queued connect of `core` at the event loop's next turn.
///
/// # Safety
/// `core` must be live; it takes the event out of the queue before it
/// goes.
unsafe fn post_queue_wake(core: *mut Core) {
    // SAFETY: per the contract.
    unsafe {
        let event = ptr::addr_of_mut!((*core).queue_wake);
        (*event).handler = Some(on_queue_wake);
        (*event).data = core.cast();
        (*event).log = (*ngx_cycle).log;
        nginx_sys::ngx_post_event(event, ptr::addr_of_mut!(nginx_sys::ngx_posted_events));
    }
}

unsafe extern "C" fn on_queue_wake(ev: *mut ngx_event_t) {
    // SAFETY: the event's data is its live core (which takes the event out
    // of the queue before it goes).
    unsafe { wake((*ev).data.cast::<Core>(), Direction::Write) };
}

/// A queued connect's time ran out.
unsafe extern "C" fn on_queue_timeout(ev: *mut ngx_event_t) {
    // SAFETY: the timer's data is its live core (which takes the timer out
    // before it goes).
    unsafe {
        let core = (*ev).data.cast::<Core>();
        (*core).writer.timed_out = true;
        wake(core, Direction::Write);
    }
}

/// Wakes the thread waiting on `core`'s `direction`, if any. The core may
/// be gone when this returns: the woken code can drop it.
///
/// # Safety
/// `core` must be live.
unsafe fn wake(core: *mut Core, direction: Direction) {
    // SAFETY: per the contract.
    if let Some(waiter) = unsafe { (*core).side(direction).waiter.take() } {
        crate::nginx::without_unwinding("cosocket event", || {
            // SAFETY: the waiter's owner outlives its sockets' events
            // (they are released when it ends).
            unsafe { (waiter.wake)(waiter.data, waiter.co) }
        });
    }
}

#[cfg(test)]
mod ownership_tests {
    use super::{disown, own, release_owned_by, Owned, NOT_OWNED};
    use core::ffi::c_void;

    /// A socket as the owner lists see it.
    struct Fake {
        slot: usize,
        released: bool,
    }

    unsafe fn fake_release(socket: *mut c_void) {
        // SAFETY: the test's live fakes.
        unsafe { (*socket.cast::<Fake>()).released = true };
    }

    unsafe fn fake_slot(socket: *mut c_void) -> *mut usize {
        // SAFETY: as above.
        unsafe { core::ptr::addr_of_mut!((*socket.cast::<Fake>()).slot) }
    }

    fn owned(fake: &mut Fake) -> Owned {
        Owned {
            socket: (fake as *mut Fake).cast(),
            release: fake_release,
            slot: fake_slot,
        }
    }

    #[test]
    fn sockets_leave_their_owner_in_any_order_and_the_rest_are_released() {
        const OWNER: usize = 0x5eed;
        let mut fakes: Vec<Fake> = (0..6)
            .map(|_| Fake {
                slot: NOT_OWNED,
                released: false,
            })
            .collect();
        for fake in &mut fakes {
            own(OWNER, owned(fake));
        }
        // Owning twice changes nothing.
        own(OWNER, owned(&mut fakes[2]));
        for gone in [0, 3, 5] {
            disown(OWNER, owned(&mut fakes[gone]));
            assert_eq!(fakes[gone].slot, NOT_OWNED);
        }
        // A socket no longer owned is not taken out again.
        disown(OWNER, owned(&mut fakes[3]));
        release_owned_by(OWNER);
        let released: Vec<bool> = fakes.iter().map(|f| f.released).collect();
        assert_eq!(released, [false, true, true, false, true, false]);
        assert!(fakes.iter().all(|f| f.slot == NOT_OWNED));
        // The owner's list is gone: releasing again does nothing.
        fakes[1].released = false;
        release_owned_by(OWNER);
        assert!(!fakes[1].released);
    }
}
