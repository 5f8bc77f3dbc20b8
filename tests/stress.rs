//! Stress tests of the shared dictionaries under a real multi-process nginx:
//! many clients spread over two workers updating one zone, workers killed
//! with SIGKILL while they may hold the zone's lock, and reloads that keep or
//! resize zones.
//!
//! Each test runs its own nginx (master and 2 workers, `reuseport`, so the
//! kernel spreads connections over both workers) in its own temp prefix. A
//! failing test keeps the prefix and prints its path and the end of its
//! error log.
//!
//! Run with `cargo test --release --test stress`.

#[path = "harness/mod.rs"]
mod harness;

use harness::config::{self, ConfigInput};
use harness::http::{self, Parsed, Request, Response};
use harness::nginx::{self, Nginx, Startup};
use harness::{run, Settings};
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

const WORKERS: usize = 2;
const STARTUP_LIMIT: Duration = Duration::from_secs(10);
/// A request without a complete response after this long counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often conditions on processes and counters are polled.
const POLL: Duration = Duration::from_millis(5);
/// The free port we pick may be taken by someone else before nginx binds it.
const PORT_ATTEMPTS: usize = 3;
/// Requests on fresh connections used to check that both workers answer
/// alike: with `reuseport` each lands on a worker by hash, so the chance that
/// one worker gets none of 20 is 2 in a million.
const CHECKS_PER_ENDPOINT: usize = 20;

/// Each test saturates both cores with nginx workers and client threads. Run
/// them one at a time so that CPU starvation on a small machine cannot pass
/// for a hung request.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one may still run.
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------
// 1. Concurrent incr
// ---------------------------------------------------------------------------

const INCR_CLIENTS: usize = 16;
const INCREMENTS_PER_CLIENT: usize = 1250;
const INCREMENTS: u64 = (INCR_CLIENTS * INCREMENTS_PER_CLIENT) as u64;

// nginx closes a keep-alive connection after 1000 requests by default; each
// client must do all of its increments on one connection.
const COUNTERS_HTTP_CONFIG: &str = "    lua_shared_dict counters 1m;
    keepalive_requests 100000;
";

const INCR_CONFIG: &str = r#"
        location = /incr {
            content_by_lua_block {
                local counters = ngx.shared.counters
                local n, err = counters:incr("hits", 1, 0)
                if not n then
                    ngx.status = 500
                    ngx.say(err)
                    return
                end
                -- Which workers served increments, for the test to compare
                -- with the worker processes it sees.
                counters:set("pid:" .. ngx.worker.pid(), true)
                ngx.say(n)
            }
        }
        location = /get {
            content_by_lua_block {
                ngx.say(ngx.shared.counters:get("hits"))
            }
        }
        location = /pids {
            content_by_lua_block {
                for _, key in ipairs(ngx.shared.counters:get_keys(0)) do
                    local pid = key:match("^pid:(%d+)$")
                    if pid then
                        ngx.say(pid)
                    end
                end
            }
        }
"#;

#[test]
fn concurrent_incr_loses_nothing() {
    let _one_at_a_time = exclusive();
    let server = TestServer::start(COUNTERS_HTTP_CONFIG, INCR_CONFIG);
    let workers = server.wait_for_workers();
    let port = server.port();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(40);
    let outcomes: Vec<Result<Vec<u64>, String>> = thread::scope(|scope| {
        let clients: Vec<_> = (0..INCR_CLIENTS)
            .map(|_| scope.spawn(move || increment_on_one_connection(port, deadline)))
            .collect();
        clients
            .into_iter()
            .map(|client| {
                client
                    .join()
                    .unwrap_or_else(|_| Err("the client thread panicked".into()))
            })
            .collect()
    });
    let elapsed = started.elapsed();

    let mut returned = Vec::with_capacity(INCREMENTS as usize);
    let mut failures = Vec::new();
    for (client, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(values) => returned.extend(values),
            Err(why) => failures.push(format!("    client {client}: {why}")),
        }
    }
    assert!(
        failures.is_empty(),
        "expected each of {INCR_CLIENTS} clients to get {INCREMENTS_PER_CLIENT} responses \
         \"200\" with a number on one keep-alive connection; {} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "{INCREMENTS} increments from {INCR_CLIENTS} keep-alive connections in {:.2} s \
         ({:.0} requests/s)",
        elapsed.as_secs_f64(),
        INCREMENTS as f64 / elapsed.as_secs_f64()
    );

    // incr is atomic exactly when every call returned a different value, so
    // together they are 1..=INCREMENTS.
    returned.sort_unstable();
    if !returned.iter().copied().eq(1..=INCREMENTS) {
        panic!(
            "expected the {INCREMENTS} incr calls to return each of 1..={INCREMENTS} once; {}",
            describe_increment_mismatch(&returned)
        );
    }

    let total = body_of(&server.get_once("/get"), "GET /get");
    assert_eq!(
        total.trim(),
        INCREMENTS.to_string(),
        "expected GET /get to return the number of increments, {INCREMENTS}, got {total:?}"
    );

    let listed = body_of(&server.get_once("/pids"), "GET /pids");
    let served: BTreeSet<u32> = listed
        .lines()
        .map(|line| {
            line.parse()
                .unwrap_or_else(|_| panic!("expected a pid per line from /pids, got {listed:?}"))
        })
        .collect();
    assert_eq!(
        served, workers,
        "expected both worker processes {workers:?} to have served /incr (they record \
         their pid), but the recorded pids are {served:?}"
    );
}

/// Sends INCREMENTS_PER_CLIENT requests to /incr on one keep-alive
/// connection; returns the values incr returned.
fn increment_on_one_connection(port: u16, deadline: Instant) -> Result<Vec<u64>, String> {
    let mut connection =
        KeepAlive::connect(port).map_err(|failure| format!("cannot connect: {failure}"))?;
    let mut values = Vec::with_capacity(INCREMENTS_PER_CLIENT);
    for done in 0..INCREMENTS_PER_CLIENT {
        if Instant::now() >= deadline {
            return Err(format!(
                "only {done} of {INCREMENTS_PER_CLIENT} increments done before the time limit"
            ));
        }
        let request = done + 1;
        let response = connection
            .get("/incr")
            .map_err(|failure| format!("request {request}: {failure}"))?;
        let body = String::from_utf8_lossy(&response.body);
        if response.status != 200 {
            return Err(format!(
                "request {request}: expected status 200, got {} with body {body:?}",
                response.status
            ));
        }
        let value = body.trim().parse().map_err(|_| {
            format!("request {request}: expected the new counter value, got {body:?}")
        })?;
        values.push(value);
        if connection.server_closes && request < INCREMENTS_PER_CLIENT {
            return Err(format!(
                "nginx closed the keep-alive connection after request {request} \
                 (`Connection: close`); expected one connection for all \
                 {INCREMENTS_PER_CLIENT}"
            ));
        }
    }
    Ok(values)
}

