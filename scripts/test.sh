#!/usr/bin/env bash
# Runs every check: formatting, clippy, unit tests and the t/ suite against
# the vendored nginx. With --system-nginx, the t/ suite runs against the
# distribution's /usr/sbin/nginx instead, with a module built for it. With
# --valgrind, the t/ suite runs with every nginx under valgrind's memcheck
# (a build of its own in target/valgrind, LuaJIT allocating through malloc
# so that memcheck sees its memory): a block fails on any error memcheck
# reports, valgrind.supp lists what is known outside the module.
# Extra arguments after the mode go to the t/ runner (e.g. a name filter).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

mode=vendored
case "${1:-}" in
--system-nginx) mode=system; shift ;;
--valgrind) mode=valgrind; shift ;;
esac

ensure_build_deps
# promtool validates the status page's Prometheus output; without it those
# blocks are reported as skipped, not passed.
ensure_packages prometheus || log "promtool unavailable: its checks will be skipped"
# Debian's lua-cjson (a Lua 5.1 C module) checks that C modules load through
# lua_package_cpath; without it that block is skipped, not passed.
ensure_packages lua-cjson || log "lua-cjson unavailable: its test will be skipped"
# curl is the HTTP/2 client of tests/stress.rs.
# openssl makes the certificates of the TLS blocks (t/038).
ensure_packages curl openssl
# redis-server is the peer of the Redis cosocket blocks (t/035); without it
# they are reported as skipped, not passed. The blocks run servers of their
# own: the service Debian's package starts when installed here is stopped.
if package_installed redis-server; then
    :
elif ensure_packages redis-server; then
    service redis-server stop >/dev/null 2>&1 || true
else
    log "redis-server unavailable: the Redis blocks will be skipped"
fi

if [ "$mode" = valgrind ]; then
    ensure_packages valgrind
    # LuaJIT's own allocator hides its blocks from memcheck and reads past
    # string ends on purpose: built with the system allocator and
    # valgrind's client requests instead (build.rs then also leaves PCRE2's
    # JIT off, whose word loads past a subject's end memcheck reports). A
    # target directory of its own
    # keeps the ordinary build's LuaJIT as it is.
    export CARGO_TARGET_DIR="$REPO_ROOT/target/valgrind"
    export CFLAGS="${CFLAGS:-} -DLUAJIT_USE_SYSMALLOC -DLUAJIT_USE_VALGRIND"
    log "t/ suite under valgrind's memcheck (builds into $CARGO_TARGET_DIR)"
    started=$SECONDS
    # Fewer blocks at once than usual: each nginx under memcheck keeps a
    # core busy.
    status=0
    TEST_NGINX_USE_VALGRIND=1 RUST_TEST_THREADS="${RUST_TEST_THREADS:-3}" \
        cargo test --release --test t -- "$@" || status=$?
    log "memcheck run: $((SECONDS - started)) s"
    exit "$status"
fi

log "cargo fmt --check"
cargo fmt --check
log "import layers"
python3 scripts/lib/check-layers.py "$REPO_ROOT"
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
# runs long ones): any difference not on its allowed list fails the build;
# without OpenResty's packages it is reported as skipped.
if [ "$mode" = vendored ] && [ $# -eq 0 ]; then
    log "differential pass against OpenResty's module"
    status=0
    scripts/difftest.sh 2-4 400 >"${TMPDIR:-/tmp}/difftest-short.txt" 2>&1 || status=$?
    case "$status" in
    0) tail -n 1 "${TMPDIR:-/tmp}/difftest-short.txt" ;;
    77) cat "${TMPDIR:-/tmp}/difftest-short.txt" ;;
    *)
        cat "${TMPDIR:-/tmp}/difftest-short.txt" >&2
        log "difftest: divergences from OpenResty (see above)"
        exit 1
        ;;
    esac
fi

# A short soak (scripts/soak.sh runs long ones): two workers under a mix of
# calls while reloads, a resize and SIGKILLs hit them.
if [ "$mode" = vendored ] && [ $# -eq 0 ]; then
    log "30-second soak"
    scripts/soak.sh 30
fi
