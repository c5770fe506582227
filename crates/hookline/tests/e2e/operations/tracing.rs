//! Traces: an OTLP/HTTP receiver inside the test takes the export (protobuf)
//! and checks that the spans of one message form one trace:
//! accept → store, accept → claim → attempt → record.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use serde_json::json;

use crate::fixtures::*;
use crate::receiver::Receiver;

#[derive(Debug, Clone)]
struct Span {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    name: String,
    attributes: BTreeMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP collector on loopback: `POST /v1/traces` with protobuf.
async fn collector() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = axum::Router::new().route("/v1/traces", axum::routing::post(export)).with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, spans)
}

async fn export(State(spans): State<Spans>, body: Bytes) -> impl IntoResponse {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut got = spans.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            for s in scope.spans {
                let attributes = s
                    .attributes
                    .iter()
                    .map(|kv| {
                        let text = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(any_value::Value::StringValue(s)) => s.clone(),
                            Some(any_value::Value::IntValue(i)) => i.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key.clone(), text)
                    })
                    .collect();
                got.push(Span {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent: s.parent_span_id,
                    name: s.name,
                    attributes,
                });
            }
        }
    }
    (StatusCode::OK, [("content-type", "application/x-protobuf")], Vec::<u8>::new()).into_response()
}

#[tokio::test]
async fn the_spans_of_one_message_form_one_trace() {
    let (otlp, spans) = collector().await;
    let rx = Receiver::start().await;
    let server = server_with(&[("HOOKLINE_OTLP_ENDPOINT", &otlp), ("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/traced"), json!({})).await;
    let first = send(&server, &app, json!({"n": 1})).await;
    let second = send(&server, &app, json!({"n": 2})).await;
    rx.wait_for("/traced", 2, WAIT).await;

    let names = ["accept", "store", "claim", "attempt", "record"];
    let trace_of = |msg: &str| -> Vec<Span> {
        let all = spans.lock().unwrap().clone();
        let Some(root) = all
            .iter()
            .find(|s| s.name == "accept" && s.attributes.get("hookline.msg_id").map(String::as_str) == Some(msg))
        else {
            return Vec::new();
        };
        all.iter().filter(|s| s.trace_id == root.trace_id).cloned().collect()
    };
    let deadline = Instant::now() + WAIT;
    let (one, two) = loop {
        let (one, two) = (trace_of(&first), trace_of(&second));
        let complete = |t: &[Span]| names.iter().all(|n| t.iter().any(|s| s.name == *n));
        if complete(&one) && complete(&two) {
            break (one, two);
        }
        assert!(Instant::now() < deadline, "spans received: {:#?}", spans.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(one[0].trace_id, two[0].trace_id, "two messages, two traces");
    for trace in [&one, &two] {
        let find = |name: &str| -> &Span {
            let matching: Vec<&Span> = trace.iter().filter(|s| s.name == name).collect();
            assert_eq!(matching.len(), 1, "one {name} span expected: {trace:#?}");
            matching[0]
        };
        let (accept, store, claim, attempt, record) =
            (find("accept"), find("store"), find("claim"), find("attempt"), find("record"));
        assert!(accept.parent.is_empty(), "accept is the root");
        assert_eq!(store.parent, accept.span_id);
        assert_eq!(claim.parent, accept.span_id);
        assert_eq!(attempt.parent, claim.span_id);
        assert_eq!(record.parent, attempt.span_id);
        assert_eq!(attempt.attributes["hookline.endpoint_id"], ep);
        assert_eq!(attempt.attributes["hookline.outcome"], "success");
        assert_eq!(attempt.attributes["http.response.status_code"], "200");
        assert_eq!(attempt.attributes["hookline.msg_id"], accept.attributes["hookline.msg_id"]);
    }
}
