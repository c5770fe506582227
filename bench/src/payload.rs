//! The messages the benchmark sends: `POST /api/v1/app/{app}/msg` bodies
//! whose payload is a JSON object of a set size (1 KB unless a scenario
//! says otherwise), different for every message.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::load::MakeRequest;

/// Size of every message's `payload`, in bytes of JSON text.
pub const PAYLOAD_BYTES: usize = 1024;

/// The body of message `i`: an event type and a payload of `bytes` (at
/// least its fields), [`payload`] `i` at 1 KB.
pub fn sized_message_body(i: usize, bytes: usize) -> Bytes {
    Bytes::from(format!(r#"{{"eventType":"invoice.paid","payload":{}}}"#, sized_payload(i, bytes)))
}

/// Payload `i`: a JSON object of exactly [`PAYLOAD_BYTES`], padded with a
/// string field.
pub fn payload(i: usize) -> String {
    sized_payload(i, PAYLOAD_BYTES)
}

/// Payload `i` padded to `bytes` of JSON text (or its fields alone, about
/// 150 bytes, when `bytes` is smaller).
fn sized_payload(i: usize, bytes: usize) -> String {
    let mut text = format!(
        r#"{{"id":"in_{i:010}","customer":"cus_{:08x}","amount":{},"currency":"eur","status":"paid","lines":[{{"sku":"plan-pro","quantity":1}}],"note":""#,
        i.wrapping_mul(2_654_435_761) & 0xffff_ffff,
        1000 + i % 9000,
    );
    let padding = bytes.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n('x', padding));
    text.push_str("\"}");
    text
}

/// Request `i` creates message `i` of application `app`, through `nodes`
/// (`http://host:port`) in turn, with an `Idempotency-Key` unique to this
/// load (`tag`), as the SDKs send on every POST.
pub fn message_requests(nodes: &[String], token: &str, app: &str, tag: &str) -> MakeRequest {
    sized_message_requests(nodes, token, app, tag, PAYLOAD_BYTES)
}

/// [`message_requests`] with payloads of `bytes`.
pub fn sized_message_requests(nodes: &[String], token: &str, app: &str, tag: &str, bytes: usize) -> MakeRequest {
    let urls: Vec<String> = nodes.iter().map(|node| format!("{node}/api/v1/app/{app}/msg")).collect();
    let (authorization, tag) = (format!("Bearer {token}"), tag.to_string());
    Arc::new(move |i| {
        Request::post(&urls[i % urls.len()])
            .header("content-type", "application/json")
            .header("authorization", &authorization)
            .header("idempotency-key", format!("{tag}-{i}"))
            .body(Full::new(sized_message_body(i, bytes)))
            .expect("a request of valid parts")
    })
}

/// Request `i` is a delivery of message `i` to `url`, as Hookline sends it
/// (minus the signature): for loading a receiver directly.
pub fn delivery_requests(url: &str) -> MakeRequest {
    let url = url.to_string();
    Arc::new(move |i| {
        Request::post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", format!("msg_bench{i:012}"))
            .header("webhook-timestamp", "1700000000")
            .body(Full::new(Bytes::from(payload(i))))
            .expect("a request of valid parts")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payload_is_1_kb_of_json() {
        for i in [0, 7, 123_456, 99_999_999] {
            let body: serde_json::Value = serde_json::from_slice(&sized_message_body(i, PAYLOAD_BYTES)).unwrap();
            assert_eq!(body["eventType"], "invoice.paid");
            assert_eq!(serde_json::to_string(&body["payload"]).unwrap().len(), PAYLOAD_BYTES, "message {i}");
            assert_eq!(payload(i).len(), PAYLOAD_BYTES);
        }
        assert_ne!(sized_message_body(1, PAYLOAD_BYTES), sized_message_body(2, PAYLOAD_BYTES));
        for bytes in [256, 65_536] {
            let body: serde_json::Value = serde_json::from_slice(&sized_message_body(3, bytes)).unwrap();
            assert_eq!(serde_json::to_string(&body["payload"]).unwrap().len(), bytes);
        }
    }
}