/// Which values of 1..=INCREMENTS are missing or repeated in `sorted`.
fn describe_increment_mismatch(sorted: &[u64]) -> String {
    let mut counts = vec![0u32; INCREMENTS as usize + 1];
    let mut out_of_range = Vec::new();
    for &value in sorted {
        match counts.get_mut(value as usize) {
            Some(count) if value > 0 => *count += 1,
            _ => out_of_range.push(value),
        }
    }
    let missing: Vec<u64> = (1..=INCREMENTS)
        .filter(|&v| counts[v as usize] == 0)
        .collect();
    let repeated: Vec<u64> = (1..=INCREMENTS)
        .filter(|&v| counts[v as usize] > 1)
        .collect();
    let first = |values: &[u64]| format!("{:?}", &values[..values.len().min(10)]);
    format!(
        "got {} values: {} missing (first: {}), {} repeated (first: {}), {} out of range \
         (first: {})",
        sorted.len(),
        missing.len(),
        first(&missing),
        repeated.len(),
        first(&repeated),
        out_of_range.len(),
        first(&out_of_range)
    )
}

// ---------------------------------------------------------------------------
// 2. Workers killed while they may hold the zone's lock
// ---------------------------------------------------------------------------

const KILLS: usize = 25;
const STORM_CLIENTS: usize = 4;
/// Clients open a new connection after this many requests, so that the
/// kernel keeps spreading them over both workers, a replacement worker
/// included. Otherwise connections would pile up on the worker that was not
/// killed last, and the next kill might hit an idle worker.
const REQUESTS_PER_CONNECTION: u32 = 20;
const MAX_REQUESTS_PER_STORM_CLIENT: u64 = 1_000_000;
/// Longest wait for one worker to be replaced and to serve its first request.
const RESPAWN_LIMIT: Duration = Duration::from_secs(10);
/// What every /read returns while the storm runs (before the pid).
const READ_VALUES: &str = "alpha 42 true";
/// Keys stored before the storm for /scan to walk. A set or get holds the
/// zone's lock for well under a microsecond and makes no system call under
/// it, and SIGKILL takes effect only on the way back to user mode, so kills
/// of workers doing only sets and gets almost never catch one holding the
/// lock. /scan's `flush_expired()` walks all of these keys (none expires)
/// under the lock, which makes that likely.
const FILL_KEYS: usize = 5000;
/// What `get_keys(0)` counts: the filled keys and the four /write stores.
const ALL_KEYS: usize = FILL_KEYS + 4;

const KILL_HTTP_CONFIG: &str = "    lua_shared_dict counters 1m;\n";

