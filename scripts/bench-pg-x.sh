#!/usr/bin/env bash
# Measures Hookline on PostgreSQL: NODES hookline processes (release build)
# on one fresh database of the server at $HOOKLINE_BENCH_DATABASE_URL (an
# admin URL; default: the test cluster's $HOOKLINE_TEST_DATABASE_URL), load
# sent round-robin to all of them, then the CPU seconds used by Hookline and
# by PostgreSQL per delivered message.
#
#   scripts/bench-postgres.sh [NODES] [MESSAGES] [CONCURRENCY]     default 1 20000 64
#   scripts/bench-postgres.sh --smoke                               seconds long, debug build
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${1:-1}; N=${2:-20000}; C=${3:-64}; PROFILE=release
if [[ "${1:-}" == "--smoke" ]]; then NODES=2; N=300; C=8; PROFILE=debug; fi
ADMIN_URL=${HOOKLINE_BENCH_DATABASE_URL:-${HOOKLINE_TEST_DATABASE_URL:-}}
if [[ -z "$ADMIN_URL" ]]; then
  echo "set HOOKLINE_BENCH_DATABASE_URL (or start a server: eval \"\$(scripts/pg-test-cluster.sh start)\")" >&2
  exit 2
fi
if [[ $PROFILE == release ]]; then cargo build --release -q -p hookline -p hookline-bench; else cargo build -q -p hookline -p hookline-bench; fi

DB="hl_bench_$RANDOM$RANDOM"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB"
DB_URL="${ADMIN_URL%/*}/$DB"
KEY=$(head -c 32 /dev/urandom | base64)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

URLS=()
for i in $(seq "$NODES"); do
  PORT=$((20000 + RANDOM % 20000))
  mkdir -p "$WORK/node$i"
  (cd "$WORK/node$i" && HOOKLINE_DATABASE_URL="$DB_URL" HOOKLINE_MAIN_KEY="$KEY" HOOKLINE_LISTEN="127.0.0.1:$PORT" \
    HOOKLINE_DATA_DIR="$WORK/node$i/data" HOOKLINE_ADMIN_TOKEN=bench HOOKLINE_ALLOWED_PRIVATE_CIDRS=127.0.0.0/8 \
    HOOKLINE_LOG=warn exec "$OLDPWD/target/$PROFILE/hookline" serve) &
  PIDS+=($!)
  URLS+=(--url "http://127.0.0.1:$PORT")
  for _ in $(seq 300); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
done

# CPU time (user + system, in clock ticks) of processes, from /proc.
ticks() { local t=0; for pid in "$@"; do
  if [[ -r /proc/$pid/stat ]]; then set -- $(cut -d' ' -f14,15 "/proc/$pid/stat"); t=$((t + $1 + $2)); fi
done; echo "$t"; }
pg_pids() { pgrep -u postgres -f "postgres" | tr '\n' ' '; }
HZ=$(getconf CLK_TCK)

echo "== $NODES node(s) on PostgreSQL ($(psql -tA "$ADMIN_URL" -c 'SHOW server_version')), synchronous_commit=$(psql -tA "$DB_URL" -c 'SHOW synchronous_commit')"
before_hl=$(ticks "${PIDS[@]}"); before_pg=$(ticks $(pg_pids))
target/$PROFILE/hookline-load "${URLS[@]}" --token bench -n "$N" -c "$C" ${HOOKLINE_BENCH_LOAD_ARGS:---deliver} | tee "$WORK/out"
after_hl=$(ticks "${PIDS[@]}"); after_pg=$(ticks $(pg_pids))
DELIVERED=$(grep -o 'delivered [0-9]*' "$WORK/out" | grep -o '[0-9]*')
awk -v hl=$((after_hl - before_hl)) -v pg=$((after_pg - before_pg)) -v hz="$HZ" -v n="$DELIVERED" \
  'BEGIN { printf "CPU per delivered message: hookline %.0f us, postgres %.0f us (%.1f s and %.1f s in all)\n", hl/hz/n*1e6, pg/hz/n*1e6, hl/hz, pg/hz }'
psql -q "$DB_URL" -c "VACUUM" >/dev/null
SIZE=$(psql -tA "$DB_URL" -c "SELECT pg_database_size(current_database()) - pg_database_size('template1')")
awk -v b="$SIZE" -v n="$DELIVERED" 'BEGIN { printf "database size after %d delivered messages: %d bytes over an empty one, %.0f bytes per message\n", n, b, b/n }'
