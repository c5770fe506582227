//! `hookline listen`: a local receiver for trying webhooks out. Every POST,
//! on any path, is verified and printed: one summary line, then the JSON.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hookline_signature::{HeaderSource, ReceiverKey, Verifier};
use serde_json::Value;

struct Listener {
    verifier: Verifier,
    status: StatusCode,
}

pub async fn run(key: ReceiverKey, port: u16, status: u16) -> Result<(), String> {
    let status = StatusCode::from_u16(status).map_err(|_| format!("--status {status} is not an HTTP status"))?;
    let state = Arc::new(Listener { verifier: Verifier::new(key), status });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    eprintln!("listening on http://{local}/ (any path); answering {status}");
    let app = axum::Router::new().fallback(receive).with_state(state);
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn receive(State(l): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    println!("{}", describe(&l.verifier, &HttpHeaders(&headers), &body, chrono::Utc::now().timestamp()));
    l.status
}

struct HttpHeaders<'a>(&'a HeaderMap);

impl HeaderSource for HttpHeaders<'_> {
    fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.0.get(name).and_then(|v| v.to_str().ok()).map(std::borrow::Cow::Borrowed)
    }
}

/// The summary line and pretty JSON printed for one delivery.
pub fn describe(verifier: &Verifier, headers: &dyn HeaderSource, body: &[u8], now: i64) -> String {
    let get = |name: &str, twin: &str| {
        headers.header(name).or_else(|| headers.header(twin)).map(|v| v.into_owned()).unwrap_or_else(|| "-".into())
    };
    let id = get("webhook-id", "svix-id");
    let skew = get("webhook-timestamp", "svix-timestamp")
        .parse::<i64>()
        .map(|ts| format!("{:+}s", now - ts))
        .unwrap_or_else(|_| "?".into());
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let event_type = json
        .as_ref()
        .and_then(|v| {
            ["webhook_event_type", "type", "eventType"].iter().find_map(|k| v.get(k)?.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "-".into());
    let verdict = match verifier.verify_at(headers, body, now) {
        Ok(_) => "valid".to_string(),
        Err(e) => format!("invalid: {e}"),
    };
    let pretty = match &json {
        Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    format!("{event_type} {id} skew={skew} {verdict}\n{pretty}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_signature::Secret;

    #[test]
    fn describes_valid_and_invalid_deliveries() {
        let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
        let body = br#"{"webhook_event_type":"sync.complete","run_id":"r1"}"#;
        let sig = secret.sign("msg_1", 1000, body).to_string();
        let verifier = Verifier::new(secret);
        let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", "1000"), ("webhook-signature", sig.as_str())];
        let out = describe(&verifier, &headers, body, 1003);
        assert!(out.starts_with("sync.complete msg_1 skew=+3s valid\n{"), "{out}");
        let out = describe(&verifier, &headers, b"{\"type\":\"x\"}", 1003);
        assert!(out.starts_with("x msg_1 skew=+3s invalid: "), "{out}");
    }
}
