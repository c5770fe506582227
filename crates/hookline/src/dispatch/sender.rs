//! One signed HTTP POST to an endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookline_signature::{Secret, SignatureHeader};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};

use super::retry::parse_retry_after;
use super::ssrf::{GuardedResolver, Refused, SsrfGuard};
use crate::store::model::StringMap;

/// Response bodies are kept up to this many bytes.
const MAX_RESPONSE_BYTES: usize = 20_000;

/// The keys that sign one attempt: the current secret and any retired ones
/// still inside their grace period.
pub struct SigningKeys(pub Vec<Vec<u8>>);

/// What came back (or why nothing did).
#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub body: String,
    pub duration: Duration,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

pub struct Sender {
    client: reqwest::Client,
    guard: Arc<SsrfGuard>,
}

pub struct Outgoing<'a> {
    pub url: &'a str,
    pub msg_id: &'a str,
    pub timestamp: i64,
    pub body: &'a [u8],
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
        let fail = |error: String| SendResult {
            status: None,
            body: String::new(),
            duration: started.elapsed(),
            error: Some(error),
            retry_after: None,
        };
        let url = match reqwest::Url::parse(out.url) {
            Ok(u) => u,
            Err(e) => return fail(format!("invalid URL: {e}")),
        };
        // The resolver guards names; literal addresses never reach it.
        let literal = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
            _ => None,
        };
        if let Some(addr) = literal {
            if let Err(class) = self.guard.check(addr) {
                return fail(Refused { host: addr.to_string(), addr, class }.to_string());
            }
        }
        let headers = match build_headers(&out) {
            Ok(h) => h,
            Err(e) => return fail(e),
        };
        let response = self.client.post(url).headers(headers).body(out.body.to_vec()).send().await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return fail(describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        let mut error = None;
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
                    error = Some(format!("reading the response: {}", describe(&e)));
                    break;
                }
            }
        }
        SendResult {
            status: Some(status),
            body: String::from_utf8_lossy(&body).into_owned(),
            duration: started.elapsed(),
            error,
            retry_after,
        }
    }
}

fn build_headers(out: &Outgoing<'_>) -> Result<HeaderMap, String> {
    let mut signatures = SignatureHeader::new();
    for key in &out.keys.0 {
        let secret = Secret::from_bytes(key.clone()).map_err(|e| format!("endpoint secret is unusable: {e}"))?;
        signatures.push(secret.sign(out.msg_id, out.timestamp, out.body));
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
    for (prefix, _) in [("webhook", ()), ("svix", ())] {
        headers.insert(HeaderName::from_bytes(format!("{prefix}-id").as_bytes()).expect("valid"), id.clone());
        headers.insert(HeaderName::from_bytes(format!("{prefix}-timestamp").as_bytes()).expect("valid"), ts.clone());
        headers.insert(HeaderName::from_bytes(format!("{prefix}-signature").as_bytes()).expect("valid"), sig.clone());
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("Hookline/", env!("CARGO_PKG_VERSION"))));
    Ok(headers)
}

/// One line saying why the request failed, naming the SSRF guard when it was that.
fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return refused.to_string();
        }
        source = err.source();
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    // The innermost cause says the most ("Connection refused", "dns error…").
    let mut innermost: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    if e.is_connect() {
        format!("connection failed: {innermost}")
    } else if e.is_redirect() {
        format!("redirect not followed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    }
}
