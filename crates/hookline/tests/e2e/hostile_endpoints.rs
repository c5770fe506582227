//! Endpoints that misbehave on purpose, and destinations that must never be
//! reached. Every attempt ends within the timeout with a clear error kind,
//! memory stays bounded, a healthy endpoint of the same application is not
//! held up, and nothing is retried faster than the schedule.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::fixtures::*;
use crate::receiver::Receiver;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// The status line, then one header byte a second.
    SlowHeaders,
    /// A complete head, then the body one byte a second.
    DripBody,
    /// Reads the request, then resets the connection.
    Reset,
    /// Reads the request and never answers.
    Silent,
    /// Redirects to a private address (the healthy receiver).
    Redirect,
    /// Announces and streams a 300 MB body.
    HugeBody,
    /// Answers something that is not HTTP.
    NotHttp,
    /// TLS with a self-signed certificate.
    SelfSignedTls,
    /// A 200 whose body is binary: NUL bytes (which PostgreSQL's text
    /// refuses) and bytes that are not UTF-8.
    BinaryBody,
}

/// What `Mode::BinaryBody` answers, and the response its attempt keeps.
const BINARY_BODY: &[u8] = b"ok\0\xff\xfebinary";
const BINARY_BODY_KEPT: &str = "ok\u{FFFD}\u{FFFD}\u{FFFD}binary";

/// A misbehaving endpoint on loopback.
struct Hostile {
    port: u16,
    connections: Arc<AtomicUsize>,
    bytes_sent: Arc<AtomicU64>,
}

impl Hostile {
    async fn start(mode: Mode, redirect_to: String) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let tls = matches!(mode, Mode::SelfSignedTls).then(self_signed_acceptor);
        let (count, sent) = (connections.clone(), bytes_sent.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let (sent, redirect_to, tls) = (sent.clone(), redirect_to.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        // The client refuses the certificate mid-handshake.
                        Some(acceptor) => drop(acceptor.accept(stream).await),
                        None => misbehave(mode, stream, &redirect_to, &sent).await,
                    }
                });
            }
        });
        Hostile { port, connections, bytes_sent }
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}/hook", self.port)
    }
}

fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let key = tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    // The provider is named: when the whole workspace is built together
    // (`cargo test --workspace`), rustls has both ring and aws-lc-rs (the
    // Svix Rust SDK's) enabled and will not choose one by itself.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Reads one request head and its body (by `content-length`).
async fn read_request(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        have += n;
    }
}

async fn drip(stream: &mut TcpStream, byte: &[u8]) {
    while stream.write_all(byte).await.is_ok() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn misbehave(mode: Mode, mut stream: TcpStream, redirect_to: &str, sent: &AtomicU64) {
    read_request(&mut stream).await;
    match mode {
        Mode::SlowHeaders => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nx-slow: ").await;
            drip(&mut stream, b"a").await;
        }
        Mode::DripBody => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n").await;
            drip(&mut stream, b"x").await;
        }
        Mode::Reset => {
            // A zero linger makes the close an immediate RST; it never blocks.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Mode::Silent => {
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        }
        Mode::Redirect => {
            let head = format!("HTTP/1.1 302 Found\r\nlocation: {redirect_to}\r\ncontent-length: 0\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        }
        Mode::HugeBody => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 314572800\r\n\r\n").await;
            let block = vec![b'z'; 64 * 1024];
            let mut total = 0u64;
            while total < 314_572_800 && stream.write_all(&block).await.is_ok() {
                total += block.len() as u64;
                sent.store(total, Ordering::SeqCst);
            }
        }
        Mode::NotHttp => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\nthis is not http\r\n\r\n").await;
        }
        Mode::BinaryBody => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", BINARY_BODY.len());
            let _ = stream.write_all(&[head.as_bytes(), BINARY_BODY].concat()).await;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {}
        }
        Mode::SelfSignedTls => unreachable!("served by the TLS acceptor"),
    }
}