const KILL_CONFIG: &str = r#"
        location = /write {
            content_by_lua_block {
                local counters = ngx.shared.counters
                local ok, err = counters:set("name", "alpha")
                if ok then
                    ok, err = counters:set("answer", 42)
                end
                if ok then
                    ok, err = counters:set("flag", true)
                end
                local n
                if ok then
                    n, err = counters:incr("writes", 1, 0)
                end
                if not n then
                    ngx.status = 500
                    ngx.say(err)
                    return
                end
                ngx.say(n, " ", ngx.worker.pid())
            }
        }
        location = /read {
            content_by_lua_block {
                local counters = ngx.shared.counters
                ngx.say(counters:get("name"), " ", counters:get("answer"), " ",
                        counters:get("flag"), " ", ngx.worker.pid())
            }
        }
        location = /fill {
            content_by_lua_block {
                local counters = ngx.shared.counters
                for i = 1, $FILL_KEYS do
                    local ok, err = counters:safe_set("fill:" .. i, i)
                    if not ok then
                        ngx.status = 500
                        ngx.say("fill:", i, ": ", err)
                        return
                    end
                end
                ngx.say(#counters:get_keys(0), " ", ngx.worker.pid())
            }
        }
        location = /scan {
            content_by_lua_block {
                local counters = ngx.shared.counters
                local freed = 0
                for _ = 1, 10 do
                    freed = freed + counters:flush_expired()
                end
                ngx.say(freed, " ", ngx.worker.pid())
            }
        }
        location = /count {
            content_by_lua_block {
                ngx.say(#ngx.shared.counters:get_keys(0), " ", ngx.worker.pid())
            }
        }
"#;

#[test]
fn killed_workers_recover_the_zone_lock() {
    let _one_at_a_time = exclusive();
    let config = KILL_CONFIG.replace("$FILL_KEYS", &FILL_KEYS.to_string());
    let server = TestServer::start(KILL_HTTP_CONFIG, &config);
    server.wait_for_workers();
    let port = server.port();
    // Before the storm, so that every /read and /scan finds its values.
    check_write(&server.get_once("/write")).unwrap_or_else(|why| panic!("before the kills: {why}"));
    check_count(&server.get_once("/fill"))
        .unwrap_or_else(|why| panic!("filling the zone before the kills: {why}"));

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let completed = AtomicU64::new(0);
    let serving_pids = Mutex::new(HashSet::new());
    let storm = Storm {
        port,
        stop: &stop,
        completed: &completed,
        serving_pids: &serving_pids,
        // Only a safety net: the clients are stopped long before.
        deadline: started + Duration::from_secs(45),
    };
    let (kills, tallies) = thread::scope(|scope| {
        let clients: Vec<_> = (0..STORM_CLIENTS)
            .map(|_| scope.spawn(|| storm.send_until_stopped()))
            .collect();
        let kills = kill_workers_one_by_one(&server, &storm, started + Duration::from_secs(35));
        // Stop the clients before anything can panic: the scope waits for them.
        stop.store(true, Ordering::Relaxed);
        let tallies: Vec<ClientTally> = clients
            .into_iter()
            .map(|client| client.join().unwrap_or_else(|_| ClientTally::panicked()))
            .collect();
        (kills, tallies)
    });
    let elapsed = started.elapsed();
    let total = ClientTally::sum(tallies);
    println!(
        "{KILLS} kills in {:.2} s; clients: {} responses, {} connection errors, {} timeouts, \
         {} bad responses",
        elapsed.as_secs_f64(),
        total.responses,
        total.connection_errors,
        total.timeouts,
        total.bad_responses
    );

    if let Err(why) = kills {
        panic!(
            "{why}\nclient problems meanwhile ({} timeouts):\n{}",
            total.timeouts,
            total.problems.join("\n")
        );
    }
    assert_eq!(
        total.timeouts,
        0,
        "expected no request to hang (no response within {} s) while workers were killed; \
         {} did:\n{}",
        REQUEST_TIMEOUT.as_secs(),
        total.timeouts,
        total.problems.join("\n")
    );
    assert_eq!(
        total.bad_responses,
        0,
        "expected every response during the kills to be 200 with the values written; {} \
         were not:\n{}",
        total.bad_responses,
        total.problems.join("\n")
    );

    // The zone's lock must be free again: requests on both current workers
    // answer, with the data intact.
    let workers = server.wait_for_workers();
    let mut writes_seen = Vec::new();
    let mut served = BTreeSet::new();
    for _ in 0..CHECKS_PER_ENDPOINT {
        let (n, pid) = check_write(&server.get_once("/write"))
            .unwrap_or_else(|why| panic!("after the kills: {why}"));
        writes_seen.push(n);
        served.insert(pid);
        let pid = check_read(&server.get_once("/read"))
            .unwrap_or_else(|why| panic!("after the kills: {why}"));
        served.insert(pid);
        let pid = check_scan(&server.get_once("/scan"))
            .unwrap_or_else(|why| panic!("after the kills: {why}"));
        served.insert(pid);
        let pid = check_count(&server.get_once("/count"))
            .unwrap_or_else(|why| panic!("after the kills: {why}"));
        served.insert(pid);
    }
    assert!(
        writes_seen.windows(2).all(|pair| pair[0] < pair[1]),
        "expected the write counter to grow with each /write after the kills, got {writes_seen:?}"
    );
    assert_eq!(
        served,
        workers,
        "expected the {} checks after the kills to be served by both current workers \
         {workers:?}, they were served by {served:?}",
        4 * CHECKS_PER_ENDPOINT
    );

    let log = server.error_log();
    let killed_exits = log
        .lines()
        .filter(|line| line.contains("exited on signal 9"))
        .count();
    let any_signal_exits = log
        .lines()
        .filter(|line| line.contains("exited on signal"))
        .count();
    assert_eq!(
        (killed_exits, any_signal_exits),
        (KILLS, KILLS),
        "expected the master to log {KILLS} workers \"exited on signal 9\" and no other \
         signal deaths; it logged {killed_exits} exits on signal 9 and {any_signal_exits} \
         on any signal"
    );
    let unlocks = log
        .lines()
        .filter(|line| {
            line.contains("[alert]")
                && line.contains("shared memory zone")
                && line.contains("was locked by")
        })
        .count();
    println!("the master force-unlocked a zone held by a killed worker {unlocks} times");
}

/// What the storm's client threads share.
struct Storm<'a> {
    port: u16,
    stop: &'a AtomicBool,
    /// Responses received, by all clients.
    completed: &'a AtomicU64,
    /// Every worker pid that has answered.
    serving_pids: &'a Mutex<HashSet<u32>>,
    deadline: Instant,
}

impl Storm<'_> {
    /// Sends STORM_REQUESTS in turn on keep-alive connections until stopped.
    /// A connection reset by a dying worker is expected: the client
    /// reconnects and goes on.
    fn send_until_stopped(&self) -> ClientTally {
        let mut tally = ClientTally::default();
        let mut connection: Option<KeepAlive> = None;
        for number in 0..MAX_REQUESTS_PER_STORM_CLIENT {
            if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
                break;
            }
            let mut open = match connection.take() {
                Some(open) => open,
                None => match KeepAlive::connect(self.port) {
                    Ok(open) => open,
                    Err(failure) => {
                        tally.note_failure(failure);
                        continue;
                    }
                },
            };
            let (path, check) = STORM_REQUESTS[number as usize % STORM_REQUESTS.len()];
            match open.get(path) {
                Ok(response) => {
                    tally.responses += 1;
                    self.completed.fetch_add(1, Ordering::Relaxed);
                    match check(&response) {
                        Ok(pid) => {
                            self.serving_pids
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .insert(pid);
                        }
                        Err(why) => tally.note_bad_response(why),
                    }
                    if !open.server_closes && open.requests_sent < REQUESTS_PER_CONNECTION {
                        connection = Some(open);
                    }
                }
                // The connection is dropped: after a timeout or a reset it
                // is of no further use.
                Err(failure) => tally.note_failure(failure),
            }
        }
        tally
    }
}

/// Checks a response and returns the pid of the worker that sent it.
type Check = fn(&Response) -> Result<u32, String>;

/// What the storm's clients send, in turn.
const STORM_REQUESTS: [(&str, Check); 3] = [
    ("/write", |response| {
        check_write(response).map(|(_, pid)| pid)
    }),
    ("/read", check_read),
    ("/scan", check_scan),
];

