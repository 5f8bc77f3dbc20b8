"""The soak of scripts/soak.sh: nginx with the module, two workers, clients
mixing every kind of dictionary call, and faults meanwhile (reloads, a
SIGKILL to a worker, one reload that resizes a zone). Prints each check's
figure and exits 1 when one fails.

Usage: soak.py NGINX MODULE LUA_FILE PREFIX SECONDS
"""

import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

CLIENTS = 6
SLOW_SECONDS = 2.0
FAULT_EVERY = 3.0
KEYS = 20000
# Anonymous memory may grow this much (a share) between the end of the
# warm-up and the end of the soak before it counts as a leak.
RSS_GROWTH_ALLOWED = 0.10

CONF = """
load_module {module};
daemon off;
master_process on;
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    lua_shared_dict soak_counters 1m;
    lua_shared_dict soak_queue 1m;
    lua_shared_dict soak_cache {cache_size};
    init_worker_by_lua_block {{
        -- Background writes: a timer in every worker stores into the
        -- cache while requests run.
        local cache = ngx.shared.soak_cache
        local n = 0
        assert(ngx.timer.every(0.05, function()
            n = n + 1
            cache:set("timer:" .. ngx.worker.id() .. ":" .. n % 500, string.rep("t", n % 300))
        end))
    }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_requests 1000000;
        location = /soak {{ content_by_lua_file {lua}; }}
    }}
}}
"""


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.acked_increments = 0
        self.unknown_increments = 0
        self.cut = 0
        self.server_errors = []
        self.slowest = 0.0
        self.slow = []

    def add(self, **changes):
        with self.lock:
            for name, value in changes.items():
                setattr(self, name, getattr(self, name) + value)


def pick(rng):
    roll = rng.random()
    key = rng.randrange(KEYS)
    if roll < 0.40:
        return "get", f"op=get&k={key}"
    if roll < 0.65:
        size = int(rng.choice([8, 64, 300, 1000, 4000]) * (0.5 + rng.random()))
        return "set", f"op=set&k={key}&n={size}"
    if roll < 0.85:
        return "incr", "op=incr"
    if roll < 0.90:
        return "push", f"op=push&k={key}"
    if roll < 0.95:
        return "pop", "op=pop"
    return "keys", "op=keys"


def client(port, seed, stop, tally):
    rng = random.Random(seed)
    conn = None
    while not stop.is_set():
        op, query = pick(rng)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        started = time.monotonic()
        try:
            conn.request("GET", "/soak?" + query)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            # A killed worker or a reload closed the connection: the request
            # may or may not have run.
            conn.close()
            conn = None
            tally.add(cut=1, unknown_increments=int(op == "incr"))
            time.sleep(0.01)
            continue
        elapsed = time.monotonic() - started
        with tally.lock:
            tally.requests += 1
            tally.slowest = max(tally.slowest, elapsed)
            if elapsed > SLOW_SECONDS:
                tally.slow.append((op, elapsed))
            if response.status >= 500:
                tally.server_errors.append((op, response.status, body[:200]))
            elif op == "incr" and body.startswith(b"hits "):
                tally.acked_increments += 1
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None


def workers_of(master):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if int(fields[1]) == master and b"worker process" in cmdline and b"shutting down" not in cmdline:
            found.append(int(entry))
    return found


def anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def memory(master):
    """Private anonymous memory (the zones, shared, are not in it) of the
    master and the largest worker, in KiB."""
    workers = workers_of(master)
    return anon_kib(master), max((anon_kib(w) for w in workers), default=0)


def wait_for_workers(master, count, limit=20.0):
    deadline = time.monotonic() + limit
    while len(workers_of(master)) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def fetch(port, query):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/soak?" + query)
    response = conn.getresponse()
    return response.status, response.read().decode()


def main():
    servers = []
    try:
        return soak(servers, *sys.argv[1:6])
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait()


