//! `/metrics`: the counters move by exactly what was sent; access rules; the
//! Grafana dashboard of docs/ uses only series a server exports.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::{scrape, scrape_until, value};
use crate::common::TestServer;
use crate::fixtures::*;
use crate::receiver::{Receiver, Reply};

const ACCEPTED: &str = "hookline_messages_accepted_total";
const ATTEMPTS: &str = "hookline_delivery_attempts_total";

fn attempts(text: &str, outcome: &str) -> f64 {
    value(text, &format!("{ATTEMPTS}{{outcome=\"{outcome}\"}}"))
}

fn accepted(text: &str, event_type: &str) -> f64 {
    value(text, &format!("{ACCEPTED}{{event_type=\"{event_type}\"}}"))
}

#[tokio::test]
async fn counters_move_by_exactly_what_was_sent_to_a_healthy_and_a_failing_endpoint() {
    let rx = Receiver::scripted(|_, path| Reply::status(if path == "/ok" { 204 } else { 500 })).await;
    // One retry, then the delivery has failed.
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "300ms")]).await;
    let (status, et) = server
        .admin()
        .post("/api/v1/event-type", &json!({"name": "sync.complete", "description": "A sync finished"}))
        .await;
    assert_eq!(status, 201, "{et}");
    let (app, _, _) = app_with_endpoint(&server, &rx.url("/ok"), json!({})).await;
    add_endpoint(&server, &app, &rx.url("/fail"), json!({})).await;
    // Refused by the SSRF guard (IPv6 loopback is not in the allowed range):
    // nothing is ever sent there.
    add_endpoint(&server, &app, "http://[::1]:9/blocked", json!({})).await;

    let before = scrape(&server).await;
    let (registered, unregistered) = (5, 2);
    for i in 0..registered {
        send(&server, &app, json!({"i": i})).await;
    }
    for i in 0..unregistered {
        let (status, msg) = server
            .admin()
            .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "not.in.catalog", "payload": {"i": i}}))
            .await;
        assert_eq!(status, 202, "{msg}");
    }
    let sent = f64::from(registered + unregistered);

    // Every delivery ends: success on /ok; retry then failed on /fail; two
    // refused attempts for the blocked one.
    let after = scrape_until(&server, WAIT, "every delivery finished", |text| {
        attempts(text, "success") - attempts(&before, "success") >= sent
            && attempts(text, "failed") - attempts(&before, "failed") >= sent
            && attempts(text, "ssrf_blocked") - attempts(&before, "ssrf_blocked") >= 2.0 * sent
    })
    .await;
    // Nothing is left to attempt; scrape again so late increments would show.
    rx.wait_for("/fail", 2 * (registered + unregistered) as usize, WAIT).await;
    drop(after);
    let after_all = scrape(&server).await;
    let delta = |f: &dyn Fn(&str) -> f64| f(&after_all) - f(&before);
    assert_eq!(delta(&|t| accepted(t, "sync.complete")), f64::from(registered));
    assert_eq!(delta(&|t| accepted(t, "other")), f64::from(unregistered));
    assert_eq!(delta(&|t| attempts(t, "success")), sent);
    assert_eq!(delta(&|t| attempts(t, "retry_scheduled")), sent);
    assert_eq!(delta(&|t| attempts(t, "failed")), sent);
    assert_eq!(delta(&|t| attempts(t, "ssrf_blocked")), 2.0 * sent);
    assert_eq!(delta(&|t| value(t, "hookline_delivery_attempt_duration_seconds_count")), 5.0 * sent);
    let route = r#"{method="POST",route="/api/v1/app/{app_id}/msg",status="2xx"}"#;
    assert_eq!(delta(&|t| value(t, &format!("hookline_http_request_duration_seconds_count{route}"))), sent);
    assert!(value(&after_all, "hookline_store_commit_duration_seconds_count") > 0.0, "{after_all}");
    assert!(value(&after_all, "hookline_store_commit_group_size_sum") > 0.0, "{after_all}");
    assert_eq!(rx.received_on("/ok").len(), (registered + unregistered) as usize);

    // The sampled gauges catch up: nothing owed, two endpoints failing.
    scrape_until(&server, WAIT, "the store's gauges sampled", |t| {
        value(t, "hookline_deliveries_pending") == 0.0
            && value(t, "hookline_deliveries_due") == 0.0
            && value(t, "hookline_endpoints_failing") == 2.0
            && value(t, "hookline_store_up") == 1.0
    })
    .await;
}

