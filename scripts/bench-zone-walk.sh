#!/usr/bin/env bash
# Measures what walking a large zone costs the other worker's dictionary
# calls: the latency of `get` in one worker (each call timed with
# clock_gettime, random keys, in a Lua loop) while the other worker
#   - does nothing (the baseline),
#   - walks the zone again and again with dict:scan(cursor, 100), back to
#     back, and with ngx.sleep(0) between the calls (as the README shows),
#   - walks it with dict:get_keys(0), which holds the lock for the whole zone,
# and, in a second nginx whose zone is persistent (lua_shared_dict_persist
# with a 1 ms interval: saves back to back in worker 0), while the zone is
# saved; with the saves' longest lock hold and time from their log lines.
# Also HTTP: wrk's p99 latency of a location doing one `get`, with and
# without the saves.
#
# The zone holds ENTRIES entries (16-byte keys, 32-byte values). Two
# workers on this module's release build (target/release). No OpenResty
# side: it has neither scans nor persistence (its get_keys(0) holds the lock
# the same way). Not part of scripts/test.sh: figures are measured, not
# asserted. Each figure is the median of REPEATS runs, with the spread
# (max - min) / median.
#
# Environment: ENTRIES (default 1000000), PROBE_SECONDS (default 3),
# REPEATS (default 3).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
BENCH_NAME=bench-zone-walk
source "$REPO_ROOT/scripts/lib/bench.sh"

ENTRIES="${ENTRIES:-1000000}"
PROBE_SECONDS="${PROBE_SECONDS:-3}"
REPEATS="${REPEATS:-3}"

ensure_build_deps
ensure_packages curl wrk
log "building the module and nginx (release)"
cargo build --release
work="$(mktemp -d "${TMPDIR:-/tmp}/bench-zone-walk.XXXXXX")"
running_pid=""
trap bench_cleanup EXIT
[ -n "${KEEP_WORK:-}" ] && trap - EXIT

write_walk_conf() { # persist(yes|no) prefix port
    local persist="" prefix=$2
    if [ "$1" = yes ]; then
        persist="lua_shared_dict_persist d $prefix/d.snap interval=1ms;"
    fi
    # Run as root, the workers would be nobody, who cannot write here.
    local user=""
    [ "$(id -u)" = 0 ] && user="user root;"
    cat >"$prefix/conf/nginx.conf" <<EOF
load_module $OUR_MODULE;
$user
daemon off;
worker_processes 2;
error_log logs/error.log notice;
pid logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    lua_shared_dict d 512m;
    $persist
    init_worker_by_lua_block {
        dofile("$REPO_ROOT/scripts/lib/bench-zone-walk.lua")($ENTRIES)
    }
    server {
        listen 127.0.0.1:$3;
        location = /ready { return 204; }
        location = /fill {
            content_by_lua_block {
                local d, value = ngx.shared.d, string.rep("v", 32)
                for i = 1, $ENTRIES do
                    d:set(string.format("key:%012d", i), value)
                end
                ngx.say(d:stats().entries)
            }
        }
        location = /run {
            content_by_lua_block {
                local d = ngx.shared.d
                local id = (d:get("run:id") or 0) + 1
                d:set("run:mode", ngx.var.arg_mode)
                d:set("run:seconds", tonumber(ngx.var.arg_seconds))
                d:set("run:id", id)
                for _ = 1, 600 do
                    local result = d:get("result:" .. id)
                    if result then
                        ngx.say(result)
                        return
                    end
                    ngx.sleep(0.05)
                end
                ngx.status = 504
                ngx.say("no result")
            }
        }
        location = /get {
            content_by_lua_block {
                ngx.print(ngx.shared.d:get(string.format("key:%012d", math.random($ENTRIES))))
            }
        }
    }
}
EOF
}

declare -A samples
record() { # figure value
    samples["$1"]="${samples["$1"]:-} $2"
}

run_phase() { # label mode
    local line n p50 p99 p999 max
    line="$(curl -fsS --max-time 120 "http://127.0.0.1:$port/run?mode=$2&seconds=$PROBE_SECONDS")"
    read -r n p50 p99 p999 max <<<"$line"
    record "$1|p50" "$p50"
    record "$1|p99" "$p99"
    record "$1|p99.9" "$p999"
    record "$1|max" "$max"
    record "$1|gets" "$n"
}

