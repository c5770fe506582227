//! Delivery end to end: the real binary sends to real HTTP receivers on
//! loopback (allowed through HOOKLINE_ALLOWED_PRIVATE_CIDRS).

use crate::common;

use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::fixtures::*;
use crate::receiver::{verify_with_python, Received, Receiver, Reply};
use hookline_signature::{Secret, Verifier};
use serde_json::{json, Value};

fn verify_own(secret: &str, r: &Received) {
    let secret: Secret = secret.parse().unwrap();
    let headers: Vec<(String, String)> = r.headers.clone().into_iter().collect();
    Verifier::new(secret).verify(&headers, &r.body).unwrap_or_else(|e| panic!("own verifier rejected a delivery: {e}"));
}

#[tokio::test]
async fn delivers_signed_exact_payload_with_both_header_sets() {
    let rx = Receiver::start().await;
    // A proxy in the environment is ignored: it would resolve destinations
    // past the SSRF guard (here it would also make every delivery fail).
    let server = server_with(&[("HTTP_PROXY", "http://127.0.0.1:9"), ("ALL_PROXY", "http://127.0.0.1:9")]).await;
    let (app, ep, secret) = app_with_endpoint(&server, &rx.url("/hook"), json!({"headers": {"x-tenant": "t1"}})).await;
    let msg = send(&server, &app, json!({"run_id": "r1", "emoji": "✓", "n": 1.5})).await;
    let got = rx.wait_for("/hook", 1, WAIT).await;
    let r = &got[0];
    assert_eq!(r.id(), msg);
    assert_eq!(r.header("svix-id"), msg);
    assert_eq!(r.header("webhook-timestamp"), r.header("svix-timestamp"));
    assert_eq!(r.header("webhook-signature"), r.header("svix-signature"));
    assert_eq!(r.header("content-type"), "application/json");
    assert!(r.header("user-agent").starts_with("Hookline/"));
    assert_eq!(r.header("x-tenant"), "t1");
    assert_eq!(r.header("content-length"), r.body.len().to_string());
    assert!(!r.headers.contains_key("transfer-encoding"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, json!({"run_id": "r1", "emoji": "✓", "n": 1.5}));
    let skew = r.header("webhook-timestamp").parse::<i64>().unwrap() - chrono::Utc::now().timestamp();
    assert!(skew.abs() < 60, "timestamp skew {skew}");
    verify_own(&secret, r);
    verify_with_python(&[(secret.clone(), r.clone())]);
    let d = wait_status(&server, &app, &msg, &ep, "success").await;
    assert!(d["nextAttempt"].is_null());
    let attempts = attempts_of(&server, &app, &msg).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["responseStatusCode"], 200);
    assert_eq!(attempts[0]["status"], 0);
    assert_eq!(attempts[0]["triggerType"], 0);
    assert_eq!(attempts[0]["response"], "reply 0");

    let (status, sent) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}/msg")).await;
    assert_eq!(status, 200, "{sent}");
    let sent = sent["data"].as_array().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["id"], msg.as_str());
    assert_eq!(sent[0]["statusText"], "success");
    assert_eq!(sent[0]["payload"]["run_id"], "r1");
    let (_, failed_only) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}/msg?status=2")).await;
    assert!(failed_only["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn payload_bytes_are_delivered_exactly_as_sent() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, _, secret) = app_with_endpoint(&server, &rx.url("/exact"), json!({})).await;
    // Numbers beyond f64, exponents, key order and spacing must all survive.
    let payload = r#"{ "z": 123456789012345678901234567890, "a": 1e2, "nested": {"b": [1, 2.50]} }"#;
    let body = format!(r#"{{"eventType": "sync.complete", "payload": {payload}}}"#);
    let res = server
        .http()
        .post(server.url(&format!("/api/v1/app/{app}/msg")))
        .bearer_auth(server.admin_token())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let echoed = res.text().await.unwrap();
    assert!(echoed.contains("123456789012345678901234567890"), "{echoed}");
    let got = rx.wait_for("/exact", 1, WAIT).await;
    assert_eq!(String::from_utf8(got[0].body.clone()).unwrap(), payload);
    verify_own(&secret, &got[0]);
}

#[tokio::test]
async fn deliver_at_holds_the_first_attempt_until_then() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/later"), json!({})).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let sent = Instant::now();
    let (status, msg) = server
        .admin()
        .post(
            &format!("/api/v1/app/{app}/msg"),
            &json!({"eventType": "sync.complete", "payload": {}, "deliverAt": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let msg_id = msg["id"].as_str().unwrap().to_string();
    assert!(msg["deliverAt"].is_string());
    let pending = wait_status(&server, &app, &msg_id, &ep, "pending").await;
    assert!(pending["nextAttempt"].is_string());
    rx.wait_for("/later", 1, WAIT).await;
    assert!(sent.elapsed() >= Duration::from_millis(1800), "delivered after {:?}", sent.elapsed());

    let too_far = chrono::Utc::now() + chrono::Duration::days(60);
    let (status, body) = server
        .admin()
        .post(
            &format!("/api/v1/app/{app}/msg"),
            &json!({"eventType": "sync.complete", "payload": {}, "deliverAt": too_far.to_rfc3339()}),
        )
        .await;
    common::assert_invalid_field(status, &body, "deliverAt");
}

#[tokio::test]
async fn retries_with_backoff_until_success_keeping_the_same_id() {
    let rx = Receiver::scripted(|n, _| if n < 2 { Reply::status(500) } else { Reply::status(204) }).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "1s,1s,1s")]).await;
    let (app, ep, secret) = app_with_endpoint(&server, &rx.url("/flaky"), json!({})).await;
    let msg = send(&server, &app, json!({"k": "v"})).await;
    let got = rx.wait_for("/flaky", 3, WAIT).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
    assert!(got.iter().all(|r| r.id() == msg), "every attempt carries the message id");
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // 1 s with ±20 % jitter.
        assert!(gap >= Duration::from_millis(790), "retry came after {gap:?}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received_on("/flaky").len(), 3, "no attempt after success");
    let attempts = attempts_of(&server, &app, &msg).await;
    let codes: Vec<i64> = attempts.iter().map(|a| a["responseStatusCode"].as_i64().unwrap()).collect();
    assert_eq!(codes, vec![204, 500, 500], "newest first");
    let cases: Vec<(String, Received)> = got.into_iter().map(|r| (secret.clone(), r)).collect();
    for (s, r) in &cases {
        verify_own(s, r);
    }
    verify_with_python(&cases);
}

#[tokio::test]
async fn manual_resend_keeps_the_pending_retries() {
    let rx = Receiver::scripted(|n, _| if n < 2 { Reply::status(500) } else { Reply::status(200) }).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "3s,1s")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/resend"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    rx.wait_for("/resend", 1, WAIT).await;
    wait_status(&server, &app, &msg, &ep, "pending").await;
    // A resend while a retry is pending fails too, but the retry stays.
    let (status, _) =
        server.admin().post(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/{ep}/resend"), &json!({})).await;
    assert_eq!(status, 202);
    rx.wait_for("/resend", 2, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while !attempts_of(&server, &app, &msg).await.iter().any(|a| a["triggerType"] == 1) {
        assert!(Instant::now() < deadline, "no manual attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = wait_status(&server, &app, &msg, &ep, "pending").await;
    assert!(d["nextAttempt"].is_string(), "the schedule goes on after a failed resend: {d}");
    rx.wait_for("/resend", 3, WAIT).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
}

#[tokio::test]
async fn gives_up_after_the_last_scheduled_attempt() {
    let rx = Receiver::scripted(|_, _| Reply::status(500)).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "200ms,200ms")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/down"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    let d = wait_status(&server, &app, &msg, &ep, "fail").await;
    assert!(d["nextAttempt"].is_null());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.received_on("/down").len(), 3, "1 attempt + 2 retries");
    assert_eq!(attempts_of(&server, &app, &msg).await.len(), 3);
}

#[tokio::test]
async fn attempt_times_out_and_is_recorded() {
    let rx = Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_secs(5))).await;
    let server = server_with(&[("HOOKLINE_ATTEMPT_TIMEOUT", "1s"), ("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/slow"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    wait_status(&server, &app, &msg, &ep, "fail").await;
    let attempts = attempts_of(&server, &app, &msg).await;
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["responseStatusCode"], 0);
    assert_eq!(attempts[0]["error"], "timeout: no complete answer within the attempt timeout");
    let ms = attempts[0]["responseDurationMs"].as_i64().unwrap();
    assert!((900..5000).contains(&ms), "duration {ms} ms");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx =
        Receiver::scripted(
            |n, _| if n == 0 { Reply::status(429).header("retry-after", "2") } else { Reply::status(200) },
        )
        .await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "100ms")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/busy"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    let got = rx.wait_for("/busy", 2, WAIT).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(1900), "Retry-After: 2 was not honoured, retried after {gap:?}");
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_reenabling_resumes() {
    let rx = Receiver::scripted(|n, _| if n == 0 { Reply::status(410) } else { Reply::status(200) }).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "100ms,100ms")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/gone"), json!({})).await;
    let first = send(&server, &app, json!({"n": 1})).await;
    wait_status(&server, &app, &first, &ep, "fail").await;
    let (_, endpoint) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}")).await;
    assert_eq!(endpoint["disabled"], true, "410 disables at once");
    assert_eq!(rx.received_on("/gone").len(), 1, "410 is not retried");

    // Messages sent while it is disabled are not queued for it (as in Svix);
    // replay-missing brings them back.
    let second = send(&server, &app, json!({"n": 2})).await;
    let (_, dests) = server.admin().get(&format!("/api/v1/app/{app}/msg/{second}/endpoint")).await;
    assert!(dests["data"].as_array().unwrap().is_empty(), "{dests}");

    // Work scheduled while disabled waits, and resumes on re-enabling.
    let (status, _) =
        server.admin().post(&format!("/api/v1/app/{app}/msg/{first}/endpoint/{ep}/resend"), &json!({})).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.received_on("/gone").len(), 1, "a disabled endpoint receives nothing");
    wait_status(&server, &app, &first, &ep, "pending").await;

    let (status, _) =
        server.admin().patch(&format!("/api/v1/app/{app}/endpoint/{ep}"), &json!({"disabled": false})).await;
    assert_eq!(status, 200);
    let got = rx.wait_for("/gone", 2, WAIT).await;
    assert_eq!(got[1].id(), first);
    wait_status(&server, &app, &first, &ep, "success").await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (status, _) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/replay-missing"), &json!({"since": since})).await;
    assert_eq!(status, 202);
    let got = rx.wait_for("/gone", 3, WAIT).await;
    assert_eq!(got[2].id(), second);
}

