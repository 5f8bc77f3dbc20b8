//! Servers a block talks to through cosockets, started before its nginx
//! and stopped after it:
//! - `--- tcp_listen`: a TCP server on a free port (`$TEST_NGINX_TCP_PORT`)
//!   that, for every connection, reads the query (`--- tcp_query_len`
//!   bytes, else as many as `--- tcp_query` has, else whatever comes
//!   first), waits `--- tcp_reply_delay`, writes `--- tcp_reply` and closes
//!   (unless `--- tcp_no_close`). `--- tcp_query` is checked against what
//!   the first connection sent.
//! - `--- udp_listen`: a UDP server (`$TEST_NGINX_UDP_PORT`) answering each
//!   datagram with `--- udp_reply` (or the datagram itself); and, our
//!   extension, a unix datagram server doing the same at the path
//!   `$TEST_NGINX_UDP_UNIX_PATH`.
//! - `--- tcp_unresponsive` (our extension): a listening port
//!   (`$TEST_NGINX_UNRESPONSIVE_PORT`) whose accept queue is full, so that
//!   connecting to it times out.
//! - `--- dns_a: ADDRESS` (our extension): a DNS server on
//!   `$TEST_NGINX_DNS_PORT` (UDP) answering every `A` query with ADDRESS,
//!   names starting with `nx` with NXDOMAIN, other types with no answer.
//! - `--- redis` (our extension): a `redis-server` of its own
//!   (`$TEST_NGINX_REDIS_PORT`); the block is skipped, not passed, when
//!   redis-server is not installed.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the block's TCP server does.
#[derive(Debug, Clone, Default)]
pub struct TcpPeer {
    pub query: Option<Vec<u8>>,
    pub query_len: Option<usize>,
    pub reply: Vec<u8>,
    pub reply_delay: Duration,
    pub no_close: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PeerPlan {
    pub tcp: Option<TcpPeer>,
    /// The UDP server's reply (`None`: echo).
    pub udp: Option<Option<Vec<u8>>>,
    pub redis: bool,
    pub unresponsive: bool,
    /// `--- dns_a`: the address every A query gets.
    pub dns_a: Option<std::net::Ipv4Addr>,
}

thread_local! {
    /// `$TEST_NGINX_*` variables of the running block's peers.
    static VARIABLES: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// The value of a peer's variable for the block running on this thread.
pub fn variable(name: &str) -> Option<String> {
    VARIABLES.with(|v| {
        v.borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone())
    })
}

/// The running peers of a block; dropping them stops them.
pub struct Peers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tcp_port: Option<u16>,
    udp_port: Option<u16>,
    first_query: Arc<Mutex<Option<Vec<u8>>>>,
    expected_query: Option<Vec<u8>>,
    redis: Option<Child>,
    /// The unresponsive listener and the connections that fill its queue.
    unresponsive: Option<(TcpListener, Vec<TcpStream>)>,
    /// The unix datagram server's path, removed at the end.
    udp_unix_path: Option<std::path::PathBuf>,
}

impl Peers {
    pub fn start(plan: &PeerPlan) -> Result<Peers, String> {
        let mut peers = Peers {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            tcp_port: None,
            udp_port: None,
            first_query: Arc::new(Mutex::new(None)),
            expected_query: None,
            redis: None,
            unresponsive: None,
            udp_unix_path: None,
        };
        let mut variables = Vec::new();
        if let Some(tcp) = &plan.tcp {
            let listener =
                TcpListener::bind("127.0.0.1:0").map_err(|e| format!("tcp_listen: {e}"))?;
            let port = listener.local_addr().map_err(|e| e.to_string())?.port();
            listener.set_nonblocking(true).map_err(|e| e.to_string())?;
            peers.tcp_port = Some(port);
            peers.expected_query = tcp.query.clone();
            variables.push(("TEST_NGINX_TCP_PORT".to_string(), port.to_string()));
            let (stop, first, tcp) = (peers.stop.clone(), peers.first_query.clone(), tcp.clone());
            peers.threads.push(std::thread::spawn(move || {
                serve_tcp(listener, tcp, stop, first)
            }));
        }
        if let Some(reply) = &plan.udp {
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("udp_listen: {e}"))?;
            let port = socket.local_addr().map_err(|e| e.to_string())?.port();
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            peers.udp_port = Some(port);
            variables.push(("TEST_NGINX_UDP_PORT".to_string(), port.to_string()));
            let (stop, echo) = (peers.stop.clone(), reply.clone());
            peers
                .threads
                .push(std::thread::spawn(move || serve_udp(socket, echo, stop)));
            let path = unix_datagram_path();
            let _ = std::fs::remove_file(&path);
            let socket = UnixDatagram::bind(&path).map_err(|e| format!("udp_listen: {e}"))?;
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            variables.push((
                "TEST_NGINX_UDP_UNIX_PATH".to_string(),
                path.display().to_string(),
            ));
            peers.udp_unix_path = Some(path);
            let (stop, echo) = (peers.stop.clone(), reply.clone());
            peers.threads.push(std::thread::spawn(move || {
                serve_unix_datagrams(socket, echo, stop)
            }));
        }
        if let Some(address) = plan.dns_a {
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("dns_a: {e}"))?;
            let port = socket.local_addr().map_err(|e| e.to_string())?.port();
            socket
                .set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(|e| e.to_string())?;
            variables.push(("TEST_NGINX_DNS_PORT".to_string(), port.to_string()));
            let stop = peers.stop.clone();
            peers
                .threads
                .push(std::thread::spawn(move || serve_dns(socket, address, stop)));
        }
        if plan.unresponsive {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            // SAFETY: a listening socket of ours; a backlog of 0 lets one
            // connection wait, and nobody accepts it.
            unsafe { libc::listen(std::os::fd::AsRawFd::as_raw_fd(&listener), 0) };
            let filling = (0..3)
                .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(50)).ok())
                .collect();
            peers.unresponsive = Some((listener, filling));
            variables.push((
                "TEST_NGINX_UNRESPONSIVE_PORT".to_string(),
                addr.port().to_string(),
            ));
        }
        if plan.redis {
            let port = super::nginx::free_port()?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start redis-server: {e}"))?;
            peers.redis = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if Instant::now() > deadline {
                    return Err(format!("redis-server did not listen on port {port}"));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            variables.push(("TEST_NGINX_REDIS_PORT".to_string(), port.to_string()));
        }
        VARIABLES.with(|v| *v.borrow_mut() = variables);
        Ok(peers)
    }

    /// `--- tcp_query`: what the first connection sent.
    pub fn check(&self) -> Result<(), String> {
        let Some(expected) = &self.expected_query else {
            return Ok(());
        };
        let got = self
            .first_query
            .lock()
            .map(|q| q.clone())
            .unwrap_or_default();
        match got {
            Some(got) if &got == expected => Ok(()),
            Some(got) => Err(format!(
                "--- tcp_query: the TCP server got {:?}, expected {:?}\n",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(expected)
            )),
            None => Err("--- tcp_query: nothing connected to the TCP server\n".to_string()),
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        if let Some(path) = self.udp_unix_path.take() {
            let _ = std::fs::remove_file(path);
        }
        VARIABLES.with(|v| v.borrow_mut().clear());
    }
}