/// The attempts of `msg` to `ep` once there is at least one.
async fn wait_attempt(server: &TestServer, app: &str, msg: &str, ep: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, list) = server.admin().get(&format!("/api/v1/app/{app}/attempt/endpoint/{ep}")).await;
        assert_eq!(status, 200, "{list}");
        if let Some(a) = list["data"].as_array().unwrap().iter().find(|a| a["msgId"] == msg) {
            return a.clone();
        }
        assert!(Instant::now() < deadline, "no attempt to {ep} was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Peak resident memory of a process, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_endpoints_fail_cleanly_within_the_timeout() {
    const TIMEOUT_S: u64 = 6;
    let healthy = Receiver::start().await;
    let server = server_with(&[
        ("HOOKLINE_ATTEMPT_TIMEOUT", &format!("{TIMEOUT_S}s")),
        // One attempt each within the test: a retry sooner would be a bug.
        ("HOOKLINE_RETRY_SCHEDULE", "1h"),
    ])
    .await;
    let (app, healthy_ep, _) = app_with_endpoint(&server, &healthy.url("/healthy"), json!({})).await;

    // (mode, scheme, expected error kind or None, expected status)
    let cases = [
        (Mode::SlowHeaders, "http", Some("timeout"), 0),
        (Mode::DripBody, "http", Some("timeout"), 200),
        (Mode::Reset, "http", Some("connection_closed"), 0),
        (Mode::Silent, "http", Some("timeout"), 0),
        (Mode::Redirect, "http", None, 302),
        (Mode::HugeBody, "http", None, 200),
        (Mode::NotHttp, "http", Some("invalid_response"), 0),
        (Mode::SelfSignedTls, "https", Some("tls_error"), 0),
        (Mode::BinaryBody, "http", None, 200),
    ];
    let mut hostiles = Vec::new();
    for (mode, scheme, kind, status) in cases {
        let hostile = Hostile::start(mode, healthy.url("/stolen")).await;
        let ep = add_endpoint(&server, &app, &hostile.url(scheme), json!({})).await;
        hostiles.push((mode, hostile, ep, kind, status));
    }

    let sent_at = Instant::now();
    let msg = send(&server, &app, json!({"hostile": true})).await;
    healthy.wait_for("/healthy", 1, WAIT).await;
    let healthy_after = sent_at.elapsed();
    assert!(
        healthy_after < Duration::from_secs(TIMEOUT_S / 2),
        "the healthy endpoint waited {healthy_after:?} behind the hostile ones"
    );
    wait_status(&server, &app, &msg, &healthy_ep, "success").await;

    for (mode, hostile, ep, kind, status) in &hostiles {
        let attempt = wait_attempt(&server, &app, &msg, ep).await;
        let error = attempt["error"].as_str().unwrap_or("");
        match kind {
            Some(kind) => assert!(error.starts_with(kind), "{mode:?}: error {error:?}, expected {kind}"),
            None => assert!(error.is_empty(), "{mode:?}: unexpected error {error:?}"),
        }
        assert_eq!(attempt["responseStatusCode"], *status, "{mode:?}: {attempt}");
        let ms = attempt["responseDurationMs"].as_u64().unwrap();
        assert!(ms <= (TIMEOUT_S + 2) * 1000, "{mode:?}: the attempt took {ms} ms");
        assert!(attempt["response"].as_str().unwrap().len() <= 20_000, "{mode:?}: response kept beyond the cap");
        if matches!(mode, Mode::BinaryBody) {
            assert_eq!(attempt["response"], BINARY_BODY_KEPT, "{mode:?}: {attempt}");
        }
        let _ = hostile;
    }

    // The 300 MB body was read up to the cap, then the connection dropped:
    // the sender could push only what socket buffers hold, not the body.
    let huge = &hostiles.iter().find(|(m, ..)| matches!(m, Mode::HugeBody)).unwrap().1;
    let pushed = huge.bytes_sent.load(Ordering::SeqCst);
    assert!(pushed < 64 * 1024 * 1024, "the 300 MB response was drained: {pushed} bytes sent");
    let peak = peak_rss(server.pid().unwrap());
    assert!(peak < 200 * 1024 * 1024, "peak memory {peak} bytes");

    // A redirect is never followed, even to an address the guard allows.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(healthy.received_on("/stolen").is_empty(), "a redirect was followed");
    // Nothing was retried sooner than the schedule (1 h): one connection each.
    for (mode, hostile, ..) in &hostiles {
        assert_eq!(hostile.connections.load(Ordering::SeqCst), 1, "{mode:?} was contacted more than once");
    }
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn every_spelling_of_loopback_is_refused_by_the_ssrf_guard() {
    let rx = Receiver::start().await;
    // No HOOKLINE_ALLOWED_PRIVATE_CIDRS: the guard is on.
    let server = TestServer::builder().env("HOOKLINE_RETRY_SCHEDULE", "").start().await;
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "ssrf"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    let port = rx.addr.port();
    let spellings = [
        format!("http://127.0.0.1:{port}/plain"),
        format!("http://2130706433:{port}/decimal"),
        format!("http://0177.0.0.1:{port}/octal"),
        format!("http://0x7f.0.0.1:{port}/hex"),
        format!("http://127.1:{port}/short"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        format!("http://[::ffff:7f00:1]:{port}/mapped-hex"),
        format!("http://[::1]:{port}/v6"),
        format!("http://localhost:{port}/name"),
        format!("http://localhost.:{port}/dotted-name"),
        format!("http://0.0.0.0:{port}/unspecified"),
    ];
    let mut endpoints = Vec::new();
    for url in &spellings {
        let (status, ep) = server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": url})).await;
        assert_eq!(status, 201, "{url}: {ep}");
        endpoints.push((url.clone(), ep["id"].as_str().unwrap().to_string()));
    }
    let msg = send(&server, &app, json!({})).await;
    for (url, ep) in &endpoints {
        let attempt = wait_attempt(&server, &app, &msg, ep).await;
        let error = attempt["error"].as_str().unwrap_or("");
        assert!(error.starts_with("forbidden_address"), "{url}: {error:?}");
        assert_eq!(attempt["responseStatusCode"], 0, "{url}");
    }
    assert!(rx.received().is_empty(), "a forbidden address was reached: {:?}", rx.received());
}