#[tokio::test]
async fn endpoint_failing_longer_than_disable_after_is_disabled() {
    let rx = Receiver::scripted(|_, _| Reply::status(503)).await;
    let server =
        server_with(&[("HOOKLINE_RETRY_SCHEDULE", "300ms,300ms,300ms,300ms"), ("HOOKLINE_DISABLE_AFTER", "500ms")])
            .await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/broken"), json!({})).await;
    send(&server, &app, json!({})).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, endpoint) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}")).await;
        if endpoint["disabled"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "endpoint was never disabled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count = rx.received_on("/broken").len();
    assert!((2..5).contains(&count), "disabled after {count} attempts");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(rx.received_on("/broken").len(), count, "no attempts once disabled");
}

#[tokio::test]
async fn rate_limit_spreads_deliveries_over_time() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/limited"), json!({"throttleRate": 5})).await;
    let (_, endpoint) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}")).await;
    assert_eq!(endpoint["throttleRate"], 5);
    let started = Instant::now();
    for i in 0..30 {
        send(&server, &app, json!({"i": i})).await;
    }
    let got = rx.wait_for("/limited", 30, WAIT).await;
    let span = got.last().unwrap().at - got[0].at;
    let total = got.last().unwrap().at - started;
    println!("30 deliveries at 5/s: first to last {span:?}, from first send {total:?}");
    // Starts 200 ms apart: the 30th cannot start before 5.8 s.
    assert!(span >= Duration::from_millis(5600), "30 deliveries took only {span:?}");
    assert_no_second_holds_more_than(&got, 5 + 1);
}

