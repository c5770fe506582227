#!/usr/bin/env bash
# Builds Hookline and its benchmark, then runs the benchmark (bench/, the
# hookline-bench program): every scenario of issue 12 against its ceilings,
# the median of 3 runs, a table on stdout and JSON under target/bench/.
#   scripts/bench.sh                                   release build, every scenario, embedded store
#   scripts/bench.sh --scenario ingest,idle --runs 1   some of it
#   scripts/bench.sh --backend postgres --nodes 3      on PostgreSQL (--database-url, or
#                                                      $HOOKLINE_TEST_DATABASE_URL from scripts/pg-test-cluster.sh)
#   scripts/bench.sh --smoke                           seconds long, debug build (CI: the benchmark never rots)
# Every other flag goes to hookline-bench (--help lists them).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=release
for arg in "$@"; do [[ $arg == --smoke ]] && PROFILE=debug; done
if [[ $PROFILE == release ]]; then
  cargo build --release -q -p hookline -p hookline-bench
else
  cargo build -q -p hookline -p hookline-bench
fi
exec "target/$PROFILE/hookline-bench" "$@"
