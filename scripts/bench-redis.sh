#!/usr/bin/env bash
# Measures Redis GET through a pooled cosocket side by side with OpenResty,
# on one nginx binary: Debian's /usr/sbin/nginx, loading either this module
# (built for it by scripts/build-for-system-nginx.sh) or Debian's
# libnginx-mod-http-lua with lua-resty-core. Both run the same Lua: the
# repository's small Redis client (nginx-conf/lua/redis_client.lua) against
# one redis-server started here on a free port. When run as root it
# installs what it needs (nginx, nginx-dev, libnginx-mod-http-lua,
# lua-resty-core, redis-server, wrk).
#
# Figures, each side in fresh nginx processes (one worker), REPEATS times in
# turn:
#   - HTTP: requests per second and worker CPU per request (us, user +
#     system from /proc) under wrk -c$CONNECTIONS on loopback for
#     HTTP_SECONDS, for a location that takes a connection from the
#     worker's pool, sends GET, reads the 32-byte value, puts the
#     connection back and answers with the value;
#   - in Lua (scripts/lib/bench-redis.lua): ns of worker CPU per GET round
#     trip over one connection, per 10-GET pipeline, and per
#     connect-GET-setkeepalive cycle through the pool.
# The table gives the median of the repeats, the spread (min-max, as a
# percentage of the median) and the ratio ours/OpenResty: below 1 means ours
# costs less (for req/s, above 1 means ours serves more). The worker's CPU
# is also given as user and system time: both sides make the same system
# calls (the same sizes, the same epoll events), so the module's own cost
# shows in the user time. On two cores or more the worker runs on the
# first and wrk and redis-server on the second (taskset), so that neither
# side's packets and wake-ups move between cores by chance; the spread says
# how noisy the run was all the same. Not part of scripts/test.sh: figures are measured, not
# asserted.
#
# With CALLGRIND_REQUESTS=N, each side also runs once under valgrind's
# callgrind: user-space instructions per request of the HTTP location, over
# N keep-alive requests after N to warm up (a count that does not depend on
# the machine's noise, unlike the times).
#
# Environment: REPEATS (default 5), HTTP_SECONDS (wrk duration, default 5),
# CONNECTIONS (wrk connections, default 32), CALLGRIND_REQUESTS (default 0:
# no callgrind run).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
# For free_port, side_module_lines, bench_launch and bench_cleanup.
source "$REPO_ROOT/scripts/lib/bench.sh"

REPEATS="${REPEATS:-5}"
HTTP_SECONDS="${HTTP_SECONDS:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
CALLGRIND_REQUESTS="${CALLGRIND_REQUESTS:-0}"
SYSTEM_NGINX=/usr/sbin/nginx
LOOP_FIGURES=(get_same_connection pipeline_10_gets get_pooled_cycle)

ensure_build_deps
ensure_packages nginx nginx-dev libnginx-mod-http-lua lua-resty-core redis-server wrk curl
if [ "$CALLGRIND_REQUESTS" -gt 0 ]; then
    ensure_packages valgrind
fi
# Debian's packages may have started their services: nothing else may run.
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    log "stopping the nginx service Debian started"
    "$SYSTEM_NGINX" -s stop 2>/dev/null || kill "$(cat /run/nginx.pid)"
fi
service redis-server stop >/dev/null 2>&1 || true

