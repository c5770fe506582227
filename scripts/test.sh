#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs the Python
# packages the interop tests need into .venv, Debian's chromium and the
# portal tests' npm packages (playwright-core, no browser download), the
# JavaScript SDK test's npm package (svix), the generated-client test's
# (openapi-typescript, typescript, openapi-fetch), checks
# formatting and lints, runs a seconds-long benchmark smoke run, starts a
# throwaway PostgreSQL (scripts/pg-test-cluster.sh), then runs the Rust test
# suites (unit, end-to-end against the real binary, SDK compatibility, crash
# test) on the embedded store, and the end-to-end tests again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export HOOKLINE_TEST_PYTHON="$PWD/.venv/bin/python"

# The portal's browser tests: Debian's chromium, driven by playwright-core.
if [[ ! -x /usr/bin/chromium ]]; then
  echo "== installing chromium (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
portal_tests=crates/hookline/tests/e2e/portal
# npm ci in $1 when its node_modules is missing or older than the lock file.
npm_ci() {
  if [[ ! -f $1/node_modules/.package-lock.json \
        || $1/package-lock.json -nt $1/node_modules/.package-lock.json ]]; then
    (cd "$1" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci "$portal_tests"
export HOOKLINE_TEST_CHROMIUM=/usr/bin/chromium
export HOOKLINE_TEST_NODE_MODULES="$PWD/$portal_tests/node_modules"
# The official Svix JavaScript SDK (tests/e2e/sdk_compat.rs).
sdk_js_tests=crates/hookline/tests/e2e/compat/js
npm_ci "$sdk_js_tests"
export HOOKLINE_TEST_SDK_NODE_MODULES="$PWD/$sdk_js_tests/node_modules"
# openapi-typescript, typescript and openapi-fetch: a TypeScript client
# generated from the served spec compiles (tests/e2e/openapi_client.rs).
client_tests=crates/hookline/tests/e2e/openapi_client
npm_ci "$client_tests"
export HOOKLINE_TEST_CLIENT_NODE_MODULES="$PWD/$client_tests/node_modules"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== benchmark smoke run"
scripts/bench.sh --smoke
echo "== PostgreSQL for the tests"
# Exports HOOKLINE_TEST_DATABASE_URL (the store tests and the e2e servers
# create their databases through it) and HOOKLINE_TEST_PG_BIN (for tests
# that run and crash a cluster of their own).
pg_env=$(scripts/pg-test-cluster.sh start)
eval "$pg_env"
trap 'scripts/pg-test-cluster.sh stop' EXIT
echo "== cargo test (every suite; end-to-end on the embedded store)"
cargo test --workspace
echo "== cargo test: end-to-end tests on PostgreSQL"
# --workspace --test e2e (not -p hookline): the same features as the run
# above, so nothing is compiled again (the Rust SDK's crate adds features to
# shared dependencies such as rustls).
HOOKLINE_TEST_BACKEND=postgres cargo test --workspace --test e2e
