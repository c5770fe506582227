//! Fixtures shared by the delivery-minded modules: a server that may deliver
//! to loopback, an application with an endpoint, sending, and waiting on a
//! delivery's status.

use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::receiver::Received;
use serde_json::{json, Value};

pub const WAIT: Duration = Duration::from_secs(30);

pub async fn server_with(extra: &[(&str, &str)]) -> TestServer {
    let mut b = TestServer::builder().env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8");
    for (k, v) in extra {
        b = b.env(k, v);
    }
    b.start().await
}

/// Creates an app and an endpoint at `url`; returns (app_id, endpoint_id, secret).
pub async fn app_with_endpoint(server: &TestServer, url: &str, extra: Value) -> (String, String, String) {
    let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "Customer"})).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_str().unwrap().to_string();
    let ep_id = add_endpoint(server, &app_id, url, extra).await;
    let secret = endpoint_secret(server, &app_id, &ep_id).await;
    (app_id, ep_id, secret)
}

pub async fn add_endpoint(server: &TestServer, app_id: &str, url: &str, extra: Value) -> String {
    let mut body = json!({"url": url});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, ep) = server.admin().post(&format!("/api/v1/app/{app_id}/endpoint"), &body).await;
    assert_eq!(status, 201, "{ep}");
    ep["id"].as_str().unwrap().to_string()
}

pub async fn endpoint_secret(server: &TestServer, app_id: &str, ep_id: &str) -> String {
    let (status, s) = server.admin().get(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}/secret")).await;
    assert_eq!(status, 200, "{s}");
    s["key"].as_str().unwrap().to_string()
}

pub async fn send(server: &TestServer, app_id: &str, payload: Value) -> String {
    let (status, msg) = server
        .admin()
        .post(&format!("/api/v1/app/{app_id}/msg"), &json!({"eventType": "sync.complete", "payload": payload}))
        .await;
    assert_eq!(status, 202, "{msg}");
    msg["id"].as_str().unwrap().to_string()
}

pub async fn attempts_of(server: &TestServer, app_id: &str, msg_id: &str) -> Vec<Value> {
    let (status, list) = server.admin().get(&format!("/api/v1/app/{app_id}/attempt/msg/{msg_id}")).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// Waits until the message's delivery to the endpoint reaches `status_text`.
pub async fn wait_status(server: &TestServer, app_id: &str, msg_id: &str, ep_id: &str, status_text: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, list) = server.admin().get(&format!("/api/v1/app/{app_id}/msg/{msg_id}/endpoint")).await;
        let dest = list["data"].as_array().unwrap().iter().find(|d| d["id"] == ep_id).cloned();
        if let Some(d) = &dest {
            if d["statusText"] == status_text {
                return d.clone();
            }
        }
        assert!(Instant::now() < deadline, "delivery never became {status_text}: {dest:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No window of one second, from the very first delivery on, holds more
/// than `most` arrivals. The rate limit spaces scheduled starts; an
/// arrival lags its slot by a variable delay (tens of milliseconds on a
/// loaded machine), and one that lags by a whole interval more than a later
/// one lands in the same window as the next `rate` of them: callers allow
/// `rate` plus the late ones they tolerate.
pub fn assert_no_second_holds_more_than(got: &[Received], most: usize) {
    for (i, first) in got.iter().enumerate() {
        let in_window = got[i..].iter().take_while(|r| r.at - first.at < Duration::from_secs(1)).count();
        assert!(
            in_window <= most,
            "{in_window} deliveries within one second (at most {most}), at ms {:?}",
            got.iter().map(|r| (r.at - got[0].at).as_millis()).collect::<Vec<_>>()
        );
    }
}
