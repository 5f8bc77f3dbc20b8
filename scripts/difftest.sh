#!/usr/bin/env bash
# Differential test of ngx.shared.DICT: the same seeded random sequences of
# dictionary calls (scripts/lib/difftest.lua) run on this module and on
# OpenResty's (Debian's libnginx-mod-http-lua with lua-resty-core, loaded
# by Debian's nginx), and their outputs are compared line by line
# (scripts/lib/difftest-compare.py, which holds the named list of allowed
# differences). Each seed runs twice: with valid arguments, then with
# arguments of wrong types mixed in.
#
# Usage: scripts/difftest.sh [SEEDS [COUNT]]
#   SEEDS: N (seeds 1 to N) or A-B; default 1-20. COUNT: calls per
#   sequence, default 2000.
# DIFFTEST_OUT=DIR keeps both outputs of every sequence there, and
# DIFFTEST_SHOW=N prints up to N differences per sequence (default 20).
# Exit status: 0 when every difference is an allowed one, 1 when one is
# not, 77 when OpenResty's packages cannot be installed (skipped, not
# passed). Run as root it installs them, and stops any nginx service
# Debian's package started.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"
source "$REPO_ROOT/scripts/lib/bench.sh"

SEEDS="${1:-1-20}"
COUNT="${2:-2000}"
case "$SEEDS" in
*-*) first="${SEEDS%-*}" last="${SEEDS#*-}" ;;
*) first=1 last="$SEEDS" ;;
esac
DIFF_LUA="$REPO_ROOT/scripts/lib/difftest.lua"

if ! ensure_packages nginx libnginx-mod-http-lua lua-resty-core >/dev/null 2>&1; then
    echo "difftest: skipped: OpenResty's packages (libnginx-mod-http-lua, lua-resty-core) cannot be installed here"
    exit 77
fi
modules_dir="$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's|.*--modules-path=\([^ ]*\).*|\1|p')"
modules_dir="${modules_dir:-/usr/lib/nginx/modules}"
if [ ! -f "$modules_dir/ngx_http_lua_module.so" ] || [ ! -f /usr/share/lua/5.1/resty/core.lua ]; then
    echo "difftest: skipped: OpenResty's module or lua-resty-core is missing"
    exit 77
fi
# Debian's nginx package may have started its service: nothing else may run.
if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    log "stopping the nginx service Debian started"
    "$SYSTEM_NGINX" -s stop 2>/dev/null || kill "$(cat /run/nginx.pid)"
fi
[ -x "$OUR_NGINX" ] && [ -f "$OUR_MODULE" ] || cargo build --release

work="$(mktemp -d "${TMPDIR:-/tmp}/difftest.XXXXXX")"
running_pid=""
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# The nginx of each side: scripts/lib/bench.sh's configuration, with the
# zone and a location that runs a sequence.
BENCH_LUA="$DIFF_LUA"
BENCH_HTTP_CONFIG="lua_shared_dict diff 64m;"
BENCH_SERVER_CONFIG='location = /run {
            content_by_lua_block {
                local run = dofile("'"$DIFF_LUA"'")
                local args = ngx.req.get_uri_args()
                local lines = run(ngx.shared.diff, tonumber(args.seed), tonumber(args.count),
                                  args.mixed == "1")
                ngx.print(table.concat(lines, "\n"), "\n")
            }
        }'

declare -A port_of
for side in ours openresty; do
    binary="$OUR_NGINX"
    [ "$side" = openresty ] && binary="$SYSTEM_NGINX"
    bench_launch "$binary" "$work/$side" write_bench_conf "$side" "$work/$side"
    pids+=("$running_pid")
    port_of[$side]="$port"
done

status=0
for seed in $(seq "$first" "$last"); do
    for mixed in 0 1; do
        for side in ours openresty; do
            if ! curl -fsS --max-time 300 -o "$work/$side.out" \
                "http://127.0.0.1:${port_of[$side]}/run?seed=$seed&count=$COUNT&mixed=$mixed"; then
                log "$side failed on seed $seed (mixed=$mixed):"
                tail -n 20 "$work/$side/logs/error.log" >&2
                exit 1
            fi
        done
        if [ -n "${DIFFTEST_OUT:-}" ]; then
            mkdir -p "$DIFFTEST_OUT"
            cp "$work/ours.out" "$DIFFTEST_OUT/$seed-$mixed.ours"
            cp "$work/openresty.out" "$DIFFTEST_OUT/$seed-$mixed.openresty"
        fi
        if ! python3 "$REPO_ROOT/scripts/lib/difftest-compare.py" "$work/ours.out" "$work/openresty.out" \
            "seed $seed, mixed=$mixed" >>"$work/report"; then
            status=1
        fi
    done
done
for side in ours openresty; do
    if grep -E '\[(emerg|alert|crit)\]' "$work/$side/logs/error.log" >&2; then
        log "nginx ($side) logged the lines above"
        status=1
    fi
done
python3 "$REPO_ROOT/scripts/lib/difftest-compare.py" --summary "$work/report"
exit "$status"
