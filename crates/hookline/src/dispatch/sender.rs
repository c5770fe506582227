//! One signed HTTP POST to an endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use hookline_signature::SignatureHeader;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};

use super::policy::retry::parse_retry_after;
use super::ssrf::{GuardedResolver, Refused, SsrfGuard};
use crate::endpoint_key::SigningKeys;
use crate::store::model::StringMap;

/// Response bodies are kept up to this many bytes.
const MAX_RESPONSE_BYTES: usize = 20_000;

/// Why an attempt got no usable answer, in words an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No complete answer within the attempt timeout.
    Timeout,
    /// The SSRF guard refused the destination address.
    Forbidden,
    /// No connection: refused, unreachable, or the name did not resolve.
    Connect,
    /// The TLS handshake failed (certificate not trusted, protocol error).
    Tls,
    /// The connection was reset or closed before a complete answer.
    Closed,
    /// The peer answered something that is not HTTP.
    Protocol,
    /// Reading the response body failed after the status arrived.
    Body,
    /// Hookline could not make the request (bad URL or header, key, payload).
    Internal,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::Forbidden => "forbidden_address",
            FailureKind::Connect => "connection_failed",
            FailureKind::Tls => "tls_error",
            FailureKind::Closed => "connection_closed",
            FailureKind::Protocol => "invalid_response",
            FailureKind::Body => "response_body_error",
            FailureKind::Internal => "internal_error",
        }
    }
}

/// What came back (or why nothing did).
#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub body: String,
    pub duration: Duration,
    /// `(kind, detail)` when no complete answer was read.
    pub failure: Option<(FailureKind, String)>,
    pub retry_after: Option<Duration>,
}

impl SendResult {
    /// A failure before any request was made.
    pub fn failed(kind: FailureKind, detail: impl Into<String>) -> SendResult {
        SendResult {
            status: None,
            body: String::new(),
            duration: Duration::ZERO,
            failure: Some((kind, detail.into())),
            retry_after: None,
        }
    }

    /// The failure as stored on the attempt: `kind: detail`.
    pub fn error_text(&self) -> Option<String> {
        self.failure.as_ref().map(|(kind, detail)| format!("{}: {detail}", kind.as_str()))
    }
}

pub struct Sender {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

pub struct Outgoing<'a> {
    pub url: &'a str,
    pub msg_id: &'a str,
    pub timestamp: i64,
    pub body: Bytes,
    pub custom_headers: &'a StringMap,
    pub keys: &'a SigningKeys,
}

impl Sender {
    pub fn new(guard: SsrfGuard, timeout: Duration) -> Result<Sender, String> {
        let guard = Arc::new(guard);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the destination itself, past the guard.
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(64)
            .dns_resolver(Arc::new(GuardedResolver { guard: guard.clone() }))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Sender { client, guard })
    }

    pub async fn send(&self, out: Outgoing<'_>) -> SendResult {
        let started = Instant::now();
        let fail = |kind: FailureKind, detail: String| SendResult {
            duration: started.elapsed(),
            ..SendResult::failed(kind, detail)
        };
        let url = match reqwest::Url::parse(out.url) {
            Ok(u) => u,
            Err(e) => return fail(FailureKind::Internal, format!("invalid URL: {e}")),
        };
        // The resolver guards names; literal addresses never reach it.
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(addr) = literal {
            if let Err(class) = self.guard.check(addr) {
                return fail(FailureKind::Forbidden, Refused { host: addr.to_string(), addr, class }.to_string());
            }
        }
        let headers = match build_headers(&out) {
            Ok(h) => h,
            Err(e) => return fail(FailureKind::Internal, e),
        };
        let response = self.client.post(url).headers(headers).body(out.body.clone()).send().await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                let (kind, detail) = classify(&e);
                return fail(kind, detail);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        let mut failure = None;
        // Read up to the cap, then stop: a huge or endless body costs at most
        // the cap in memory, and the connection is dropped rather than drained.
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let (kind, detail) = classify(&e);
                    let kind = if kind == FailureKind::Timeout { kind } else { FailureKind::Body };
                    failure = Some((kind, format!("reading the response: {detail}")));
                    break;
                }
            }
        }
        SendResult { status: Some(status), body: kept_text(&body), duration: started.elapsed(), failure, retry_after }
    }
}

