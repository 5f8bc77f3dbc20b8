//! Per-worker pools of idle connections (`setkeepalive`), by pool name
//! (`host:port`, `unix:path` or the `pool` option), and the `backlog` queue
//! of connects waiting for a pool's connection count to drop under its
//! size.
//!
//! An idle connection is closed when its keepalive time runs out, when
//! the peer closes it or sends anything, and when its pool is full and a
//! newer one comes in (the oldest goes). Pools stay for the worker's life
//! (one per name used), boxed so that idle connections can point at
//! theirs; idle entries are recycled, so that keeping and taking a
//! connection allocates nothing once warm.

use core::ptr::{self, NonNull};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use nginx_sys::{
    ngx_add_timer, ngx_connection_t, ngx_event_t, ngx_exiting, ngx_handle_read_event, ngx_msec_t,
    NGX_OK,
};

use super::{close_connection, post_queue_wake, Core};
use rustc_hash::FxBuildHasher;

/// `connect`'s pool options.
#[derive(Debug, Clone, Default)]
pub struct PoolOptions {
    /// `pool`: the pool's name instead of `host:port`.
    pub key: Option<Vec<u8>>,
    /// `pool_size`: the size of a pool this connect creates.
    pub size: Option<usize>,
    /// `backlog`: with the pool's connections at its size, wait in a queue
    /// of this length.
    pub backlog: Option<usize>,
}

/// A pool a connect found, for its `setkeepalive`: no second lookup by
/// name (pools stay for the worker's life, boxed).
#[derive(Clone, Copy)]
pub(super) struct PoolHandle(NonNull<Pool>);

/// What a connect gets from its pool.
pub(super) enum Taken {
    /// An idle connection (reused that many times before).
    Connection {
        conn: *mut ngx_connection_t,
        reused: u32,
        counted: bool,
        pool: PoolHandle,
    },
    /// None idle: connect a new one (counted in the pool's connections),
    /// with the pool when there is one.
    Connect {
        counted: bool,
        pool: Option<PoolHandle>,
    },
    /// The pool is at its size: wait in its backlog.
    Queue,
}

/// An idle connection; the connection's data points at it.
struct Idle {
    conn: *mut ngx_connection_t,
    reused: u32,
    counted: bool,
    pool: *mut Pool,
}

struct Pool {
    size: usize,
    /// Most recently kept first.
    idle: VecDeque<Box<Idle>>,
    /// Connections counted against `size` (in use or idle).
    connections: usize,
    queue: VecDeque<*mut Core>,
    backlog: usize,
}

thread_local! {
    static POOLS: RefCell<HashMap<Vec<u8>, Box<Pool>, FxBuildHasher>> = RefCell::new(HashMap::default());
    /// Idle entries to reuse; boxed because connections point at them.
    #[allow(clippy::vec_box)]
    static SPARE_IDLE: RefCell<Vec<Box<Idle>>> = const { RefCell::new(Vec::new()) };
}

fn new_pool(size: usize) -> Box<Pool> {
    Box::new(Pool {
        size: size.max(1),
        idle: VecDeque::new(),
        connections: 0,
        queue: VecDeque::new(),
        backlog: 0,
    })
}

fn recycle(idle: Box<Idle>) {
    SPARE_IDLE.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < 1024 {
            spare.push(idle);
        }
    });
}

