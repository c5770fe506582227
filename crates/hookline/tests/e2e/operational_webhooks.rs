//! Operational webhooks: the platform's own endpoints hear, signed and
//! through the durable engine, what happens to its customers' endpoints:
//! created, updated, disabled (by a 410 here), enabled, deleted, and
//! deliveries that gave up. Their internal application stays invisible.

use std::time::{Duration, Instant};

use crate::common::{assert_error, assert_invalid_field, list_data, str_of};
use crate::fixtures::*;
use crate::receiver::{Received, Receiver, Reply};
use hookline_signature::{Secret, Verifier};
use serde_json::{json, Value};

const OPS: &str = "/api/v1/operational-webhook/endpoint";

/// The operational events received so far, each checked against the
/// operational endpoint's secret: (type, payload).
fn events(rx: &Receiver, secret: &Secret) -> Vec<(String, Value)> {
    rx.received_on("/ops")
        .iter()
        .map(|r: &Received| {
            let headers: Vec<(String, String)> = r.headers.clone().into_iter().collect();
            Verifier::new(secret.clone())
                .verify(&headers, &r.body)
                .unwrap_or_else(|e| panic!("an operational webhook failed verification: {e}"));
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            (body["type"].as_str().unwrap().to_string(), body)
        })
        .collect()
}

