#!/usr/bin/env bash
# Measures ngx.shared.DICT side by side with OpenResty's implementation, on
# one nginx binary: Debian's /usr/sbin/nginx, loading either this module
# (built for it by scripts/build-for-system-nginx.sh) or Debian's
# libnginx-mod-http-lua with lua-resty-core. When run as root it installs
# what it needs (nginx, nginx-dev, libnginx-mod-http-lua, lua-resty-core,
# wrk) and stops any nginx service Debian's package started.
#
# Figures, each side in fresh nginx processes, REPEATS times in turn:
#   - in-Lua ns of worker CPU per operation, one worker
#     (scripts/lib/bench-shdict.lua: get hit and miss, get_stale, set,
#     safe_set, add, delete, incr, lpush+lpop, ttl);
#   - the same loops in two workers at once on one zone (contention): each
#     figure started in both together and run for LOOP_SECONDS of wall-clock
#     time, ns of CPU per operation, the mean of both workers;
#   - HTTP requests per second and worker CPU per request (us) for a
#     location doing one dict:get of ngx.var.arg_key and one doing one
#     dict:incr, each answering with ngx.say, with 1 and 2 workers, under
#     wrk on loopback for HTTP_SECONDS;
#   - unless CAPACITY=0, how many entries a 10m zone holds before the
#     first eviction, for a few key and value shapes and for 16-byte keys
#     with values of 1 to 2,000 bytes (scripts/lib/bench-capacity.lua),
#     and a churn run: set failures and the live payload's share of the
#     zone (once per side: these are counts, not timings);
#   - unless CALLGRIND=0, the instructions one nginx process (no master)
#     executes per request under valgrind's callgrind, for those two
#     locations and one doing only ngx.say("x"): user-space work alone,
#     which does not depend on what else the machine is doing (once per
#     side, not repeated).
# The table gives the median of the repeats, the spread (min-max, as a
# percentage of the median) and the ratio ours/OpenResty: below 1 means ours
# costs less (for req/s, above 1 means ours serves more). Not part of
# scripts/test.sh: figures are measured, not asserted.
#
# Environment: REPEATS (default 3), LOOP_SECONDS (CPU seconds per in-Lua
# figure and run, default 0.4), HTTP_SECONDS (wrk duration, default 5),
# CONNECTIONS (wrk connections, default 32), CALLGRIND (default 1),
# CAPACITY (default 1), SPEED (default 1; 0 skips the timed figures),
# SAMPLES=1 (also print every repeat's figure).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
# For free_port and side_module_lines.
source "$REPO_ROOT/scripts/lib/bench.sh"

REPEATS="${REPEATS:-3}"
LOOP_SECONDS="${LOOP_SECONDS:-0.4}"
HTTP_SECONDS="${HTTP_SECONDS:-5}"
CONNECTIONS="${CONNECTIONS:-32}"
CALLGRIND="${CALLGRIND:-1}"
CAPACITY="${CAPACITY:-1}"
SPEED="${SPEED:-1}"
[ "$SPEED" = 1 ] || { CALLGRIND=0; REPEATS=0; }
SYSTEM_NGINX=/usr/sbin/nginx
BENCH_LUA="$REPO_ROOT/scripts/lib/bench-shdict.lua"
CAPACITY_LUA="$REPO_ROOT/scripts/lib/bench-capacity.lua"
CAPACITY_ZONE_MIB=10
LOOP_FIGURES=(get_hit get_miss get_stale set safe_set add delete incr lpush_lpop ttl)
SIDES=(ours openresty)

ensure_build_deps
ensure_packages nginx nginx-dev libnginx-mod-http-lua lua-resty-core wrk curl
if [ "$CALLGRIND" = 1 ] && ! ensure_packages valgrind; then
    log "valgrind unavailable: no instruction counts"
    CALLGRIND=0
fi
# Debian's nginx package may have started its service: nothing else may run.
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    log "stopping the nginx service Debian started"
    "$SYSTEM_NGINX" -s stop 2>/dev/null || kill "$(cat /run/nginx.pid)"
fi

module_line="$(scripts/build-for-system-nginx.sh | tail -n 1)"
OUR_MODULE="${module_line#load_module }"
OUR_MODULE="${OUR_MODULE%;}"
modules_dir="$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's|.*--modules-path=\([^ ]*\).*|\1|p')"
modules_dir="${modules_dir:-/usr/lib/nginx/modules}"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-shdict.XXXXXX")"
running_pid=""
trap bench_cleanup EXIT

