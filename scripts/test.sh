#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs the Python
# packages the interop tests need into .venv, checks formatting and lints,
# runs the Rust test suites (unit, end-to-end against the real binary, SDK
# compatibility, crash test) and a seconds-long benchmark smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export HOOKLINE_TEST_PYTHON="$PWD/.venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== benchmark smoke run"
scripts/bench.sh --smoke
echo "== cargo test"
cargo test --workspace
