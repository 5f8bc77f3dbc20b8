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
# percentage of the median) and the ratio ours/OpenResty of the medians:
# below 1 means ours costs less (for req/s, above 1 means ours serves
# more). "paired" is the median (and range) of the ratios taken within each
# repeat, which a slow stretch of the machine spoils less than the medians
# of separate runs; "or/or" is the same ratio between OpenResty and itself
# run a second time in each repeat (NOISE_FLOOR=1): the noise floor, how
# far from 1 a ratio lands when nothing differs. The worker's CPU is also
# given as user and system time: both sides make the same system calls
# (the same sizes, the same epoll events), so the module's own cost shows
# in the user time. On two cores or more the worker runs on the first and
# wrk and redis-server on the second (taskset), so that neither side's
# packets and wake-ups move between cores by chance; the spread says how
# noisy the run was all the same. Not part of scripts/test.sh: figures are
# measured, not asserted.
#
# With CALLGRIND_REQUESTS=N, each side also runs once under valgrind's
# callgrind: user-space instructions per request of the HTTP location, over
# N keep-alive requests after N to warm up (a count that does not depend on
# the machine's noise, unlike the times).
#
# Environment: REPEATS (default 5), HTTP_SECONDS (wrk duration, default 5),
# CONNECTIONS (wrk connections, default 32), CALLGRIND_REQUESTS (default 0:
# no callgrind run), NOISE_FLOOR (default 1; 0 runs OpenResty once a
# repeat, and the or/or column is "-"), CALIBRATE (default 0; 1 also runs
# OpenResty with EXTRA_WORK, default 300, calls of math.sin added to each
# request of the HTTP location, a few us of Lua: the ratios it gets
# against plain OpenResty say what such a difference in the module's cost
# does to each figure on this machine).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
# For free_port, side_module_lines, bench_launch and bench_cleanup.
source "$REPO_ROOT/scripts/lib/bench.sh"

REPEATS="${REPEATS:-5}"
HTTP_SECONDS="${HTTP_SECONDS:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
CALLGRIND_REQUESTS="${CALLGRIND_REQUESTS:-0}"
NOISE_FLOOR="${NOISE_FLOOR:-1}"
CALIBRATE="${CALIBRATE:-0}"
EXTRA_WORK="${EXTRA_WORK:-300}"
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
CLIENT_CPU=""
CLIENT_CPUS=()
if [ "$(nproc)" -ge 2 ]; then
    WORKER_CPU=0
    CLIENT_CPU=1
    CLIENT_CPUS=(taskset -c "$CLIENT_CPU")
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
    local side=$1 prefix=$2 port=$3 load package_path extra_work=""
    if [ "$side" = openresty-slowed ]; then
        # Lua work the compiler cannot drop (the sum is used), a few us.
        extra_work="local sum = 0
                for i = 1, $EXTRA_WORK do sum = sum + math.sin(i) end
                if sum == 0.5 then ngx.print(sum) end"
    fi
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
                $extra_work
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


# A core's busy and total ticks so far (/proc/stat): "busy total".
core_ticks() { # core
    awk -v cpu="cpu$1" '$1 == cpu {
        total = 0
        for (i = 2; i <= 9; i++) total += $i
        print total - $5 - $6, total }' /proc/stat
}