#[tokio::test]
async fn a_backlog_shows_in_the_gauges_and_in_status() {
    // An endpoint that answers 500 with a long retry: its deliveries stay owed.
    let rx = Receiver::scripted(|_, _| Reply::status(500)).await;
    let server = server_with(&[("HOOKLINE_RETRY_SCHEDULE", "1h")]).await;
    let (app, _, _) = app_with_endpoint(&server, &rx.url("/down"), json!({})).await;
    for i in 0..3 {
        send(&server, &app, json!({"i": i})).await;
    }
    rx.wait_for("/down", 3, WAIT).await;
    let text = scrape_until(&server, WAIT, "3 deliveries owed, none due", |t| {
        value(t, "hookline_deliveries_pending") == 3.0 && value(t, "hookline_endpoints_failing") == 1.0
    })
    .await;
    assert_eq!(value(&text, "hookline_deliveries_due"), 0.0);
    assert_eq!(value(&text, "hookline_oldest_due_delivery_age_seconds"), 0.0);

    let out = server.cli_ok(&["status", "--json"]).await;
    let status: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(status["backlog"], 3, "{status}");
    assert_eq!(status["dueNow"], 0, "{status}");
    assert_eq!(status["failingEndpoints"], 1, "{status}");
    assert_eq!(status["disabledEndpoints"], 0, "{status}");
    assert!(status["oldestDue"].is_null(), "{status}");
    let text = server.cli_ok(&["status"]).await;
    assert!(text.contains("backlog:        3 deliveries"), "{text}");
    assert!(text.contains("1 failing, 0 disabled"), "{text}");
}

#[tokio::test]
async fn metrics_behind_a_token_refuse_everyone_without_it() {
    let server = TestServer::builder().env("HOOKLINE_METRICS_TOKEN", "scrape-me-0123").start().await;
    let url = server.url("/metrics");
    let anonymous = server.http().get(&url).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert!(body["code"].is_string() && body["detail"].is_string(), "{body}");
    // An API admin token is not the metrics token.
    let admin = server.http().get(&url).bearer_auth(server.admin_token()).send().await.unwrap();
    assert_eq!(admin.status().as_u16(), 401);
    let ok = server.http().get(&url).bearer_auth("scrape-me-0123").send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    assert!(ok.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    assert!(ok.text().await.unwrap().contains("hookline_build_info"));
}

/// Metric names in a PromQL expression: `hookline_…` identifiers.
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("hookline_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Every sample name a scrape holds (`name` of `name{…} value`).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_grafana_dashboard_and_alert_rules_use_only_exported_series() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    // Exercise every family once so each has samples (histograms included).
    let (app, _, _) = app_with_endpoint(&server, &rx.url("/hook"), json!({})).await;
    send(&server, &app, json!({})).await;
    rx.wait_for("/hook", 1, WAIT).await;
    let text = scrape_until(&server, WAIT, "an attempt recorded", |t| {
        value(t, r#"hookline_delivery_attempts_total{outcome="success"}"#) == 1.0
    })
    .await;
    let names = exported(&text);

    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{docs}/grafana-dashboard.json")).expect("docs/grafana-dashboard.json"),
    )
    .expect("the dashboard is JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()), "no panels");
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    // The alert rules in docs/operations.md (lines with `expr:`).
    let guide = std::fs::read_to_string(format!("{docs}/operations.md")).expect("docs/operations.md");
    let rules: Vec<String> =
        guide.lines().filter_map(|l| l.trim().strip_prefix("expr:")).map(|e| e.trim().to_string()).collect();
    assert!(rules.len() >= 3, "docs/operations.md has {} alert rules", rules.len());
    queries.extend(rules);
    assert!(queries.len() >= 8, "only {} queries", queries.len());
    let mut used = BTreeSet::new();
    for q in &queries {
        let found = names_in(q);
        assert!(!found.is_empty(), "a query uses no hookline series: {q}");
        used.extend(found);
    }
    let missing: Vec<&String> = used.iter().filter(|n| !names.contains(*n)).collect();
    assert!(missing.is_empty(), "used but not exported: {missing:?}\nexported: {names:?}");
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        names_in("sum(rate(hookline_delivery_attempts_total{outcome=\"failed\"}[5m])) / hookline_x"),
        vec!["hookline_delivery_attempts_total", "hookline_x"]
    );
}
