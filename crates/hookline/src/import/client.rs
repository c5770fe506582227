//! Reads a Svix deployment through its public API: every list followed to
//! its end, 429 and 5xx answers retried with backoff, and a one-line error
//! for what a person must fix (a refused token, a wrong URL).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::Url;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::svix::{ListPage, SourceEndpoint, SvixEndpoint, SvixHeaders, SvixSecret};

/// Items asked for per page (the most Svix and Hookline give).
const PAGE_LIMIT: &str = "250";
/// Endpoints whose secret and headers are read at once.
const ENDPOINT_READS_AT_ONCE: usize = 8;

/// Why reading the source failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// 404 on an object: deleted in the source since it was listed.
    NotFound(String),
    /// Anything a person must look at; the import stops.
    Fatal(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::NotFound(what) | SourceError::Fatal(what) => f.write_str(what),
        }
    }
}

/// When to try a request again: a pure rule, tested without I/O.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub tries: u32,
    /// The wait after the first failure; it doubles after each one.
    pub base: Duration,
    /// The longest wait, `Retry-After` included.
    pub max: Duration,
}

impl Default for RetryPolicy {
    /// About a minute and a half of patience in all.
    fn default() -> RetryPolicy {
        RetryPolicy { tries: 8, base: Duration::from_millis(500), max: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// How long to wait after failed try number `tries_so_far` (1-based)
    /// that answered `status` (`None`: no answer at all), or `None` to give
    /// up. Only 429, 5xx and lost connections are worth another try; a
    /// `Retry-After` in seconds is honoured up to `max`.
    pub fn delay(&self, tries_so_far: u32, status: Option<u16>, retry_after: Option<&str>) -> Option<Duration> {
        let retryable = match status {
            None => true,
            Some(s) => s == 429 || (500..600).contains(&s),
        };
        if !retryable || tries_so_far >= self.tries {
            return None;
        }
        if let Some(secs) = retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_secs(secs).min(self.max));
        }
        let doubled = self.base.saturating_mul(1u32 << (tries_so_far - 1).min(20));
        Some(doubled.min(self.max))
    }
}

/// A client of one Svix deployment's API.
pub struct SvixClient {
    http: reqwest::Client,
    /// The base URL, without `/api/v1` (which every path adds).
    base: Url,
    /// The base URL as messages show it (no credentials).
    shown: String,
    token: Zeroizing<String>,
    retry: RetryPolicy,
    /// Whether the source answered once: from then on a lost connection is
    /// worth retrying; before, it is most likely a wrong URL.
    reached: AtomicBool,
}

