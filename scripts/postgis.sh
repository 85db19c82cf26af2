#!/usr/bin/env bash
# Make a PostGIS server available for the tests and print its base URL (without database name).
# Sourced by scripts/test. Uses the running PostgreSQL on 127.0.0.1:5432 when the distribution has
# a PostGIS package for its major version; otherwise installs the distribution's own PostgreSQL +
# PostGIS pair and starts a test cluster on port 5433.
set -euo pipefail

PG_HOST="${REFERRAL_NET_PG_HOST:-127.0.0.1}"
PG_PORT="${REFERRAL_NET_PG_PORT:-5432}"
PG_USER="${REFERRAL_NET_PG_USER:-postgres}"
FALLBACK_PORT=5433
FALLBACK_CLUSTER=referralnet

pg_answers() { psql -h "$1" -p "$2" -U "$PG_USER" -d postgres -tAc "select 1" >/dev/null 2>&1; }

start_local_cluster_if_down() {
  if ! pg_answers "$PG_HOST" "$PG_PORT" && [ -d /etc/postgresql ]; then
    local version
    for version in $(ls /etc/postgresql); do
      if [ -d "/etc/postgresql/$version/main" ]; then
        log "starting PostgreSQL $version cluster 'main'"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
      fi
    done
    for _ in $(seq 1 30); do pg_answers "$PG_HOST" "$PG_PORT" && break; sleep 1; done
  fi
}

running_major() {
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc \
    "select current_setting('server_version_num')::int / 10000" 2>/dev/null
}

has_candidate() {
  # Capture first: with pipefail, grep -q closing the pipe early would fail the pipeline.
  local policy
  policy="$(apt-cache policy "$1" 2>/dev/null)"
  grep -q 'Candidate: [0-9]' <<<"$policy"
}

ensure_postgis() {
  ensure_debian_packages postgresql-client
  start_local_cluster_if_down
  local major=""
  if pg_answers "$PG_HOST" "$PG_PORT"; then
    major="$(running_major)"
  fi
  if [ -n "$major" ]; then
    local pkg="postgresql-${major}-postgis-3"
    if is_installed "$pkg"; then
      POSTGIS_BASE_URL="postgresql+psycopg://${PG_USER}@${PG_HOST}:${PG_PORT}"
      return 0
    fi
    apt_update_once
    if has_candidate "$pkg"; then
      ensure_debian_packages "$pkg"
      POSTGIS_BASE_URL="postgresql+psycopg://${PG_USER}@${PG_HOST}:${PG_PORT}"
      return 0
    fi
    log "no $pkg in this distribution: using its own PostgreSQL + PostGIS on port $FALLBACK_PORT"
  else
    log "no PostgreSQL answers on $PG_HOST:$PG_PORT: using the distribution's on port $FALLBACK_PORT"
  fi
  start_fallback_cluster
  POSTGIS_BASE_URL="postgresql+psycopg://postgres@127.0.0.1:${FALLBACK_PORT}"
}

start_fallback_cluster() {
  apt_update_once
  # The newest major version for which the distribution has both the server and PostGIS.
  # (The installed 'postgresql' metapackage may come from an older release, so ask apt-cache.)
  local distro_major="" candidate
  for candidate in $(seq 25 -1 12); do
    if has_candidate "postgresql-$candidate" && has_candidate "postgresql-${candidate}-postgis-3"; then
      distro_major="$candidate"
      break
    fi
  done
  [ -n "$distro_major" ] || { log "no PostgreSQL + PostGIS pair in this distribution"; exit 1; }
  ensure_debian_packages "postgresql-$distro_major" "postgresql-${distro_major}-postgis-3"
  if [ ! -d "/etc/postgresql/$distro_major/$FALLBACK_CLUSTER" ]; then
    pg_createcluster "$distro_major" "$FALLBACK_CLUSTER" -p "$FALLBACK_PORT" --start-conf=manual \
      -- --auth-local=trust --auth-host=trust >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$distro_major" "$FALLBACK_CLUSTER" start 2>/dev/null || true
  for _ in $(seq 1 30); do pg_answers 127.0.0.1 "$FALLBACK_PORT" && return 0; sleep 1; done
  log "the fallback PostgreSQL cluster did not start"
  exit 1
}
