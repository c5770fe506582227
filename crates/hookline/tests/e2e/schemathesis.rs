//! Schemathesis (property-based API testing) against the served
//! `openapi.json`, with an admin token and with an application token: no
//! generated request may get a server error. The run is time-bounded
//! (`HOOKLINE_SCHEMATHESIS_SECONDS`, 30 s by default, per token).

use std::path::PathBuf;
use std::time::Duration;

use crate::common::TestServer;
use serde_json::json;

fn schemathesis() -> PathBuf {
    let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_default();
    assert!(
        !python.is_empty(),
        "HOOKLINE_TEST_PYTHON is not set: run scripts/test.sh, which creates a virtualenv with schemathesis"
    );
    let bin = PathBuf::from(python).with_file_name("schemathesis");
    assert!(bin.is_file(), "{} is missing: pip install -r tests/requirements.txt", bin.display());
    bin
}

async fn run(server: &TestServer, token: &str) {
    let seconds = std::env::var("HOOKLINE_SCHEMATHESIS_SECONDS").unwrap_or_else(|_| "30".into());
    let workdir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(schemathesis());
    cmd.current_dir(workdir.path())
        .args(["run", &server.url("/api/v1/openapi.json")])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-time", &seconds])
        // A loaded machine must not turn "slow" into a failure.
        .args(["--suppress-health-check", "all"])
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .kill_on_drop(true);
    let limit = Duration::from_secs(seconds.parse::<u64>().unwrap_or(30) + 240);
    let output = tokio::time::timeout(limit, cmd.output())
        .await
        .expect("schemathesis ran past its time budget")
        .expect("cannot run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout.lines().filter(|l| l.contains("generated") || l.contains("Seed")).collect();
    println!("{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_with_an_admin_token() {
    let server = TestServer::start().await;
    run(&server, server.admin_token()).await;
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_with_an_application_token() {
    let server = TestServer::start().await;
    let app = server.create_app("Scoped", Some("scoped")).await;
    let app = app["id"].as_str().unwrap();
    let (status, _) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": "https://example.com/h"})).await;
    assert_eq!(status, 201);
    let token = server.token_for_app(app, false).await;
    run(&server, &token).await;
}