#[tokio::test]
async fn application_rate_limit_is_the_default_for_its_endpoints() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "slow app", "throttleRate": 4})).await;
    assert_eq!(status, 201, "{app}");
    let app = app["id"].as_str().unwrap().to_string();
    add_endpoint(&server, &app, &rx.url("/app-limited"), json!({})).await;
    for i in 0..12 {
        send(&server, &app, json!({"i": i})).await;
    }
    let got = rx.wait_for("/app-limited", 12, WAIT).await;
    let span = got.last().unwrap().at - got[0].at;
    // Starts 250 ms apart: the 12th cannot start before 2.75 s.
    assert!(span >= Duration::from_millis(2550), "12 deliveries at 4/s took only {span:?}");
    assert_no_second_holds_more_than(&got, 4 + 1);
}

#[tokio::test]
async fn slow_endpoint_does_not_delay_others() {
    let rx = Receiver::scripted(|_, path| {
        if path == "/slow" {
            Reply::status(200).after(Duration::from_secs(20))
        } else {
            Reply::status(200)
        }
    })
    .await;
    let server = server_with(&[("HOOKLINE_ATTEMPT_TIMEOUT", "10s"), ("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let (app, slow, _) = app_with_endpoint(&server, &rx.url("/slow"), json!({})).await;
    add_endpoint(&server, &app, &rx.url("/fast"), json!({})).await;
    let started = Instant::now();
    let mut first_slow_msg = None;
    for i in 0..100 {
        let id = send(&server, &app, json!({"i": i})).await;
        first_slow_msg.get_or_insert(id);
    }
    rx.wait_for("/fast", 100, WAIT).await;
    let fast_done = started.elapsed();
    // Every slow attempt is still hanging (10 s timeout): the fast endpoint
    // got all of its deliveries while the slow one had none finished.
    let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/attempt/endpoint/{slow}")).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "a slow attempt finished before the fast ones ({fast_done:?})"
    );
    assert!(fast_done < Duration::from_secs(10));
    println!("fast endpoint got 100 deliveries in {fast_done:?} while the slow endpoint hung");
    let _ = first_slow_msg;
}

#[tokio::test]
async fn rotation_signs_with_old_and_new_secret_during_grace() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, ep, old) = app_with_endpoint(&server, &rx.url("/rot"), json!({})).await;
    let (status, rotated) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/secret/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(endpoint_secret(&server, &app, &ep).await, new);
    send(&server, &app, json!({"after": "rotation"})).await;
    let got = rx.wait_for("/rot", 1, WAIT).await;
    let sigs: Vec<&str> = got[0].header("webhook-signature").split(' ').collect();
    assert_eq!(sigs.len(), 2, "both keys sign during the grace period: {sigs:?}");
    verify_own(&old, &got[0]);
    verify_own(&new, &got[0]);
    verify_with_python(&[(old, got[0].clone()), (new.clone(), got[0].clone())]);

    // With no grace period the old key stops signing at once.
    let (_, rotated) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/endpoint/{ep}/secret/rotate"), &json!({"gracePeriodSeconds": 0}))
        .await;
    let newest = rotated["key"].as_str().unwrap().to_string();
    send(&server, &app, json!({"after": "second rotation"})).await;
    let got = rx.wait_for("/rot", 2, WAIT).await;
    // The first rotation's old key is still in its grace period; `new` is not.
    let r = &got[1];
    verify_own(&newest, r);
    let headers: Vec<(String, String)> = r.headers.clone().into_iter().collect();
    assert!(Verifier::new(new.parse::<Secret>().unwrap()).verify(&headers, &r.body).is_err());
}

