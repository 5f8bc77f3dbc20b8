#!/usr/bin/env bash
# scripts/soak.sh [SECONDS]: nginx with the module (two workers) under a
# mix of dictionary calls from six clients for SECONDS (default 300, 10 to
# 3600), with a reload or a SIGKILL to a worker every 3 s and one reload
# that resizes a zone. Prints each check (crashes, 5xx, the slowest
# request, the shared counter against the increments acknowledged, stats
# against get_keys, memory growth) and fails when one does not hold.
# scripts/test.sh runs a 30-second soak.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

seconds="${1:-300}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 10 ] || [ "$seconds" -gt 3600 ]; then
    log "usage: scripts/soak.sh [SECONDS], from 10 to 3600 (default 300)"
    exit 2
fi

ensure_build_deps
cargo build --release --quiet

prefix="$(mktemp -d "${TMPDIR:-/tmp}/ngx-lua-shdict-soak.XXXXXX")"
log "soak for $seconds s in $prefix"
if python3 scripts/lib/soak.py "$REPO_ROOT/target/release/nginx" \
    "$REPO_ROOT/target/release/libngx_lua_shdict.so" \
    "$REPO_ROOT/scripts/lib/soak.lua" "$prefix" "$seconds"; then
    rm -rf "$prefix"
else
    exit 1
fi
