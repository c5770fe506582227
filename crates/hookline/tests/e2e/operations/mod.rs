//! Operations (issue 11): `/metrics`, traces over OTLP, logs, readiness,
//! `backup`, `status`, `migrate --dry-run`, and the Grafana dashboard of
//! docs/ checked against what a server exports.

mod commands;
mod logs;
mod metrics;
mod readiness;
mod tracing;

use std::time::{Duration, Instant};

use crate::common::TestServer;

/// `GET /metrics` (from loopback, no token), as text.
pub async fn scrape(server: &TestServer) -> String {
    let r = server.http().get(server.url("/metrics")).send().await.expect("GET /metrics");
    assert_eq!(r.status().as_u16(), 200, "GET /metrics");
    r.text().await.expect("metrics text")
}

/// The value of one series (`name{labels}` exactly as exported), 0 when absent.
pub fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.starts_with(' ').then(|| rest.trim().parse::<f64>().expect("a number"))
        })
        .unwrap_or(0.0)
}

/// Scrapes until `done(text)` holds (panics with the last scrape after `within`).
pub async fn scrape_until(server: &TestServer, within: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = scrape(server).await;
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}: not reached within {within:?}; last scrape:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