/// Svix's `whsk_` keys: the endpoint's deliveries carry an ed25519 `v1a`
/// signature that verifies with the public half, and nothing verifies
/// with a symmetric secret.
#[tokio::test]
async fn a_whsk_endpoint_key_signs_v1a() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let key: hookline_signature::SigningKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".parse().unwrap();
    let text = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    let (app, ep, shown) = app_with_endpoint(&server, &rx.url("/ed"), json!({"secret": text})).await;
    assert_eq!(shown, text, "GET secret shows the whsk_ key");
    send(&server, &app, json!({"signed": "ed25519"})).await;
    let r = &rx.wait_for("/ed", 1, WAIT).await[0];
    assert!(r.header("webhook-signature").starts_with("v1a,"), "{}", r.header("webhook-signature"));
    let headers: Vec<(String, String)> = r.headers.clone().into_iter().collect();
    let public = hookline_signature::ReceiverKey::Ed25519(key.verifying_key());
    Verifier::new(public).verify(&headers, &r.body).unwrap_or_else(|e| panic!("v1a did not verify: {e}"));
    // Rotating to a generated key goes back to whsec_ and v1.
    let (status, rotated) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/endpoint/{ep}/secret/rotate"), &json!({"gracePeriodSeconds": 0}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["key"].as_str().unwrap().starts_with("whsec_"), "{rotated}");
    let (status, body) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": rx.url("/x"), "secret": "whsk_c2hvcnQ="}))
        .await;
    crate::common::assert_invalid_field(status, &body, "secret");
}

