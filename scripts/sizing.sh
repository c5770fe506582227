#!/usr/bin/env bash
# Measures the figures docs/operations.md sizes from, on the embedded store:
# messages per second and CPU per message (accepted and delivered to one
# loopback endpoint), disk per message, and how long `hookline backup` and
# `hookline status` take on the result while `serve` runs.
#
#   scripts/sizing.sh [MESSAGES] [CONCURRENCY]    default 20000 64 (`hookline-bench load` sends 1 KB payloads)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}; C=${2:-64}
cargo build --release -q -p hookline -p hookline-bench
WORK=$(mktemp -d); PORT=$((20000 + RANDOM % 20000)); PID=
trap '[[ -n $PID ]] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
export HOOKLINE_DATA_DIR="$WORK/data"
HOOKLINE_LISTEN="127.0.0.1:$PORT" HOOKLINE_ADMIN_TOKEN=bench HOOKLINE_ALLOWED_PRIVATE_CIDRS=127.0.0.0/8 \
  HOOKLINE_LOG=warn target/release/hookline serve &
PID=$!
for _ in $(seq 200); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
ticks() { set -- $(cut -d' ' -f14,15 "/proc/$PID/stat"); echo $(($1 + $2)); }
HZ=$(getconf CLK_TCK)
before=$(ticks); started=$(date +%s.%N)
target/release/hookline-bench load --url "http://127.0.0.1:$PORT" --token bench -n "$N" -c "$C" --deliver | tee "$WORK/out"
after=$(ticks); ended=$(date +%s.%N)
awk -v t=$((after - before)) -v hz="$HZ" -v n="$N" -v s="$started" -v e="$ended" \
  'BEGIN { printf "hookline CPU per message (accept + one delivery): %.0f us; %.2f cores busy while it ran\n", t/hz/n*1e6, t/hz/(e-s) }'
echo "== while serve runs"
/usr/bin/time -o "$WORK/t" -f "status: %e s, %M KiB max RSS" target/release/hookline status >/dev/null; cat "$WORK/t"
/usr/bin/time -o "$WORK/t" -f "backup: %e s, %M KiB max RSS" target/release/hookline backup "$WORK/copy.db" >/dev/null 2>&1; cat "$WORK/t"
ls -l "$WORK/copy.db" | awk '{ printf "backup file: %d bytes\n", $5 }'
grep VmHWM "/proc/$PID/status" | awk '{ printf "serve peak memory (VmHWM): %d MiB\n", $2/1024 }'
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
bytes=$(du -sb "$WORK/data" | cut -f1)
awk -v b="$bytes" -v n="$N" 'BEGIN { printf "data directory after %d messages (each with one delivered attempt): %d bytes, %.0f bytes per message, %.2f GB per million\n", n, b, b/n, b/n*1e6/1e9 }'