http_figures() { # side
    local side=$1 before_user before_system after_user after_system output requests rps hz
    local client_busy_before client_total_before client_busy_after client_total_after
    hz="$(getconf CLK_TCK)"
    "${CLIENT_CPUS[@]}" wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port/get" >/dev/null
    read -r before_user before_system <<<"$(worker_user_system_ticks)"
    [ -z "$CLIENT_CPU" ] || read -r client_busy_before client_total_before <<<"$(core_ticks "$CLIENT_CPU")"
    output="$("${CLIENT_CPUS[@]}" wrk -t1 -c"$CONNECTIONS" -d"${HTTP_SECONDS}s" "http://127.0.0.1:$port/get")"
    read -r after_user after_system <<<"$(worker_user_system_ticks)"
    if [ -n "$CLIENT_CPU" ]; then
        read -r client_busy_after client_total_after <<<"$(core_ticks "$CLIENT_CPU")"
        record "$side" client_core_busy "$(awk -v b=$((client_busy_after - client_busy_before)) \
            -v t=$((client_total_after - client_total_before)) 'BEGIN { print b / t * 100 }')"
    fi
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

# Each repeat runs the sides in a turn that starts one further along than
# the last repeat's, so that no side always comes first (or after the
# same one); with NOISE_FLOOR=1, OpenResty runs twice a repeat.
sides=(ours openresty)
[ "$NOISE_FLOOR" = 0 ] || sides+=(openresty-again)
[ "$CALIBRATE" = 0 ] || sides+=(openresty-slowed)
log "measuring ${sides[*]}: $REPEATS repeats"
for run in $(seq 1 "$REPEATS"); do
    turn=()
    for i in "${!sides[@]}"; do
        turn+=("${sides[$(((i + run - 1) % ${#sides[@]}))]}")
    done
    for side in "${turn[@]}"; do
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

# The ratios of two sides' samples of one figure taken in the same repeat
# (a repeat's samples are seconds apart, so a slow minute of the machine
# touches both): "median min max", or "-" when a side has no samples.
paired_ratios() { # side side figure
    local first="${samples["$1|$3"]:-}" second="${samples["$2|$3"]:-}"
    if [ -z "$first" ] || [ -z "$second" ]; then
        echo "-"
        return
    fi
    local ratios median low high
    ratios="$(paste <(tr ' ' '\n' <<<"$first" | sed '/^$/d') <(tr ' ' '\n' <<<"$second" | sed '/^$/d') |
        awk '{ printf "%s ", $1 / $2 }')"
    read -r median low high <<<"$(median_and_range "$ratios")"
    printf '%.2f %.2f-%.2f\n' "$median" "$low" "$high"
}

row() { # label figure unit
    local ours ours_spread theirs theirs_spread paired paired_range floor floor_range
    read -r ours ours_spread <<<"$(summary ours "$2")"
    read -r theirs theirs_spread <<<"$(summary openresty "$2")"
    read -r paired paired_range <<<"$(paired_ratios ours openresty "$2")"
    read -r floor floor_range <<<"$(paired_ratios openresty openresty-again "$2")"
    awk -v label="$1" -v a="$ours" -v sa="$ours_spread" -v b="$theirs" -v sb="$theirs_spread" -v unit="$3" \
        -v p="$paired" -v pr="${paired_range:-}" -v f="$floor" -v fr="${floor_range:-}" \
        'BEGIN { printf "  %-26s %9.1f %4s%% %9.1f %4s%% %7.2f  %4s %-9s  %4s %-9s  %s\n",
            label, a, sa, b, sb, a / b, p, pr, f, fr, unit }'
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
    echo "cores:     the worker on core $WORKER_CPU, wrk and redis-server on core $CLIENT_CPU"
fi
echo
printf '  %-26s %9s %5s %9s %5s %7s  %-14s  %-14s\n' "" ours spread openresty spread ours/or \
    "paired (range)" "or/or (range)"
echo "HTTP (wrk -c$CONNECTIONS, ${HTTP_SECONDS}s, one worker): pooled connect, GET, setkeepalive"
row "get" get_rps "req/s"
row "get" get_cpu "us CPU/req"
row "get, user" get_user "us CPU/req"
row "get, system" get_system "us CPU/req"
if [ -n "$CLIENT_CPU" ]; then
    # Near 100 %, wrk and redis-server limit the rate as much as the
    # worker does: req/s then moves less than the worker's CPU.
    row "core $CLIENT_CPU (wrk, redis) busy" client_core_busy "%"
fi
if [ "$CALLGRIND_REQUESTS" -gt 0 ]; then
    row "get (callgrind, one run)" get_instructions "instructions/req"
fi
echo "in Lua, worker CPU per operation"
row "GET, one connection" get_same_connection "ns/op"
row "10 GETs pipelined" pipeline_10_gets "ns/op"
row "connect+GET+setkeepalive" get_pooled_cycle "ns/op"
if [ "$CALIBRATE" != 0 ]; then
    calibration_row() { # label figure unit
        local ratio range
        read -r ratio range <<<"$(paired_ratios openresty-slowed openresty "$2")"
        printf '  %-26s %7s  %-9s  %s\n' "$1" "$ratio" "$range" "$3"
    }
    echo
    echo "Calibration: OpenResty with $EXTRA_WORK math.sin a request more, against OpenResty"
    echo "(paired ratio and range; how far a few us of Lua move the figures)"
    calibration_row "get" get_rps "req/s"
    calibration_row "get" get_cpu "us CPU/req"
    calibration_row "get, user" get_user "us CPU/req"
    calibration_row "get, system" get_system "us CPU/req"
fi
