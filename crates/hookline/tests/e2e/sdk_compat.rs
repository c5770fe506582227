//! The official Svix Python SDK, unchanged but for `server_url`, against the
//! real binary: `tests/e2e/compat/svix_sdk.py` run by `$HOOKLINE_TEST_PYTHON`
//! (a Python that has `svix` installed, e.g. a virtualenv's `bin/python`).

use std::path::Path;
use std::time::Duration;

use crate::common::TestServer;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/compat/svix_sdk.py");

#[tokio::test]
async fn official_python_sdk_works_against_hookline() {
    let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_default();
    assert!(
        !python.is_empty(),
        "HOOKLINE_TEST_PYTHON is not set. Point it at a Python with the Svix SDK installed, e.g.\n  \
         python3 -m venv /tmp/pyv && /tmp/pyv/bin/pip install svix standardwebhooks\n  \
         HOOKLINE_TEST_PYTHON=/tmp/pyv/bin/python cargo test -p hookline --test sdk_compat"
    );
    assert!(Path::new(SCRIPT).is_file(), "{SCRIPT} is missing");

    let server = TestServer::start().await;
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(SCRIPT)
        .env("SERVER_URL", server.base_url())
        .env("TOKEN", server.admin_token())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the SDK script did not finish within 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {python} {SCRIPT}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");

    let summary = stdout.lines().rev().find(|l| l.ends_with(" failed")).unwrap_or("");
    assert!(output.status.success(), "the Svix SDK script failed ({}; {summary}):\n{stdout}\n{stderr}", output.status);
    let passed: usize = summary.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(summary.ends_with(" 0 failed") && passed >= 20, "unexpected summary {summary:?}:\n{stdout}");
}