impl SvixClient {
    /// `url` is the API's base (`https://api.eu.svix.com`, or a Hookline's
    /// `http://host:8071`); a trailing `/api/v1` is accepted too.
    pub fn new(url: &str, token: &str, retry: RetryPolicy) -> Result<SvixClient, String> {
        let trimmed = url.trim().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix("/api/v1").unwrap_or(trimmed);
        let base = Url::parse(trimmed)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
            .ok_or_else(|| format!("--url {url:?} is not an http:// or https:// URL (e.g. https://api.eu.svix.com)"))?;
        if !base.username().is_empty() || base.password().is_some() {
            return Err("--url must not carry a user or password: the token is the only credential sent".into());
        }
        let loopback = base
            .host_str()
            .is_some_and(|h| h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()))
            || matches!(base.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
        if base.scheme() == "http" && !loopback {
            eprintln!("warning: --url is plain http: the token crosses the network unencrypted");
        }
        if token.trim().is_empty() {
            return Err("--token is empty: pass an API token of the Svix environment to copy".into());
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("Hookline-import/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            // The token goes with every request: never to where a redirect points.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let shown = base.as_str().trim_end_matches('/').to_string();
        Ok(SvixClient {
            http,
            base,
            shown,
            token: Zeroizing::new(token.trim().to_string()),
            retry,
            reached: AtomicBool::new(false),
        })
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &str {
        &self.shown
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("an http(s) URL has path segments")
            .pop_if_empty()
            .extend(["api", "v1"])
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Fails early, before the target is touched, when the token cannot
    /// list applications (which the import needs).
    pub async fn check_access(&self) -> Result<(), SourceError> {
        let _: ListPage<serde_json::Value> = self.get(self.url(&["app"], &[("limit", "1")])).await?;
        Ok(())
    }

    /// Every item of a list, a page at a time (see [`Pager`]).
    pub fn pages<'c, T: DeserializeOwned>(&'c self, segments: &[&str], query: &[(&str, &str)]) -> Pager<'c, T> {
        let mut query: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        query.push(("limit".into(), PAGE_LIMIT.into()));
        // Objects created while the import runs then come last, not missed.
        query.push(("order".into(), "ascending".into()));
        Pager {
            client: self,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query,
            next: None,
            seen: std::collections::HashSet::new(),
            finished: false,
            _items: std::marker::PhantomData,
        }
    }

    /// Every endpoint of an application with its secret and headers;
    /// endpoints deleted meanwhile are left out. `NotFound`: the application
    /// itself is gone.
    pub async fn endpoints_of(&self, app_id: &str) -> Result<Vec<SourceEndpoint>, SourceError> {
        let mut listed = Vec::new();
        let mut pages = self.pages::<SvixEndpoint>(&["app", app_id, "endpoint"], &[]);
        while let Some(page) = pages.next_page().await? {
            listed.extend(page);
        }
        let read = stream::iter(listed)
            .map(|endpoint| async move {
                let secret = ["app", app_id, "endpoint", &endpoint.id, "secret"];
                let headers = ["app", app_id, "endpoint", &endpoint.id, "headers"];
                let (secret, headers) = tokio::join!(
                    self.get::<SvixSecret>(self.url(&secret, &[])),
                    self.get::<SvixHeaders>(self.url(&headers, &[]))
                );
                match (secret, headers) {
                    (Ok(secret), Ok(headers)) => {
                        Ok(Some(SourceEndpoint { endpoint, secret: Zeroizing::new(secret.key), headers }))
                    }
                    (Err(SourceError::NotFound(_)), _) | (_, Err(SourceError::NotFound(_))) => Ok(None),
                    (Err(e), _) | (_, Err(e)) => Err(e),
                }
            })
            .buffered(ENDPOINT_READS_AT_ONCE)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(read.into_iter().flatten().collect())
    }

    /// GETs `url` as JSON, retrying what the [`RetryPolicy`] allows.
    async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, SourceError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(self.token.as_str())
                .header(ACCEPT, "application/json")
                .send()
                .await;
            let (status, retry_after, why) = match sent {
                Ok(r) if r.status().is_success() => {
                    self.reached.store(true, Ordering::Relaxed);
                    match r.bytes().await {
                        Ok(body) => {
                            return serde_json::from_slice(&body).map_err(|e| {
                                SourceError::Fatal(format!("{} did not answer with Svix's JSON: {e}", path_of(&url)))
                            })
                        }
                        Err(e) => (None, None, format!("the answer broke off: {}", e.without_url())),
                    }
                }
                Ok(r) => {
                    self.reached.store(true, Ordering::Relaxed);
                    let status = r.status().as_u16();
                    let retry_after = r.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
                    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let detail = detail_of(&r.bytes().await.unwrap_or_default());
                    if let Some(refusal) = self.refusal(&url, status, detail.as_deref(), location.as_deref()) {
                        return Err(refusal);
                    }
                    (Some(status), retry_after, format!("answered {status}{}", detail_suffix(detail.as_deref())))
                }
                Err(e) if !self.reached.load(Ordering::Relaxed) => {
                    return Err(SourceError::Fatal(format!(
                        "cannot reach the Svix API at {}: {} (check --url)",
                        self.base(),
                        describe_transport_error(&e)
                    )));
                }
                Err(e) => (None, None, describe_transport_error(&e)),
            };
            match self.retry.delay(tries, status, retry_after.as_deref()) {
                Some(wait) => {
                    tracing::warn!(path = %path_of(&url), tries, wait_ms = wait.as_millis() as u64, %why, "retrying");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    return Err(SourceError::Fatal(format!(
                        "GET {} {why}{}",
                        path_of(&url),
                        if tries > 1 { format!(" (after {tries} tries)") } else { String::new() }
                    )))
                }
            }
        }
    }

    /// The answers no retry can change, each said in one line.
    fn refusal(&self, url: &Url, status: u16, detail: Option<&str>, location: Option<&str>) -> Option<SourceError> {
        let base = self.base();
        let path = path_of(url);
        Some(match status {
            401 => SourceError::Fatal(format!(
                "the Svix API at {base} refused the token (401{}): pass an API token of the environment to copy \
                 with --token",
                detail_suffix(detail)
            )),
            403 => SourceError::Fatal(format!(
                "the token may not read {path} (403{}): the import needs an organization-wide API token, not one \
                 scoped to an application",
                detail_suffix(detail)
            )),
            404 if path.ends_with("/app") || path.ends_with("/event-type") => SourceError::Fatal(format!(
                "{base} answered 404 to GET {path}: is --url the base URL of a Svix API (e.g. https://api.eu.svix.com)?"
            )),
            404 => SourceError::NotFound(format!("GET {path} answered 404")),
            300..=399 => SourceError::Fatal(format!(
                "{base} redirects GET {path} (status {status}{}): pass the URL it redirects to as --url",
                location.map(|l| format!(" to {l}")).unwrap_or_default()
            )),
            _ => return None,
        })
    }
}