write_conf() { # side workers processes prefix port
    local side=$1 workers=$2 processes=$3 prefix=$4 port=$5 load package_path contention="" master=""
    # One process, no master: what callgrind runs.
    [ "$processes" = single ] && master="master_process off;"
    side_module_lines "$side"
    if [ "$workers" -gt 1 ]; then
        # Both workers run every loop at once, from a timer, each figure
        # started together; /results answers once both have finished.
        contention="init_worker_by_lua_block {
        ngx.timer.at(0, function()
            local dict = ngx.shared.bench
            local run = dofile('$BENCH_LUA')
            local function barrier(name)
                dict:incr('barrier:' .. name, 1, 0)
                while dict:get('barrier:' .. name) < $workers do ngx.sleep(0.001) end
            end
            local id = ngx.worker.id()
            for _, figure in ipairs(run(dict, $LOOP_SECONDS, barrier)) do
                dict:set('result:' .. figure[1] .. ':' .. id, figure[2])
            end
            dict:incr('finished', 1, 0)
        end)
    }"
    fi
    cat >"$prefix/conf/nginx.conf" <<EOF
$load
daemon off;
$master
worker_processes $workers;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    $package_path
    lua_shared_dict bench 16m;
    lua_shared_dict capacity ${CAPACITY_ZONE_MIB}m;
    init_by_lua_block { ngx.shared.bench:set("key:000000000042", string.rep("v", 32)) }
    $contention
    server {
        listen 127.0.0.1:$port;
        location = /ready { return 204; }
        location = /loop {
            content_by_lua_block {
                local run = dofile("$BENCH_LUA")
                for _, figure in ipairs(run(ngx.shared.bench, $LOOP_SECONDS)) do
                    ngx.say(figure[1], " ", figure[2])
                end
            }
        }
        location = /capacity {
            content_by_lua_block {
                local run = dofile("$CAPACITY_LUA")
                for _, figure in ipairs(run(ngx.shared.capacity, $CAPACITY_ZONE_MIB)) do
                    ngx.say(figure[1], "|", figure[2])
                end
            }
        }
        location = /results {
            content_by_lua_block {
                local dict = ngx.shared.bench
                if (dict:get("finished") or 0) < $workers then return ngx.exit(503) end
                for _, key in ipairs(dict:get_keys(0)) do
                    local figure = key:match("^result:(.*):%d+$")
                    if figure then ngx.say(figure, " ", dict:get(key)) end
                end
            }
        }
        location = /get { content_by_lua_block { ngx.say(ngx.shared.bench:get(ngx.var.arg_key)) } }
        location = /incr { content_by_lua_block { ngx.say(ngx.shared.bench:incr("hits", 1, 0)) } }
        location = /say { content_by_lua_block { ngx.say("x") } }
    }
}
EOF
}

# Starts nginx for `side` with `workers` workers; sets running_pid and port.
start_nginx() { # side workers run
    bench_launch "$SYSTEM_NGINX" "$work/$1-$2-$3" write_conf "$1" "$2" master "$work/$1-$2-$3"
}

stop_nginx() { # side workers run
    kill -QUIT "$running_pid"
    wait "$running_pid" 2>/dev/null || true
    running_pid=""
    if grep -E '\[(emerg|alert|crit|error)\]' "$work/$1-$2-$3/logs/error.log" >&2; then
        log "nginx ($1) logged the lines above"
        exit 1
    fi
}

declare -A samples
record() { # side figure value
    samples["$1|$2"]="${samples["$1|$2"]:-} $3"
}


# wrk against one location: records req/s and worker CPU us per request.
http_figure() { # side name workers path
    local side=$1 name=$2 workers=$3 path=$4 before after output requests rps hz
    hz="$(getconf CLK_TCK)"
    wrk -t1 -c"$CONNECTIONS" -d1s "http://127.0.0.1:$port$path" >/dev/null
    before="$(worker_ticks)"
    output="$(wrk -t1 -c"$CONNECTIONS" -d"${HTTP_SECONDS}s" "http://127.0.0.1:$port$path")"
    after="$(worker_ticks)"
    requests="$(awk '/requests in/ { print $1 }' <<<"$output")"
    rps="$(awk '/^Requests\/sec:/ { print $2 }' <<<"$output")"
    if grep -q "Non-2xx" <<<"$output"; then
        log "$side $path answered errors:"
        echo "$output" >&2
        exit 1
    fi
    record "$side" "${name}_rps_w$workers" "$rps"
    record "$side" "${name}_cpu_w$workers" \
        "$(awk -v t=$((after - before)) -v hz="$hz" -v n="$requests" 'BEGIN { print t / hz * 1e6 / n }')"
}

