//! The receiving-side tools through the real binary: `hookline verify`,
//! `hookline listen`, the event catalog import and payload validation.

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use crate::common::TestServer;
use hookline_signature::Secret;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_hookline");
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const CATALOG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/platform-events.json");

fn verify(args: &[&str], body: &[u8]) -> (i32, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .arg("verify")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A usage error exits before reading stdin: then the write meets a
    // closed pipe, which is the command's right, not a test failure.
    match child.stdin.take().unwrap().write_all(body) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("writing the body to hookline verify: {e}"),
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn verify_command_reports_valid_invalid_and_usage_errors() {
    let secret: Secret = SECRET.parse().unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = br#"{"webhook_event_type":"sync.complete"}"#;
    let sig = secret.sign("msg_1", now, body).to_string();
    let ts = now.to_string();
    let args = ["--secret", SECRET, "--id", "msg_1", "--timestamp", ts.as_str(), "--signature", sig.as_str()];
    assert_eq!(verify(&args, body), (0, "valid".into(), String::new()));

    let (code, out, _) = verify(&args, b"{\"tampered\":true}");
    assert_eq!(code, 1);
    assert!(out.starts_with("invalid: "), "{out}");

    let old = (now - 3600).to_string();
    let old_sig = secret.sign("msg_1", now - 3600, body).to_string();
    let stale = ["--secret", SECRET, "--id", "msg_1", "--timestamp", old.as_str(), "--signature", old_sig.as_str()];
    let (code, out, _) = verify(&stale, body);
    assert_eq!(code, 1);
    assert!(out.contains("too old"), "{out}");
    let mut tolerant = stale.to_vec();
    tolerant.extend(["--tolerance", "2h"]);
    assert_eq!(verify(&tolerant, body).0, 0);

    // A body file instead of stdin.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).unwrap();
    let mut with_file = args.to_vec();
    with_file.extend(["--body-file", file.to_str().unwrap()]);
    assert_eq!(verify(&with_file, b"ignored").0, 0);

    // Usage errors exit 2.
    assert_eq!(verify(&["--secret", SECRET], body).0, 2);
    let bad = ["--secret", "whsec_!!", "--id", "m", "--timestamp", "1", "--signature", "v1,x"];
    assert_eq!(verify(&bad, body).0, 2);
}

#[tokio::test]
async fn listen_command_verifies_and_prints_each_delivery() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(BIN)
        .args(["listen", "--secret", SECRET, "--port", &port.to_string(), "--status", "202"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let client = reqwest::Client::new();
    let secret: Secret = SECRET.parse().unwrap();
    let body = r#"{"webhook_event_type":"sync.complete","run_id":"r1"}"#;
    let now = chrono::Utc::now().timestamp();
    let sig = secret.sign("msg_listen", now, body.as_bytes()).to_string();
    let mut status = None;
    for _ in 0..100 {
        let res = client
            .post(format!("http://127.0.0.1:{port}/any/path"))
            .header("webhook-id", "msg_listen")
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", &sig)
            .body(body)
            .send()
            .await;
        if let Ok(r) = res {
            status = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some(202));
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(line.starts_with("sync.complete msg_listen skew=+"), "{line}");
    assert!(line.ends_with(" valid"), "{line}");
    let mut pretty = String::new();
    while !pretty.ends_with("}\n") {
        let l = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
        pretty.push_str(&l);
        pretty.push('\n');
    }
    assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap()["run_id"], "r1");

    let res = client
        .post(format!("http://127.0.0.1:{port}/"))
        .header("svix-id", "msg_forged")
        .header("svix-timestamp", now.to_string())
        .header("svix-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body(r#"{"type":"connection.created"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(line.starts_with("connection.created msg_forged skew="), "{line}");
    assert!(line.contains(" invalid: "), "{line}");
}

#[tokio::test]
async fn catalog_import_is_idempotent_and_validates_payloads() {
    let server = TestServer::start().await;
    let first = server.cli_ok(&["event-types", "import", CATALOG]).await;
    assert_eq!(first, "4 created, 0 updated, 0 unchanged");
    let again = server.cli_ok(&["event-types", "import", CATALOG]).await;
    assert_eq!(again, "0 created, 0 updated, 4 unchanged");

    let (status, et) = server.admin().get("/api/v1/event-type/sync.complete").await;
    assert_eq!(status, 200);
    assert_eq!(et["validatePayloads"], true);
    let example = et["schemas"]["1"]["examples"][0].clone();
    assert_eq!(example["result"], "SUCCESS");

    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "c"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/app/{app}/msg");
    let (status, _) = server.admin().post(&path, &json!({"eventType": "sync.complete", "payload": example})).await;
    assert_eq!(status, 202, "the catalog's own example is valid");

    let mut bad = example.clone();
    bad["num_records_synced"] = json!(-5);
    bad["result"] = json!("MAYBE");
    let (status, body) = server.admin().post(&path, &json!({"eventType": "sync.complete", "payload": bad})).await;
    common::assert_error_shape(status, &body);
    assert_eq!(status, 422, "{body}");
    let locs: Vec<Value> = body["detail"].as_array().unwrap().iter().map(|d| d["loc"].clone()).collect();
    assert!(locs.contains(&json!(["body", "payload", "num_records_synced"])), "{body}");
    assert!(locs.contains(&json!(["body", "payload", "result"])), "{body}");

    let mut failed_without_reason = example.clone();
    failed_without_reason["result"] = json!("ERROR");
    let (status, body) =
        server.admin().post(&path, &json!({"eventType": "sync.complete", "payload": failed_without_reason})).await;
    assert_eq!(status, 422, "an ERROR result needs an error_message: {body}");

    // send-example holds a payload of the caller's to the schema too; the
    // schema's own example goes out.
    let (status, ep) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": "https://receiver.example.invalid/hook"}))
        .await;
    assert_eq!(status, 201, "{ep}");
    let send_example = format!("/api/v1/app/{app}/endpoint/{}/send-example", ep["id"].as_str().unwrap());
    let (status, body) =
        server.admin().post(&send_example, &json!({"eventType": "sync.complete", "payload": bad})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = server.admin().post(&send_example, &json!({"eventType": "sync.complete"})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["payload"], example);

    // Types that did not opt in accept anything, as in Svix.
    let (status, _) = server.admin().post(&path, &json!({"eventType": "unregistered.type", "payload": {"x": 1}})).await;
    assert_eq!(status, 202);
    let (status, body) =
        server.admin().patch("/api/v1/event-type/sync.complete", &json!({"validatePayloads": false})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.admin().post(&path, &json!({"eventType": "sync.complete", "payload": bad})).await;
    assert_eq!(status, 202);
    let third = server.cli_ok(&["event-types", "import", CATALOG]).await;
    assert_eq!(third, "0 created, 1 updated, 3 unchanged");
}

#[tokio::test]
async fn serve_imports_the_catalog_given_at_start() {
    let server = TestServer::builder().serve_arg("--event-catalog").serve_arg(CATALOG).start().await;
    let (status, list) = server.admin().get("/api/v1/event-type").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["connection.created", "connection.deleted", "sync.complete", "sync.paused"]);
    assert!(server.log().contains("event catalog imported"));

    let out = server.cli(&["event-types", "import", "/nonexistent/catalog.json"]).await;
    assert!(!out.status.success(), "a missing catalog file is an error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/catalog.json"));
}

#[tokio::test]
async fn invalid_schemas_are_refused() {
    let server = TestServer::start().await;
    let (status, body) = server
        .admin()
        .post("/api/v1/event-type", &json!({"name": "bad.schema", "description": "d", "schemas": {"1": {"type": 12}}}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "schemas", "1"]));
}