/// A connect's turn at pool `key`.
pub(super) fn take(key: &[u8], options: &PoolOptions, default_size: usize) -> Taken {
    let mut dead = Vec::new();
    let taken = POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let pool = match pools.get_mut(key) {
            Some(pool) => pool,
            None if options.size.is_some() || options.backlog.is_some() => {
                let mut pool = new_pool(options.size.unwrap_or(default_size));
                pool.connections = 1;
                let handle = PoolHandle(NonNull::from(&mut *pool));
                pools.insert(key.to_vec(), pool);
                return Taken::Connect {
                    counted: true,
                    pool: Some(handle),
                };
            }
            None => {
                return Taken::Connect {
                    counted: false,
                    pool: None,
                }
            }
        };
        let handle = PoolHandle(NonNull::from(&mut **pool));
        while let Some(idle) = pool.idle.pop_front() {
            let (conn, reused, counted) = (idle.conn, idle.reused, idle.counted);
            recycle(idle);
            // SAFETY: an idle connection of the pool is live.
            if unsafe { still_usable(conn) } {
                // SAFETY: as above.
                unsafe { forget_idle_events(conn) };
                return Taken::Connection {
                    conn,
                    reused,
                    counted,
                    pool: handle,
                };
            }
            if counted {
                pool.connections = pool.connections.saturating_sub(1);
            }
            dead.push(conn);
        }
        match options.backlog {
            Some(backlog) if pool.connections >= pool.size => {
                pool.backlog = backlog;
                Taken::Queue
            }
            _ => {
                pool.connections += 1;
                Taken::Connect {
                    counted: true,
                    pool: Some(handle),
                }
            }
        }
    });
    for conn in dead {
        // SAFETY: taken out of the pool above, still open.
        unsafe { close_connection(conn) };
    }
    taken
}

/// Joins pool `key`'s backlog; false when the queue is full.
pub(super) fn join_queue(key: &[u8], core: *mut Core) -> bool {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        let Some(pool) = pools.get_mut(key) else {
            return false;
        };
        if pool.queue.len() >= pool.backlog {
            return false;
        }
        pool.queue.push_back(core);
        true
    })
}

pub(super) fn leave_queue(key: &[u8], core: *mut Core) {
    POOLS.with(|pools| {
        if let Some(pool) = pools.borrow_mut().get_mut(key) {
            pool.queue.retain(|&c| c != core);
        }
    });
}

/// A counted connection of `pool` closed: the queued connect to wake.
fn closed_in(pool: &mut Pool) -> Option<*mut Core> {
    pool.connections = pool.connections.saturating_sub(1);
    pool.queue.pop_front()
}

fn wake_queued(next: Option<*mut Core>) {
    if let Some(core) = next {
        // SAFETY: a queued core is live (it leaves the queue before it
        // goes).
        unsafe { post_queue_wake(core) };
    }
}

/// A connection counted in pool `key` closed: a queued connect may go.
pub(super) fn connection_closed(key: &[u8]) {
    let next = POOLS.with(|pools| closed_in(pools.borrow_mut().get_mut(key)?));
    wake_queued(next);
}

/// Keeps `conn` idle in pool `key` (`found` by its connect, else looked up
/// and created with `size` if new) for `timeout_ms` (0: no limit).
pub(super) fn keep(
    key: &[u8],
    found: Option<PoolHandle>,
    size: usize,
    conn: *mut ngx_connection_t,
    reused: u32,
    counted: bool,
    timeout_ms: u64,
) {
    // SAFETY: read-only flag of the worker.
    if unsafe { ngx_exiting } != 0 {
        // SAFETY: our live connection, going nowhere.
        unsafe { close_connection(conn) };
        if counted {
            connection_closed(key);
        }
        return;
    }
    let pool: *mut Pool = found.map_or_else(|| find_or_create(key, size), |pool| pool.0.as_ptr());
    let mut idle = SPARE_IDLE
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_else(|| {
            Box::new(Idle {
                conn: ptr::null_mut(),
                reused: 0,
                counted: false,
                pool: ptr::null_mut(),
            })
        });
    *idle = Idle {
        conn,
        reused,
        counted,
        pool,
    };
    let idle_ptr: *mut Idle = &mut *idle;
    // SAFETY: a live connection handed to the pool; the box does not move
    // while the connection points at it.
    let armed = unsafe {
        (*conn).data = idle_ptr.cast();
        (*(*conn).read).handler = Some(on_idle_event);
        (*(*conn).write).handler = Some(on_idle_write);
        if timeout_ms > 0 {
            ngx_add_timer((*conn).read, timeout_ms as ngx_msec_t);
        } else if (*(*conn).read).timer_set() != 0 {
            nginx_sys::ngx_del_timer((*conn).read);
        }
        if (*(*conn).write).timer_set() != 0 {
            nginx_sys::ngx_del_timer((*conn).write);
        }
        ngx_handle_read_event((*conn).read, 0) == NGX_OK as isize
    };
    // SAFETY: pools live as long as the worker, boxed.
    let pool = unsafe { &mut *pool };
    if !armed {
        recycle(idle);
        // SAFETY: as above.
        unsafe { close_connection(conn) };
        if counted {
            wake_queued(closed_in(pool));
        }
        return;
    }
    let evicted = if pool.idle.len() >= pool.size {
        pool.idle.pop_back()
    } else {
        None
    };
    pool.idle.push_front(idle);
    if let Some(old) = evicted {
        if old.counted {
            pool.connections = pool.connections.saturating_sub(1);
        }
        let conn = old.conn;
        recycle(old);
        // SAFETY: taken out of the pool, still open.
        unsafe { close_connection(conn) };
    }
    wake_queued(pool.queue.pop_front());
}