http_p99() { # label
    local p99
    p99="$(wrk -t1 -c8 -d"${PROBE_SECONDS}s" --latency "http://127.0.0.1:$port/get" |
        awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
             else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
             print v }')"
    record "$1|http p99 ms" "$p99"
}

# "ms us" of each logged save that held the whole zone.
whole_saves() { # error.log
    sed -n 's/.*saved to .*: \([0-9]*\) entries in \([0-9]*\) ms, longest lock hold \([0-9]*\) us/\1 \2 \3/p' "$1" |
        awk -v n="$ENTRIES" '$1 >= n { print $2, $3 }'
}

for repeat in $(seq 1 "$REPEATS"); do
    log "run $repeat of $REPEATS: filling $ENTRIES entries, then scans and get_keys(0)"
    bench_launch "$OUR_NGINX" "$work/plain-$repeat" write_walk_conf no "$work/plain-$repeat"
    curl -fsS --max-time 300 "http://127.0.0.1:$port/fill" >/dev/null
    run_phase idle none
    run_phase scan scan
    run_phase scan_yield scan_yield
    run_phase get_keys get_keys
    http_p99 idle
    kill "$running_pid"; wait "$running_pid" 2>/dev/null || true; running_pid=""

    log "run $repeat of $REPEATS: the same zone saved back to back"
    bench_launch "$OUR_NGINX" "$work/persist-$repeat" write_walk_conf yes "$work/persist-$repeat"
    curl -fsS --max-time 300 "http://127.0.0.1:$port/fill" >/dev/null
    # A first save of the whole zone, so that the probe runs amid full ones.
    for _ in $(seq 1 600); do
        [ -n "$(whole_saves "$work/persist-$repeat/logs/error.log")" ] && break
        sleep 0.1
    done
    run_phase save save
    log_file="$work/persist-$repeat/logs/error.log"
    probe_lines="$(wc -l <"$log_file")"
    http_p99 save
    kill -QUIT "$running_pid"; wait "$running_pid" 2>/dev/null || true; running_pid=""
    # Saves of the whole zone: their time and longest lock hold, while the
    # in-Lua probe ran, and while wrk, both workers and the saves shared the
    # two cores (a lock holder may lose its core then).
    while read -r took hold; do
        record "save|save ms" "$took"
        record "save|longest lock hold us" "$hold"
    done < <(head -n "$probe_lines" "$log_file" | whole_saves /dev/stdin)
    while read -r took hold; do
        record "save_http|longest lock hold us" "$hold"
    done < <(tail -n "+$((probe_lines + 1))" "$log_file" | whole_saves /dev/stdin)
done

median_spread() { # values...
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        spread = (m > 0) ? (v[NR] - v[1]) / m * 100 : 0
        printf "%10.1f %5.0f%%", m, spread }'
}

echo
echo "get latency in one worker, us (median of $REPEATS runs, spread), zone of $ENTRIES entries"
printf '%-44s %16s %16s %16s %16s\n' "while the other worker" p50 p99 p99.9 max
for phase in idle scan scan_yield get_keys save; do
    case $phase in
    idle) label="does nothing" ;;
    scan) label="walks it with scan(cursor, 100)" ;;
    scan_yield) label="the same, ngx.sleep(0) between calls" ;;
    get_keys) label="walks it with get_keys(0)" ;;
    save) label="saves it (lua_shared_dict_persist)" ;;
    esac
    printf '%-44s' "$label"
    for figure in p50 p99 p99.9 max; do
        # shellcheck disable=SC2086
        printf ' %s' "$(median_spread ${samples["$phase|$figure"]})"
    done
    echo
done
echo
# shellcheck disable=SC2086
for phase in save save_http; do
    holds="${samples["$phase|longest lock hold us"]:-0}"
    [ "$phase" = save ] && during="the in-Lua probe" || during="wrk"
    # shellcheck disable=SC2086
    echo "saves of the whole zone during $during ($(echo $holds | wc -w) saves): longest lock hold of a save, us: median $(median_spread $holds), the longest of all $(printf '%s\n' $holds | sort -g | tail -n 1), saves with one over 1 ms: $(printf '%s\n' $holds | awk '$1 > 1000' | wc -l)"
done
# shellcheck disable=SC2086
echo "time of a whole save, ms: $(median_spread ${samples["save|save ms"]})"
# shellcheck disable=SC2086
echo "HTTP GET of one key, wrk -c8 p99 ms: without saves $(median_spread ${samples["idle|http p99 ms"]}), during saves $(median_spread ${samples["save|http p99 ms"]})"