async fn wait_event(rx: &Receiver, secret: &Secret, kind: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some((_, body)) = events(rx, secret).into_iter().find(|(t, _)| t == kind) {
            return body;
        }
        assert!(Instant::now() < deadline, "no {kind} event; got {:?}", events(rx, secret));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_platform_hears_what_happens_to_its_customers_endpoints() {
    let rx = Receiver::scripted(|_, path| Reply::status(if path == "/gone" { 410 } else { 200 })).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let admin = server.admin();

    let (status, body) = admin.post(OPS, &json!({"url": rx.url("/ops"), "filterTypes": ["invoice.paid"]})).await;
    assert_invalid_field(status, &body, "filterTypes");
    let all = [
        "endpoint.created",
        "endpoint.updated",
        "endpoint.deleted",
        "endpoint.disabled",
        "endpoint.enabled",
        "message.attempt.exhausted",
    ];
    let (status, ops) = admin.post(OPS, &json!({"url": rx.url("/ops"), "filterTypes": all})).await;
    assert_eq!(status, 201, "{ops}");
    let ops_id = str_of(&ops, "id").to_string();
    let (status, listed) = admin.get(OPS).await;
    assert_eq!(status, 200);
    assert_eq!(list_data(&listed).len(), 1, "{listed}");
    let (_, secret) = admin.get(&format!("{OPS}/{ops_id}/secret")).await;
    let secret: Secret = str_of(&secret, "key").parse().unwrap();

    // A customer's endpoint answers 410 Gone: it is disabled at once, and
    // the delivery gives up.
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/gone"), json!({"uid": "billing"})).await;
    let created = wait_event(&rx, &secret, "endpoint.created").await;
    assert_eq!(created["data"]["appId"], app.as_str(), "{created}");
    assert_eq!(created["data"]["endpointId"], ep.as_str());
    assert_eq!(created["data"]["endpointUid"], "billing");
    assert!(created["timestamp"].is_string(), "{created}");
    let msg = send(&server, &app, json!({"n": 1})).await;
    let disabled = wait_event(&rx, &secret, "endpoint.disabled").await;
    assert_eq!(disabled["data"]["endpointId"], ep.as_str(), "{disabled}");
    assert_eq!(disabled["data"]["trigger"], "automatic");
    let exhausted = wait_event(&rx, &secret, "message.attempt.exhausted").await;
    assert_eq!(exhausted["data"]["msgId"], msg.as_str(), "{exhausted}");
    assert_eq!(exhausted["data"]["lastAttempt"]["responseStatusCode"], 410);

    // Enabled again by hand, then deleted.
    let ep_path = format!("/api/v1/app/{app}/endpoint/{ep}");
    let (status, body) = admin.patch(&ep_path, &json!({"disabled": false})).await;
    assert_eq!(status, 200, "{body}");
    wait_event(&rx, &secret, "endpoint.enabled").await;
    wait_event(&rx, &secret, "endpoint.updated").await;
    let (status, _) = admin.delete(&ep_path).await;
    assert_eq!(status, 204);
    assert_eq!(wait_event(&rx, &secret, "endpoint.deleted").await["data"]["endpointId"], ep.as_str());

    // Deleting an application deletes its endpoints: each is announced.
    let other = add_endpoint(&server, &app, &rx.url("/other"), json!({})).await;
    let (status, _) = admin.delete(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, 204);
    let deadline = Instant::now() + WAIT;
    while !events(&rx, &secret)
        .iter()
        .any(|(t, b)| t == "endpoint.deleted" && b["data"]["endpointId"] == other.as_str())
    {
        assert!(Instant::now() < deadline, "no endpoint.deleted for an endpoint of a deleted application");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let app = server.create_app("second", None).await;
    let app = str_of(&app, "id").to_string();

    // Only what an operational endpoint subscribed to reaches it.
    let (status, body) = admin
        .put(&format!("{OPS}/{ops_id}"), &json!({"url": rx.url("/ops"), "filterTypes": ["endpoint.deleted"]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = rx.received_on("/ops").len();
    add_endpoint(&server, &app, &rx.url("/fine"), json!({})).await;
    let (status, _) = admin.delete(&format!("{OPS}/{ops_id}")).await;
    assert_eq!(status, 204);
    assert!(rx.received_on("/ops").len() == before, "an unsubscribed event was sent");
}

#[tokio::test]
async fn the_operational_application_is_invisible_and_its_routes_are_the_platforms() {
    let server = server_with(&[]).await;
    let app = server.create_app("customer", None).await;
    let app_id = str_of(&app, "id");
    let (_, apps) = server.admin().get("/api/v1/app").await;
    let ids: Vec<&str> = list_data(&apps).iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [app_id], "the internal application is listed");
    for path in [
        "/api/v1/app/app_hookline_operational".to_string(),
        "/api/v1/app/app_hookline_operational/endpoint".to_string(),
        "/api/v1/app/app_hookline_operational/msg".to_string(),
    ] {
        let (status, body) = server.admin().get(&path).await;
        assert_error(status, &body, 404);
    }
    let (status, body) =
        server.admin().post("/api/v1/auth/app-portal-access/app_hookline_operational", &json!({})).await;
    assert_error(status, &body, 404);
    for body in [json!({"name": "x", "uid": "app_hookline_operational"}), json!({"name": "x", "uid": "app_mine"})] {
        let (status, out) = server.admin().post("/api/v1/app", &body).await;
        assert_invalid_field(status, &out, "uid");
    }
    let out = server.cli(&["token", "create", "--app", "app_hookline_operational"]).await;
    assert!(!out.status.success(), "a token for the internal application was minted");
    let token = server.token_for_app(app_id, false).await;
    let (status, body) = server.api(&token).get(OPS).await;
    assert_error(status, &body, 403);
    let (status, body) = server.api(&token).post(OPS, &json!({"url": "https://example.invalid/"})).await;
    assert_error(status, &body, 403);
}

/// A delivery that fails four times is `failing`; its later success is
/// `recovered` (Svix's thresholds).
#[tokio::test]
async fn a_delivery_that_keeps_failing_and_then_succeeds_is_announced_both_times() {
    let rx = Receiver::scripted(|n, path| Reply::status(if path == "/flaky" && n < 4 { 500 } else { 200 })).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "50ms,50ms,50ms,50ms,50ms")]).await;
    let filter = json!(["message.attempt.failing", "message.attempt.recovered"]);
    let (status, ops) = server.admin().post(OPS, &json!({"url": rx.url("/ops"), "filterTypes": filter})).await;
    assert_eq!(status, 201, "{ops}");
    let (_, secret) = server.admin().get(&format!("{OPS}/{}/secret", str_of(&ops, "id"))).await;
    let secret: Secret = str_of(&secret, "key").parse().unwrap();
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/flaky"), json!({})).await;
    let msg = send(&server, &app, json!({"n": 1})).await;
    let failing = wait_event(&rx, &secret, "message.attempt.failing").await;
    assert_eq!(
        (failing["data"]["msgId"].as_str(), failing["data"]["endpointId"].as_str()),
        (Some(msg.as_str()), Some(ep.as_str()))
    );
    assert_eq!(failing["data"]["lastAttempt"]["responseStatusCode"], 500, "{failing}");
    let recovered = wait_event(&rx, &secret, "message.attempt.recovered").await;
    assert_eq!(recovered["data"]["lastAttempt"]["responseStatusCode"], 200, "{recovered}");
    wait_status(&server, &app, &msg, &ep, "success").await;
    // Two messages, possibly delivered side by side: compare as a set.
    let mut kinds: Vec<String> = events(&rx, &secret).into_iter().map(|(t, _)| t).collect();
    kinds.sort();
    assert_eq!(kinds, ["message.attempt.failing", "message.attempt.recovered"], "each is sent once");
}