/// SIGKILLs a worker KILLS times; after each kill waits until the master has
/// started a replacement and the replacement has served a request, so that
/// the next kill may again hit a worker in the middle of a request.
fn kill_workers_one_by_one(
    server: &TestServer,
    storm: &Storm,
    deadline: Instant,
) -> Result<(), String> {
    let limit = || RESPAWN_LIMIT.min(deadline.saturating_duration_since(Instant::now()));
    for round in 1..=KILLS {
        let before: Vec<u32> = server.workers().into_iter().collect();
        if before.len() != WORKERS {
            return Err(format!(
                "kill {round}: expected {WORKERS} workers before the kill, found {before:?}"
            ));
        }
        // Alternate between the older and the newer worker.
        let victim = before[round % WORKERS];
        nginx::signal(victim, "KILL").map_err(|e| format!("kill {round}: {e}"))?;
        let replacement = poll_until(limit(), || {
            let now = server.workers();
            let new: Vec<u32> = now
                .iter()
                .copied()
                .filter(|p| !before.contains(p))
                .collect();
            (now.len() == WORKERS && !now.contains(&victim) && new.len() == 1).then(|| new[0])
        })
        .ok_or_else(|| {
            format!(
                "kill {round}: after SIGKILL of worker {victim}, expected the master to run \
                 {WORKERS} workers without it within {:.1} s; workers now: {:?}",
                limit().as_secs_f64(),
                server.workers()
            )
        })?;
        let completed_before = storm.completed.load(Ordering::Relaxed);
        let patience = limit();
        let served = poll_until(patience, || {
            storm
                .serving_pids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&replacement)
                .then_some(())
        });
        if served.is_none() {
            return Err(format!(
                "kill {round}: the replacement worker {replacement} of {victim} served no \
                 request within {:.1} s ({} responses to the clients meanwhile)",
                patience.as_secs_f64(),
                storm.completed.load(Ordering::Relaxed) - completed_before
            ));
        }
    }
    Ok(())
}

/// Status 200 and `N PID`; returns (N, PID).
fn check_write(response: &Response) -> Result<(u64, u32), String> {
    let body = ok_body(response, "/write")?;
    match body.split_whitespace().collect::<Vec<_>>()[..] {
        [n, pid] => match (n.parse(), pid.parse()) {
            (Ok(n), Ok(pid)) => Ok((n, pid)),
            _ => Err(format!("/write: expected \"COUNT PID\", got {body:?}")),
        },
        _ => Err(format!("/write: expected \"COUNT PID\", got {body:?}")),
    }
}

/// Status 200 and the values /write stores, then the pid; returns the pid.
fn check_read(response: &Response) -> Result<u32, String> {
    let body = ok_body(response, "/read")?;
    body.trim_end()
        .strip_prefix(READ_VALUES)
        .and_then(|rest| rest.strip_prefix(' '))
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(|| format!("/read: expected \"{READ_VALUES} PID\", got {body:?}"))
}

/// Status 200 and `0 PID` (nothing expired); returns the pid.
fn check_scan(response: &Response) -> Result<u32, String> {
    number_and_pid(response, "/scan", 0)
}

/// Status 200 and `ALL_KEYS PID`; returns the pid.
fn check_count(response: &Response) -> Result<u32, String> {
    number_and_pid(response, "/count", ALL_KEYS)
}

fn number_and_pid(response: &Response, path: &str, number: usize) -> Result<u32, String> {
    let body = ok_body(response, path)?;
    let wrong = || format!("{path}: expected \"{number} PID\", got {body:?}");
    match body.split_whitespace().collect::<Vec<_>>()[..] {
        [n, pid] if n == number.to_string() => pid.parse().map_err(|_| wrong()),
        _ => Err(wrong()),
    }
}

fn ok_body(response: &Response, path: &str) -> Result<String, String> {
    let body = String::from_utf8_lossy(&response.body).into_owned();
    if response.status == 200 {
        Ok(body)
    } else {
        Err(format!(
            "{path}: expected status 200, got {} with body {body:?}",
            response.status
        ))
    }
}

/// One storm client's counts.
#[derive(Default)]
struct ClientTally {
    responses: u64,
    /// Refused, reset or closed connections: expected when a worker dies.
    connection_errors: u64,
    /// Requests without a response in REQUEST_TIMEOUT: nginx hung.
    timeouts: u64,
    /// Responses with another status or body than expected.
    bad_responses: u64,
    /// The first few timeouts and bad responses, for the failure message.
    problems: Vec<String>,
}

impl ClientTally {
    const PROBLEMS_KEPT: usize = 10;

    fn panicked() -> ClientTally {
        ClientTally {
            bad_responses: 1,
            problems: vec!["    a client thread panicked".into()],
            ..ClientTally::default()
        }
    }

    fn note_failure(&mut self, failure: RequestFailure) {
        match failure {
            RequestFailure::Connection(_) => self.connection_errors += 1,
            RequestFailure::TimedOut(why) => {
                self.timeouts += 1;
                self.keep_problem(why);
            }
            RequestFailure::Invalid(why) => self.note_bad_response(why),
        }
    }

    fn note_bad_response(&mut self, why: String) {
        self.bad_responses += 1;
        self.keep_problem(why);
    }

    fn keep_problem(&mut self, why: String) {
        if self.problems.len() < Self::PROBLEMS_KEPT {
            self.problems.push(format!("    {why}"));
        }
    }

    fn sum(tallies: Vec<ClientTally>) -> ClientTally {
        let mut total = ClientTally::default();
        for tally in tallies {
            total.responses += tally.responses;
            total.connection_errors += tally.connection_errors;
            total.timeouts += tally.timeouts;
            total.bad_responses += tally.bad_responses;
            total.problems.extend(tally.problems);
        }
        total
    }
}

// ---------------------------------------------------------------------------
// 3. Reloads
// ---------------------------------------------------------------------------

const SMALL: u64 = 1024 * 1024;
const LARGE: u64 = 2 * 1024 * 1024;

const RELOAD_CONFIG: &str = r#"
        location = /set {
            content_by_lua_block {
                local ok, err = ngx.shared.keep:set("k", "kept")
                if ok then
                    ok, err = ngx.shared.grow:set("g", "grown")
                end
                if not ok then
                    ngx.status = 500
                    ngx.say(err)
                    return
                end
                ngx.say("STORED")
            }
        }
        location = /write_grow {
            content_by_lua_block {
                local ok, err = ngx.shared.grow:set("g2", "after")
                if not ok then
                    ngx.status = 500
                    ngx.say(err)
                    return
                end
                ngx.say(ngx.shared.grow:get("g2"))
            }
        }
        location = /state {
            content_by_lua_block {
                local keep, grow = ngx.shared.keep, ngx.shared.grow
                ngx.say(keep:get("k"), " ", grow:get("g"), " ", grow:get("g2"), " ",
                        #grow:get_keys(0), " ", grow:capacity(), " ", keep:capacity(),
                        " ", ngx.worker.pid())
            }
        }
"#;