module_line="$(scripts/build-for-system-nginx.sh | tail -n 1)"
OUR_MODULE="${module_line#load_module }"
OUR_MODULE="${OUR_MODULE%;}"
modules_dir="$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's|.*--modules-path=\([^ ]*\).*|\1|p')"
modules_dir="${modules_dir:-/usr/lib/nginx/modules}"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-redis.XXXXXX")"
running_pid=""
redis_pid=""
stop_everything() {
    [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
    bench_cleanup
}
trap stop_everything EXIT

# The worker's core, and the one wrk and redis-server share.
WORKER_CPU=""
CLIENT_CPUS=()
if [ "$(nproc)" -ge 2 ]; then
    WORKER_CPU=0
    CLIENT_CPUS=(taskset -c 1)
fi

redis_port="$(free_port)"
"${CLIENT_CPUS[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
    sleep 0.1
done

write_conf() { # side prefix port
    local side=$1 prefix=$2 port=$3 load package_path
    side_module_lines "$side"
    # Debian's side finds resty.core under /usr/share/lua/5.1; both find
    # the client in nginx-conf/lua.
    package_path="lua_package_path \"$REPO_ROOT/nginx-conf/lua/?.lua;/usr/share/lua/5.1/?.lua;;\";"
    local affinity=""
    [ -z "$WORKER_CPU" ] || affinity="worker_cpu_affinity $((1 << WORKER_CPU));"
    cat >"$prefix/conf/nginx.conf" <<EOC
$load
daemon off;
worker_processes 1;
$affinity
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    $package_path
    init_by_lua_block { require "redis_client" }
    server {
        listen 127.0.0.1:$port;
        location = /ready { return 204; }
        location = /loop {
            content_by_lua_block {
                local run = dofile("$REPO_ROOT/scripts/lib/bench-redis.lua")
                for _, figure in ipairs(run($redis_port, "$REPO_ROOT/scripts/lib/")) do
                    ngx.say(figure[1], " ", figure[2])
                end
            }
        }
        location = /get {
            content_by_lua_block {
                local redis = require "redis_client"
                local client = assert(redis.connect("127.0.0.1", $redis_port))
                local value = client:call("GET", "bench:key")
                client:keepalive(10000, 64)
                ngx.print(value)
            }
        }
    }
}
EOC
}

start_nginx() { # side run
    bench_launch "$SYSTEM_NGINX" "$work/$1-$2" write_conf "$1" "$work/$1-$2"
}

stop_nginx() { # side run
    kill -QUIT "$running_pid"
    wait "$running_pid" 2>/dev/null || true
    running_pid=""
    if grep -E '\[(emerg|alert|crit|error)\]' "$work/$1-$2/logs/error.log" >&2; then
        log "nginx ($1) logged the lines above"
        exit 1
    fi
}

per_request_us() { # ticks hz requests
    awk -v t="$1" -v hz="$2" -v n="$3" 'BEGIN { print t / hz * 1e6 / n }'
}

declare -A samples
record() { # side figure value
    samples["$1|$2"]="${samples["$1|$2"]:-} $3"
}


# The worker's CPU ticks so far: "user system".
worker_user_system_ticks() {
    local pid user=0 system=0 u s
    for pid in $(pgrep -P "$running_pid"); do
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
        user=$((user + u))
        system=$((system + s))
    done
    echo "$user $system"
}

http_figures() { # side
    local side=$1 before_user before_system after_user after_system output requests rps hz
    hz="$(getconf CLK_TCK)"
    "${CLIENT_CPUS[@]}" wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/get" >/dev/null
    read -r before_user before_system <<<"$(worker_user_system_ticks)"
    output="$("${CLIENT_CPUS[@]}" wrk -t1 -c"$CONNECTIONS" -d"${HTTP_SECONDS}s" "http://127.0.0.1:$port/get")"
    read -r after_user after_system <<<"$(worker_user_system_ticks)"
    requests="$(awk '/requests in/ { print $1 }' <<<"$output")"
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$output")"
    if grep -q "Non-2xx" <<<"$output"; then
        log "$side /get answered errors:"
        echo "$output" >&2
        exit 1
    fi
    record "$side" get_rps "$rps"
    local user=$((after_user - before_user)) system=$((after_system - before_system))
    record "$side" get_cpu "$(per_request_us $((user + system)) "$hz" "$requests")"
    record "$side" get_user "$(per_request_us "$user" "$hz" "$requests")"
    record "$side" get_system "$(per_request_us "$system" "$hz" "$requests")"
}

log "measuring ours and openresty: $REPEATS repeats"
for run in $(seq 1 "$REPEATS"); do
    for side in ours openresty; do
        start_nginx "$side" "$run"
        output="$(curl -fsS --max-time 300 "http://127.0.0.1:$port/loop")"
        while read -r figure value; do record "$side" "$figure" "$value"; done <<<"$output"
        http_figures "$side"
        stop_nginx "$side" "$run"
    done