run_side() { # side run
    local side=$1 run=$2 output figure value tries
    start_nginx "$side" 1 "$run"
    output="$(curl -fsS --max-time 600 "http://127.0.0.1:$port/loop")"
    while read -r figure value; do record "$side" "$figure" "$value"; done <<<"$output"
    http_figure "$side" get 1 "/get?key=key:000000000042"
    http_figure "$side" incr 1 /incr
    stop_nginx "$side" 1 "$run"

    start_nginx "$side" 2 "$run"
    for tries in $(seq 1 1200); do
        output="$(curl -fs "http://127.0.0.1:$port/results")" && break
        sleep 0.5
    done
    [ -n "$output" ] || { log "the contention run did not finish on $side"; exit 1; }
    # The mean of the two workers.
    awk '{ sum[$1] += $2; n[$1]++ } END { for (f in sum) print f, sum[f] / n[f] }' <<<"$output" |
        while read -r figure value; do echo "$figure $value"; done >"$work/contention"
    while read -r figure value; do record "$side" "${figure}_x2" "$value"; done <"$work/contention"
    http_figure "$side" get 2 "/get?key=key:000000000042"
    http_figure "$side" incr 2 /incr
    stop_nginx "$side" 2 "$run"
}

# Instructions per request of one nginx process under callgrind, for
# each HTTP location: counted from a reset after a warm-up to a dump.
instruction_figures() { # side
    local side=$1 prefix="$work/$1-callgrind" name path requests total dump
    callgrind_out="$prefix/callgrind.out"
    # nginx and LuaJIT start slowly under valgrind.
    BENCH_START_TRIES=600 bench_launch callgrind_nginx "$prefix" write_conf "$side" 1 single "$prefix"
    for name in get incr say; do
        path="/$name"
        [ "$name" = get ] && path="/get?key=key:000000000042"
        wrk -t1 -c4 -d2s "http://127.0.0.1:$port$path" >/dev/null
        callgrind_control -z "$running_pid" >/dev/null
        requests="$(wrk -t1 -c4 -d5s "http://127.0.0.1:$port$path" | awk '/requests in/ { print $1 }')"
        callgrind_control -d "$running_pid" >/dev/null
        dump="$(ls -t "$prefix"/callgrind.out.* | head -n 1)"
        total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')"
        record "$side" "${name}_instructions" $((total / requests))
    done
    kill "$running_pid"
    wait "$running_pid" 2>/dev/null || true
    running_pid=""
}

# The system nginx under callgrind, as bench_launch starts a binary.
callgrind_nginx() {
    exec valgrind --tool=callgrind --callgrind-out-file="$callgrind_out" "$SYSTEM_NGINX" "$@"
}

declare -A capacity
capacity_side() { # side
    local side=$1 output name value
    start_nginx "$side" 1 capacity
    output="$(curl -fsS --max-time 900 "http://127.0.0.1:$port/capacity")"
    while IFS='|' read -r name value; do capacity["$side|$name"]="$value"; done <<<"$output"
    stop_nginx "$side" 1 capacity
}

if [ "$CAPACITY" = 1 ]; then
    for side in "${SIDES[@]}"; do
        log "capacity: $side"
        capacity_side "$side"
    done
fi

log "measuring ours and OpenResty's on $("$SYSTEM_NGINX" -v 2>&1 | sed 's/^nginx version: //'), $REPEATS repeats"
for run in $(seq 1 "$REPEATS"); do
    for side in "${SIDES[@]}"; do
        log "repeat $run: $side"
        run_side "$side" "$run"
    done
done
if [ "$CALLGRIND" = 1 ]; then
    for side in "${SIDES[@]}"; do
        log "instructions per request under callgrind: $side"
        instruction_figures "$side"
    done
fi

# median and spread of one side's samples of one figure: "median spread%"
summary() { # side figure
    median_and_spread "${samples["$1|$2"]}"
}

row() { # label figure unit
    local ours theirs
    read -r ours ours_spread <<<"$(summary ours "$2")"
    read -r theirs theirs_spread <<<"$(summary openresty "$2")"
    awk -v label="$1" -v a="$ours" -v sa="$ours_spread" -v b="$theirs" -v sb="$theirs_spread" -v unit="$3" \
        'BEGIN { printf "  %-26s %10.1f %4s%% %10.1f %4s%% %8.2f  %s\n", label, a, sa, b, sb, a / b, unit }'
}

