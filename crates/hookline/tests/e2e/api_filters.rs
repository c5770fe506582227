//! Every filter of the attempt and attempted-message listings changes the
//! result (Svix's filters are never accepted and ignored), and attempted
//! destinations page.

use std::time::{Duration, Instant};

use crate::common::{assert_error, assert_invalid_field, list_data, TestServer};
use crate::fixtures::*;
use crate::receiver::{Receiver, Reply};
use serde_json::{json, Value};

fn ids(list: &Value, field: &str) -> Vec<String> {
    list_data(list).iter().map(|v| v[field].as_str().unwrap().to_string()).collect()
}

async fn send_with(server: &TestServer, app: &str, body: Value) -> String {
    let (status, msg) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &body).await;
    assert_eq!(status, 202, "{msg}");
    msg["id"].as_str().unwrap().to_string()
}

/// Waits until `path` lists `n` items.
async fn wait_listed(server: &TestServer, path: &str, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, list) = server.admin().get(path).await;
        if list_data(&list).len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{path} never listed {n}: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn attempt_and_attempted_message_filters_each_narrow_the_result() {
    let rx = Receiver::scripted(|_, path| Reply::status(if path == "/bad" { 500 } else { 200 })).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "")]).await;
    let (app, ok, _) = app_with_endpoint(&server, &rx.url("/ok"), json!({})).await;
    let bad = add_endpoint(&server, &app, &rx.url("/bad"), json!({})).await;
    let first =
        send_with(&server, &app, json!({"eventType": "a.x", "channels": ["c1"], "tags": ["t1"], "payload": {"n": 1}}))
            .await;
    let between = chrono::Utc::now();
    // Created strictly later than `between`, whatever the clock's grain.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second =
        send_with(&server, &app, json!({"eventType": "b.y", "channels": ["c2"], "tags": ["t2"], "payload": {"n": 2}}))
            .await;
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (after, before) = (format!("after={at}"), format!("before={at}"));
    let by_ok = format!("/api/v1/app/{app}/attempt/endpoint/{ok}");
    wait_listed(&server, &by_ok, 2).await;
    wait_listed(&server, &format!("/api/v1/app/{app}/attempt/endpoint/{bad}"), 2).await;
    // Attempts' own times: all of them were made before now.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (attempted_after, attempted_before) = (format!("after={now}"), format!("before={now}"));

    // Attempts to one endpoint, by what their message is.
    let cases = [
        ("event_types=a.x", vec![first.clone()]),
        ("event_types=b.y,a.x", vec![second.clone(), first.clone()]),
        ("channel=c2", vec![second.clone()]),
        ("tag=t1", vec![first.clone()]),
        ("tag=t1&channel=c2", vec![]),
        ("status=0", vec![second.clone(), first.clone()]),
        ("status=2", vec![]),
        ("status=4&expanded_statuses=true", vec![]),
        ("status_code_class=200", vec![second.clone(), first.clone()]),
        ("status_code_class=500", vec![]),
        (attempted_before.as_str(), vec![second.clone(), first.clone()]),
        (attempted_after.as_str(), vec![]),
    ];
    for (query, expected) in cases {
        let (status, list) = server.admin().get(&format!("{by_ok}?{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(ids(&list, "msgId"), expected, "attempts to one endpoint with {query}");
    }

    // Attempts of one message, by the answer's status class.
    let by_msg = format!("/api/v1/app/{app}/attempt/msg/{first}");
    for (class, endpoint) in [("200", Some(&ok)), ("500", Some(&bad)), ("400", None), ("0", None)] {
        let (status, list) = server.admin().get(&format!("{by_msg}?status_code_class={class}")).await;
        assert_eq!(status, 200, "{list}");
        let expected: Vec<String> = endpoint.into_iter().cloned().collect();
        assert_eq!(ids(&list, "endpointId"), expected, "status_code_class={class}");
    }

    // with_msg adds the message, never its payload.
    let (_, plain) = server.admin().get(&format!("{by_ok}?event_types=a.x")).await;
    assert!(list_data(&plain)[0].get("msg").is_none(), "{plain}");
    let (_, with) = server.admin().get(&format!("{by_ok}?event_types=a.x&with_msg=true")).await;
    let msg = &list_data(&with)[0]["msg"];
    assert_eq!((msg["id"].as_str(), msg["eventType"].as_str()), (Some(first.as_str()), Some("a.x")), "{with}");
    assert_ne!(msg["payload"], json!({"n": 1}), "with_msg must not carry the payload: {with}");

    // Messages attempted to one endpoint, by what they are.
    let attempted = format!("/api/v1/app/{app}/endpoint/{ok}/msg");
    let cases = [
        ("", vec![second.clone(), first.clone()]),
        ("event_types=b.y", vec![second.clone()]),
        ("channel=c1", vec![first.clone()]),
        ("tag=t2", vec![second.clone()]),
        (after.as_str(), vec![second.clone()]),
        (before.as_str(), vec![first.clone()]),
        ("status=1", vec![]),
        ("status=4", vec![]),
    ];
    for (query, expected) in cases {
        let (status, list) = server.admin().get(&format!("{attempted}?{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(ids(&list, "id"), expected, "attempted messages with {query}");
    }

    // Bad values are a 422 naming the parameter.
    for (path, param) in [
        (format!("{by_ok}?status_code_class=250"), "status_code_class"),
        (format!("{by_ok}?status=9"), "status"),
        (format!("{by_ok}?with_msg=maybe"), "with_msg"),
        (format!("{by_ok}?expanded_statuses=2"), "expanded_statuses"),
        (format!("{attempted}?before=yesterday"), "before"),
        (format!("{by_msg}?status_code_class=abc"), "status_code_class"),
    ] {
        let (status, body) = server.admin().get(&path).await;
        assert_invalid_field(status, &body, param);
    }
}

#[tokio::test]
async fn attempted_destinations_page_by_endpoint() {
    let server = TestServer::start().await;
    let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "c"})).await;
    assert_eq!(status, 201);
    let app = app["id"].as_str().unwrap().to_string();
    let mut endpoints = Vec::new();
    for n in 0..3 {
        let url = format!("https://receiver{n}.example.invalid/hook");
        endpoints.push(add_endpoint(&server, &app, &url, json!({})).await);
    }
    endpoints.sort();
    let msg = send(&server, &app, json!({})).await;
    let path = format!("/api/v1/app/{app}/msg/{msg}/endpoint");
    let (status, page) = server.admin().get(&format!("{path}?limit=2")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page, "id"), endpoints[..2]);
    assert_eq!(page["done"], false);
    let iterator = page["iterator"].as_str().unwrap();
    let (_, rest) = server.admin().get(&format!("{path}?limit=2&iterator={iterator}")).await;
    assert_eq!(ids(&rest, "id"), endpoints[2..]);
    assert_eq!(rest["done"], true);
    let (status, body) = server.admin().get(&format!("{path}?limit=0")).await;
    assert_invalid_field(status, &body, "limit");
    let (status, body) = server.admin().get(&format!("/api/v1/app/{app}/msg/msg_nope/endpoint?limit=2")).await;
    assert_error(status, &body, 404);
}