fn reload_http_config(grow_size: &str) -> String {
    format!("    lua_shared_dict keep 1m;\n    lua_shared_dict grow {grow_size};\n")
}

/// The body of /state without its pid: keep's "k", grow's "g" and "g2",
/// grow's key count, grow's capacity, keep's capacity.
fn state(k: &str, g: &str, g2: &str, grow_keys: usize, grow_capacity: u64) -> String {
    format!("{k} {g} {g2} {grow_keys} {grow_capacity} {SMALL}")
}

#[test]
fn reload_keeps_data_and_resizes_fresh() {
    let _one_at_a_time = exclusive();
    let mut server = TestServer::start(&reload_http_config("1m"), RELOAD_CONFIG);
    server.wait_for_workers();
    let stored = body_of(&server.get_once("/set"), "GET /set");
    assert_eq!(
        stored, "STORED\n",
        "expected /set to answer STORED, got {stored:?}"
    );
    server.expect_state_on_every_worker(&state("kept", "grown", "nil", 1, SMALL), "before reloads");

    // A zone whose size changed is a new zone; the unchanged one is reused.
    server.rewrite_config(&reload_http_config("2m"), RELOAD_CONFIG);
    server.reload();
    server.expect_state_on_every_worker(
        &state("kept", "nil", "nil", 0, LARGE),
        "after the reload that resized grow to 2m",
    );
    let written = body_of(&server.get_once("/write_grow"), "GET /write_grow");
    assert_eq!(
        written, "after\n",
        "expected a write to the resized zone to read back \"after\", got {written:?}"
    );
    server.expect_state_on_every_worker(
        &state("kept", "nil", "after", 1, LARGE),
        "after writing to the resized zone",
    );
    server.expect_healthy("after the resizing reload");

    server.reload();
    server.expect_state_on_every_worker(
        &state("kept", "nil", "after", 1, LARGE),
        "after a second reload with the same configuration",
    );
    server.expect_healthy("after the second reload");
}

// ---------------------------------------------------------------------------
// One nginx per test
// ---------------------------------------------------------------------------

/// An nginx (master and WORKERS workers) in its own prefix. Dropping it stops
/// nginx; the prefix is removed when the test passed and kept, with its path
/// and the end of its error log printed, when it failed.
/// A lock built from `add` and `ngx.sleep` polling (the resty.lock pattern)
/// protects a non-atomic read-modify-write: 20 concurrent clients on two
/// workers, 2,000 increments, none lost. (With `reuseport` each connection
/// lands on a worker by hash: of 8 connections all went to one worker in
/// 1 run of 128; of 20, in 1 of half a million.)
#[test]
fn add_and_sleep_lock_excludes_across_workers() {
    let _serial = exclusive();
    let server = TestServer::start(
        "lua_shared_dict locks 1m;\nlua_shared_dict data 1m;\n",
        r#"location = /locked {
            content_by_lua_block {
                local locks, data = ngx.shared.locks, ngx.shared.data
                local deadline = ngx.now() + 10
                while not locks:add("lock", true, 5) do
                    if ngx.now() > deadline then return ngx.exit(503) end
                    ngx.sleep(0.001)
                end
                local n = data:get("n") or 0
                ngx.sleep(0)
                data:set("n", n + 1)
                data:set("pid:" .. ngx.worker.pid(), true)
                locks:delete("lock")
                ngx.say("ok")
            }
        }
        location = /total { content_by_lua_block { ngx.say(ngx.shared.data:get("n")) } }
        location = /pids {
            content_by_lua_block {
                local n = 0
                for _, key in ipairs(ngx.shared.data:get_keys(0)) do
                    if key:find("^pid:") then n = n + 1 end
                end
                ngx.say(n)
            }
        }"#,
    );
    let port = server.port();
    let clients: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || -> Result<(), String> {
                let mut connection = KeepAlive::connect(port).map_err(|e| e.to_string())?;
                for _ in 0..100 {
                    let response = connection.get("/locked").map_err(|e| e.to_string())?;
                    if response.status != 200 || response.body != b"ok\n" {
                        return Err(format!("status {}", response.status));
                    }
                }
                Ok(())
            })
        })
        .collect();
    for client in clients {
        let result = client
            .join()
            .unwrap_or_else(|_| Err("client panicked".into()));
        assert!(
            result.is_ok(),
            "a locked request failed: {result:?}\n{}",
            server.error_log()
        );
    }
    assert_eq!(
        body_of(&server.get_once("/total"), "/total"),
        "2000\n",
        "expected every locked increment to count"
    );
    assert_eq!(
        body_of(&server.get_once("/pids"), "/pids"),
        "2\n",
        "expected both workers to take the lock"
    );
}

/// One worker and 200 clients that each wait in `ngx.sleep(0.5)`: if a
/// sleep blocked the worker the batch would take 100 s; suspended in the
/// event loop, it takes about half a second.
#[test]
fn sleeping_requests_do_not_block_the_worker() {
    let _serial = exclusive();
    let server = TestServer::start_with_workers(
        "",
        "location = /sleep { content_by_lua_block { ngx.sleep(0.5) ngx.say(\"slept\") } }",
        1,
    );
    let port = server.port();
    let started = Instant::now();
    let clients: Vec<_> = (0..200)
        .map(|_| {
            thread::spawn(move || -> Result<String, String> {
                let mut connection = KeepAlive::connect(port).map_err(|e| e.to_string())?;
                let response = connection.get("/sleep").map_err(|e| e.to_string())?;
                if response.status != 200 {
                    return Err(format!("status {}", response.status));
                }
                Ok(String::from_utf8_lossy(&response.body).into_owned())
            })
        })
        .collect();
    let results: Vec<Result<String, String>> = clients
        .into_iter()
        .map(|c| c.join().unwrap_or_else(|_| Err("client panicked".into())))
        .collect();
    let elapsed = started.elapsed();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "expected 200 answers, {} failed (first: {}); server root {}/\n{}",
        failures.len(),
        failures[0],
        server.prefix().display(),
        server.error_log()
    );
    assert!(
        results.iter().all(|r| r.as_deref() == Ok("slept\n")),
        "unexpected bodies"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "expected the 200 sleeps to overlap (about 0.5 s in all), the batch took {elapsed:?}"
    );
}