fn find_or_create(key: &[u8], size: usize) -> *mut Pool {
    POOLS.with(|pools| {
        let mut pools = pools.borrow_mut();
        if let Some(pool) = pools.get_mut(key) {
            return &mut **pool as *mut Pool;
        }
        let mut pool = new_pool(size);
        let ptr: *mut Pool = &mut *pool;
        pools.insert(key.to_vec(), pool);
        ptr
    })
}

/// Whether an idle connection can be handed out: nothing arrived on it
/// (no data, no close) since it went idle.
///
/// # Safety
/// `conn` must be live.
pub(super) unsafe fn still_usable(conn: *mut ngx_connection_t) -> bool {
    // SAFETY: per the contract.
    unsafe {
        let rev = (*conn).read;
        if (*rev).ready() == 0 && (*rev).pending_eof() == 0 && (*rev).eof() == 0 {
            return true;
        }
        let mut byte = 0u8;
        let n = libc::recv((*conn).fd, (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK);
        n == -1 && super::last_errno() == libc::EAGAIN
    }
}

/// Takes an idle connection's keepalive timer away before a socket adopts
/// it.
///
/// # Safety
/// `conn` must be live.
unsafe fn forget_idle_events(conn: *mut ngx_connection_t) {
    // SAFETY: per the contract.
    unsafe {
        if (*(*conn).read).timer_set() != 0 {
            nginx_sys::ngx_del_timer((*conn).read);
        }
        (*conn).data = ptr::null_mut();
    }
}

/// Something happened on an idle connection: its time ran out, the peer
/// closed it or sent something unasked; it is closed (a spurious wakeup
/// leaves it).
unsafe extern "C" fn on_idle_event(ev: *mut ngx_event_t) {
    // SAFETY: the event is an idle connection's, whose data is its boxed
    // entry in a pool; pools live as long as the worker.
    unsafe {
        let conn = (*ev).data.cast::<ngx_connection_t>();
        let idle = (*conn).data.cast::<Idle>();
        if (*ev).timedout() == 0 && still_usable(conn) {
            (*ev).set_ready(0);
            if ngx_handle_read_event(ev, 0) == NGX_OK as isize {
                return;
            }
        }
        let pool = &mut *(*idle).pool;
        let removed = pool
            .idle
            .iter()
            .position(|i| ptr::eq(&**i, idle))
            .and_then(|at| pool.idle.remove(at));
        close_connection(conn);
        if let Some(entry) = removed {
            let counted = entry.counted;
            recycle(entry);
            if counted {
                wake_queued(closed_in(pool));
            }
        }
    }
}

unsafe extern "C" fn on_idle_write(_ev: *mut ngx_event_t) {}
