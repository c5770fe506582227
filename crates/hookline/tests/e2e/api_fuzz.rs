//! Random and mutated requests against every route of openapi.json: the
//! server must answer each with a JSON error or a success, never a 5xx, and
//! stay up. CI runs a few hundred requests; `scripts/fuzz.sh N` runs more
//! (set HOOKLINE_FUZZ_SEED to replay a run).

use crate::common::TestServer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Map, Value};

fn random_string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "",
        "a",
        "sync.complete",
        "app_",
        "ep_",
        "msg_",
        "whsec_",
        "http://",
        "https://example.com/x",
        "%",
        "../",
        "\u{0}",
        "é",
        "🦀",
        "\"",
        "\\",
        " ",
        "-",
        "_",
        ".",
        "null",
        "{}",
        "2026-11-28T00:00:00Z",
        "ftp://x",
    ];
    let n = rng.gen_range(0..6);
    let mut s: String = (0..n).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect();
    if rng.gen_bool(0.05) {
        s.push_str(&"x".repeat(rng.gen_range(200..3000)));
    }
    s
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.gen_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => json!(rng.gen_range(-5i64..300)),
        3 => [json!(i64::MIN), json!(i64::MAX), json!(u64::MAX), json!(-1), json!(1e300), json!(0.5)]
            [rng.gen_range(0..6)]
        .clone(),
        4 | 5 => Value::String(random_string(rng)),
        6 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => Value::Object(random_object(rng, depth + 1)),
    }
}

const FIELDS: &[&str] = &[
    "name",
    "uid",
    "url",
    "description",
    "eventType",
    "eventId",
    "payload",
    "channels",
    "filterTypes",
    "eventTypes",
    "rateLimit",
    "throttleRate",
    "secret",
    "metadata",
    "headers",
    "disabled",
    "version",
    "schemas",
    "archived",
    "validatePayloads",
    "key",
    "gracePeriodSeconds",
    "since",
    "until",
    "expiry",
    "readOnly",
    "application",
    "deleteHeaders",
    "payloadRetentionPeriod",
    "payloadRetentionHours",
    "tags",
];

fn random_object(rng: &mut StdRng, depth: u32) -> Map<String, Value> {
    (0..rng.gen_range(0..6))
        .map(|_| {
            let key = if rng.gen_bool(0.85) {
                FIELDS[rng.gen_range(0..FIELDS.len())].to_string()
            } else {
                random_string(rng)
            };
            (key, random_value(rng, depth))
        })
        .collect()
}

/// A body that is valid for many routes, to mutate one field at a time.
fn plausible_body() -> Map<String, Value> {
    json!({
        "name": "fuzz", "url": "https://example.com/hook", "eventType": "fuzz.event", "payload": {"a": 1},
        "description": "d", "since": "2026-01-01T00:00:00Z",
    })
    .as_object()
    .unwrap()
    .clone()
}

fn body_for(rng: &mut StdRng) -> (Option<&'static str>, Vec<u8>) {
    let content_type = match rng.gen_range(0..20) {
        0 => None,
        1 => Some("text/plain"),
        2 => Some("application/json; charset=utf-8"),
        _ => Some("application/json"),
    };
    let bytes = match rng.gen_range(0..10) {
        0 => (0..rng.gen_range(0..64)).map(|_| rng.gen::<u8>()).collect(),
        1 => br#"{"name": "unterminated"#.to_vec(),
        2 | 3 => serde_json::to_vec(&random_value(rng, 0)).unwrap(),
        4 | 5 => serde_json::to_vec(&random_object(rng, 0)).unwrap(),
        _ => {
            let mut body = plausible_body();
            let field = FIELDS[rng.gen_range(0..FIELDS.len())];
            body.insert(field.to_string(), random_value(rng, 1));
            serde_json::to_vec(&body).unwrap()
        }
    };
    (content_type, bytes)
}

#[tokio::test]
async fn random_requests_never_get_a_server_error() {
    let iterations: usize = std::env::var("HOOKLINE_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let seed: u64 = std::env::var("HOOKLINE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(rand::random);
    println!("fuzzing {iterations} requests with HOOKLINE_FUZZ_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let server = TestServer::start().await;
    let admin = server.admin();
    let (_, app) = admin.post("/api/v1/app", &json!({"name": "fuzz", "uid": "fuzz-app"})).await;
    let app_id = app["id"].as_str().unwrap().to_string();
    let (_, et) = admin.post("/api/v1/event-type", &json!({"name": "fuzz.event", "description": "d"})).await;
    assert_eq!(et["name"], "fuzz.event");
    let (_, ep) = admin.post(&format!("/api/v1/app/{app_id}/endpoint"), &json!({"url": "https://example.com/h"})).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();
    let (_, msg) =
        admin.post(&format!("/api/v1/app/{app_id}/msg"), &json!({"eventType": "fuzz.event", "payload": {}})).await;
    let msg_id = msg["id"].as_str().unwrap().to_string();

    let (_, spec) = server.anonymous().get("/api/v1/openapi.json").await;
    let mut routes: Vec<(Method, String)> = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // Deleting the fixture app would turn the rest into 404s.
            if method == Method::DELETE && path == "/api/v1/app/{app_id}" {
                continue;
            }
            routes.push((method, path.clone()));
        }
    }

    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..iterations {
        let (method, template) = routes[rng.gen_range(0..routes.len())].clone();
        let mut path = template.clone();
        for (name, real) in [("{app_id}", &app_id), ("{endpoint_id}", &ep_id), ("{msg_id}", &msg_id)] {
            let value = if rng.gen_bool(0.8) { real.clone() } else { urlencode(&random_string(&mut rng)) };
            path = path.replace(name, &value);
        }
        path = path.replace("{event_type_name}", if rng.gen_bool(0.7) { "fuzz.event" } else { "nope" });
        path = path.replace("{attempt_id}", "atmpt_x");
        if rng.gen_bool(0.3) {
            let q = [
                "limit=0",
                "limit=abc",
                "iterator=-",
                "before=nope",
                "with_content=maybe",
                "event_types=,,",
                "status=9",
                "order=up",
            ];
            path.push('?');
            path.push_str(q[rng.gen_range(0..q.len())]);
        }
        let (content_type, body) = body_for(&mut rng);
        let mut req = server.http().request(method.clone(), server.url(&path)).bearer_auth(server.admin_token());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if method != Method::GET && method != Method::DELETE {
            req = req.body(body.clone());
        }
        if method == Method::POST && rng.gen_bool(0.3) {
            req = req.header("idempotency-key", format!("fuzz-{}", rng.gen_range(0..5)));
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("request {i} ({method} {path}) failed: {e}"));
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        *by_status.entry(status).or_default() += 1;
        assert!(
            status < 500,
            "request {i}: {method} {path} with {:?} answered {status}: {text}",
            String::from_utf8_lossy(&body)
        );
        if status >= 400 {
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: non-JSON {status}: {text}"));
            assert!(v["code"].is_string() && !v["detail"].is_null(), "{method} {path}: {status} {text}");
        }
    }
    println!("answers by status: {by_status:?}");
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204, "the server survived");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