done

# One side's nginx (one process) under callgrind, counting from the
# warm-up's end to the measured requests' end.
callgrind_figure() { # side
    local side=$1 prefix="$work/$1-callgrind" wrapper="$work/callgrind-nginx-$1" urls total
    cat >"$wrapper" <<EOW
#!/bin/sh
exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$prefix/callgrind.out" \
    "$SYSTEM_NGINX" -g "master_process off;" "\$@"
EOW
    chmod +x "$wrapper"
    BENCH_START_TRIES=600 bench_launch "$wrapper" "$prefix" write_conf "$side" "$prefix"
    urls="$(for _ in $(seq 1 "$CALLGRIND_REQUESTS"); do printf 'http://127.0.0.1:%s/get ' "$port"; done)"
    # shellcheck disable=SC2086 # one argument per URL
    curl -fsS $urls >/dev/null
    callgrind_control -i on "$running_pid" >/dev/null
    # shellcheck disable=SC2086
    curl -fsS $urls >/dev/null
    callgrind_control -i off "$running_pid" >/dev/null
    callgrind_control -d "$running_pid" >/dev/null
    stop_nginx "$side" callgrind
    total="$(sed -n 's/^totals: *//p' "$prefix/callgrind.out.1")"
    record "$side" get_instructions "$((total / CALLGRIND_REQUESTS))"
}

if [ "$CALLGRIND_REQUESTS" -gt 0 ]; then
    log "counting instructions under callgrind: $CALLGRIND_REQUESTS requests a side"
    callgrind_figure ours
    callgrind_figure openresty
fi

# median and spread of one side's samples of one figure: "median spread%"
summary() { # side figure
    median_and_spread "${samples["$1|$2"]}"
}

row() { # label figure unit
    local ours ours_spread theirs theirs_spread
    read -r ours ours_spread <<<"$(summary ours "$2")"
    read -r theirs theirs_spread <<<"$(summary openresty "$2")"
    awk -v label="$1" -v a="$ours" -v sa="$ours_spread" -v b="$theirs" -v sb="$theirs_spread" -v unit="$3" \
        'BEGIN { printf "  %-30s %10.1f %4s%% %10.1f %4s%% %8.2f  %s\n", label, a, sa, b, sb, a / b, unit }'
}

echo
echo "Redis GET through cosockets: median of $REPEATS repeats, spread = (max - min) / median"
echo "nginx:     $("$SYSTEM_NGINX" -v 2>&1 | sed 's/^nginx version: //') (Debian's), one binary for both sides"
echo "ours:      $OUR_MODULE"
echo "openresty: libnginx-mod-http-lua $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua)" \
    "with lua-resty-core $(dpkg-query -W -f='${Version}' lua-resty-core)"
echo "redis:     $(redis-server --version | sed 's/ sha=.*//')"
echo "machine:   $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
if [ -n "$WORKER_CPU" ]; then
    echo "cores:     the worker on core $WORKER_CPU, wrk and redis-server on core 1"
fi
echo
printf '  %-30s %10s %5s %10s %5s %8s\n' "" ours spread openresty spread ours/or
echo "HTTP (wrk -c$CONNECTIONS, ${HTTP_SECONDS}s, one worker): pooled connect, GET, setkeepalive"
row "get" get_rps "req/s"
row "get" get_cpu "us CPU/req"
row "get, user" get_user "us CPU/req"
row "get, system" get_system "us CPU/req"
if [ "$CALLGRIND_REQUESTS" -gt 0 ]; then
    row "get (callgrind, one run)" get_instructions "instructions/req"
fi
echo "in Lua, worker CPU per operation"
row "GET, one connection" get_same_connection "ns/op"
row "10 GETs pipelined" pipeline_10_gets "ns/op"
row "connect+GET+setkeepalive" get_pooled_cycle "ns/op"
