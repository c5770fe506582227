//! The portal's server side: how `/portal` is served (CSP, frame-ancestors,
//! compression, caching), the public URL in portal links, and the Hookline
//! extension routes the portal uses (token, series, overview), with their
//! scoping and validation. `hookline console` prints a working URL.

use std::time::Duration;

use crate::common::{assert_error, assert_invalid_field, send, str_of, TestServer};
use crate::receiver::Receiver;
use reqwest::Method;
use serde_json::{json, Value};

async fn raw(server: &TestServer, path: &str, gzip: bool) -> reqwest::Response {
    let mut rb = server.http().get(server.url(path));
    if gzip {
        rb = rb.header("accept-encoding", "gzip");
    }
    rb.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn header<'r>(r: &'r reqwest::Response, name: &str) -> &'r str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn portal_is_served_with_a_strict_csp_and_the_configured_frame_ancestors() {
    let server =
        TestServer::builder().env("HOOKLINE_PORTAL_FRAME_ANCESTORS", "'self' https://app.example.com").start().await;
    let index = raw(&server, "/portal/", false).await;
    assert_eq!(index.status(), 200);
    assert!(header(&index, "content-type").starts_with("text/html"));
    let csp = header(&index, "content-security-policy").to_string();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'self' https://app.example.com",
    ] {
        assert!(csp.contains(part), "CSP lacks {part:?}: {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(header(&index, "x-content-type-options"), "nosniff");
    assert_eq!(header(&index, "cache-control"), "no-cache");
    let body = index.text().await.unwrap();
    assert!(body.contains("assets/main.js") && !body.contains("style="), "inline styles would break the CSP");

    // /portal redirects to /portal/ keeping the theme query.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
    let r = client.get(server.url("/portal?darkMode=true")).send().await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(header(&r, "location"), "/portal/?darkMode=true");

    let js = raw(&server, "/portal/assets/main.js", false).await;
    assert_eq!(js.status(), 200);
    assert!(header(&js, "content-type").starts_with("text/javascript"));
    assert!(header(&js, "content-security-policy").contains("frame-ancestors"));
    let etag = header(&js, "etag").to_string();
    let again =
        server.http().get(server.url("/portal/assets/main.js")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "revalidation with the ETag");
    let vendor = raw(&server, "/portal/vendor/uplot-1.6.32/uPlot.min.css", false).await;
    assert!(header(&vendor, "content-type").starts_with("text/css"));
    assert!(header(&vendor, "cache-control").contains("immutable"));
    let missing = raw(&server, "/portal/assets/nope.js", false).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn first_load_is_small_and_gzipped() {
    let server = TestServer::start().await;
    // What a customer's browser fetches to show the endpoint list.
    let first_load = [
        "/portal/",
        "/portal/assets/portal.css",
        "/portal/assets/main.js",
        "/portal/assets/api.js",
        "/portal/assets/dom.js",
        "/portal/assets/endpoints.js",
        "/portal/assets/favicon.svg",
    ];
    let (mut plain, mut gzipped) = (0, 0);
    for path in first_load {
        let r = raw(&server, path, true).await;
        assert_eq!(r.status(), 200, "{path}");
        let encoded = header(&r, "content-encoding") == "gzip";
        let bytes = r.bytes().await.unwrap().len();
        let full = raw(&server, path, false).await.bytes().await.unwrap().len();
        assert!(encoded || full < 1500, "{path} ({full} bytes) is not gzipped");
        plain += full;
        gzipped += bytes;
    }
    println!("first load: {gzipped} bytes gzipped ({plain} bytes uncompressed), uPlot loaded later with the charts");
    assert!(gzipped < 60_000, "first load is {gzipped} bytes gzipped");
}

#[tokio::test]
async fn portal_links_use_the_public_url_and_ignore_the_host_header() {
    let server = TestServer::builder().env("HOOKLINE_PUBLIC_URL", "https://hooks.example.com/base/").start().await;
    let app = server.create_app("A", None).await;
    let path = format!("/api/v1/auth/app-portal-access/{}", str_of(&app, "id"));
    let rb = server.admin().request(Method::POST, &path).header("host", "evil.example").json(&json!({}));
    let r = send(rb).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let url = str_of(&r.body, "url");
    let token = str_of(&r.body, "token");
    assert_eq!(url, format!("https://hooks.example.com/base/portal/#token={token}"));

    // Without the setting: the listen address, still not the Host header.
    let server = TestServer::start().await;
    let app = server.create_app("A", None).await;
    let path = format!("/api/v1/auth/app-portal-access/{}", str_of(&app, "id"));
    let r = send(server.admin().request(Method::POST, &path).header("host", "evil.example").json(&json!({}))).await;
    assert!(str_of(&r.body, "url").starts_with(&format!("{}/portal/#token=hk_", server.base_url())), "{}", r.body);
}

#[tokio::test]
async fn a_bad_public_url_or_frame_ancestors_stops_the_server() {
    let server = TestServer::start().await;
    for (name, value) in
        [("HOOKLINE_PUBLIC_URL", "hooks.example.com"), ("HOOKLINE_PORTAL_FRAME_ANCESTORS", "https://a; script-src *")]
    {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"));
        cmd.arg("console").env(name, value).env("HOOKLINE_DATA_DIR", server.data_dir());
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{name}={value} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(name), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn token_route_says_what_the_token_may_do() {
    let server = TestServer::start().await;
    let (status, body) = server.admin().get("/api/v1/auth/token").await;
    assert_eq!(status, 200);
    let all = [
        "ViewBase",
        "ViewEndpointSecret",
        "ManageEndpointSecret",
        "ManageTransformations",
        "CreateAttempts",
        "ManageEndpoint",
    ];
    assert_eq!(
        body,
        json!({"scope": "admin", "appId": null, "capabilities": all, "readOnly": false, "expiresAt": null})
    );
    let app = server.create_app("A", None).await;
    let app_id = str_of(&app, "id");
    let token = server.token_for_app(app_id, true).await;
    let (status, body) = server.api(&token).get("/api/v1/auth/token").await;
    assert_eq!(status, 200);
    assert_eq!(body["scope"], "app");
    assert_eq!(body["appId"], app_id);
    assert_eq!(body["readOnly"], true);
    assert_eq!(body["capabilities"], json!(["ViewBase"]));
    assert!(body["expiresAt"].is_string(), "{body}");
    let (status, body) = server.anonymous().get("/api/v1/auth/token").await;
    assert_error(status, &body, 401);
}

async fn endpoint(server: &TestServer, app: &str, url: &str) -> String {
    let (status, ep) = server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": url})).await;
    assert_eq!(status, 201, "{ep}");
    str_of(&ep, "id").to_string()
}

#[tokio::test]
async fn series_counts_attempts_and_is_scoped_like_every_app_route() {
    let receiver = Receiver::start().await;
    let server = TestServer::builder().env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8").start().await;
    let a = str_of(&server.create_app("A", None).await, "id").to_string();
    let b = str_of(&server.create_app("B", None).await, "id").to_string();
    let ep_a = endpoint(&server, &a, &receiver.url("/a")).await;
    let ep_b = endpoint(&server, &b, &receiver.url("/b")).await;
    for _ in 0..3 {
        let (status, body) =
            server.admin().post(&format!("/api/v1/app/{a}/msg"), &json!({"eventType": "x.y", "payload": {}})).await;
        assert_eq!(status, 202, "{body}");
    }
    receiver.wait_for("/a", 3, Duration::from_secs(20)).await;
    let token_a = server.token_for_app(&a, true).await;
    let series = format!("/api/v1/app/{a}/endpoint/{ep_a}/stats/series");
    // Attempts are recorded right after the receiver answers: poll briefly.
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let mut body = Value::Null;
    for _ in 0..100 {
        let (status, b2) = server.api(&token_a).get(&format!("{series}?bucket=1m&since={since}")).await;
        assert_eq!(status, 200, "{b2}");
        body = b2;
        let total: u64 = body["data"].as_array().unwrap().iter().map(|b| b["success"].as_u64().unwrap()).sum();
        if total == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = body["data"].as_array().unwrap();
    assert_eq!(body["bucketSeconds"], 60);
    assert!((60..=61).contains(&data.len()), "an hour of 1-minute buckets, since aligned down: {}", data.len());
    let busy: Vec<&Value> = data.iter().filter(|b| b["success"].as_u64() > Some(0)).collect();
    assert_eq!(busy.iter().map(|b| b["success"].as_u64().unwrap()).sum::<u64>(), 3, "{busy:?}");
    assert!(busy.iter().all(|b| b["p50Ms"].is_i64() && b["p99Ms"].is_i64() && b["failure"] == 0), "{busy:?}");
    assert!(data.iter().all(|b| b["start"].is_string()));

    // Another application's endpoint is not there for A's token, by id or path.
    let (status, body) = server.api(&token_a).get(&format!("/api/v1/app/{b}/endpoint/{ep_b}/stats/series")).await;
    assert_error(status, &body, 404);
    let (status, body) = server.api(&token_a).get(&format!("/api/v1/app/{a}/endpoint/{ep_b}/stats/series")).await;
    assert_error(status, &body, 404);
    let (status, body) = server.anonymous().get(&series).await;
    assert_error(status, &body, 401);

    // Validation: 422 naming the parameter.
    for (query, field) in [
        ("bucket=abc", "bucket"),
        ("bucket=1s", "bucket"),
        ("bucket=40d", "bucket"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"),
        ("since=yesterday", "since"),
        ("since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z&bucket=10s", "bucket"),
    ] {
        let (status, body) = server.api(&token_a).get(&format!("{series}?{query}")).await;
        assert_invalid_field(status, &body, field);
    }
    // A range that fits: 7 days of hours.
    let (status, body) = server
        .api(&token_a)
        .get(&format!("{series}?since=2026-01-01T00:00:00Z&until=2026-01-08T00:00:00Z&bucket=1h"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 168);
}

#[tokio::test]
async fn overview_is_for_the_operator_only() {
    let server = TestServer::start().await;
    let a = str_of(&server.create_app("A", None).await, "id").to_string();
    let token = server.token_for_app(&a, false).await;
    let (status, body) = server.api(&token).get("/api/v1/hookline/overview").await;
    assert_error(status, &body, 403);
    let ep = endpoint(&server, &a, "https://example.com/hook").await;
    let (status, body) =
        server.admin().patch(&format!("/api/v1/app/{a}/endpoint/{ep}"), &json!({"disabled": true})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.admin().get("/api/v1/hookline/overview").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applications"], 1);
    assert_eq!(body["endpoints"], 1);
    assert_eq!(body["backlog"], 0);
    assert_eq!(body["disabledCount"], 1);
    let disabled = body["recentlyDisabledEndpoints"].as_array().unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["endpointId"], ep.as_str());
    assert_eq!(disabled[0]["appName"], "A");
    assert!(body["failingEndpoints"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn console_command_prints_a_working_short_lived_admin_url() {
    let server = TestServer::start().await;
    let url = server.cli_ok(&["console"]).await;
    let prefix = format!("{}/portal/#token=", server.base_url());
    assert!(url.starts_with(&prefix), "{url}");
    let token = &url[prefix.len()..];
    let (status, body) = server.api(token).get("/api/v1/auth/token").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "admin");
    let expires = chrono::DateTime::parse_from_rfc3339(str_of(&body, "expiresAt")).unwrap();
    let left = expires.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3500..=3600).contains(&left), "expires in {left}s");
    let (status, _) = server.api(token).get("/api/v1/app").await;
    assert_eq!(status, 200);
    let out = server.cli(&["console", "--expiry", "30d"]).await;
    assert!(!out.status.success(), "a 30-day console token was issued");
}
