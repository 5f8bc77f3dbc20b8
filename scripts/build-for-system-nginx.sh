#!/usr/bin/env bash
# Builds the module against the distribution's packaged nginx (Debian:
# packages nginx and nginx-dev), so that it loads into /usr/sbin/nginx.
# The build goes to target/system-nginx/; the last line printed is the
# load_module line to put at the top of nginx.conf.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

ensure_build_deps
ensure_packages nginx nginx-dev

SYSTEM_NGINX="${SYSTEM_NGINX:-/usr/sbin/nginx}"
SOURCE_DIR=/usr/share/nginx/src
if [ ! -f "$SOURCE_DIR/conf_flags" ]; then
    log "no $SOURCE_DIR/conf_flags: is nginx-dev installed?"
    exit 1
fi

version="$("$SYSTEM_NGINX" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')"
WORK_DIR="$REPO_ROOT/target/system-nginx"
SRC_COPY="$WORK_DIR/nginx-$version"

# Configure a private copy of the shipped source with the flags the package
# was built with: the module must see the same structure layouts and the
# same module signature as the binary it will be loaded into.
if [ ! -f "$SRC_COPY/objs/ngx_auto_config.h" ] || [ "$SOURCE_DIR/conf_flags" -nt "$SRC_COPY/objs/ngx_auto_config.h" ]; then
    log "configuring nginx $version sources with the package's flags"
    rm -rf "$SRC_COPY"
    mkdir -p "$WORK_DIR"
    cp -a "$SOURCE_DIR" "$SRC_COPY"
    # Debian ships the flags as a bash array assignment, NGX_CONF_FLAGS=(...).
    NGX_CONF_FLAGS=()
    # shellcheck disable=SC1091
    source "$SOURCE_DIR/conf_flags"
    if [ ${#NGX_CONF_FLAGS[@]} -eq 0 ]; then
        log "no NGX_CONF_FLAGS in $SOURCE_DIR/conf_flags"
        exit 1
    fi
    (cd "$SRC_COPY" && ./configure "${NGX_CONF_FLAGS[@]}" >"$WORK_DIR/configure.log" 2>&1) || {
        log "configure failed; see $WORK_DIR/configure.log"
        exit 1
    }
fi

log "building the module against $SRC_COPY/objs"
NGINX_BUILD_DIR="$SRC_COPY/objs" cargo build --release --no-default-features \
    --target-dir "$WORK_DIR/target" --lib

MODULE="$WORK_DIR/target/release/libngx_lua_shdict.so"
echo "load_module $MODULE;"
