#!/usr/bin/env bash
# Long fuzz runs (CI runs a few hundred requests and a minute of
# Schemathesis from a fixed seed):
#   scripts/fuzz.sh [ITERATIONS]        default 20000 requests, then 10 min
#                                       of Schemathesis per token from a new seed
#   HOOKLINE_FUZZ_SEED=N scripts/fuzz.sh           replays an api_fuzz run
#   HOOKLINE_SCHEMATHESIS_SEED=N scripts/fuzz.sh   replays a Schemathesis run
# Needs what scripts/test.sh installs (.venv with schemathesis).
set -euo pipefail
cd "$(dirname "$0")/.."
HOOKLINE_FUZZ_ITERATIONS="${1:-20000}" cargo test -p hookline --test e2e api_fuzz:: -- --nocapture
HOOKLINE_TEST_PYTHON="$PWD/.venv/bin/python" \
  HOOKLINE_SCHEMATHESIS_SEED="${HOOKLINE_SCHEMATHESIS_SEED:-random}" \
  HOOKLINE_SCHEMATHESIS_SECONDS="${HOOKLINE_SCHEMATHESIS_SECONDS:-600}" \
  cargo test -p hookline --test e2e schemathesis:: -- --nocapture
