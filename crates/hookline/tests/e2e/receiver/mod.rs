//! A real HTTP receiver for delivery tests: an axum server on loopback that
//! records every request and answers as the test scripts it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, delay: Duration::ZERO, headers: Vec::new() }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("request has no {name} header: {:?}", self.headers))
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }
}

type Script = dyn Fn(usize, &str) -> Reply + Send + Sync;

struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<Arc<Script>>,
}

#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

impl Receiver {
    /// Starts a receiver answering 200 to everything.
    pub async fn start() -> Receiver {
        Self::scripted(|_, _| Reply::status(200)).await
    }

    /// Starts a receiver whose answer to the n-th request (0-based, counted
    /// across all paths) to `path` is `script(n, path)`.
    pub async fn scripted(script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Receiver {
        let inner = Arc::new(Inner { received: Mutex::new(Vec::new()), script: Mutex::new(Arc::new(script)) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let addr = listener.local_addr().expect("receiver address");
        let app = axum::Router::new().fallback(handle).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { inner, addr }
    }

    pub fn set_script(&self, script: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) {
        *self.inner.script.lock().unwrap() = Arc::new(script);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    pub fn received_on(&self, path: &str) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.path == path).collect()
    }

    /// Waits until `path` has received at least `n` requests (panics after `within`).
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received_on(path);
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "{path} received {} of {n} requests within {within:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(State(inner): State<Arc<Inner>>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let n = {
        let mut received = inner.received.lock().unwrap();
        let n = received.iter().filter(|r| r.path == path).count();
        received.push(Received {
            path: path.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
        n
    };
    let script = inner.script.lock().unwrap().clone();
    let reply = script(n, &path);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), format!("reply {n}")).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            axum::http::HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// Verifies deliveries with the official Python `standardwebhooks` and `svix`
/// packages (the interpreter named by `HOOKLINE_TEST_PYTHON`); each case is
/// (secret, request). Panics with the script's output on any failure.
pub fn verify_with_python(cases: &[(String, Received)]) {
    let python = std::env::var("HOOKLINE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("HOOKLINE_TEST_PYTHON is not set: run the project's test script (scripts/test.sh), which creates a virtualenv with svix and standardwebhooks")
    });
    use base64::Engine;
    let payload: Vec<Value> = cases
        .iter()
        .map(|(secret, r)| {
            json!({
                "secret": secret,
                "headers": r.headers,
                "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&payload).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/compat/verify_deliveries.py");
    let out = std::process::Command::new(python).arg(script).arg(&file).output().expect("run python");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "Python verification failed:\n{text}");
    assert!(text.contains(&format!("{} verified", cases.len())), "unexpected Python output:\n{text}");
}
