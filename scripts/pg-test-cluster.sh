#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: Debian's package, a fresh
# cluster in a temporary directory, trust authentication, loopback only, on
# a free port, with durable commits (synchronous_commit=on, fsync=on).
#
#   eval "$(scripts/pg-test-cluster.sh start)"   # prints the variables to export
#   HOOKLINE_TEST_BACKEND=postgres cargo test -p hookline --test e2e
#   scripts/pg-test-cluster.sh stop              # stops $HOOKLINE_TEST_PG_DIR, removes it
#
# `start` exports HOOKLINE_TEST_DATABASE_URL (the admin URL the tests create
# their databases through), HOOKLINE_TEST_PG_BIN (for tests that run their
# own cluster) and HOOKLINE_TEST_PG_DIR (what `stop` removes). PostgreSQL
# refuses to run as root, so as root the server runs as the `postgres` user
# the Debian package creates; as root on a machine without PostgreSQL,
# `start` installs the package with apt-get. Everything but the exports goes
# to stderr.
set -euo pipefail

usage() {
  echo "usage: $0 start | stop [DIR]" >&2
  exit 2
}

# The newest PostgreSQL under /usr/lib/postgresql/*/bin, or nothing.
find_pg_bin() {
  local dir
  for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
    if [[ -x $dir/pg_ctl && -x $dir/initdb && -x $dir/pg_isready ]]; then
      echo "$dir"
      return
    fi
  done
}

# Runs a PostgreSQL program as the cluster's owner, from a directory it can read.
as_owner() {
  if [[ $(id -u) == 0 ]]; then
    (cd "$cluster_dir" && runuser -u postgres -- "$@")
  else
    (cd "$cluster_dir" && "$@")
  fi
}

start() {
  pg_bin=$(find_pg_bin)
  if [[ -z $pg_bin ]]; then
    if [[ $(id -u) != 0 ]]; then
      echo "no PostgreSQL under /usr/lib/postgresql/*/bin; install Debian's postgresql package" >&2
      exit 1
    fi
    echo "== installing postgresql (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    pg_bin=$(find_pg_bin)
    [[ -n $pg_bin ]] || { echo "postgresql installed, but no pg_ctl under /usr/lib/postgresql/*/bin" >&2; exit 1; }
  fi
  if [[ $(id -u) == 0 ]] && ! id -u postgres >/dev/null 2>&1; then
    echo "PostgreSQL refuses to run as root and there is no postgres user to run it as" >&2
    exit 1
  fi

  cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/hookline-pg.XXXXXX")
  # Leave nothing behind if anything below fails.
  started=0
  trap 'if [[ $started == 0 ]]; then
          as_owner "$pg_bin/pg_ctl" -D "$cluster_dir/data" -m immediate stop >/dev/null 2>&1 || true
          rm -rf "$cluster_dir"
        fi' EXIT
  mkdir "$cluster_dir/sock"
  if [[ $(id -u) == 0 ]]; then
    chown -R postgres:postgres "$cluster_dir"
  fi
  # --no-sync: only a crash of the machine could lose initdb's files, and
  # that ends the test run anyway; the server itself runs with fsync=on.
  as_owner "$pg_bin/initdb" -D "$cluster_dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$cluster_dir/initdb.log" 2>&1 \
    || { cat "$cluster_dir/initdb.log" >&2; false; }

  local port attempt ready
  for attempt in 1 2 3 4 5; do
    # Below Linux's ephemeral range (32768+), so that outgoing connections
    # are unlikely to hold it; a taken port fails the start and we retry.
    port=$((20000 + RANDOM % 12000))
    if ! as_owner "$pg_bin/pg_ctl" -D "$cluster_dir/data" -l "$cluster_dir/postgres.log" -w -t 60 start -o "\
-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$cluster_dir/sock \
-c synchronous_commit=on -c fsync=on -c max_connections=400" >/dev/null; then
      if grep -q "Address already in use" "$cluster_dir/postgres.log"; then
        echo "port $port was taken; trying another" >&2
        continue
      fi
      tail -n 20 "$cluster_dir/postgres.log" >&2
      false
    fi
    # pg_ctl -w saw the postmaster ready; wait until it answers on TCP too.
    ready=0
    for _ in $(seq 600); do
      if "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 1; then
        ready=1
        break
      fi
      sleep 0.1
    done
    [[ $ready == 1 ]] || { echo "PostgreSQL on port $port did not get ready within 60 s" >&2; tail -n 20 "$cluster_dir/postgres.log" >&2; false; }
    started=1
    echo "$("$pg_bin/pg_ctl" --version) on 127.0.0.1:$port, cluster in $cluster_dir" >&2
    echo "export HOOKLINE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
    echo "export HOOKLINE_TEST_PG_BIN=$pg_bin"
    echo "export HOOKLINE_TEST_PG_DIR=$cluster_dir"
    return
  done
  echo "no free port for PostgreSQL after $attempt tries" >&2
  false
}

stop() {
  cluster_dir=${1:-${HOOKLINE_TEST_PG_DIR:-}}
  [[ -n $cluster_dir ]] || { echo "stop: no DIR given and HOOKLINE_TEST_PG_DIR is not set" >&2; exit 2; }
  [[ -d $cluster_dir/data ]] || { echo "stop: $cluster_dir holds no cluster" >&2; exit 1; }
  local pg_bin=${HOOKLINE_TEST_PG_BIN:-$(find_pg_bin)}
  # Stop the server if it runs; remove the directory either way.
  if as_owner "$pg_bin/pg_ctl" -D "$cluster_dir/data" status >/dev/null 2>&1; then
    as_owner "$pg_bin/pg_ctl" -D "$cluster_dir/data" -m fast -w -t 60 stop >/dev/null
  fi
  rm -rf "$cluster_dir"
}

case "${1:-}" in
  start) [[ $# == 1 ]] || usage; start ;;
  stop) [[ $# -le 2 ]] || usage; stop "${2:-}" ;;
  *) usage ;;
esac
