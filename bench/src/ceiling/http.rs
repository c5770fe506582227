//! The HTTP ceiling: `hookline-bench ceiling-server`, a subprocess per node
//! serving `POST /api/v1/app/{app_id}/msg` with axum on tokio's
//! multi-thread runtime and the system allocator, as Hookline does. It
//! parses the body into the shape of Hookline's `MessageIn` with serde_json
//! (the payload kept as raw text) and answers 202 with the message, as
//! Hookline does, without authentication, idempotency or a store.
//!
//! It also answers `GET /` with a fixed text: the hello-world figure that
//! issue 12 quotes for its machine (and beside which the Svix server's
//! 900 messages/s were taken), so a run tells how this host compares.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::Full;
use hyper::Request;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{Context, Error, Result};
use crate::figure::Measured;
use crate::load::{closed_loop, MakeRequest};
use crate::offload::blocking;
use crate::payload::message_requests;
use crate::plan::{Bench, CONCURRENCY};
use crate::procfs;
use crate::stats::percentile;

use super::{latency_figure, HELLO_REQUESTS_PER_SECOND, HTTP, REQUESTS_PER_SECOND};

/// The fields of Hookline's `MessageIn` (`api/messages.rs`).
#[derive(Deserialize)]
#[expect(dead_code, reason = "parsed as Hookline parses them; only the handler's validation would read them")]
#[serde(rename_all = "camelCase")]
struct MessageIn {
    event_type: String,
    #[serde(default)]
    event_id: Option<String>,
    payload: Box<RawValue>,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    application: Option<Value>,
    #[serde(default)]
    payload_retention_period: Option<i64>,
    #[serde(default)]
    payload_retention_hours: Option<i64>,
    #[serde(default)]
    deliver_at: Option<String>,
}

/// The fields of Hookline's `MessageOut`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageOut {
    id: String,
    event_type: String,
    event_id: Option<String>,
    payload: Box<RawValue>,
    channels: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    timestamp: String,
    deliver_at: Option<String>,
    expired: bool,
}

/// Runs the ceiling server on `listen` until killed, after printing
/// `listening on ADDR` on stdout.
pub async fn serve(listen: &str) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.context(format!("binding {listen}"))?;
    let addr = listener.local_addr().context("the ceiling server's address")?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {addr}").and_then(|()| stdout.flush()).context("writing to stdout")?;
    let router = Router::new()
        .route("/api/v1/app/{app_id}/msg", post(create_message))
        .route("/", get(|| async { "Hello, World!" }));
    axum::serve(listener, router).await.context("serving")
}

async fn create_message(body: Bytes) -> Response {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let input: MessageIn = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    let out = MessageOut {
        id: format!("msg_{:027}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        event_type: input.event_type,
        event_id: input.event_id,
        payload: input.payload,
        channels: input.channels,
        tags: input.tags,
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        deliver_at: None,
        expired: false,
    };
    match serde_json::to_vec(&out) {
        Ok(body) => (StatusCode::ACCEPTED, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// A ceiling server subprocess, killed when dropped.
struct CeilingServer {
    child: Child,
    base: String,
}

impl CeilingServer {
    /// Starts `hookline-bench ceiling-server` and reads the address it listens on.
    fn start() -> Result<CeilingServer> {
        let exe = std::env::current_exe().context("finding this program")?;
        let mut child = Command::new(exe)
            .args(["ceiling-server", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting hookline-bench ceiling-server")?;
        let mut line = String::new();
        let read = child.stdout.take().map(|out| BufReader::new(out).read_line(&mut line));
        // Held from here on, so a failure below kills it.
        let mut server = CeilingServer { child, base: String::new() };
        match (read, line.trim().strip_prefix("listening on ")) {
            (Some(Ok(_)), Some(addr)) => {
                server.base = format!("http://{addr}");
                Ok(server)
            }
            _ => Err(Error::new(format!("the ceiling server did not say where it listens (it said {line:?})"))),
        }
    }
}

impl Drop for CeilingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One ceiling server per node under test, loaded like Hookline's nodes.
pub async fn measure(bench: &Bench) -> Result<Vec<Measured>> {
    let mut servers = Vec::new();
    for _ in 0..bench.servers.nodes {
        servers.push(blocking(CeilingServer::start).await??);
    }
    let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
    let requests = message_requests(&bases, "ceiling", "app_ceiling", "ceiling");
    let cpu_before = CpuSplit::now(&servers)?;
    let load = closed_loop(&bench.client, bench.sizes.ceiling_requests, CONCURRENCY, requests).await;
    let cpu = CpuSplit::now(&servers)?.since(&cpu_before);
    load.ensure_all_answered()?;
    let mut latencies = load.latencies();
    let mut figures = vec![Measured::new(HTTP, REQUESTS_PER_SECOND, "req/s", load.rate())];
    for (p, rank) in [("p50", 50.0), ("p99", 99.0)] {
        figures.push(Measured::millis(HTTP, latency_figure(p), percentile(&mut latencies, rank)));
    }
    // Where a request's share of the cores goes when nothing else runs:
    // what is left to a server under test is the rest.
    let per_request = |seconds: f64| seconds * 1e6 / load.answers.len().max(1) as f64;
    figures.push(Measured::new(HTTP, "server CPU per request", "µs", per_request(cpu.servers)));
    figures.push(Measured::new(HTTP, "load generator CPU per request", "µs", per_request(cpu.clients)));
    let hello = closed_loop(&bench.client, bench.sizes.ceiling_requests, CONCURRENCY, hello_requests(&bases)).await;
    hello.ensure_all_answered()?;
    figures.push(Measured::new(HTTP, HELLO_REQUESTS_PER_SECOND, "req/s", hello.rate()));
    Ok(figures)
}

/// CPU seconds of the ceiling servers and of this process (the load
/// generator).
struct CpuSplit {
    servers: f64,
    clients: f64,
}

impl CpuSplit {
    fn now(servers: &[CeilingServer]) -> Result<CpuSplit> {
        let mut total = 0.0;
        for server in servers {
            total += procfs::cpu_seconds(server.child.id())?;
        }
        Ok(CpuSplit { servers: total, clients: procfs::cpu_seconds(std::process::id())? })
    }

    fn since(&self, before: &CpuSplit) -> CpuSplit {
        CpuSplit { servers: self.servers - before.servers, clients: self.clients - before.clients }
    }
}

/// `GET /` on the ceiling servers in turn.
fn hello_requests(bases: &[String]) -> MakeRequest {
    let urls: Vec<String> = bases.iter().map(|base| format!("{base}/")).collect();
    std::sync::Arc::new(move |i| {
        Request::get(&urls[i % urls.len()]).body(Full::new(Bytes::new())).expect("a request of valid parts")
    })
}