/// A timer in the first worker refreshes a shared value every 50 ms;
/// requests served by both workers see it move.
#[test]
fn timer_refresh_is_seen_by_both_workers() {
    let _serial = exclusive();
    let server = TestServer::start(
        r#"lua_shared_dict data 1m;
        init_worker_by_lua_block {
            if ngx.worker.id() == 0 then
                ngx.timer.every(0.05, function() ngx.shared.data:incr("ticks", 1, 0) end)
            end
        }"#,
        r#"location = /ticks {
            content_by_lua_block { ngx.say(ngx.worker.pid(), " ", ngx.shared.data:get("ticks") or 0) }
        }"#,
    );
    server.wait_for_workers();
    let started = Instant::now();
    // Worker pid -> the tick counts it answered, in order.
    let mut seen: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    while started.elapsed() < Duration::from_millis(1500) {
        let body = body_of(&server.get_once("/ticks"), "/ticks");
        let (pid, ticks) = body.trim().split_once(' ').unwrap_or(("", ""));
        let ticks: u64 = ticks
            .parse()
            .unwrap_or_else(|_| panic!("expected \"PID TICKS\" from /ticks, got {body:?}"));
        seen.entry(pid.to_string()).or_default().push(ticks);
        thread::sleep(Duration::from_millis(10));
    }
    let elapsed_ticks = started.elapsed().as_millis() as u64 / 50;
    assert_eq!(
        seen.len(),
        2,
        "expected answers from both workers, got {:?}",
        seen.keys()
    );
    for (pid, ticks) in &seen {
        assert!(
            ticks.windows(2).all(|w| w[0] <= w[1]),
            "worker {pid} saw the tick count go back: {ticks:?}"
        );
        // About 30 periods pass; a handful is proof enough of refreshing.
        let moved = ticks.last().unwrap_or(&0) - ticks.first().unwrap_or(&0);
        assert!(
            moved >= 5 && moved <= elapsed_ticks + 2,
            "worker {pid} saw {moved} ticks in about {elapsed_ticks} periods of 50 ms: {ticks:?}"
        );
    }
}