#[tokio::test]
async fn ssrf_guard_refuses_loopback_without_allowance() {
    let rx = Receiver::start().await;
    let server = TestServer::builder().env("HTTP_PROXY", "http://127.0.0.1:9").start().await;
    let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "c"})).await;
    assert_eq!(status, 201);
    let app = app["id"].as_str().unwrap().to_string();
    let by_ip = add_endpoint(&server, &app, &rx.url("/ip"), json!({})).await;
    let by_name = add_endpoint(&server, &app, &format!("http://localhost:{}/name", rx.addr.port()), json!({})).await;
    let by_mapped =
        add_endpoint(&server, &app, &format!("http://[::ffff:127.0.0.1]:{}/mapped", rx.addr.port()), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    for ep in [&by_ip, &by_name, &by_mapped] {
        let deadline = Instant::now() + WAIT;
        let attempt = loop {
            let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/attempt/endpoint/{ep}")).await;
            if let Some(a) = list["data"].as_array().unwrap().first() {
                break a.clone();
            }
            assert!(Instant::now() < deadline, "no attempt recorded for {ep}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(attempt["responseStatusCode"], 0);
        assert_eq!(attempt["msgId"], msg.as_str());
        let error = attempt["error"].as_str().unwrap();
        assert!(error.contains("SSRF guard"), "{error}");
    }
    assert!(rx.received().is_empty(), "nothing may reach the loopback receiver");
}

#[tokio::test]
async fn retention_purges_old_messages_and_attempts() {
    let rx = Receiver::start().await;
    let server = server_with(&[("HOOKLINE_RETENTION", "2s")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/keep"), json!({})).await;
    let msg = send(&server, &app, json!({"short": "lived"})).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
    assert_eq!(attempts_of(&server, &app, &msg).await.len(), 1);
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = server.admin().get(&format!("/api/v1/app/{app}/msg/{msg}")).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "message outlived its retention");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/attempt/endpoint/{ep}")).await;
    assert!(list["data"].as_array().unwrap().is_empty(), "attempts purged too");
}

#[tokio::test]
async fn expunged_message_cannot_be_resent() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/x"), json!({})).await;
    let msg = send(&server, &app, json!({"secret": "data"})).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
    let (status, _) = server.admin().delete(&format!("/api/v1/app/{app}/msg/{msg}/content")).await;
    assert_eq!(status, 204);
    let (_, m) = server.admin().get(&format!("/api/v1/app/{app}/msg/{msg}")).await;
    assert_eq!(m["expired"], true);
    assert_eq!(m["payload"], json!({}));
    let (status, body) =
        server.admin().post(&format!("/api/v1/app/{app}/msg/{msg}/endpoint/{ep}/resend"), &json!({})).await;
    common::assert_error(status, &body, 400);
}

/// Polls a task started by recover or replay-missing until it ends; its
/// `background-task` record, which must say `finished`.
async fn finished_task(server: &TestServer, started: &Value) -> Value {
    let id = started["id"].as_str().unwrap_or_else(|| panic!("no task id in {started}"));
    assert!(id.starts_with("qtask_"), "{id}");
    assert!(started["updatedAt"].is_string(), "Svix's RecoverOut has updatedAt: {started}");
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, task) = server.admin().get(&format!("/api/v1/background-task/{id}")).await;
        assert_eq!(status, 200, "{task}");
        if task["status"] != "running" {
            assert_eq!(task["status"], "finished", "{task}");
            return task;
        }
        assert!(Instant::now() < deadline, "task still running: {task}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn resend_recover_and_replay_missing() {
    let rx = Receiver::scripted(|_, _| Reply::status(500)).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "100ms")]).await;
    let since = chrono::Utc::now() - chrono::Duration::minutes(1);
    // A message sent before the endpoint exists is "missing" for it.
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "c"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    let early = send(&server, &app, json!({"early": true})).await;
    let ep = add_endpoint(&server, &app, &rx.url("/r"), json!({})).await;
    let failing = send(&server, &app, json!({"n": 1})).await;
    wait_status(&server, &app, &failing, &ep, "fail").await;
    assert_eq!(rx.received_on("/r").len(), 2);

    rx.set_script(|_, _| Reply::status(200));
    let range = json!({"since": since.to_rfc3339()});
    let (status, task) = server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/recover"), &range).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "endpoint.recover");
    let task = finished_task(&server, &task).await;
    assert_eq!(task["data"]["messagesScheduled"], 1, "{task}");
    wait_status(&server, &app, &failing, &ep, "success").await;

    let (status, body) =
        server.admin().post(&format!("/api/v1/app/{app}/msg/{failing}/endpoint/{ep}/resend"), &json!({})).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({}));
    let got = rx.wait_for("/r", 4, WAIT).await;
    assert_eq!(got[3].id(), failing);
    let deadline = Instant::now() + WAIT;
    while !attempts_of(&server, &app, &failing).await.iter().any(|a| a["triggerType"] == 1) {
        assert!(Instant::now() < deadline, "no manual attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, task) = server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/replay-missing"), &range).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "endpoint.replay");
    assert_eq!(finished_task(&server, &task).await["data"]["messagesScheduled"], 1);
    let got = rx.wait_for("/r", 5, WAIT).await;
    assert_eq!(got[4].id(), early);
    let (_, again) = server.admin().post(&format!("/api/v1/app/{app}/endpoint/{ep}/replay-missing"), &range).await;
    let again = finished_task(&server, &again).await;
    assert_eq!(again["data"]["messagesScheduled"], 0, "nothing is missing any more");

    let (status, stats) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(stats["success"], 2);
    assert_eq!(stats["fail"], 0);
}

