#!/usr/bin/env bash
# Measures resty.lrucache and resty.lrucache.pureffi: get (hit, miss), set,
# set with eviction, and both with a ttl, in ns per operation inside a Lua
# loop (scripts/lib/bench-lrucache.lua). With Debian's lua-resty-lrucache and
# libnginx-mod-http-lua installed (installed here when run as root), the same
# loop also runs on the distribution's nginx with OpenResty's lua module and
# the original library, and the table gets its figures and the ratio.
#
# Every module runs on every side in a fresh nginx (one worker, loopback
# only), PASSES times in turn; each figure is the best of all runs, the one
# least disturbed by the rest of the machine. Not part of scripts/test.sh: figures
# are measured, not asserted.
#
# Environment: ITERATIONS (most operations in one timed round, default
# 1000000), PASSES (fresh processes per side, default 5).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

ITERATIONS="${ITERATIONS:-1000000}"
PASSES="${PASSES:-5}"
MODULES=(resty.lrucache resty.lrucache.pureffi)
FIGURES=(get_hit get_miss set_update set_evict set_ttl get_hit_ttl)
declare -A FIGURE_LABEL=(
    [get_hit]="get, hit"
    [get_miss]="get, miss"
    [set_update]="set, existing key"
    [set_evict]="set, new key evicting"
    [set_ttl]="set with ttl"
    [get_hit_ttl]="get, hit with ttl"
)
BENCH_LUA="$REPO_ROOT/scripts/lib/bench-lrucache.lua"
SYSTEM_NGINX=/usr/sbin/nginx

ensure_build_deps
ensure_packages curl
log "building the module and nginx (release)"
cargo build --release
OUR_NGINX="$REPO_ROOT/target/release/nginx"
OUR_MODULE="$REPO_ROOT/target/release/libngx_lua_shdict.so"

sides=(ours)
if ensure_packages nginx lua-resty-lrucache libnginx-mod-http-lua; then
    modules_dir="$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's|.*--modules-path=\([^ ]*\).*|\1|p')"
    modules_dir="${modules_dir:-/usr/lib/nginx/modules}"
    if [ -f "$modules_dir/ndk_http_module.so" ] && [ -f "$modules_dir/ngx_http_lua_module.so" ]; then
        sides+=(debian)
    else
        log "no ndk_http_module.so / ngx_http_lua_module.so in $modules_dir: measuring ours only"
    fi
else
    log "Debian's lua-resty-lrucache is not installed: measuring ours only"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-lrucache.XXXXXX")"
running_pid=""
cleanup() {
    if [ -n "$running_pid" ]; then
        kill "$running_pid" 2>/dev/null || true
        wait "$running_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port_in_use() {
    local hex
    hex="$(printf '%04X' "$1")"
    # Local address column of /proc/net/tcp{,6}, state 0A = listening.
    awk -v port=":$hex" '$2 ~ port"$" && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" || { echo "$port"; return; }
    done
}

write_conf() { # side prefix port
    local side=$1 prefix=$2 port=$3 load package_path=""
    if [ "$side" = ours ]; then
        load="load_module $OUR_MODULE;"
    else
        load="load_module $modules_dir/ndk_http_module.so;
load_module $modules_dir/ngx_http_lua_module.so;"
        # Where Debian installs lua-resty-lrucache and lua-resty-core.
        package_path='lua_package_path "/usr/share/lua/5.1/?.lua;;";'
    fi
    cat >"$prefix/conf/nginx.conf" <<EOF
$load
daemon off;
master_process off;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 16; }
http {
    access_log off;
    $package_path
    server {
        listen 127.0.0.1:$port;
        location = /ready { return 204; }
        location = /bench { content_by_lua_file $BENCH_LUA; }
    }
}
EOF
}

