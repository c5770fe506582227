//! Logs: a server at debug, exercised with secrets, tokens, custom headers
//! and payloads, never writes any of them; plain text without ANSI escapes
//! when stderr is a file; one line per failed attempt with its ids, status
//! and duration.

use serde_json::json;

use crate::common::TestServer;
use crate::fixtures::*;
use crate::receiver::{Receiver, Reply};

#[tokio::test]
async fn a_debug_log_holds_no_secret_token_or_payload_and_no_colour() {
    let rx = Receiver::scripted(|_, path| Reply::status(if path == "/ok" { 200 } else { 503 })).await;
    let server = TestServer::builder()
        .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_LOG", "debug")
        .env("HOOKLINE_RETRY_SCHEDULE", "100ms")
        .env("HOOKLINE_METRICS_TOKEN", "metrics-token-7c1e5d")
        // Colour would be on if the server did not check for a terminal.
        .env("NO_COLOR", "")
        .start()
        .await;
    let header_secret = "hdr-credential-5f0a9b";
    let query_secret = "url-credential-91d2e0";
    let (app, ep, secret) = app_with_endpoint(
        &server,
        &format!("{}?token={query_secret}", rx.url("/ok")),
        json!({"headers": {"authorization": format!("Bearer {header_secret}"), "x-api-key": header_secret}}),
    )
    .await;
    let failing = add_endpoint(&server, &app, &rx.url("/down"), json!({})).await;
    let (status, rotated) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = endpoint_secret(&server, &app, &ep).await;
    let portal_token = server.token_for_app(&app, false).await;
    let cli_token = server.cli_ok(&["token", "create", "--app", &app]).await;
    let (status, _) = server.api(&portal_token).get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(status, 200);
    let payload_marker = "payload-marker-3e77c4";
    let msg = send(&server, &app, json!({"note": payload_marker})).await;
    rx.wait_for("/ok", 1, WAIT).await;
    rx.wait_for("/down", 2, WAIT).await;
    wait_status(&server, &app, &msg, &failing, "fail").await;
    let bad = server.http().get(server.url("/metrics")).bearer_auth("wrong-token-0000").send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let ok = server.http().get(server.url("/metrics")).bearer_auth("metrics-token-7c1e5d").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);

    let log = server.log();
    assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file:\n{log}");
    let base64_of = |s: &str| s.trim_start_matches("whsec_").to_string();
    for (what, needle) in [
        ("admin token", server.admin_token().to_string()),
        ("endpoint secret", base64_of(&secret)),
        ("rotated endpoint secret", base64_of(&new_secret)),
        ("portal token", portal_token.clone()),
        ("token from the CLI", cli_token.clone()),
        ("metrics token", "metrics-token-7c1e5d".to_string()),
        ("custom header credential", header_secret.to_string()),
        ("credential in the endpoint URL", query_secret.to_string()),
        ("payload", payload_marker.to_string()),
        ("receiver's response body", "reply 0".to_string()),
    ] {
        assert!(!log.contains(&needle), "the log holds the {what} ({needle}):\n{log}");
    }

    // One line per failed attempt at info: ids, status, duration.
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("attempt failed")).collect();
    assert_eq!(failed.len(), 2, "{log}");
    for line in &failed {
        assert!(line.contains(" INFO "), "{line}");
        for field in
            [format!("msg={msg}"), format!("endpoint={failing}"), "status=Some(503)".into(), "duration_ms=".into()]
        {
            assert!(line.contains(&field), "{field} missing: {line}");
        }
    }
    // And one at debug for the successful one.
    let succeeded: Vec<&str> = log.lines().filter(|l| l.contains("attempt succeeded")).collect();
    assert_eq!(succeeded.len(), 1, "{log}");
    assert!(succeeded[0].contains(&format!("endpoint={ep}")) && succeeded[0].contains("status=Some(200)"));
}
