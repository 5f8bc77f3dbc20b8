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
BENCH_NAME=bench-lrucache
BENCH_LUA="$REPO_ROOT/scripts/lib/bench-lrucache.lua"
BENCH_DEBIAN_PACKAGES=lua-resty-lrucache
source "$REPO_ROOT/scripts/lib/bench.sh"

bench_setup
log "measuring ${sides[*]}: $PASSES passes, up to $ITERATIONS operations per timed round"
# One module per process: the JIT specialises the benchmark loops to what
# they ran first, so a second module in the same process would pay for it.
for pass in $(seq 1 "$PASSES"); do
    for module in "${MODULES[@]}"; do
        bench_run "$pass-$module" "$module" "module=$module&n=$ITERATIONS"
    done
done

echo
echo "resty.lrucache benchmark: ns per operation on a cache of 1024 items, best of $PASSES passes"
bench_print_sides " and lua-resty-lrucache $(dpkg-query -W -f='${Version}' lua-resty-lrucache 2>/dev/null)"
for module in "${MODULES[@]}"; do
    echo
    bench_print_table "$module"
done
