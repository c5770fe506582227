//! The official Svix SDKs, unchanged but for the server URL, against the real
//! binary: one script per SDK drives the same parity scenarios and prints one
//! line per check, then `N passed, M failed`.
//!
//! - Python: `compat/svix_sdk.py`, run by `$HOOKLINE_TEST_PYTHON` (a Python
//!   that has `svix` installed, e.g. a virtualenv's `bin/python`).
//! - JavaScript: `compat/js/svix_sdk.mjs`, run by Node (`$HOOKLINE_TEST_NODE`,
//!   default `node`) with the npm package `svix` from
//!   `$HOOKLINE_TEST_SDK_NODE_MODULES` (`npm ci` in `compat/js`).
//!
//! The Rust SDK has its own crate (`tests/sdk-rust`), so that building the
//! server never compiles it. `scripts/test.sh` sets all of this up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::TestServer;

const COMPAT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/compat");

const SETUP: &str = "Set up the SDK tests, or just run scripts/test.sh:\n  \
    python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt\n  \
    export HOOKLINE_TEST_PYTHON=$PWD/.venv/bin/python\n  \
    (cd crates/hookline/tests/e2e/compat/js && npm ci)\n  \
    export HOOKLINE_TEST_SDK_NODE_MODULES=$PWD/crates/hookline/tests/e2e/compat/js/node_modules";

/// The value of a variable naming a file or directory the test needs.
fn required_path(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_default();
    assert!(!value.is_empty(), "{var} is not set.\n{SETUP}");
    let path = PathBuf::from(&value);
    assert!(path.exists(), "{var}={value} does not exist.\n{SETUP}");
    path
}

/// Runs `program script` against a fresh server (deliveries to loopback
/// allowed, one attempt per delivery, so the scripts' receivers see exact
/// counts) and asserts its summary is `{expected} passed, 0 failed`.
async fn run_sdk_script(program: &Path, script: &str, env: &[(&str, &Path)], expected: usize) {
    assert!(Path::new(script).is_file(), "{script} is missing");
    let server = TestServer::builder()
        .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_RETRY_SCHEDULE", "")
        .start()
        .await;
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(script)
        .env("SERVER_URL", server.base_url())
        .env("TOKEN", server.admin_token())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(name, value)| (name, value)))
        .kill_on_drop(true);
    for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        cmd.env_remove(proxy);
    }
    let started = Instant::now();
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the SDK script did not finish within 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {} {script}: {e}\n{SETUP}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("{script} ran in {:.1} s", started.elapsed().as_secs_f64());

    let summary = stdout.lines().rev().find(|l| l.ends_with(" failed")).unwrap_or("");
    assert!(output.status.success(), "the SDK script failed ({}; {summary}):\n{stdout}\n{stderr}", output.status);
    assert_eq!(summary, format!("{expected} passed, 0 failed"), "unexpected summary:\n{stdout}");
}

#[tokio::test]
async fn official_python_sdk_works_against_hookline() {
    let python = required_path("HOOKLINE_TEST_PYTHON");
    run_sdk_script(&python, &format!("{COMPAT}/svix_sdk.py"), &[], 41).await;
}

#[tokio::test]
async fn official_javascript_sdk_works_against_hookline() {
    let modules = required_path("HOOKLINE_TEST_SDK_NODE_MODULES");
    let package = modules.join("svix/package.json");
    assert!(package.is_file(), "{} is missing: run npm ci in tests/e2e/compat/js.\n{SETUP}", package.display());
    let node = std::env::var("HOOKLINE_TEST_NODE").unwrap_or_else(|_| "node".into());
    let script = format!("{COMPAT}/js/svix_sdk.mjs");
    run_sdk_script(Path::new(&node), &script, &[("SVIX_NODE_MODULES", &modules)], 34).await;
}
