# Shared by the scripts/bench-* scripts: running one benchmark Lua file as a
# content handler on our nginx and, when Debian's nginx with OpenResty's Lua
# module is installed, on that one too, each in a fresh nginx (one worker,
# loopback only), and keeping the best figure of several passes. Sourced,
# after common.sh.
#
# A benchmark sets BENCH_NAME, BENCH_LUA (the handler file) and optionally
# BENCH_DEBIAN_PACKAGES (what the Debian side needs besides nginx and
# libnginx-mod-http-lua), BENCH_HTTP_CONFIG and BENCH_SERVER_CONFIG (more
# nginx directives for the http and server blocks), then calls bench_setup, bench_run for each process it
# wants, and bench_print_table.

SYSTEM_NGINX=/usr/sbin/nginx
OUR_NGINX="$REPO_ROOT/target/release/nginx"
OUR_MODULE="$REPO_ROOT/target/release/libngx_lua_shdict.so"

# Builds ours, and finds out whether the Debian side can run.
bench_setup() {
    ensure_build_deps
    ensure_packages curl
    log "building the module and nginx (release)"
    cargo build --release
    sides=(ours)
    if ensure_packages nginx libnginx-mod-http-lua ${BENCH_DEBIAN_PACKAGES:-}; then
        modules_dir="$("$SYSTEM_NGINX" -V 2>&1 | sed -n 's|.*--modules-path=\([^ ]*\).*|\1|p')"
        modules_dir="${modules_dir:-/usr/lib/nginx/modules}"
        if [ -f "$modules_dir/ndk_http_module.so" ] && [ -f "$modules_dir/ngx_http_lua_module.so" ]; then
            sides+=(debian)
        else
            log "no ndk_http_module.so / ngx_http_lua_module.so in $modules_dir: measuring ours only"
        fi
    else
        log "Debian's nginx with OpenResty's Lua module is not installed: measuring ours only"
    fi
    work="$(mktemp -d "${TMPDIR:-/tmp}/$BENCH_NAME.XXXXXX")"
    running_pid=""
    trap bench_cleanup EXIT
}

bench_has_debian() {
    [[ " ${sides[*]} " == *" debian "* ]]
}

bench_cleanup() {
    if [ -n "$running_pid" ]; then
        kill "$running_pid" 2>/dev/null || true
        wait "$running_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}

port_in_use() {
    local hex
    hex="$(printf '%04X' "$1")"
    # Local address column of /proc/net/tcp{,6}, state 0A = listening.
    awk -v port=":$hex" '$2 ~ port"$" && $4 == "0A" { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A port below Linux's ephemeral range (32768 and up by default), where the
# client side of wrk's and curl's connections would take it.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        port_in_use "$port" || { echo "$port"; return; }
    done
}

# Sets the caller's `load` (the load_module lines of `side`) and
# `package_path` (Debian's side: where it installs lua-resty-* and
# lua-resty-core).
side_module_lines() { # side
    package_path=""
    if [ "$1" = ours ]; then
        load="load_module $OUR_MODULE;"
    else
        load="load_module $modules_dir/ndk_http_module.so;
load_module $modules_dir/ngx_http_lua_module.so;"
        package_path='lua_package_path "/usr/share/lua/5.1/?.lua;;";'
    fi
}

write_bench_conf() { # side prefix port
    local side=$1 prefix=$2 port=$3 load package_path
    side_module_lines "$side"
    cat >"$prefix/conf/nginx.conf" <<EOF
$load
daemon off;
master_process off;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    $package_path
    ${BENCH_HTTP_CONFIG:-}
    server {
        listen 127.0.0.1:$port;
        location = /ready { return 204; }
        location = /bench { content_by_lua_file $BENCH_LUA; }
        ${BENCH_SERVER_CONFIG:-}
    }
}
EOF
}

# Starts an nginx in `prefix` on a free port, trying up to five ports:
# `WRITER... PORT` writes prefix/conf/nginx.conf, then `binary` (a command
# or a function that execs one) runs it in the background, and /ready must
# answer within BENCH_START_TRIES tenths of a second (default 50). Sets
# running_pid and port.
bench_launch() { # binary prefix writer [writer arguments before the port]
    local binary=$1 prefix=$2 attempt tries
    shift 2
    mkdir -p "$prefix/conf" "$prefix/logs"
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        "$@" "$port"
        : >"$prefix/logs/error.log"
        "$binary" -p "$prefix/" -c conf/nginx.conf -e "$prefix/logs/error.log" \
            >"$prefix/logs/stdout.log" 2>&1 &
        running_pid=$!
        for tries in $(seq 1 "${BENCH_START_TRIES:-50}"); do
            if curl -fs -o /dev/null "http://127.0.0.1:$port/ready"; then
                return 0
            fi
            kill -0 "$running_pid" 2>/dev/null || break
            sleep 0.1
        done
        # Most often the port was taken meanwhile: try another.
        kill "$running_pid" 2>/dev/null || true
        wait "$running_pid" 2>/dev/null || true
        running_pid=""
        log "nginx ($prefix) did not start on port $port (attempt $attempt):"
        tail -n 5 "$prefix/logs/error.log" >&2 || true
    done
    log "giving up on nginx ($prefix)"
    exit 1
}

# Starts one nginx for `side` in a fresh prefix; sets running_pid and port.
bench_start() { # side run
    local side=$1 prefix="$work/$1-$2" binary="$OUR_NGINX"
    [ "$side" = debian ] && binary="$SYSTEM_NGINX"
    bench_launch "$binary" "$prefix" write_bench_conf "$side" "$prefix"
}

