# Shared by the scripts: locating the checkout and installing what the build
# needs on Debian. Sourced, not run.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# What building the module and the vendored nginx needs: a C toolchain and
# make for nginx, libclang for bindgen, and nginx's library headers.
BUILD_PACKAGES=(build-essential pkg-config libclang-dev libpcre2-dev libssl-dev zlib1g-dev)

log() { printf '==> %s\n' "$*" >&2; }

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# ensure_packages PKG...: installs the missing ones with apt-get when root (or
# with password-less sudo); otherwise prints the command to run and fails.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        package_installed "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing packages ${missing[*]} and no apt-get: install their equivalents by hand"
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo)
        else
            log "missing packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
            return 1
        fi
    fi
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_build_deps() {
    ensure_packages "${BUILD_PACKAGES[@]}"
    if ! command -v cargo >/dev/null 2>&1; then
        log "cargo not found: install a Rust toolchain (1.88 or newer), e.g. with rustup"
        return 1
    fi
}
