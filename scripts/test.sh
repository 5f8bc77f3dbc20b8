#!/usr/bin/env bash
# Runs every check: formatting, clippy, unit tests and the t/ suite against
# the vendored nginx. With --system-nginx, the t/ suite runs against the
# distribution's /usr/sbin/nginx instead, with a module built for it.
# Extra arguments after the mode go to the t/ runner (e.g. a name filter).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

mode=vendored
if [ "${1:-}" = "--system-nginx" ]; then
    mode=system
    shift
fi

ensure_build_deps
# promtool validates the status page's Prometheus output; without it those
# blocks are reported as skipped, not passed.
ensure_packages prometheus || log "promtool unavailable: its checks will be skipped"
# Debian's lua-cjson (a Lua 5.1 C module) checks that C modules load through
# lua_package_cpath; without it that block is skipped, not passed.
ensure_packages lua-cjson || log "lua-cjson unavailable: its test will be skipped"
# curl is the HTTP/2 client of tests/stress.rs.
ensure_packages curl

log "cargo fmt --check"
cargo fmt --check
log "cargo clippy"
cargo clippy --release --all-targets -- -D warnings

if [ "$mode" = system ]; then
    module_line="$(scripts/build-for-system-nginx.sh | tail -n 1)"
    module="${module_line#load_module }"
    module="${module%;}"
    log "t/ suite against /usr/sbin/nginx with $module"
    TEST_NGINX_BINARY=/usr/sbin/nginx TEST_NGINX_LOAD_MODULES="$module" \
        cargo test --release --test t --test nginx_cli --test stress -- "$@"
else
    log "unit tests and the t/ suite"
    cargo test --release -- "$@"
fi

# A short differential pass against OpenResty's module (scripts/difftest.sh
# runs long ones). A divergence fails the build when a second run repeats
# it; one that does not repeat is printed (a timing-dependent case of
# expired entries is still open) and the build goes on.
if [ "$mode" = vendored ] && [ $# -eq 0 ]; then
    log "differential pass against OpenResty's module"
    set +e
    scripts/difftest.sh 2-4 400 >"${TMPDIR:-/tmp}/difftest-first.txt" 2>&1
    status=$?
    set -e
    case "$status" in
    0) tail -n 1 "${TMPDIR:-/tmp}/difftest-first.txt" ;;
    77) cat "${TMPDIR:-/tmp}/difftest-first.txt" ;;
    *)
        if scripts/difftest.sh 2-4 400; then
            log "difftest: a divergence that did not repeat on a second run:"
            grep -B1 -A1 '^DIFFERENT' "${TMPDIR:-/tmp}/difftest-first.txt" >&2 || true
        else
            log "difftest: divergences from OpenResty (see above)"
            exit 1
        fi
        ;;
    esac
fi