# Starts one nginx for `side` in a fresh prefix; sets running_pid and port.
start_side() { # side run
    local side=$1 prefix="$work/$1-$2" binary attempt
    binary="$OUR_NGINX"
    [ "$side" = debian ] && binary="$SYSTEM_NGINX"
    mkdir -p "$prefix/conf" "$prefix/logs"
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        write_conf "$side" "$prefix" "$port"
        "$binary" -p "$prefix/" -c conf/nginx.conf -e "$prefix/logs/error.log" \
            >"$prefix/logs/stdout.log" 2>&1 &
        running_pid=$!
        local tries
        for tries in $(seq 1 500); do
            if curl -fs -o /dev/null "http://127.0.0.1:$port/ready"; then
                return 0
            fi
            kill -0 "$running_pid" 2>/dev/null || break
            sleep 0.01
        done
        kill "$running_pid" 2>/dev/null || true
        wait "$running_pid" 2>/dev/null || true
        running_pid=""
        log "nginx ($side) did not start on port $port (attempt $attempt):"
        tail -n 5 "$prefix/logs/error.log" >&2 || true
    done
    log "giving up on nginx ($side)"
    exit 1
}

stop_side() { # side run
    kill "$running_pid"
    wait "$running_pid" 2>/dev/null || true
    running_pid=""
    if grep -E '\[(emerg|alert|crit|error|warn)\]' "$work/$1-$2/logs/error.log" >&2; then
        log "nginx ($1) logged the lines above"
    fi
}

declare -A best
record() { # side module figure value
    local slot="$1|$2|$3"
    if [ -z "${best[$slot]:-}" ] || awk -v a="$4" -v b="${best[$slot]}" 'BEGIN { exit !(a < b) }'; then
        best[$slot]="$4"
    fi
}

log "measuring ${sides[*]}: $PASSES passes, up to $ITERATIONS operations per timed round"
# One module per process: the JIT specialises the benchmark loops to what
# they ran first, so a second module in the same process would pay for it.
for pass in $(seq 1 "$PASSES"); do
    for module in "${MODULES[@]}"; do
        for side in "${sides[@]}"; do
            run="$pass-$module"
            start_side "$side" "$run"
            output="$(curl -fsS --max-time 120 \
                "http://127.0.0.1:$port/bench?module=$module&n=$ITERATIONS")" || {
                log "the benchmark failed on $side ($module):"
                tail -n 20 "$work/$side-$run/logs/error.log" >&2
                exit 1
            }
            while read -r figure value; do
                record "$side" "$module" "$figure" "$value"
            done <<<"$output"
            stop_side "$side" "$run"
        done
    done
done

echo
echo "resty.lrucache benchmark: ns per operation on a cache of 1024 items, best of $PASSES passes"
echo "ours:   $("$OUR_NGINX" -v 2>&1 | sed 's/^nginx version: //') with libngx_lua_shdict.so"
if [[ " ${sides[*]} " == *" debian "* ]]; then
    echo "debian: $("$SYSTEM_NGINX" -v 2>&1 | sed 's/^nginx version: //') with libnginx-mod-http-lua" \
        "$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua) and lua-resty-lrucache" \
        "$(dpkg-query -W -f='${Version}' lua-resty-lrucache)"
fi
for module in "${MODULES[@]}"; do
    echo
    if [[ " ${sides[*]} " == *" debian "* ]]; then
        printf '%-24s %10s %10s %14s\n' "$module" ours debian "debian/ours"
    else
        printf '%-24s %10s\n' "$module" ours
    fi
    for figure in "${FIGURES[@]}"; do
        ours="${best[ours|$module|$figure]}"
        if [[ " ${sides[*]} " == *" debian "* ]]; then
            theirs="${best[debian|$module|$figure]}"
            awk -v label="${FIGURE_LABEL[$figure]}" -v a="$ours" -v b="$theirs" \
                'BEGIN { printf "  %-22s %10.1f %10.1f %13.2fx\n", label, a, b, b / a }'
        else
            awk -v label="${FIGURE_LABEL[$figure]}" -v a="$ours" \
                'BEGIN { printf "  %-22s %10.1f\n", label, a }'
        fi
    done
done