/// A path of its own for a block's unix datagram server.
fn unix_datagram_path() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("ngx-t-udp-{}-{n}.sock", std::process::id()))
}

fn serve_unix_datagrams(socket: UnixDatagram, reply: Option<Vec<u8>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let answer = reply.as_deref().unwrap_or(&buf[..n]);
            // A sender without an address of its own gets no answer.
            let _ = socket.send_to_addr(answer, &from);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    plan: TcpPeer,
    stop: Arc<AtomicBool>,
    first: Arc<Mutex<Option<Vec<u8>>>>,
) {
    let mut handlers = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (plan, stop, first) = (plan.clone(), stop.clone(), first.clone());
                handlers.push(std::thread::spawn(move || {
                    serve_tcp_connection(stream, &plan, &stop, &first)
                }));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    for handler in handlers {
        let _ = handler.join();
    }
}

fn serve_tcp_connection(
    mut stream: TcpStream,
    plan: &TcpPeer,
    stop: &AtomicBool,
    first: &Mutex<Option<Vec<u8>>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let wanted = plan.query_len.or_else(|| plan.query.as_ref().map(Vec::len));
    let mut query = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                query.extend_from_slice(&buf[..n]);
                match wanted {
                    Some(len) if query.len() < len => continue,
                    _ => break,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if wanted == Some(0) {
                    break;
                }
            }
            Err(_) => return,
        }
    }
    if let Ok(mut first) = first.lock() {
        first.get_or_insert(query);
    }
    let deadline = Instant::now() + plan.reply_delay;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = stream.write_all(&plan.reply);
    if plan.no_close {
        // Read on (and drop) until the peer closes or the block ends.
        while !stop.load(Ordering::SeqCst) {
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
    }
}

fn serve_udp(socket: UdpSocket, reply: Option<Vec<u8>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            let answer = reply.as_deref().unwrap_or(&buf[..n]);
            let _ = socket.send_to(answer, from);
        }
    }
}

fn serve_dns(socket: UdpSocket, address: std::net::Ipv4Addr, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(answer) = dns_answer(&buf[..n], address) {
                let _ = socket.send_to(&answer, from);
            }
        }
    }
}

/// The answer to a DNS query of one question: `address` for type A,
/// NXDOMAIN for names starting with "nx", no records otherwise.
fn dns_answer(query: &[u8], address: std::net::Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut at = 12;
    while *query.get(at)? != 0 {
        at += 1 + usize::from(query[at]);
    }
    let question_end = at + 5;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
    let first_label = query.get(13..13 + usize::from(query[12]))?;
    let nxdomain = first_label.starts_with(b"nx");
    let answers: u16 = u16::from(qtype == 1 && !nxdomain);
    let mut out = Vec::with_capacity(question_end + 16);
    out.extend_from_slice(&query[0..2]);
    out.extend_from_slice(&[0x81, if nxdomain { 0x83 } else { 0x80 }]);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    if answers == 1 {
        // A pointer to the question's name, type A, class IN, TTL 60.
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&address.octets());
    }
    Some(out)
}