/// A list of the source read a page at a time, until the source says it is
/// done.
pub struct Pager<'c, T> {
    client: &'c SvixClient,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    next: Option<String>,
    /// Every iterator given so far.
    seen: std::collections::HashSet<String>,
    finished: bool,
    _items: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Pager<'_, T> {
    /// The next page; `None` once the list has ended.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let mut query: Vec<(&str, &str)> = self.query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Some(iterator) = &self.next {
            query.push(("iterator", iterator));
        }
        let segments: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        let url = self.client.url(&segments, &query);
        let page: ListPage<T> = self.client.get(url.clone()).await?;
        match page.iterator {
            _ if page.done || page.data.is_empty() => self.finished = true,
            None => self.finished = true,
            // A source whose iterators come round again would never end.
            Some(iterator) if !self.seen.insert(iterator.clone()) => {
                return Err(SourceError::Fatal(format!(
                    "GET {} answered an iterator it had already given; the list cannot be read to its end",
                    path_of(&url)
                )))
            }
            Some(iterator) => self.next = Some(iterator),
        }
        Ok(Some(page.data))
    }
}

fn path_of(url: &Url) -> String {
    url.path().to_string()
}

/// Svix's `detail` of an error answer, when it is a sentence.
fn detail_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let detail = value.get("detail")?.as_str()?;
    Some(detail.chars().take(200).collect())
}

fn detail_suffix(detail: Option<&str>) -> String {
    detail.map(|d| format!(": {d}")).unwrap_or_default()
}