/// Bulk replay sends again, once each, what matches its filters: type,
/// tag, channel, outcome, response class, or nothing at all. A filter that
/// matches nothing sends nothing.
#[tokio::test]
async fn bulk_replay_resends_what_matches_its_filters() {
    // The third delivery fails for good (no retries); everything else succeeds.
    let rx = Receiver::scripted(|n, _| Reply::status(if n == 2 { 500 } else { 200 })).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let since = json!({"since": (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339()});
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/bulk"), json!({})).await;
    let mut sent = Vec::new();
    let messages = [
        ("a.one", json!({"tags": ["t1"]}), "success"),
        ("a.one", json!({"channels": ["eu"]}), "success"),
        ("b.two", json!({}), "fail"),
    ];
    for (event_type, extra, outcome) in messages {
        let mut body = json!({"eventType": event_type, "payload": {}});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, msg) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &body).await;
        assert_eq!(status, 202, "{msg}");
        let id = msg["id"].as_str().unwrap().to_string();
        wait_status(&server, &app, &id, &ep, outcome).await;
        sent.push(id);
    }
    let path = format!("/api/v1/app/{app}/endpoint/{ep}/bulk-replay");
    let replay = |filters: Value| {
        let mut body = since.clone();
        body.as_object_mut().unwrap().extend(filters.as_object().unwrap().clone());
        body
    };

    let (status, task) = server.admin().post(&path, &replay(json!({"eventTypes": ["a.one"]}))).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "endpoint.bulk-replay");
    assert_eq!(finished_task(&server, &task).await["data"]["messagesSent"], 2);
    let got = rx.wait_for("/bulk", 5, WAIT).await;
    let mut replayed: Vec<&str> = got[3..].iter().map(|r| r.id()).collect();
    replayed.sort();
    assert_eq!(replayed, [sent[0].as_str(), sent[1].as_str()], "the same webhook ids, once each");

    // In order: the failed one is replayed (and now succeeds, after a 500).
    let counts = [
        (json!({"status": 2}), 1),
        (json!({"statusCodeClass": 500}), 1),
        (json!({"tag": "t1"}), 1),
        (json!({"channel": "eu"}), 1),
        (json!({"channel": "us"}), 0),
        (json!({"status": 0}), 3),
        (json!({}), 3),
        (json!({"statusCodeClass": 200}), 3),
        (json!({"statusCodeClass": 400}), 0),
        (json!({"status": 4}), 0),
    ];
    let mut expected = 5;
    for (filters, count) in counts {
        let (status, task) = server.admin().post(&path, &replay(filters.clone())).await;
        assert_eq!(status, 202, "{filters}: {task}");
        assert_eq!(finished_task(&server, &task).await["data"]["messagesSent"], count, "{filters}");
        expected += count;
        rx.wait_for("/bulk", expected, WAIT).await;
        if filters == json!({"status": 2}) {
            wait_status(&server, &app, &sent[2], &ep, "success").await;
        }
    }
    // A replay is a manual attempt, not a fresh round of retries.
    let attempts = attempts_of(&server, &app, &sent[0]).await;
    assert!(attempts.iter().filter(|a| a["triggerType"] == 1).count() >= 2, "{attempts:?}");

    let bad = [
        (json!({"statusCodeClass": 250}), "statusCodeClass"),
        (json!({"status": 7}), "status"),
        (json!({"channel": "not a channel"}), "channel"),
        (json!({"eventTypes": ["not a type"]}), "eventTypes"),
    ];
    for (filters, field) in bad {
        let (status, body) = server.admin().post(&path, &replay(filters)).await;
        common::assert_invalid_field(status, &body, field);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.received_on("/bulk").len(), expected, "nothing more was sent");
}

