#!/usr/bin/env bash
# Long run of the API fuzz test (CI runs a few hundred requests):
#   scripts/fuzz.sh [ITERATIONS]        default 20000
#   HOOKLINE_FUZZ_SEED=N scripts/fuzz.sh   replays a run
set -euo pipefail
cd "$(dirname "$0")/.."
HOOKLINE_FUZZ_ITERATIONS="${1:-20000}" cargo test -p hookline --test e2e api_fuzz:: -- --nocapture