bench_stop() { # side run
    kill "$running_pid"
    wait "$running_pid" 2>/dev/null || true
    running_pid=""
    if grep -E '\[(emerg|alert|crit|error|warn)\]' "$work/$1-$2/logs/error.log" >&2; then
        log "nginx ($1) logged the lines above"
    fi
}

declare -A best
# Every pass's figure, space-separated, for bench_print_median_table.
declare -A samples
bench_record() { # side group figure value
    local slot="$1|$2|$3"
    samples[$slot]="${samples[$slot]:-}$4 "
    if [ -z "${best[$slot]:-}" ] || awk -v a="$4" -v b="${best[$slot]}" 'BEGIN { exit !(a < b) }'; then
        best[$slot]="$4"
    fi
}

# One fresh nginx per side: GET /bench?QUERY, whose lines are "figure value",
# recorded under `group`.
bench_run() { # run group query
    local run=$1 group=$2 query=$3 side output figure value
    for side in "${sides[@]}"; do
        bench_start "$side" "$run"
        output="$(curl -fsS --max-time 300 "http://127.0.0.1:$port/bench?$query")" || {
            log "the benchmark failed on $side ($group):"
            tail -n 20 "$work/$side-$run/logs/error.log" >&2
            exit 1
        }
        while read -r figure value; do
            bench_record "$side" "$group" "$figure" "$value"
        done <<<"$output"
        bench_stop "$side" "$run"
    done
}

# The figures of `group` (in FIGURES order, labelled by FIGURE_LABEL), ours
# beside Debian's with their ratio when it ran.
bench_print_table() { # group
    local group=$1 figure ours theirs
    if bench_has_debian; then
        printf '%-24s %10s %10s %14s\n' "$group" ours debian "debian/ours"
    else
        printf '%-24s %10s\n' "$group" ours
    fi
    for figure in "${FIGURES[@]}"; do
        ours="${best[ours|$group|$figure]}"
        if bench_has_debian; then
            theirs="${best[debian|$group|$figure]}"
            awk -v label="${FIGURE_LABEL[$figure]}" -v a="$ours" -v b="$theirs" \
                'BEGIN { printf "  %-22s %10.1f %10.1f %13.2fx\n", label, a, b, b / a }'
        else
            awk -v label="${FIGURE_LABEL[$figure]}" -v a="$ours" \
                'BEGIN { printf "  %-22s %10.1f\n", label, a }'
        fi
    done
}

# The figures of `group` as the median of the passes with their spread
# ((max - min) / median), ours beside Debian's with the ratio of the
# medians, ours/Debian: below 1 ours takes less time.
bench_print_median_table() { # group
    local group=$1 figure
    if bench_has_debian; then
        printf '%-26s %10s %7s %10s %7s %9s\n' "$group" ours spread debian spread "ours/deb"
    else
        printf '%-26s %10s %7s\n' "$group" ours spread
    fi
    for figure in "${FIGURES[@]}"; do
        awk -v label="${FIGURE_LABEL[$figure]}" -v ours="${samples[ours|$group|$figure]}" \
            -v theirs="${samples[debian|$group|$figure]:-}" '
            function stats(list, out,   n, v, i, j, t) {
                n = split(list, v, " ")
                for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
                    if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
                out["median"] = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
                out["spread"] = 100 * (v[n] - v[1]) / out["median"]
            }
            BEGIN {
                stats(ours, a)
                if (theirs == "") {
                    printf "  %-24s %10.1f %6.0f%%\n", label, a["median"], a["spread"]
                    exit
                }
                stats(theirs, b)
                printf "  %-24s %10.1f %6.0f%% %10.1f %6.0f%% %9.2f\n", label, a["median"],
                    a["spread"], b["median"], b["spread"], a["median"] / b["median"]
            }'
    done
}

# Which nginx builds ran, for the report.
bench_print_sides() {
    echo "ours:   $("$OUR_NGINX" -v 2>&1 | sed 's/^nginx version: //') with libngx_lua_shdict.so"
    if bench_has_debian; then
        echo "debian: $("$SYSTEM_NGINX" -v 2>&1 | sed 's/^nginx version: //') with libnginx-mod-http-lua" \
            "$(dpkg-query -W -f='${Version}' libnginx-mod-http-lua)$*"
    fi
}

# Clock ticks of CPU used so far by the workers of the nginx master
# running_pid: "user system".
worker_user_system_ticks() {
    local pid user=0 system=0 u s
    for pid in $(pgrep -P "$running_pid"); do
        read -r u s < <(awk '{ print $14, $15 }' "/proc/$pid/stat")
        user=$((user + u))
        system=$((system + s))
    done
    echo "$user $system"
}

# Clock ticks of user and system CPU used so far by the workers of the
# nginx master running_pid.
worker_ticks() {
    local user system
    read -r user system <<<"$(worker_user_system_ticks)"
    echo $((user + system))
}

# "median min max" of a space-separated list of figures.
median_and_range() { # figures
    tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g |
        awk '{ v[NR] = $1 } END {
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR] }'
}

# "median spread%" of a space-separated list of figures, the spread being
# (max - min) / median.
median_and_spread() { # figures
    local median low high
    read -r median low high <<<"$(median_and_range "$1")"
    awk -v m="$median" -v low="$low" -v high="$high" \
        'BEGIN { printf "%s %.0f\n", m, (high - low) / m * 100 }'
}