/// Svix's attempt-stats count the endpoint's attempts by outcome, in a
/// window rounded out to the hour.
#[tokio::test]
async fn attempt_stats_count_successes_and_failures() {
    let rx = Receiver::start().await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/stats"), json!({})).await;
    let ok = send(&server, &app, json!({"n": 1})).await;
    wait_status(&server, &app, &ok, &ep, "success").await;
    rx.set_script(|_, _| Reply::status(500));
    let failed = send(&server, &app, json!({"n": 2})).await;
    wait_status(&server, &app, &failed, &ep, "fail").await;

    let stats = format!("/api/v1/app/{app}/endpoint/{ep}/attempt-stats");
    let (status, all) = server.admin().get(&stats).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all, json!({"success": 1, "fail": 1, "canceled": 0}));
    let window = |since: chrono::DateTime<chrono::Utc>| {
        let until = since + chrono::Duration::minutes(10);
        format!("{stats}?since={}&until={}", since.format("%Y-%m-%dT%H:%M:%SZ"), until.format("%Y-%m-%dT%H:%M:%SZ"))
    };
    // Ten minutes into the present hour reach the whole hour; a day ago, nothing.
    let (_, now) = server.admin().get(&window(chrono::Utc::now() - chrono::Duration::minutes(5))).await;
    assert_eq!(now, all);
    let (_, old) = server.admin().get(&window(chrono::Utc::now() - chrono::Duration::days(1))).await;
    assert_eq!(old, json!({"success": 0, "fail": 0, "canceled": 0}));
    let (status, body) = server.admin().get(&format!("{stats}?since=yesterday")).await;
    common::assert_invalid_field(status, &body, "since");
}

#[tokio::test]
async fn send_example_goes_to_that_endpoint_only() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let schema =
        json!({"1": {"type": "object", "examples": [{"webhook_event_type": "sync.complete", "run_id": "example"}]}});
    let (status, _) = server
        .admin()
        .post("/api/v1/event-type", &json!({"name": "sync.complete", "description": "d", "schemas": schema}))
        .await;
    assert_eq!(status, 201);
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/one"), json!({})).await;
    add_endpoint(&server, &app, &rx.url("/other"), json!({})).await;
    let (status, msg) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/endpoint/{ep}/send-example"), &json!({"eventType": "sync.complete"}))
        .await;
    assert_eq!(status, 202, "{msg}");
    let got = rx.wait_for("/one", 1, WAIT).await;
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["run_id"], "example");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.received_on("/other").is_empty());
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_attempts() {
    let rx = Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_millis(1500))).await;
    let mut server = server_with(&[]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/inflight"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    rx.wait_for("/inflight", 1, WAIT).await;
    server.stop().await;
    assert!(!server.is_running());
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    server.start_again().await;
    // The attempt finished before exit: recorded as a success, not re-sent.
    wait_status(&server, &app, &msg, &ep, "success").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.received_on("/inflight").len(), 1);
}
