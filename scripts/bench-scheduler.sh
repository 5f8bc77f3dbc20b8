#!/usr/bin/env bash
# Measures what coroutines, light threads and subrequests cost inside a
# request handler, in ns of worker CPU time per operation inside a Lua loop
# (scripts/lib/bench-scheduler.lua): a coroutine.resume + yield round trip,
# a coroutine.wrap created and run, one step of a wrap iterator, a light
# thread spawned and waited for, and a subrequest (one, and four in
# parallel) to a location answering with `return`. With Debian's nginx and
# libnginx-mod-http-lua installed (installed here when run as root), the
# same loop also runs there, on OpenResty's implementation, and the table
# gets its figures and the ratio.
#
# Each side runs in a fresh nginx (one worker, loopback only), PASSES times
# in turn; each figure is the best of all runs. Not part of scripts/test.sh:
# figures are measured, not asserted.
#
# Environment: ITERATIONS (most operations in one timed round, default
# 1000000), PASSES (fresh processes per side, default 5).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

ITERATIONS="${ITERATIONS:-1000000}"
PASSES="${PASSES:-5}"
FIGURES=(resume_yield wrap_call wrap_iterate spawn_wait capture capture_multi_4)
declare -A FIGURE_LABEL=(
    [resume_yield]="resume + yield"
    [wrap_call]="wrap, run to its end"
    [wrap_iterate]="wrap iterator step"
    [spawn_wait]="thread spawn + wait"
    [capture]="capture"
    [capture_multi_4]="capture_multi of 4"
)
BENCH_NAME=bench-scheduler
BENCH_LUA="$REPO_ROOT/scripts/lib/bench-scheduler.lua"
BENCH_SERVER_CONFIG='location = /tiny { return 200 "x"; }'
source "$REPO_ROOT/scripts/lib/bench.sh"

bench_setup
log "measuring ${sides[*]}: $PASSES passes, up to $ITERATIONS operations per timed round"
for pass in $(seq 1 "$PASSES"); do
    bench_run "$pass" scheduling "n=$ITERATIONS"
done

echo
echo "Scheduler benchmark: ns of worker CPU per operation in a content handler, best of $PASSES passes"
bench_print_sides
echo
bench_print_table scheduling