def soak(servers, nginx, module, lua, prefix, seconds):
    """Runs the soak; every nginx started goes into `servers`, which main
    kills if it is still running when this returns or raises."""
    seconds = float(seconds)
    os.makedirs(f"{prefix}/conf", exist_ok=True)
    os.makedirs(f"{prefix}/logs", exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def write_conf(cache_size):
        with open(f"{prefix}/conf/nginx.conf", "w") as f:
            f.write(CONF.format(module=module, lua=lua, port=port, cache_size=cache_size))

    write_conf("4m")
    server = subprocess.Popen(
        [nginx, "-p", prefix + "/", "-c", "conf/nginx.conf"],
        stdout=subprocess.DEVNULL, stderr=open(f"{prefix}/logs/stderr.log", "w"))
    servers.append(server)
    master = server.pid
    deadline = time.monotonic() + 20
    while True:
        try:
            fetch(port, "op=keys")
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                print("nginx did not start; see", f"{prefix}/logs")
                return 1
            time.sleep(0.1)
    wait_for_workers(master, 2)

    tally = Tally()
    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(port, seed, stop, tally), daemon=True)
               for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()

    # Warm-up (a fifth), faults (until 80%), then a quiet fifth: the workers
    # measured after the warm-up and at the end have run as long.
    started = time.monotonic()
    warm_up_end = started + seconds * 0.20
    faults_end = started + seconds * 0.80
    resize_at = started + seconds * 0.45
    end = started + seconds
    rng = random.Random(7)
    killed, reloads, resized = [], 0, False
    # The warm-up reloads twice: the master's first reloads raise its
    # allocator's high-water mark (OpenResty's alike), which is not a leak.
    for reload_at in (0.02, 0.04):
        time.sleep(max(0.0, started + seconds * reload_at - time.monotonic()))
        os.kill(master, signal.SIGHUP)
        reloads += 1
    time.sleep(max(0.0, warm_up_end - time.monotonic()))
    wait_for_workers(master, 2)
    warm_master, warm_worker = memory(master)
    next_fault, kind = time.monotonic() + FAULT_EVERY / 2, 0
    while time.monotonic() < faults_end:
        if server.poll() is not None:
            break
        if time.monotonic() >= next_fault:
            if not resized and time.monotonic() >= resize_at:
                # The cache's zone grows; the counter's keeps its size and
                # so its content.
                write_conf("6m")
                os.kill(master, signal.SIGHUP)
                resized, reloads = True, reloads + 1
            elif kind % 2 == 0:
                os.kill(master, signal.SIGHUP)
                reloads += 1
            else:
                workers = workers_of(master)
                if workers:
                    victim = rng.choice(workers)
                    os.kill(victim, signal.SIGKILL)
                    killed.append(victim)
            kind += 1
            next_fault += FAULT_EVERY
        time.sleep(0.05)
    while time.monotonic() < end and server.poll() is None:
        time.sleep(0.1)
    wait_for_workers(master, 2)
    end_master, end_worker = memory(master)
    stop.set()
    for thread in threads:
        thread.join()

    failures = []
    if server.poll() is not None:
        failures.append(f"nginx's master exited ({server.returncode})")
        check = {}
    else:
        status, text = fetch(port, "op=check")
        if status == 200:
            check = dict(line.split(" ", 1) for line in text.splitlines())
        else:
            failures.append(f"the final check answered {status}")
            check = {}
        server.send_signal(signal.SIGQUIT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            failures.append("nginx did not stop within 30 s of SIGQUIT")

    # Crashes: the only alerts allowed are the exits of the workers killed
    # here, and a zone lock such a worker held when it died.
    killed_pids = "|".join(str(pid) for pid in killed) or "none"
    expected = re.compile(
        rf"worker process ({killed_pids}) exited on signal 9"
        rf"|shared memory zone \"[a-z_]+\" was locked by ({killed_pids})")
    with open(f"{prefix}/logs/error.log", errors="replace") as log:
        log_lines = [line.rstrip() for line in log]
    crashes = [line for line in log_lines
               if any(mark in line for mark in ("[alert]", "[crit]", "[emerg]",
                                                "exited on signal", "core dumped"))
               and not expected.search(line)]
    error_lines = [line for line in log_lines if "[error]" in line]

    hits = int(check.get("hits", -1))
    entries = int(check.get("entries", -1))
    keys = int(check.get("keys", -2))
    growth_master = (end_master - warm_master) / max(warm_master, 1)
    growth_worker = (end_worker - warm_worker) / max(warm_worker, 1)

    print(f"soak: {seconds:.0f} s, {CLIENTS} clients, 2 workers: {tally.requests} requests, "
          f"{reloads} reloads (one resizing soak_cache to {check.get('capacity', '?')} bytes), "
          f"{len(killed)} workers killed, {tally.cut} requests cut by a kill or reload")
    rows = [
        ("crashes (unexpected alerts or signals)", len(crashes), len(crashes) == 0),
        ("error lines in the log", len(error_lines), not error_lines),
        ("5xx responses", len(tally.server_errors), not tally.server_errors),
        ("slowest request (s)", f"{tally.slowest:.3f}", tally.slowest <= SLOW_SECONDS),
        ("counter / acknowledged increments (+ in flight when cut)",
         f"{hits} / {tally.acked_increments} (+{tally.unknown_increments})",
         tally.acked_increments <= hits <= tally.acked_increments + tally.unknown_increments),
        ("stats entries / get_keys(0)", f"{entries} / {keys}", entries == keys),
        ("master anonymous memory, warm-up -> end (KiB)",
         f"{warm_master} -> {end_master} ({growth_master:+.1%})", growth_master <= RSS_GROWTH_ALLOWED),
        ("largest worker's anonymous memory, warm-up -> end (KiB)",
         f"{warm_worker} -> {end_worker} ({growth_worker:+.1%})", growth_worker <= RSS_GROWTH_ALLOWED),
    ]
    for name, figure, ok in rows:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {figure}")
        if not ok:
            failures.append(name)
    for line in crashes[:20]:
        print("    ", line)
    for op, status, body in tally.server_errors[:10]:
        print(f"     {op}: {status} {body!r}")
    for op, elapsed in tally.slow[:10]:
        print(f"     slow {op}: {elapsed:.3f} s")
    for line in error_lines[:10]:
        print("    ", line)
    if failures:
        print(f"soak FAILED ({', '.join(failures)}); logs in {prefix}/logs")
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