/// The cause of a failed request without its URL (said once elsewhere).
fn describe_transport_error(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() { "timed out".to_string() } else { "connection failed".to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    #[test]
    fn only_throttling_server_errors_and_lost_connections_are_retried() {
        let policy = RetryPolicy { tries: 4, base: Duration::from_millis(100), max: Duration::from_secs(5) };
        for status in [429, 500, 502, 503, 504] {
            assert_eq!(policy.delay(1, Some(status), None), Some(Duration::from_millis(100)), "{status}");
        }
        assert_eq!(policy.delay(1, None, None), Some(Duration::from_millis(100)));
        for status in [400, 401, 403, 404, 409, 422] {
            assert_eq!(policy.delay(1, Some(status), None), None, "{status}");
        }
    }

    #[test]
    fn waits_double_up_to_the_limit_and_tries_run_out() {
        let policy = RetryPolicy { tries: 10, base: Duration::from_millis(500), max: Duration::from_secs(3) };
        let waits: Vec<_> = (1..=5).map(|n| policy.delay(n, Some(503), None).unwrap().as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
        assert_eq!(policy.delay(10, Some(503), None), None);
        assert_eq!(policy.delay(9, Some(503), None), Some(Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_in_seconds_is_honoured_within_bounds() {
        let policy = RetryPolicy { tries: 5, base: Duration::from_millis(500), max: Duration::from_secs(30) };
        assert_eq!(policy.delay(1, Some(429), Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(policy.delay(1, Some(429), Some("3600")), Some(Duration::from_secs(30)));
        // An HTTP date is not read: the usual backoff applies.
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(policy.delay(2, Some(503), Some(date)), Some(Duration::from_secs(1)));
    }

    #[test]
    fn urls_are_built_under_api_v1_whatever_the_base_looks_like() {
        for base in ["http://127.0.0.1:9", "http://127.0.0.1:9/", "http://127.0.0.1:9/api/v1/"] {
            let client = SvixClient::new(base, "t", RetryPolicy::default()).unwrap();
            let url = client.url(&["app", "a b", "endpoint"], &[("limit", "1")]);
            assert_eq!(url.as_str(), "http://127.0.0.1:9/api/v1/app/a%20b/endpoint?limit=1", "{base}");
        }
        let behind_proxy = SvixClient::new("https://example.com/svix/", "t", RetryPolicy::default()).unwrap();
        assert_eq!(behind_proxy.url(&["app"], &[]).as_str(), "https://example.com/svix/api/v1/app");
        assert_eq!(behind_proxy.base(), "https://example.com/svix");
        let err = SvixClient::new("https://u:pw@example.com/", "t", RetryPolicy::default()).err().unwrap();
        assert!(err.contains("user or password") && !err.contains("pw"), "{err}");
        assert!(SvixClient::new("ftp://example.com", "t", RetryPolicy::default()).is_err());
        assert!(SvixClient::new("example.com", "t", RetryPolicy::default()).is_err());
        assert!(SvixClient::new("https://example.com", " ", RetryPolicy::default()).is_err());
    }

    /// A source answering `script(n)` to its n-th request (0-based).
    async fn source(
        script: impl Fn(usize, &str) -> axum::response::Response + Send + Sync + 'static,
    ) -> (String, Arc<AtomicUsize>) {
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        let script = Arc::new(script);
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (seen, script) = (seen.clone(), script.clone());
            async move {
                let n = seen.fetch_add(1, Ordering::SeqCst);
                script(n, &uri.to_string())
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), count)
    }

    fn fast() -> RetryPolicy {
        RetryPolicy { tries: 4, base: Duration::from_millis(1), max: Duration::from_millis(5) }
    }

    fn page(data: serde_json::Value, iterator: Option<&str>, done: bool) -> axum::response::Response {
        axum::Json(serde_json::json!({"data": data, "iterator": iterator, "prevIterator": null, "done": done}))
            .into_response()
    }

    #[tokio::test]
    async fn throttled_and_failing_answers_are_retried_until_one_succeeds() {
        let (url, count) = source(|n, _| match n {
            0 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")]).into_response(),
            1 => StatusCode::BAD_GATEWAY.into_response(),
            _ => page(serde_json::json!([]), None, true),
        })
        .await;
        let client = SvixClient::new(&url, "t", fast()).unwrap();
        client.check_access().await.unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_source_that_keeps_failing_is_given_up_on_with_the_last_answer() {
        let (url, count) = source(|_, _| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
        let client = SvixClient::new(&url, "t", fast()).unwrap();
        let err = client.check_access().await.unwrap_err().to_string();
        assert_eq!(count.load(Ordering::SeqCst), 4);
        assert!(err.contains("answered 503") && err.contains("after 4 tries"), "{err}");
    }

    #[tokio::test]
    async fn a_refused_token_is_one_clear_line_without_retries() {
        let (url, count) = source(|_, _| {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(serde_json::json!({"code": "authentication_failed", "detail": "nope"})),
            )
                .into_response()
        })
        .await;
        let client = SvixClient::new(&url, "t", fast()).unwrap();
        let err = client.check_access().await.unwrap_err().to_string();
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert!(err.contains("refused the token (401: nope)") && !err.contains('\n'), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_url_fails_at_once() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = SvixClient::new(&format!("http://127.0.0.1:{port}"), "t", fast()).unwrap();
        let err = client.check_access().await.unwrap_err().to_string();
        assert!(err.starts_with("cannot reach the Svix API at http://127.0.0.1:") && err.contains("--url"), "{err}");
    }

    #[tokio::test]
    async fn lists_are_followed_to_their_end() {
        let (url, _) = source(|_, uri| {
            if uri.contains("iterator=b") {
                page(serde_json::json!([{"n": 3}]), Some("c"), true)
            } else if uri.contains("iterator=a") {
                page(serde_json::json!([{"n": 2}]), Some("b"), false)
            } else {
                page(serde_json::json!([{"n": 1}]), Some("a"), false)
            }
        })
        .await;
        let client = SvixClient::new(&url, "t", fast()).unwrap();
        let mut pages = client.pages::<serde_json::Value>(&["event-type"], &[("include_archived", "true")]);
        let mut seen = Vec::new();
        while let Some(page) = pages.next_page().await.unwrap() {
            seen.extend(page.into_iter().map(|v| v["n"].as_i64().unwrap()));
        }
        assert_eq!(seen, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_list_that_comes_round_again_is_an_error_not_a_loop() {
        // Iterators a, b, a, b, …: never the same twice in a row.
        let (url, _) = source(|n, _| page(serde_json::json!([{"n": n}]), Some(["a", "b"][n % 2]), false)).await;
        let client = SvixClient::new(&url, "t", fast()).unwrap();
        let mut pages = client.pages::<serde_json::Value>(&["app"], &[]);
        pages.next_page().await.unwrap();
        pages.next_page().await.unwrap();
        let err = pages.next_page().await.unwrap_err().to_string();
        assert!(err.contains("already given"), "{err}");
    }
}
