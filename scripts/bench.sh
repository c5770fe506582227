#!/usr/bin/env bash
# Runs the load program against a fresh release build on a temporary data dir.
#   scripts/bench.sh            full run: 20000 messages at concurrency 64, with delivery
#   scripts/bench.sh --smoke    a seconds-long run (CI uses it so the benchmark never rots)
set -euo pipefail
cd "$(dirname "$0")/.."
N=20000; C=64; PROFILE=release
# The smoke run proves the benchmark still works; its figures mean nothing.
if [[ "${1:-}" == "--smoke" ]]; then N=500; C=16; PROFILE=debug; fi
if [[ $PROFILE == release ]]; then cargo build --release -q -p hookline -p hookline-bench; else cargo build -q -p hookline -p hookline-bench; fi
DATA=$(mktemp -d); PORT=$((20000 + RANDOM % 20000))
trap 'kill $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
HOOKLINE_DATA_DIR="$DATA" HOOKLINE_LISTEN="127.0.0.1:$PORT" HOOKLINE_ADMIN_TOKEN=bench \
  HOOKLINE_ALLOWED_PRIVATE_CIDRS=127.0.0.0/8 HOOKLINE_LOG=warn target/$PROFILE/hookline serve &
PID=$!
for _ in $(seq 200); do (echo > "/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
echo "== accept only (no endpoint): $N messages, concurrency $C"
target/$PROFILE/hookline-load --url "http://127.0.0.1:$PORT" --token bench -n "$N" -c "$C"
echo "== accept and deliver to one loopback endpoint"
target/$PROFILE/hookline-load --url "http://127.0.0.1:$PORT" --token bench -n "$N" -c "$C" --deliver
