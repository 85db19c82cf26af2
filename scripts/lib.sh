#!/usr/bin/env bash
# Shared set-up steps for scripts/run and scripts/test. Sourced, not executed.
# Works on Debian 12 (bookworm) and Debian 13 (trixie); installs what is missing, as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.8"
TOOLS_DIR="$ROOT/.venv-tools"

log() { printf '\033[1m[referral-net]\033[0m %s\n' "$*" >&2; }

as_root_or_explain() {
  # Run an apt-get line as root; when not root, print the exact line and stop.
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive "$@"
  else
    log "These Debian packages are needed. Run as root, then run this command again:"
    printf '  sudo %s\n' "$*" >&2
    exit 1
  fi
}

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root_or_explain apt-get update -qq
    APT_UPDATED=1
  fi
}

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

ensure_debian_packages() {
  # ensure_debian_packages PKG... : install those not yet installed.
  local missing=()
  for pkg in "$@"; do
    is_installed "$pkg" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
      as_root_or_explain apt-get install -y "${missing[@]}"
    fi
    apt_update_once
    as_root_or_explain apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

find_python() {
  # The machine's Python 3.11 (pyenv or system); uv never downloads an interpreter.
  local candidate
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)'; then
      # The interpreter's own path, not a pyenv shim's: given a shim, `uv sync` sees another
      # interpreter than the one .venv was made with, deletes .venv and makes it again, under any
      # test run or server using it at the time (modules vanish mid-run).
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  log "Python 3.11 is required (found: $(python3 --version 2>&1 || echo none))."
  exit 1
}

ensure_venv() {
  # Create .venv with the locked dependencies (uv.lock), installing uv in a private venv.
  ensure_debian_packages ca-certificates libsqlite3-mod-spatialite
  local python
  python="$(find_python)"
  if [ ! -x "$TOOLS_DIR/bin/uv" ] || [[ "$("$TOOLS_DIR/bin/uv" --version)" != *"$UV_VERSION"* ]]; then
    log "installing uv $UV_VERSION"
    "$python" -m venv "$TOOLS_DIR"
    "$TOOLS_DIR/bin/python" -m pip install -q "uv==$UV_VERSION"
  fi
  log "syncing .venv from uv.lock"
  (cd "$ROOT" && UV_PYTHON_DOWNLOADS=never "$TOOLS_DIR/bin/uv" sync --locked --quiet --python "$python")
}

ensure_web_assets() {
  # The embeddable map's front-end packages (MapLibre GL JS; axe-core for the browser tests), from
  # the npm registry as pinned by web/package-lock.json, copied into the package so the app serves
  # them itself: no CDN and no third-party request at run time (docs/embed.md).
  if ! command -v npm >/dev/null 2>&1; then
    ensure_debian_packages nodejs npm
  fi
  local web="$ROOT/web" vendor="$ROOT/src/referral_net/api/embed_static/vendor"
  if [ ! -f "$web/node_modules/.package-lock.json" ] ||
    [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    log "installing the map's front-end packages (npm ci, web/package-lock.json)"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  mkdir -p "$vendor"
  local dist="$web/node_modules/maplibre-gl/dist"
  cp -p "$dist/maplibre-gl.mjs" "$dist/maplibre-gl-worker.mjs" "$dist/maplibre-gl.css" "$vendor/"
  cp -p "$web/node_modules/maplibre-gl/LICENSE.txt" "$vendor/MAPLIBRE-LICENSE.txt"
}

RUN_USAGE="usage: scripts/run [--host HOST] [--port PORT] [--workers N]"

run_usage_error() {
  printf 'scripts/run: %s\n%s\n' "$1" "$RUN_USAGE" >&2
  exit 2
}

parse_run_args() {
  # parse_run_args ARG... : set RUN_HOST, RUN_PORT and RUN_WORKERS for scripts/run (defaults from
  # REFERRAL_NET_HOST/PORT/WORKERS, else 127.0.0.1, 8000, 1); refuse anything else.
  RUN_HOST="${REFERRAL_NET_HOST:-127.0.0.1}"
  RUN_PORT="${REFERRAL_NET_PORT:-8000}"
  RUN_WORKERS="${REFERRAL_NET_WORKERS:-1}"
  local name value
  while [ "$#" -gt 0 ]; do
    case "$1" in
      -h | --help)
        printf '%s\n' "$RUN_USAGE"
        exit 0
        ;;
      --host=* | --port=* | --workers=*)
        name="${1%%=*}"
        value="${1#*=}"
        shift
        ;;
      --host | --port | --workers)
        [ "$#" -ge 2 ] || run_usage_error "$1 needs a value"
        name="$1"
        value="$2"
        shift 2
        ;;
      *) run_usage_error "unknown argument: $1" ;;
    esac
    case "$name" in
      --host) RUN_HOST="$value" ;;
      --port) RUN_PORT="$value" ;;
      --workers) RUN_WORKERS="$value" ;;
    esac
  done
  [ -n "$RUN_HOST" ] || run_usage_error "--host needs a value"
  [[ "$RUN_PORT" =~ ^[0-9]+$ ]] && [ "$RUN_PORT" -ge 1 ] && [ "$RUN_PORT" -le 65535 ] ||
    run_usage_error "--port must be a number from 1 to 65535"
  [[ "$RUN_WORKERS" =~ ^[0-9]+$ ]] && [ "$RUN_WORKERS" -ge 1 ] ||
    run_usage_error "--workers must be a whole number of at least 1"
}
