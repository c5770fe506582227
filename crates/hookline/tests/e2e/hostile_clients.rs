//! API clients that misbehave: no credentials with a huge body, bodies that
//! never finish, absurd JSON, thousands of things on one application, huge
//! headers. Each gets a clear 4xx quickly, and the server stays healthy.

use std::time::{Duration, Instant};

use crate::common::{assert_error, assert_invalid_field, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (and `body`) on a raw connection; returns the status and
/// the response text, read until the server closes or `within` passes.
async fn raw(server: &TestServer, head: &str, body: &[u8], within: Duration) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                response.extend_from_slice(&chunk[..n]);
                // One complete JSON answer is all we wait for.
                let text = String::from_utf8_lossy(&response);
                if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
                    break;
                }
            }
            Ok(_) => break,
            Err(_) => panic!("no answer within {within:?}; got {:?}", String::from_utf8_lossy(&response)),
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn json_body(text: &str) -> Value {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked answer wraps the JSON in chunk sizes.
    let start = body.find('{').unwrap_or(0);
    let end = body.rfind('}').map(|i| i + 1).unwrap_or(body.len());
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn no_body_is_read_before_the_caller_is_authenticated() {
    let server = TestServer::start().await;
    // 50 MB announced, nothing sent: the 401 comes from the headers alone.
    let head = format!(
        "POST /api/v1/app/x/msg HTTP/1.1\r\nhost: 127.0.0.1:{}\r\ncontent-type: application/json\r\n\
         content-length: 50000000\r\n\r\n",
        server.port()
    );
    let (status, text) = raw(&server, &head, b"", Duration::from_secs(10)).await;
    assert_eq!(status, 401, "{text}");
    assert_eq!(json_body(&text)["code"], "authentication_failed");

    let bad_token = head.replace("\r\n\r\n", "\r\nauthorization: Bearer hk_forged.token\r\n\r\n");
    let (status, text) = raw(&server, &bad_token, b"", Duration::from_secs(10)).await;
    assert_eq!(status, 401, "{text}");
}

#[tokio::test]
async fn a_body_that_never_finishes_is_cut_off() {
    let server = TestServer::start().await;
    let app = server.create_app("Drip", Some("drip")).await;
    let head = format!(
        "POST /api/v1/app/{}/msg HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 1000\r\n\r\n",
        app["id"].as_str().unwrap(),
        server.admin_token()
    );
    let started = Instant::now();
    let (status, text) = raw(&server, &head, br#"{"eventType": "#, Duration::from_secs(60)).await;
    assert_eq!(status, 408, "{text}");
    assert_eq!(json_body(&text)["code"], "request_timeout");
    assert!(started.elapsed() >= Duration::from_secs(25), "cut off after {:?}", started.elapsed());
}

#[tokio::test]
async fn absurd_json_is_refused_quickly() {
    let server = TestServer::start().await;
    let app = server.create_app("Json", Some("json")).await;
    let path = server.url(&format!("/api/v1/app/{}/msg", app["id"].as_str().unwrap()));
    let post = |body: Vec<u8>| {
        server
            .http()
            .post(&path)
            .bearer_auth(server.admin_token())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // 200 000 levels of nesting: receivers' parsers would fail on it.
    let depth = 200_000;
    let mut deep = br#"{"eventType": "a", "payload": {"x": "#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', depth));
    deep.extend(std::iter::repeat_n(b']', depth));
    deep.extend(b"}}");
    let r = post(deep).await.unwrap();
    let status = r.status().as_u16();
    assert_invalid_field(status, &r.json().await.unwrap(), "payload");

    // Over the body limit (1 MiB by default): 413 as JSON.
    let mut huge = br#"{"eventType": "a", "payload": {"x": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    huge.extend(br#""}}"#);
    let r = post(huge).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "payload_too_large");

    // Not UTF-8, not JSON.
    let r = post(vec![0xff, 0xfe, 0x00, 0x7b]).await.unwrap();
    assert_eq!(r.status(), 400);

    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn one_application_cannot_grow_without_bound() {
    let server = TestServer::start().await;
    let app = server.create_app("Big", None).await;
    let app = app["id"].as_str().unwrap().to_string();
    let endpoints = format!("/api/v1/app/{app}/endpoint");

    let types: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
    let (status, body) =
        server.admin().post(&endpoints, &json!({"url": "https://example.com/h", "filterTypes": types})).await;
    assert_invalid_field(status, &body, "filterTypes");

    let metadata: serde_json::Map<String, Value> = (0..500).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, body) =
        server.admin().post(&endpoints, &json!({"url": "https://example.com/h", "metadata": metadata})).await;
    assert_invalid_field(status, &body, "metadata");

    let headers: serde_json::Map<String, Value> = (0..500).map(|i| (format!("x-h{i}"), json!("v"))).collect();
    let (status, body) =
        server.admin().post(&endpoints, &json!({"url": "https://example.com/h", "headers": headers})).await;
    assert_invalid_field(status, &body, "headers");

    // The limits hold for what is stored: headers merged over several PATCHes too.
    let (status, ep) = server.admin().post(&endpoints, &json!({"url": "https://example.com/h"})).await;
    assert_eq!(status, 201, "{ep}");
    let headers_path = format!("{endpoints}/{}/headers", ep["id"].as_str().unwrap());
    let batch = |from: usize| -> Value {
        let map: serde_json::Map<String, Value> = (from..from + 60).map(|i| (format!("x-h{i}"), json!("v"))).collect();
        json!({ "headers": map })
    };
    let (status, body) = server.admin().patch(&headers_path, &batch(0)).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.admin().patch(&headers_path, &batch(60)).await;
    assert_invalid_field(status, &body, "headers");
    let (_, stored) = server.admin().get(&headers_path).await;
    assert_eq!(stored["headers"].as_object().unwrap().len(), 60, "the refused PATCH changed nothing");
    let (status, _) = server.admin().delete(&format!("{endpoints}/{}", ep["id"].as_str().unwrap())).await;
    assert_eq!(status, 204);

    // A thousand endpoints is the most one application may have.
    let url = server.url(&endpoints);
    let mut created = 0;
    for batch in 0..25 {
        let requests = (0..40).map(|i| {
            server
                .http()
                .post(&url)
                .bearer_auth(server.admin_token())
                .json(&json!({"url": format!("https://example.com/{batch}/{i}")}))
                .send()
        });
        for r in futures_util::future::join_all(requests).await {
            assert_eq!(r.unwrap().status(), 201);
            created += 1;
        }
    }
    assert_eq!(created, 1000);
    let (status, body) = server.admin().post(&endpoints, &json!({"url": "https://example.com/one-more"})).await;
    assert_error(status, &body, 422);
    let (status, body) = server.admin().put(&format!("{endpoints}/one-more"), &json!({"url": "https://x.com"})).await;
    assert_error(status, &body, 422);
}

#[tokio::test]
async fn huge_headers_are_refused_and_the_server_stays_up() {
    let server = TestServer::start().await;
    let head = format!(
        "GET /api/v1/app HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\nx-junk: {}\r\n\r\n",
        server.admin_token(),
        "j".repeat(200 * 1024)
    );
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
    // The server may stop reading (and close) before all of it is written.
    let _ = stream.write_all(head.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "a 200 KB header must be refused at the protocol level: {text}"
    );
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn path_segments_that_are_not_utf8_are_json_404s() {
    let server = TestServer::start().await;
    let app = server.create_app("Utf", Some("utf")).await;
    let app = app["id"].as_str().unwrap();
    for path in [
        "/api/v1/app/%FF/".to_string(),
        "/api/v1/app/%FF".to_string(),
        format!("/api/v1/app/{app}/endpoint/%C3%28"),
        format!("/api/v1/app/{app}/msg/%80%80/attempt/%FE"),
        "/api/v1/event-type/%ED%A0%80".to_string(),
    ] {
        let r = server.http().get(server.url(&path)).bearer_auth(server.admin_token()).send().await.unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let body: Value = r.json().await.unwrap_or_else(|e| panic!("{path}: not JSON ({e})"));
        assert_eq!(status, 404, "{path}: {body}");
        assert!(content_type.starts_with("application/json"), "{path}: {content_type}");
        assert_eq!(body["code"], "not_found");
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = TestServer::start().await;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port())).await.unwrap();
    stream.write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: x\r\nx-slow: ").await.unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 256];
    // The server closes the connection once the header deadline (60 s) has
    // passed; the generous bound is for a loaded machine, not a target.
    let closed = tokio::time::timeout(Duration::from_secs(150), async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a connection with unfinished headers was held for 150 s");
    assert!(started.elapsed() >= Duration::from_secs(55), "closed after only {:?}", started.elapsed());
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}