/// A response body as its attempt keeps it: text, with U+FFFD for what is
/// not UTF-8 and for NUL, which PostgreSQL's text cannot hold (a receiver
/// answering in binary would otherwise make its outcome unrecordable).
fn kept_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut text = if text.contains('\0') { text.replace('\0', "\u{FFFD}") } else { text.into_owned() };
    // A replacement takes three bytes where the byte it stands for took
    // one: the text is cut back to the cap the bytes were read to.
    if text.len() > MAX_RESPONSE_BYTES {
        let mut end = MAX_RESPONSE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn build_headers(out: &Outgoing<'_>) -> Result<HeaderMap, String> {
    let mut signatures = SignatureHeader::new();
    for secret in &out.keys.0 {
        signatures.push(secret.sign(out.msg_id, out.timestamp, &out.body));
    }
    let mut headers = HeaderMap::new();
    // Custom headers first, so ours always win.
    for (name, value) in out.custom_headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    }
    let value = |s: String| HeaderValue::from_str(&s).map_err(|e| e.to_string());
    let id = value(out.msg_id.to_string())?;
    let ts = value(out.timestamp.to_string())?;
    let sig = value(signatures.to_string())?;
    // Standard Webhooks' names, and Svix's twins.
    for [id_name, ts_name, sig_name] in
        [["webhook-id", "webhook-timestamp", "webhook-signature"], ["svix-id", "svix-timestamp", "svix-signature"]]
    {
        headers.insert(HeaderName::from_static(id_name), id.clone());
        headers.insert(HeaderName::from_static(ts_name), ts.clone());
        headers.insert(HeaderName::from_static(sig_name), sig.clone());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Hookline/", env!("CARGO_PKG_VERSION"))));
    Ok(headers)
}

/// What kind of failure a request error is, and one line saying why.
fn classify(e: &reqwest::Error) -> (FailureKind, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut kind = None;
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return (FailureKind::Forbidden, refused.to_string());
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_parse() || h.is_parse_status() {
                kind = kind.or(Some(FailureKind::Protocol));
            } else if h.is_incomplete_message() {
                kind = kind.or(Some(FailureKind::Closed));
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    kind = kind.or(Some(FailureKind::Closed))
                }
                InvalidData => kind = kind.or(Some(FailureKind::Tls)),
                _ => {}
            }
        }
        source = err.source();
    }
    // The innermost cause says the most ("Connection refused", "dns error…").
    let mut innermost: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let detail = innermost.to_string();
    if e.is_timeout() {
        return (FailureKind::Timeout, "no complete answer within the attempt timeout".into());
    }
    let lower = detail.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        return (FailureKind::Tls, detail);
    }
    let kind = kind.unwrap_or(if e.is_connect() {
        FailureKind::Connect
    } else if e.is_redirect() {
        FailureKind::Protocol
    } else {
        FailureKind::Closed
    });
    (kind, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_body_is_kept_as_text_within_the_cap() {
        assert_eq!(kept_text(b"ok\0\xffbin"), "ok\u{FFFD}\u{FFFD}bin");
        assert_eq!(kept_text("café".as_bytes()), "café");
        let kept = kept_text(&[0u8; MAX_RESPONSE_BYTES]);
        assert!(kept.len() <= MAX_RESPONSE_BYTES && kept.len() > MAX_RESPONSE_BYTES - 3, "{}", kept.len());
        assert!(kept.chars().all(|c| c == '\u{FFFD}'));
    }
}
