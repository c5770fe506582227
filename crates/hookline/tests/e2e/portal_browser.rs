//! The portal in a real browser: Debian's headless Chromium, driven by
//! playwright-core from `tests/e2e/portal/portal.test.mjs`, against the real
//! binary with fixtures created through the API. Needs
//! `HOOKLINE_TEST_CHROMIUM` (the browser) and `HOOKLINE_TEST_NODE_MODULES`
//! (a `node_modules` holding playwright-core); `scripts/test.sh` sets both
//! up. Screenshots land in `target/portal-screenshots/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{str_of, TestServer};
use crate::receiver::{Receiver, Reply};
use serde_json::{json, Value};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/portal/portal.test.mjs");
const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/platform-events.json");

const SETUP: &str = "Set up the browser tests (as root on Debian), or just run scripts/test.sh:\n  \
    apt-get install -y chromium\n  \
    (cd crates/hookline/tests/e2e/portal && npm ci)\n  \
    export HOOKLINE_TEST_CHROMIUM=/usr/bin/chromium\n  \
    export HOOKLINE_TEST_NODE_MODULES=$PWD/crates/hookline/tests/e2e/portal/node_modules";

fn required_path(var: &str) -> PathBuf {
    let value = std::env::var(var).unwrap_or_default();
    assert!(!value.is_empty(), "{var} is not set.\n{SETUP}");
    let path = PathBuf::from(&value);
    assert!(path.exists(), "{var}={value} does not exist.\n{SETUP}");
    path
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("portal-screenshots")
}

async fn portal_url(server: &TestServer, app: &str, read_only: bool) -> String {
    let (status, body) =
        server.admin().post(&format!("/api/v1/auth/app-portal-access/{app}"), &json!({"readOnly": read_only})).await;
    assert_eq!(status, 200, "{body}");
    str_of(&body, "url").to_string()
}

async fn create_endpoint(server: &TestServer, app: &str, body: Value) -> Value {
    let (status, ep) = server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &body).await;
    assert_eq!(status, 201, "{ep}");
    ep
}

/// Polls `check` until it holds; panics naming `what` after `within`.
async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn portal_works_in_a_real_browser() {
    let chromium = required_path("HOOKLINE_TEST_CHROMIUM");
    let modules = required_path("HOOKLINE_TEST_NODE_MODULES");
    let playwright = modules.join("playwright-core/index.mjs");
    assert!(playwright.is_file(), "{} is missing: run npm ci in tests/e2e/portal.\n{SETUP}", playwright.display());
    let node = std::env::var("HOOKLINE_TEST_NODE").unwrap_or_else(|_| "node".into());

    let receiver = Receiver::scripted(|_, path| Reply::status(if path.contains("fail") { 500 } else { 200 })).await;
    let server = TestServer::builder()
        .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_RETRY_SCHEDULE", "1s,1s")
        .serve_arg("--event-catalog")
        .serve_arg(CATALOG)
        .start()
        .await;
    let admin = server.admin();

    // Application A starts empty: the browser adds its endpoint.
    let app_a = server.create_app("Acme Corp", Some("acme")).await;
    let app_a = str_of(&app_a, "id").to_string();
    // Application B has traffic: one healthy endpoint, one failing.
    let app_b = server.create_app("Beta Inc", Some("beta")).await;
    let app_b = str_of(&app_b, "id").to_string();
    let ok_url = receiver.url("/beta/production");
    let fail_url = receiver.url("/beta/staging-fail");
    let ok = create_endpoint(&server, &app_b, json!({"url": ok_url, "description": "Production"})).await;
    create_endpoint(
        &server,
        &app_b,
        json!({"url": fail_url, "description": "Staging", "filterTypes": ["sync.complete", "sync.paused"]}),
    )
    .await;
    let (status, body) = admin
        .post("/api/v1/event-type", &json!({"name": "test.archivable", "description": "Archived by the console test"}))
        .await;
    assert_eq!(status, 201, "{body}");
    // The catalog validates payloads: send its own examples.
    let catalog: Value = serde_json::from_str(&std::fs::read_to_string(CATALOG).expect("read the catalog")).unwrap();
    let example = |name: &str| -> Value {
        let et = catalog["eventTypes"].as_array().unwrap().iter().find(|e| e["name"] == name).unwrap();
        et["schemas"]["1"]["examples"][0].clone()
    };
    let mut msg_id = String::new();
    for i in 0..8 {
        let event_type = if i % 3 == 0 { "connection.created" } else { "sync.complete" };
        let payload = example(event_type);
        let (status, msg) = admin
            .post(&format!("/api/v1/app/{app_b}/msg"), &json!({"eventType": event_type, "payload": payload}))
            .await;
        assert_eq!(status, 202, "{msg}");
        msg_id = str_of(&msg, "id").to_string();
    }
    // Wait for the deliveries and for the failing endpoint to be known as failing.
    receiver.wait_for("/beta/production", 8, Duration::from_secs(30)).await;
    wait_until("the failing endpoint in the overview", Duration::from_secs(30), || async {
        let (_, o) = admin.get("/api/v1/hookline/overview").await;
        o["failingCount"].as_u64().unwrap_or(0) >= 1
    })
    .await;

    let console_url = server.cli_ok(&["console"]).await;
    let fixtures = json!({
        "appA": {"id": app_a, "portalUrl": portal_url(&server, &app_a, false).await},
        "appB": {
            "id": app_b,
            "portalUrl": portal_url(&server, &app_b, false).await,
            "readOnlyUrl": portal_url(&server, &app_b, true).await,
            "embedUrl": portal_url(&server, &app_b, false).await,
            "endpointOk": str_of(&ok, "id"),
            "okUrl": ok_url,
            "msgId": msg_id,
        },
        "receiverOk": receiver.url("/acme/webhooks"),
        "receiverFail": fail_url,
        "consoleUrl": console_url,
    });

    let started = Instant::now();
    let mut cmd = tokio::process::Command::new(&node);
    cmd.arg(SCRIPT)
        .env("HOOKLINE_URL", server.base_url())
        .env("ADMIN_TOKEN", server.admin_token())
        .env("FIXTURES", fixtures.to_string())
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("SCREENSHOT_DIR", screenshot_dir())
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the browser tests did not finish within 5 minutes")
        .unwrap_or_else(|e| panic!("cannot run {node} {SCRIPT}: {e}\n{SETUP}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    println!("browser tests ran in {:.1} s", started.elapsed().as_secs_f64());
    let summary = stdout.lines().rev().find(|l| l.ends_with(" failed")).unwrap_or("");
    assert!(output.status.success(), "the browser tests failed ({}; {summary}):\n{stdout}\n{stderr}", output.status);
    assert_eq!(summary, "6 passed, 0 failed", "unexpected summary:\n{stdout}");
}