/// A reload while requests sleep and timers wait (one far in the future,
/// one periodic whose callback sleeps in a light thread): the sleeping
/// requests finish, pending timers run once with `premature = true`, and
/// nothing crashes.
#[test]
fn reload_with_sleeping_requests_and_pending_timers() {
    let _serial = exclusive();
    let mut server = TestServer::start(
        r#"lua_shared_dict data 1m;
        init_worker_by_lua_block {
            ngx.timer.every(0.05, function(premature)
                local t = ngx.thread.spawn(function() ngx.sleep(0.02) return premature end)
                local _, was_premature = ngx.thread.wait(t)
                ngx.shared.data:incr(was_premature and "every:premature" or "every:normal", 1, 0)
            end)
        }"#,
        r#"location = /sleep {
            content_by_lua_block {
                ngx.timer.at(3600, function(premature)
                    ngx.shared.data:incr(premature and "at:premature" or "at:normal", 1, 0)
                end)
                ngx.sleep(0.8)
                ngx.say("slept")
            }
        }
        location = /counts {
            content_by_lua_block {
                local d = ngx.shared.data
                ngx.say(d:get("at:premature") or 0, " ", d:get("at:normal") or 0, " ",
                        d:get("every:premature") or 0, " ", (d:get("every:normal") or 0) > 0)
            }
        }"#,
    );
    server.wait_for_workers();
    let port = server.port();
    let sleepers: Vec<_> = (0..20)
        .map(|_| {
            thread::spawn(move || -> Result<(), String> {
                let mut connection = KeepAlive::connect(port).map_err(|e| e.to_string())?;
                let response = connection.get("/sleep").map_err(|e| e.to_string())?;
                match (response.status, response.body.as_slice()) {
                    (200, b"slept\n") => Ok(()),
                    (status, body) => Err(format!(
                        "status {status}, body {:?}",
                        String::from_utf8_lossy(body)
                    )),
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    server.reload();
    for sleeper in sleepers {
        let result = sleeper
            .join()
            .unwrap_or_else(|_| Err("client panicked".into()));
        assert!(
            result.is_ok(),
            "a request sleeping across the reload failed: {result:?}\n{}",
            server.error_log()
        );
    }
    // The 20 one-hour timers ran early. A periodic timer runs early unless
    // the shutdown caught its callback running (it then just finishes).
    let counts = body_of(&server.get_once("/counts"), "/counts");
    let fields: Vec<&str> = counts.split_whitespace().collect();
    let early_periodic: usize = fields
        .get(2)
        .and_then(|f| f.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(
        fields.len() == 4
            && fields[..2] == ["20", "0"]
            && early_periodic <= WORKERS
            && fields[3] == "true",
        "expected \"20 0 N true\" with N <= {WORKERS} (premature and normal runs of the \
         one-hour timers, premature runs of the periodic one, whether it ran normally), \
         got {counts:?}"
    );
    server.expect_healthy("after reloading with sleeping requests and pending timers");
}

/// Over HTTP/2 (curl as the client): subrequests, a light thread, the
/// request body, and a client abort under `lua_check_client_abort`. Needs
/// `http2 on;` (nginx 1.25.1 and later); older builds skip it, saying so.
#[test]
fn http2_captures_threads_and_aborts() {
    let _serial = exclusive();
    let settings = Settings::from_env();
    if settings
        .nginx_version()
        .is_some_and(|v| v < &[1, 25, 1][..])
    {
        eprintln!("skipped: this nginx has no `http2 on;` (before 1.25.1)");
        return;
    }
    let server = TestServer::start_with_workers(
        "lua_shared_dict data 1m;",
        r#"http2 on;
        lua_check_client_abort on;
        location ~ ^/slow/(\d)$ { content_by_lua_block { ngx.sleep(0.1) ngx.print("slow ", ngx.var[1]) } }
        location = /echo {
            content_by_lua_block { ngx.req.read_body() ngx.print(ngx.req.get_method(), " [", ngx.req.get_body_data(), "]") }
        }
        location = /t {
            content_by_lua_block {
                ngx.req.read_body()
                local a, b, c = ngx.location.capture_multi({ { "/slow/1" }, { "/slow/2" }, { "/echo", { method = ngx.HTTP_POST } } })
                local t = ngx.thread.spawn(function() ngx.sleep(0.05) return "thread" end)
                ngx.say(a.body, ", ", b.body, ", ", c.body, ", ", select(2, ngx.thread.wait(t)))
            }
        }
        location = /abandoned {
            content_by_lua_block { ngx.sleep(0.5) ngx.shared.data:set("abandoned", "went on") }
        }
        location = /result {
            content_by_lua_block { ngx.say(tostring(ngx.shared.data:get("abandoned"))) }
        }"#,
        1,
    );
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", server.port());
    let curl = |args: &[&str]| {
        std::process::Command::new("curl")
            .args(["-s", "--http2-prior-knowledge"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run curl (scripts/test.sh installs it): {e}"))
    };
    let answered = curl(&["-w", " over %{http_version}", "-d", "h2 body", &url("/t")]);
    assert_eq!(
        String::from_utf8_lossy(&answered.stdout),
        "slow 1, slow 2, POST [h2 body], thread\n over 2",
        "expected the captures, the thread and the body over HTTP/2\n{}",
        server.error_log()
    );
    curl(&["--max-time", "0.1", &url("/abandoned")]);
    thread::sleep(Duration::from_millis(700));
    assert_eq!(
        body_of(&server.get_once("/result"), "/result"),
        "nil\n",
        "expected the abandoned HTTP/2 request's handler to stop\n{}",
        server.error_log()
    );
    assert!(
        server
            .error_log()
            .contains("client prematurely closed connection, client"),
        "expected the abort to be logged\n{}",
        server.error_log()
    );
}

struct TestServer {
    nginx: Nginx,
    modules: Vec<PathBuf>,
}

impl TestServer {
    fn start(http_config: &str, config: &str) -> TestServer {
        TestServer::start_with_workers(http_config, config, WORKERS)
    }

    fn start_with_workers(http_config: &str, config: &str, workers: usize) -> TestServer {
        let settings = Settings::from_env();
        if let Some(problem) = &settings.setup_error {
            panic!("cannot run nginx: {problem}");
        }
        let prefix = run::new_prefix().unwrap_or_else(|e| panic!("{e}"));
        for attempt in 1..=PORT_ATTEMPTS {
            let port = nginx::free_port().unwrap_or_else(|e| panic!("{e}"));
            for stale in ["logs/error.log", "logs/nginx.pid"] {
                let _ = fs::remove_file(prefix.join(stale));
            }
            write_config(
                &prefix,
                &settings.modules,
                port,
                workers,
                http_config,
                config,
            );
            let mut child =
                nginx::spawn(&settings.nginx_binary, &prefix).unwrap_or_else(|e| panic!("{e}"));
            match nginx::wait_for_startup(&mut child, &prefix, port, STARTUP_LIMIT) {
                Startup::Ready => {
                    return TestServer {
                        nginx: Nginx::new(child, port, prefix),
                        modules: settings.modules,
                    }
                }
                Startup::Exited(status) => {
                    let output = startup_output(&prefix);
                    if output.contains("Address already in use") && attempt < PORT_ATTEMPTS {
                        continue;
                    }
                    panic!(
                        "expected nginx to start, it exited ({status}); server root kept at \
                         {}/\n{output}",
                        prefix.display()
                    );
                }
                Startup::TimedOut => {
                    drop(Nginx::new(child, port, prefix.clone()));
                    panic!(
                        "expected nginx to listen on 127.0.0.1:{port} within {} s, it did not; \
                         server root kept at {}/\n{}",
                        STARTUP_LIMIT.as_secs(),
                        prefix.display(),
                        startup_output(&prefix)
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn port(&self) -> u16 {
        self.nginx.port
    }

    fn prefix(&self) -> &Path {
        &self.nginx.prefix
    }

    fn master_pid(&self) -> u32 {
        self.nginx.child.id()
    }

    /// The master's live children. There is no cache manager or loader
    /// here, so these are exactly the workers.
    fn workers(&self) -> BTreeSet<u32> {
        nginx::children_of(self.master_pid()).into_iter().collect()
    }

    /// The workers, once WORKERS of them run (the pid file is written before
    /// they are forked).
    fn wait_for_workers(&self) -> BTreeSet<u32> {
        poll_until(STARTUP_LIMIT, || {
            let workers = self.workers();
            (workers.len() == WORKERS).then_some(workers)
        })
        .unwrap_or_else(|| {
            panic!(
                "expected {WORKERS} worker processes within {} s, found {:?}",
                STARTUP_LIMIT.as_secs(),
                self.workers()
            )
        })
    }

    fn rewrite_config(&self, http_config: &str, config: &str) {
        write_config(
            self.prefix(),
            &self.modules,
            self.port(),
            WORKERS,
            http_config,
            config,
        );
    }

    /// SIGHUP; returns once the old workers are gone and new ones run.
    fn reload(&mut self) {
        self.nginx
            .reload(WORKERS as u32)
            .unwrap_or_else(|why| panic!("expected the reload to finish: {why}"));
    }

    /// GET on a fresh connection (`Connection: close`): with `reuseport`,
    /// successive calls land on either worker.
    fn get_once(&self, path: &str) -> Response {
        let request = get_request(path, false);
        match http::exchange(self.port(), &[request], &[false], REQUEST_TIMEOUT) {
            Ok(mut responses) => responses.remove(0),
            Err(why) => panic!("expected a response to GET {path}: {why}"),
        }
    }

    /// Checks that /state gives `expected` (before the pid) on every request
    /// and that both current workers answered.
    fn expect_state_on_every_worker(&self, expected: &str, when: &str) {
        let workers = self.wait_for_workers();
        let mut served = BTreeSet::new();
        for _ in 0..CHECKS_PER_ENDPOINT {
            let body = body_of(&self.get_once("/state"), "GET /state");
            let (values, pid) = body.trim_end().rsplit_once(' ').unwrap_or_default();
            assert_eq!(
                values, expected,
                "{when}: expected /state to show \"{expected}\", got {body:?}"
            );
            served.insert(pid.parse::<u32>().unwrap_or_else(|_| {
                panic!("{when}: expected /state to end with the worker pid, got {body:?}")
            }));
        }
        assert_eq!(
            served, workers,
            "{when}: expected /state to be served by both workers {workers:?}, it was served \
             by {served:?}"
        );
    }

    /// nginx still runs its workers and has logged nothing worse than an
    /// error.
    fn expect_healthy(&mut self, when: &str) {
        let exited = self.nginx.child.try_wait();
        assert!(
            matches!(exited, Ok(None)),
            "{when}: expected the nginx master to be running, got {exited:?}"
        );
        let workers = self.workers();
        assert_eq!(
            workers.len(),
            WORKERS,
            "{when}: expected {WORKERS} workers, found {workers:?}"
        );
        let log = self.error_log();
        let serious: Vec<&str> = log
            .lines()
            .filter(|line| {
                ["[alert]", "[crit]", "[emerg]"]
                    .iter()
                    .any(|l| line.contains(l))
            })
            .collect();
        assert!(
            serious.is_empty(),
            "{when}: expected no [alert], [crit] or [emerg] in the error log, found:\n{}",
            serious.join("\n")
        );
    }

    fn error_log(&self) -> String {
        let bytes = fs::read(self.prefix().join("logs/error.log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.nginx.stop();
        let prefix = self.nginx.prefix.clone();
        if thread::panicking() {
            eprintln!(
                "server root kept at {}/\n{}",
                prefix.display(),
                run::error_log_tail(&prefix)
            );
        } else {
            let _ = fs::remove_dir_all(&prefix);
        }
    }
}

fn write_config(
    prefix: &Path,
    modules: &[PathBuf],
    port: u16,
    workers: usize,
    http_config: &str,
    config: &str,
) {
    let text = config::generate(&ConfigInput {
        modules,
        master_process: true,
        workers: workers as u32,
        log_level: "info",
        main_config: "",
        http_config,
        config,
        port,
        no_root_location: false,
    });
    let path = prefix.join("conf/nginx.conf");
    fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// nginx's stderr and the end of its error log.
fn startup_output(prefix: &Path) -> String {
    let stderr = fs::read(prefix.join(nginx::STDERR_FILE)).unwrap_or_default();
    format!(
        "------ nginx stderr ------\n{}{}",
        String::from_utf8_lossy(&stderr),
        run::error_log_tail(prefix)
    )
}

/// The body of a response that must be 200.
fn body_of(response: &Response, what: &str) -> String {
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert_eq!(
        response.status, 200,
        "expected {what} to answer 200, got `{}` with body {body:?}",
        response.status_line
    );
    body
}

fn get_request(path: &str, keep_alive: bool) -> Vec<u8> {
    let request = Request {
        method: "GET".into(),
        uri: path.into(),
        version: "HTTP/1.1".into(),
        body: Vec::new(),
    };
    request.to_bytes(&[], keep_alive)
}

/// Calls `check` every POLL until it gives Some or `limit` has passed.
fn poll_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------
// A keep-alive client
// ---------------------------------------------------------------------------

/// Why a request on a keep-alive connection got no usable response.
#[derive(Debug)]
enum RequestFailure {
    /// No complete response within REQUEST_TIMEOUT.
    TimedOut(String),
    /// Refused, reset or closed.
    Connection(String),
    /// Bytes that are not an HTTP response.
    Invalid(String),
}

impl std::fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestFailure::TimedOut(why) => write!(f, "timed out: {why}"),
            RequestFailure::Connection(why) => write!(f, "connection failed: {why}"),
            RequestFailure::Invalid(why) => write!(f, "invalid response: {why}"),
        }
    }
}

/// One HTTP/1.1 keep-alive connection: one request at a time, each response
/// read exactly (status line, headers, chunked or sized body).
struct KeepAlive {
    stream: TcpStream,
    /// Bytes read but not yet parsed.
    received: Vec<u8>,
    requests_sent: u32,
    /// The last response said `Connection: close`.
    server_closes: bool,
}

impl KeepAlive {
    fn connect(port: u16) -> Result<KeepAlive, RequestFailure> {
        let address = ([127, 0, 0, 1], port).into();
        let stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT).map_err(|e| {
            let why = format!("connecting to 127.0.0.1:{port}: {e}");
            if is_timeout(&e) {
                RequestFailure::TimedOut(why)
            } else {
                RequestFailure::Connection(why)
            }
        })?;
        // Small requests, each waited for: do not let Nagle delay them.
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_write_timeout(Some(REQUEST_TIMEOUT)));
        setup.map_err(|e| RequestFailure::Connection(format!("setting up the socket: {e}")))?;
        Ok(KeepAlive {
            stream,
            received: Vec::new(),
            requests_sent: 0,
            server_closes: false,
        })
    }

    fn get(&mut self, path: &str) -> Result<Response, RequestFailure> {
        let started = Instant::now();
        let deadline = started + REQUEST_TIMEOUT;
        self.requests_sent += 1;
        let number = self.requests_sent;
        self.stream
            .write_all(&get_request(path, true))
            .map_err(|e| {
                let why = format!("sending GET {path} (request {number} on the connection): {e}");
                if is_timeout(&e) {
                    RequestFailure::TimedOut(why)
                } else {
                    RequestFailure::Connection(why)
                }
            })?;
        let mut chunk = [0u8; 4096];
        loop {
            match http::parse_one(&self.received, false, false) {
                Ok((response, used)) => {
                    self.received.drain(..used);
                    self.server_closes = response
                        .header("Connection")
                        .is_some_and(|value| value.eq_ignore_ascii_case("close"));
                    return Ok(response);
                }
                Err(Parsed::Incomplete) => {}
                Err(Parsed::Invalid(why)) => {
                    return Err(RequestFailure::Invalid(format!("GET {path}: {why}")));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RequestFailure::TimedOut(format!(
                    "GET {path} (request {number} on the connection): no complete response \
                     after {:.1} s, {} bytes received",
                    started.elapsed().as_secs_f64(),
                    self.received.len()
                )));
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| RequestFailure::Connection(format!("setting a timeout: {e}")))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(RequestFailure::Connection(format!(
                        "GET {path} (request {number} on the connection): closed by nginx \
                         after {} bytes of the response",
                        self.received.len()
                    )));
                }
                Ok(n) => self.received.extend_from_slice(&chunk[..n]),
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(RequestFailure::Connection(format!(
                        "GET {path} (request {number} on the connection): {e}"
                    )));
                }
            }
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
