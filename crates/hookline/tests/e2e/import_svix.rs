//! `hookline import svix`: one running Hookline copied into another through
//! the Svix API they both serve. Every field arrives under the same id, a
//! receiver keeps verifying with the secret it got from the source, and a
//! second run changes nothing.

use std::collections::BTreeMap;

use hookline_signature::{ReceiverKey, Secret, SigningKey, Verifier};
use serde_json::{json, Value};

use crate::common::{list_data, skip_unless, str_of, Backend, TestServer};
use crate::fixtures::{server_with, WAIT};
use crate::receiver::{Received, Receiver};

const ED25519_KEY: &str = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";

/// The summary table's rows: name → [created, updated, unchanged, skipped].
fn summary(out: &str) -> BTreeMap<String, [usize; 4]> {
    let mut rows = BTreeMap::new();
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(split) = words.len().checked_sub(4) else { continue };
        let Ok(counts) = words[split..].iter().map(|w| w.parse::<usize>()).collect::<Result<Vec<_>, _>>() else {
            continue;
        };
        rows.insert(words[..split].join(" "), [counts[0], counts[1], counts[2], counts[3]]);
    }
    for row in ["event types", "applications", "endpoints", "secrets", "headers"] {
        assert!(rows.contains_key(row), "no {row:?} row in the summary:\n{out}");
    }
    rows
}

/// Runs the import into `target`. The embedded store is copied into with
/// `serve` stopped (the import holds its lock); PostgreSQL keeps serving.
async fn import(target: &mut TestServer, source: &TestServer) -> String {
    let embedded = target.is_embedded();
    if embedded {
        assert!(target.stop().await, "the target stops cleanly");
    }
    let out = target.cli_ok(&["import", "svix", "--url", &source.base_url(), "--token", source.admin_token()]).await;
    if embedded {
        target.start_again().await;
    }
    println!("hookline import svix ({} backend):\n{out}", target.backend());
    out
}

