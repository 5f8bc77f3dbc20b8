#!/usr/bin/env bash
# Measures ngx.re in ns of worker CPU time per call inside a Lua loop
# (scripts/lib/bench-regex.lua): match, find, gsub with a template and with
# a function, gmatch over a subject, and split, with the "jo" options
# (JIT-compiled, cached), and match without them (compiled on every call).
# With Debian's nginx, libnginx-mod-http-lua and lua-resty-core installed
# (installed here when run as root), the same loop also runs there, on
# OpenResty's implementation, and the table gets its figures and the ratio.
#
# Each side runs in a fresh nginx (one worker, loopback only), PASSES times
# in turn; a figure is the median of the passes (each pass's figure being
# the best of a few timed rounds in that process), with the spread of the
# passes. Not part of scripts/test.sh: figures are measured, not asserted.
#
# Environment: ITERATIONS (most calls in one timed round, default 1000000),
# PASSES (fresh processes per side, default 5).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

ITERATIONS="${ITERATIONS:-1000000}"
PASSES="${PASSES:-5}"
FIGURES=(match_jo match_named_jo find_jo gsub_jo gsub_function_jo gmatch_jo split_jo match_uncached)
declare -A FIGURE_LABEL=(
    [match_jo]="match, jo"
    [match_named_jo]="match, named, res, jo"
    [find_jo]="find, jo"
    [gsub_jo]="gsub template, jo"
    [gsub_function_jo]="gsub function, jo"
    [gmatch_jo]="gmatch (3 matches), jo"
    [split_jo]="split (4 pieces), jo"
    [match_uncached]="match, no options"
)
BENCH_NAME=bench-regex
BENCH_LUA="$REPO_ROOT/scripts/lib/bench-regex.lua"
BENCH_DEBIAN_PACKAGES=lua-resty-core
source "$REPO_ROOT/scripts/lib/bench.sh"

bench_setup
log "measuring ${sides[*]}: $PASSES passes, up to $ITERATIONS calls per timed round"
for pass in $(seq 1 "$PASSES"); do
    bench_run "$pass" regex "n=$ITERATIONS"
done

echo
echo "ngx.re benchmark: ns of worker CPU per call in a content handler, median of $PASSES passes"
bench_print_sides " and lua-resty-core $(dpkg-query -W -f='${Version}' lua-resty-core 2>/dev/null)"
echo
bench_print_median_table regex
