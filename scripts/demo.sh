#!/usr/bin/env bash
# Builds the module and runs nginx in the foreground with nginx-conf/demo.conf
# on 127.0.0.1:${PORT:-8080}. Ctrl-C stops it.
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"
cd "$REPO_ROOT"

PORT="${PORT:-8080}"
REDIS_PORT="${REDIS_PORT:-6379}"
ensure_build_deps
log "building the module and nginx (release)"
cargo build --release

prefix="$(mktemp -d "${TMPDIR:-/tmp}/ngx-lua-shdict-demo.XXXXXX")"
mkdir -p "$prefix/conf" "$prefix/logs"
sed -e "s|@MODULE@|$REPO_ROOT/target/release/libngx_lua_shdict.so|" \
    -e "s|@PORT@|$PORT|" -e "s|@LUA@|$REPO_ROOT/nginx-conf/lua|" \
    -e "s|@REDIS_PORT@|$REDIS_PORT|" nginx-conf/demo.conf >"$prefix/conf/nginx.conf"

cat <<EOT

nginx with the module is starting on 127.0.0.1:$PORT (prefix $prefix). Try:

  curl 127.0.0.1:$PORT/set          # stores dogs["Jim"] = 8
  curl 127.0.0.1:$PORT/get          # prints 8
  curl 127.0.0.1:$PORT/counter      # a counter shared by all workers
  curl '127.0.0.1:$PORT/put?key=a&value=hello'
  curl '127.0.0.1:$PORT/fetch?key=a'
  curl 127.0.0.1:$PORT/parallel     # subrequests and a light thread
  curl 127.0.0.1:$PORT/status                      # zone statistics, JSON
  curl '127.0.0.1:$PORT/status?format=prometheus'  # the same for Prometheus
  curl '127.0.0.1:$PORT/layered?key=a'  # L1 (worker LRU), L2 (dict), L3 (Redis on
                                        # port $REDIS_PORT, if one runs), then the origin

Ctrl-C stops nginx.
EOT
exec target/release/nginx -p "$prefix/" -c conf/nginx.conf