async fn ok(server: &TestServer, method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = match method {
        "POST" => server.admin().post(path, &body).await,
        "PUT" => server.admin().put(path, &body).await,
        "PATCH" => server.admin().patch(path, &body).await,
        "DELETE" => server.admin().delete(path).await,
        _ => server.admin().get(path).await,
    };
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

/// An object as the API shows it, without the time of its last change
/// (which the import sets).
fn without_updated_at(mut v: Value) -> Value {
    v.as_object_mut().expect("an object").remove("updatedAt");
    v
}

/// The source: three event types (one archived), two applications with
/// uids and metadata, endpoints with filters, channels, headers (one
/// sensitive), a rate limit, metadata, one disabled and one `whsk_` key.
async fn populate(source: &TestServer, rx: &Receiver) {
    let schema = |field: &str| json!({"1": {"type": "object", "properties": {field: {"type": "string"}}}});
    let types = [
        json!({"name": "order.paid", "description": "An order was paid", "schemas": schema("orderId"), "groupName": "orders"}),
        json!({"name": "order.refunded", "description": "Money went back", "schemas": schema("refundId"), "deprecated": true}),
        json!({"name": "legacy.ping", "description": "Old", "featureFlag": "beta"}),
    ];
    for et in types {
        ok(source, "POST", "/api/v1/event-type", et).await;
    }
    ok(source, "DELETE", "/api/v1/event-type/legacy.ping", Value::Null).await;

    let acme = json!({"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}, "rateLimit": 50});
    let globex = json!({"name": "Globex", "uid": "globex", "metadata": {"region": "eu"}});
    ok(source, "POST", "/api/v1/app", acme).await;
    ok(source, "POST", "/api/v1/app", globex).await;
    let orders = json!({
        "url": rx.url("/acme"), "uid": "acme-orders", "description": "Orders to the ERP",
        "filterTypes": ["order.paid"], "channels": ["eu", "us"], "rateLimit": 20,
        "metadata": {"team": "billing"},
        "headers": {"x-tenant": "acme", "Authorization": "Bearer from-the-source"}
    });
    ok(source, "POST", "/api/v1/app/acme/endpoint", orders).await;
    let off = json!({"url": rx.url("/off"), "disabled": true, "description": "paused"});
    ok(source, "POST", "/api/v1/app/acme/endpoint", off).await;
    let signed =
        json!({"url": rx.url("/globex"), "secret": ED25519_KEY, "filterTypes": ["order.paid", "order.refunded"]});
    ok(source, "POST", "/api/v1/app/globex/endpoint", signed).await;
}

/// Every application, endpoint (with its secret and headers) and event type
/// as the API shows them.
async fn snapshot(server: &TestServer) -> Value {
    let mut apps = Vec::new();
    for app in list_data(&ok(server, "GET", "/api/v1/app?limit=250", Value::Null).await).clone() {
        let id = str_of(&app, "id").to_string();
        let mut endpoints = Vec::new();
        let listed = ok(server, "GET", &format!("/api/v1/app/{id}/endpoint?limit=250"), Value::Null).await;
        for ep in list_data(&listed).clone() {
            let base = format!("/api/v1/app/{id}/endpoint/{}", str_of(&ep, "id"));
            endpoints.push(json!({
                "endpoint": without_updated_at(ep),
                "secret": ok(server, "GET", &format!("{base}/secret"), Value::Null).await,
                "headers": ok(server, "GET", &format!("{base}/headers"), Value::Null).await,
            }));
        }
        endpoints.sort_by_key(|e| e["endpoint"]["id"].to_string());
        apps.push(json!({"app": without_updated_at(app), "endpoints": endpoints}));
    }
    apps.sort_by_key(|a| a["app"]["id"].to_string());
    let types = ok(server, "GET", "/api/v1/event-type?include_archived=true&limit=250", Value::Null).await;
    let types: Vec<Value> = list_data(&types).iter().cloned().map(without_updated_at).collect();
    json!({"applications": apps, "eventTypes": types})
}

fn verify_hmac(secret: &str, r: &Received) {
    let headers: Vec<(String, String)> = r.headers.clone().into_iter().collect();
    let key: Secret = secret.parse().unwrap();
    Verifier::new(key).verify(&headers, &r.body).unwrap_or_else(|e| panic!("the source's secret does not verify: {e}"));
}

#[tokio::test]
async fn import_copies_a_deployment_whose_receivers_keep_verifying() {
    let rx = Receiver::start().await;
    let source = TestServer::start().await;
    populate(&source, &rx).await;
    let before = snapshot(&source).await;
    let mut target = server_with(&[]).await;

    let first = summary(&import(&mut target, &source).await);
    assert_eq!(first["event types"], [3, 0, 0, 0]);
    assert_eq!(first["applications"], [2, 0, 0, 0], "the operational application is not copied");
    assert_eq!(first["endpoints"], [3, 0, 0, 0]);
    assert_eq!(first["secrets"], [3, 0, 0, 0]);
    assert_eq!(first["headers"], [1, 0, 0, 1], "the sensitive Authorization header cannot be read");

    // Every field under the same id; the sensitive header alone stays behind.
    let mut expected = before.clone();
    let orders = expected["applications"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|a| a["endpoints"].as_array_mut().unwrap().iter_mut())
        .find(|e| e["endpoint"]["uid"] == "acme-orders")
        .expect("the endpoint with headers");
    assert_eq!(orders["headers"], json!({"headers": {"x-tenant": "acme"}, "sensitive": ["Authorization"]}));
    orders["headers"]["sensitive"] = json!([]);
    let acme = before["applications"].as_array().unwrap().iter().find(|a| a["app"]["uid"] == "acme").unwrap();
    let orders_headers =
        format!("/api/v1/app/{}/endpoint/{}/headers", str_of(&acme["app"], "id"), str_of(&orders["endpoint"], "id"));
    assert_eq!(snapshot(&target).await, expected);
    let archived = expected["eventTypes"].as_array().unwrap().iter().find(|t| t["name"] == "legacy.ping").unwrap();
    assert_eq!(archived["archived"], true);

    // As the summary tells: the sensitive header is set on the target by
    // hand, and later runs keep it.
    let headers = json!({"headers": {"Authorization": "Bearer set-on-the-target"}});
    ok(&target, "PATCH", &orders_headers, headers).await;

    let again = summary(&import(&mut target, &source).await);
    for (row, [created, updated, _, skipped]) in &again {
        assert_eq!((created, updated, skipped), (&0, &0, &0), "{row} on the second run: {again:?}");
    }
    assert_eq!(again["applications"][2], 2);
    assert_eq!(again["endpoints"][2], 3);
    assert_eq!(again["headers"][2], 2, "x-tenant, and Authorization kept");

    // Receivers configured with the SOURCE's secrets verify the target's deliveries.
    let secret_of = |path: &str| {
        let apps = before["applications"].as_array().unwrap();
        let ep = apps
            .iter()
            .flat_map(|a| a["endpoints"].as_array().unwrap())
            .find(|e| e["endpoint"]["url"].as_str().is_some_and(|u| u.ends_with(path)))
            .unwrap_or_else(|| panic!("no endpoint at {path}"));
        str_of(&ep["secret"], "key").to_string()
    };
    let paid = json!({"eventType": "order.paid", "channels": ["eu"], "payload": {"orderId": "o-1"}});
    ok(&target, "POST", "/api/v1/app/acme/msg", paid.clone()).await;
    let delivered = &rx.wait_for("/acme", 1, WAIT).await[0];
    verify_hmac(&secret_of("/acme"), delivered);
    assert_eq!(delivered.header("x-tenant"), "acme");
    assert_eq!(delivered.header("authorization"), "Bearer set-on-the-target");

    ok(&target, "POST", "/api/v1/app/globex/msg", paid).await;
    let delivered = &rx.wait_for("/globex", 1, WAIT).await[0];
    assert_eq!(secret_of("/globex"), ED25519_KEY);
    assert!(delivered.header("webhook-signature").starts_with("v1a,"), "{:?}", delivered.headers);
    let public = ReceiverKey::Ed25519(ED25519_KEY.parse::<SigningKey>().unwrap().verifying_key());
    let headers: Vec<(String, String)> = delivered.headers.clone().into_iter().collect();
    Verifier::new(public).verify(&headers, &delivered.body).unwrap_or_else(|e| panic!("v1a does not verify: {e}"));
    assert!(rx.received_on("/off").is_empty(), "the disabled endpoint stays disabled");

    // An application deleted on the target and imported again keeps its id,
    // but not the tokens issued before it was deleted.
    let acme_id = str_of(&acme["app"], "id").to_string();
    let token = target.token_for_app(&acme_id, false).await;
    ok(&target, "DELETE", &format!("/api/v1/app/{acme_id}"), Value::Null).await;
    let third = summary(&import(&mut target, &source).await);
    assert_eq!(third["applications"][0], 1, "acme is created again: {third:?}");
    ok(&target, "GET", &format!("/api/v1/app/{acme_id}"), Value::Null).await;
    let (status, body) = target.api(&token).get(&format!("/api/v1/app/{acme_id}")).await;
    crate::common::assert_error(status, &body, 401);
}

#[tokio::test]
async fn a_refused_token_or_a_wrong_url_is_one_clear_line() {
    let source = TestServer::start().await;
    let url = source.base_url();
    let cases: [(&[&str], &str); 3] = [
        (&["--url", &url, "--token", "not-a-token"], "refused the token (401"),
        (&["--url", "ftp://example.com", "--token", "t"], "is not an http:// or https:// URL"),
        (&["--url", &format!("{url}/nothing-here"), "--token", source.admin_token()], "answered 404"),
    ];
    for (args, expected) in cases {
        let out = source.cli(&[&["import", "svix"], args].concat()).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(line.starts_with("hookline: ") && line.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed a summary");
    }
}

#[tokio::test]
async fn importing_into_an_embedded_store_in_use_says_to_stop_serve() {
    if skip_unless(Backend::Sqlite, "the embedded store's data-dir lock") {
        return;
    }
    let source = TestServer::start().await;
    let target = TestServer::start().await;
    let out = target.cli(&["import", "svix", "--url", &source.base_url(), "--token", source.admin_token()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is in use by a running hookline") && stderr.contains("stop `hookline serve`"), "{stderr}");
    assert!(stderr.contains(&format!("process {}", target.pid().unwrap())), "{stderr}");
}