echo
echo "ngx.shared.DICT benchmark: median of $REPEATS repeats, spread = (max - min) / median"
echo "nginx:     $("$SYSTEM_NGINX" -v 2>&1 | sed 's/^nginx version: //') (Debian's), one binary for both sides"
echo "ours:      $OUR_MODULE"
echo "openresty: libnginx-mod-http-lua $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua)" \
    "with lua-resty-core $(dpkg-query -W -f='${Version}' lua-resty-core)"
echo "machine:   $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)"
if [ "$SPEED" = 1 ]; then
    echo
    printf '  %-26s %10s %5s %10s %5s %8s\n' "" ours spread openresty spread ours/or
    echo "in Lua, one worker"
    for figure in "${LOOP_FIGURES[@]}"; do row "$figure" "$figure" "ns/op"; done
    echo "in Lua, two workers at once on one zone (mean of both)"
    for figure in "${LOOP_FIGURES[@]}"; do row "$figure" "${figure}_x2" "ns/op"; done
    echo "HTTP (wrk -c$CONNECTIONS, ${HTTP_SECONDS}s)"
    for workers in 1 2; do
        row "get, $workers worker(s)" "get_rps_w$workers" "req/s"
        row "get, $workers worker(s)" "get_cpu_w$workers" "us CPU/req"
        row "incr, $workers worker(s)" "incr_rps_w$workers" "req/s"
        row "incr, $workers worker(s)" "incr_cpu_w$workers" "us CPU/req"
    done
    if [ "$CALLGRIND" = 1 ]; then
        echo "HTTP, user-space instructions per request (callgrind, one process)"
        row "get" get_instructions "instr/req"
        row "incr" incr_instructions "instr/req"
        row "ngx.say only" say_instructions "instr/req"
    fi
fi
if [ "$CAPACITY" = 1 ]; then
    per_mib() { awk -v n="$1" -v z="$CAPACITY_ZONE_MIB" 'BEGIN { printf "%.1f", n / z }'; }
    echo
    echo "capacity: entries per MiB of a ${CAPACITY_ZONE_MIB}m zone before the first eviction"
    printf '  %-34s %10s %10s %8s\n' "" ours openresty ours/or
    for case in "16-byte keys, 32-byte values" "16-byte keys, 100-byte values" \
        "address keys, number values" "40-byte keys, 200-byte values"; do
        a="${capacity["ours|fill:$case"]}"
        b="${capacity["openresty|fill:$case"]}"
        printf '  %-34s %10s %10s %8s\n' "$case" "$(per_mib "$a")" "$(per_mib "$b")" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }')"
    done
    sweep="$(for key in "${!capacity[@]}"; do
        [[ "$key" == ours\|sweep:* ]] || continue
        size="${key#ours|sweep:}"
        echo "$size ${capacity[$key]} ${capacity["openresty|sweep:$size"]}"
    done | sort -n)"
    echo "value-size sweep, 16-byte keys, values of 1 to 2000 bytes in steps of 8:"
    awk -v z="$CAPACITY_ZONE_MIB" '
        { r = $2 / $3; sum += r; n++
          if (n == 1 || r < min) { min = r; at = $1 }
          if (r < 1) below++ }
        END { printf "  %d sizes: mean ours/or %.3f, lowest %.3f (at %d bytes), sizes where ours holds fewer: %d\n",
                     n, sum / n, min, at, below + 0 }' <<<"$sweep"
    echo "  value bytes: ours/or entries per MiB (every 8th size)"
    awk -v z="$CAPACITY_ZONE_MIB" 'NR % 8 == 1 || $1 == 2000 {
            printf "  %5d: %8.1f /%8.1f = %.2f\n", $1, $2 / z, $3 / z, $2 / $3 }' <<<"$sweep"
    echo "churn: 16-byte keys from a pool of 200000, values of 10-2000 random bytes, 10x the zone written by set"
    printf '  %-34s %10s %10s\n' "set failures" "${capacity["ours|churn_failures"]}" "${capacity["openresty|churn_failures"]}"
    printf '  %-34s %10.3f %10.3f\n' "live key+value bytes / zone size" \
        "${capacity["ours|churn_live_share"]}" "${capacity["openresty|churn_live_share"]}"
fi
if [ "${SAMPLES:-0}" = 1 ]; then
    echo
    echo "every repeat, in order (side figure: values)"
    for key in "${!samples[@]}"; do
        echo "  ${key/|/ }:${samples[$key]}"
    done | sort
fi
