//! Tenant isolation: a token scoped to one application sees that application
//! alone, and a read-only token cannot write.

use crate::common;

use crate::common::{assert_error, list_data, send, str_of, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const HOOK_URL: &str = "https://receiver.example.invalid/hook";

struct Tenant {
    app: String,
    uid: String,
    endpoint: String,
    message: String,
}

async fn tenant(server: &TestServer, uid: &str) -> Tenant {
    let app = str_of(&server.create_app(uid, Some(uid)).await, "id").to_string();
    let (status, ep) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL, "uid": "ep"})).await;
    assert_eq!(status, 201, "{ep}");
    let (status, msg) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "a", "eventId": "evt", "payload": {"of": uid}}))
        .await;
    assert_eq!(status, 202, "{msg}");
    Tenant {
        app,
        uid: uid.to_string(),
        endpoint: str_of(&ep, "id").to_string(),
        message: str_of(&msg, "id").to_string(),
    }
}

fn ids(list: &Value) -> Vec<&str> {
    list_data(list).iter().map(|v| str_of(v, "id")).collect()
}

/// Tokens scoped to `a`, each with a name for failure messages.
async fn tokens_for(server: &TestServer, a: &Tenant, read_only: bool) -> Vec<(String, String)> {
    let mut args = vec!["token", "create", "--app", a.app.as_str()];
    let mut args_uid = vec!["token", "create", "--app", a.uid.as_str()];
    if read_only {
        args.push("--read-only");
        args_uid.push("--read-only");
    }
    vec![
        ("cli token (app id)".to_string(), server.cli_ok(&args).await),
        ("cli token (app uid)".to_string(), server.cli_ok(&args_uid).await),
        ("portal token".to_string(), server.token_for_app(&a.app, read_only).await),
    ]
}

/// What every token scoped to `a` may read, and what of `b` it must not see.
async fn check_reads(server: &TestServer, name: &str, token: &str, a: &Tenant, b: &Tenant) {
    let api = server.api(token);

    let (status, app) = api.get(&format!("/api/v1/app/{}", a.app)).await;
    assert_eq!(status, 200, "{name}: {app}");
    let (status, app) = api.get(&format!("/api/v1/app/{}", a.uid)).await;
    assert_eq!(status, 200, "{name}: {app}");
    let (status, list) = api.get(&format!("/api/v1/app/{}/endpoint", a.app)).await;
    assert_eq!(status, 200, "{name}: {list}");
    assert_eq!(ids(&list), [a.endpoint.as_str()], "{name}");
    let (status, list) = api.get(&format!("/api/v1/app/{}/msg", a.app)).await;
    assert_eq!(status, 200, "{name}: {list}");
    assert_eq!(ids(&list), [a.message.as_str()], "{name}");
    // A read-only token reads everything but signing secrets.
    let secret = format!("/api/v1/app/{}/endpoint/{}/secret", a.app, a.endpoint);
    let (status, body) = api.get(&secret).await;
    assert_eq!(status, if name.contains("read_only=true") { 403 } else { 200 }, "{name} GET {secret}: {body}");
    for path in [
        format!("/api/v1/app/{}/endpoint/{}", a.app, a.endpoint),
        format!("/api/v1/app/{}/endpoint/ep", a.app),
        format!("/api/v1/app/{}/endpoint/{}/headers", a.app, a.endpoint),
        format!("/api/v1/app/{}/msg/{}", a.app, a.message),
        format!("/api/v1/app/{}/msg/evt", a.app),
        format!("/api/v1/app/{}/msg/{}/endpoint", a.app, a.message),
        format!("/api/v1/app/{}/attempt/msg/{}", a.app, a.message),
        format!("/api/v1/app/{}/attempt/endpoint/{}", a.app, a.endpoint),
        "/api/v1/event-type".to_string(),
        "/api/v1/event-type/shared.type".to_string(),
    ] {
        let (status, body) = api.get(&path).await;
        assert_eq!(status, 200, "{name} GET {path}: {body}");
    }

    // B does not exist for this token: its app (by id or uid), its children,
    // and B's ids used under A's path.
    for path in [
        format!("/api/v1/app/{}", b.app),
        format!("/api/v1/app/{}", b.uid),
        format!("/api/v1/app/{}/endpoint", b.app),
        format!("/api/v1/app/{}/msg", b.app),
        format!("/api/v1/app/{}/endpoint/{}", b.app, b.endpoint),
        format!("/api/v1/app/{}/msg/{}", b.app, b.message),
        format!("/api/v1/app/{}/endpoint/{}", a.app, b.endpoint),
        format!("/api/v1/app/{}/endpoint/{}/secret", a.app, b.endpoint),
        format!("/api/v1/app/{}/endpoint/{}/headers", a.app, b.endpoint),
        format!("/api/v1/app/{}/attempt/endpoint/{}", a.app, b.endpoint),
        format!("/api/v1/app/{}/msg/{}", a.app, b.message),
        format!("/api/v1/app/{}/msg/{}/endpoint", a.app, b.message),
        format!("/api/v1/app/{}/attempt/msg/{}", a.app, b.message),
    ] {
        let (status, body) = api.get(&path).await;
        // A read-only token is refused secrets before anything is looked up.
        let expected = if path.ends_with("/secret") && name.contains("read_only=true") { 403 } else { 404 };
        assert_error(status, &body, expected);
    }

    // Organization routes are the admin's.
    let (status, body) = api.get("/api/v1/app").await;
    assert_error(status, &body, 403);
    let (status, body) = api.post("/api/v1/app", &json!({"name": "x"})).await;
    assert_error(status, &body, 403);
    let (status, body) = api.post("/api/v1/event-type", &json!({"name": "new.type", "description": ""})).await;
    assert_error(status, &body, 403);
    let (status, body) = api.post(&format!("/api/v1/auth/app-portal-access/{}", a.app), &json!({})).await;
    assert_error(status, &body, 403);
}

#[tokio::test]
async fn app_scoped_tokens_see_only_their_application() {
    let server = TestServer::start().await;
    let (status, body) =
        server.admin().post("/api/v1/event-type", &json!({"name": "shared.type", "description": ""})).await;
    assert_eq!(status, 201, "{body}");
    let a = tenant(&server, "tenant-a").await;
    let b = tenant(&server, "tenant-b").await;

    for read_only in [false, true] {
        for (name, token) in tokens_for(&server, &a, read_only).await {
            let name = format!("{name}, read_only={read_only}");
            check_reads(&server, &name, &token, &a, &b).await;
        }
    }
}

#[tokio::test]
async fn app_scoped_token_cannot_touch_another_application() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let b = tenant(&server, "tenant-b").await;
    let token = server.cli_ok(&["token", "create", "--app", &a.app]).await;
    let api = server.api(&token);

    let b_ep = format!("/api/v1/app/{}/endpoint/{}", b.app, b.endpoint);
    let a_with_b_ep = format!("/api/v1/app/{}/endpoint/{}", a.app, b.endpoint);
    let writes = [
        (Method::PUT, format!("/api/v1/app/{}", b.app), json!({"name": "hijacked"})),
        (Method::DELETE, format!("/api/v1/app/{}", b.app), Value::Null),
        (Method::POST, format!("/api/v1/app/{}/endpoint", b.app), json!({"url": HOOK_URL})),
        (Method::PATCH, b_ep.clone(), json!({"url": "https://evil.example.invalid/"})),
        (Method::DELETE, b_ep.clone(), Value::Null),
        (Method::PATCH, a_with_b_ep.clone(), json!({"url": "https://evil.example.invalid/"})),
        (Method::PUT, a_with_b_ep.clone(), json!({"url": "https://evil.example.invalid/"})),
        (Method::DELETE, a_with_b_ep.clone(), Value::Null),
        (Method::POST, format!("{a_with_b_ep}/secret/rotate"), json!({})),
        (Method::PUT, format!("{a_with_b_ep}/headers"), json!({"headers": {"x-evil": "1"}})),
        (Method::POST, format!("/api/v1/app/{}/msg", b.app), json!({"eventType": "a", "payload": {}})),
        (Method::DELETE, format!("/api/v1/app/{}/msg/{}/content", a.app, b.message), Value::Null),
        (Method::DELETE, format!("/api/v1/app/{}/msg/{}/content", b.app, b.message), Value::Null),
    ];
    for (method, path, body) in writes {
        let r = send(api.request(method.clone(), &path).json(&body)).await;
        assert!(r.status == 404 || r.status == 403, "{method} {path}: {} {:?}", r.status, r.body);
        common::assert_error_shape(r.status, &r.body);
    }

    // Only the platform may create applications on the fly.
    let r = send(api.request(Method::POST, "/api/v1/app/brand-new/msg").json(&json!({
        "eventType": "a", "payload": {}, "application": {"name": "Sneaky"}
    })))
    .await;
    assert!(r.status == 404 || r.status == 403, "{} {:?}", r.status, r.body);
    common::assert_error_shape(r.status, &r.body);

    // B is exactly as it was.
    let admin = server.admin();
    let (_, app) = admin.get(&format!("/api/v1/app/{}", b.app)).await;
    assert_eq!(app["name"], "tenant-b");
    let (_, ep) = admin.get(&b_ep).await;
    assert_eq!(ep["url"], HOOK_URL);
    let (_, headers) = admin.get(&format!("{b_ep}/headers")).await;
    assert_eq!(headers["headers"], json!({}));
    let (_, list) = admin.get(&format!("/api/v1/app/{}/endpoint", b.app)).await;
    assert_eq!(ids(&list), [b.endpoint.as_str()]);
    let (_, list) = admin.get(&format!("/api/v1/app/{}/msg", b.app)).await;
    assert_eq!(ids(&list), [b.message.as_str()]);
    assert_eq!(list_data(&list)[0]["payload"], json!({"of": "tenant-b"}));
    let (status, _) = admin.get("/api/v1/app/brand-new").await;
    assert_eq!(status, 404, "no application was created");

    // A's token can do all of it to A.
    let (status, body) =
        api.post(&format!("/api/v1/app/{}/msg", a.app), &json!({"eventType": "a", "payload": {}})).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) =
        api.patch(&format!("/api/v1/app/{}/endpoint/{}", a.app, a.endpoint), &json!({"description": "mine"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn read_only_tokens_can_read_but_not_write() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let ep = format!("/api/v1/app/{}/endpoint/{}", a.app, a.endpoint);
    for (name, token) in tokens_for(&server, &a, true).await {
        let api = server.api(&token);
        let writes = [
            (Method::POST, format!("/api/v1/app/{}/endpoint", a.app), json!({"url": HOOK_URL})),
            (Method::PUT, ep.clone(), json!({"url": HOOK_URL})),
            (Method::PATCH, ep.clone(), json!({"description": "changed"})),
            (Method::DELETE, ep.clone(), Value::Null),
            (Method::POST, format!("{ep}/secret/rotate"), json!({})),
            (Method::PUT, format!("{ep}/headers"), json!({"headers": {"x-a": "1"}})),
            (Method::PATCH, format!("{ep}/headers"), json!({"headers": {"x-a": "1"}})),
            (Method::POST, format!("/api/v1/app/{}/msg", a.app), json!({"eventType": "a", "payload": {}})),
            (Method::DELETE, format!("/api/v1/app/{}/msg/{}/content", a.app, a.message), Value::Null),
            (Method::PATCH, format!("/api/v1/app/{}", a.app), json!({"name": "changed"})),
        ];
        for (method, path, body) in writes {
            let r = send(api.request(method.clone(), &path).json(&body)).await;
            assert_eq!(r.status, 403, "{name}: {method} {path}: {:?}", r.body);
            assert_error(r.status, &r.body, 403);
        }
        let (status, body) = api.get(&ep).await;
        assert_eq!(status, 200, "{name}: {body}");
        // The signing secret is what a read-only viewer must not take away.
        let (status, body) = api.get(&format!("{ep}/secret")).await;
        assert_error(status, &body, 403);
    }
    // Nothing was written.
    let admin = server.admin();
    let (_, got) = admin.get(&ep).await;
    assert_eq!(got["description"], "");
    let (_, list) = admin.get(&format!("/api/v1/app/{}/endpoint", a.app)).await;
    assert_eq!(list_data(&list).len(), 1);
    let (_, list) = admin.get(&format!("/api/v1/app/{}/msg", a.app)).await;
    assert_eq!(list_data(&list).len(), 1);
    assert_eq!(list_data(&list)[0]["payload"], json!({"of": "tenant-a"}));
}

/// A token outlives nothing it was issued for: once its application is
/// deleted it is refused (401) on every route, the shared catalog included.
#[tokio::test]
async fn token_of_a_deleted_application_is_refused() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let token = server.token_for_app(&a.app, false).await;
    let send = json!({"eventType": "a", "payload": {}});
    let sent = server.api(&token).post_idempotent(&format!("/api/v1/app/{}/msg", a.app), "k", &send).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    let (status, _) = server.admin().delete(&format!("/api/v1/app/{}", a.app)).await;
    assert_eq!(status, 204);
    // A new application reusing the uid is another application.
    server.create_app("Reborn", Some("tenant-a")).await;
    for path in [
        format!("/api/v1/app/{}", a.app),
        "/api/v1/app/tenant-a".to_string(),
        format!("/api/v1/app/{}/msg", a.app),
        "/api/v1/event-type".to_string(),
    ] {
        let (status, body) = server.api(&token).get(&path).await;
        assert_error(status, &body, 401);
    }
    // Sending checks the application in the message's own transaction: the
    // answer is the same, and no earlier answer is replayed.
    let (status, body) = server.api(&token).post(&format!("/api/v1/app/{}/msg", a.app), &send).await;
    assert_error(status, &body, 401);
    let again = server.api(&token).post_idempotent(&format!("/api/v1/app/{}/msg", a.app), "k", &send).await;
    assert_error(again.status, &again.body, 401);
}

#[tokio::test]
async fn cli_refuses_a_token_for_an_unknown_application() {
    let server = TestServer::start().await;
    let out = server.cli(&["token", "create", "--app", "no-such-app"]).await;
    assert!(!out.status.success(), "token create for an unknown app must fail");
    assert!(out.stdout.is_empty(), "no token printed: {}", String::from_utf8_lossy(&out.stdout));
}

/// A resource of `b` in a path template, by placeholder. A placeholder this
/// table does not know fails the test: a new route must be added here.
fn b_value<'t>(placeholder: &str, b: &'t Tenant, (b_attempt, b_task, b_integ): (&'t str, &'t str, &'t str)) -> &'t str {
    match placeholder {
        "app_id" => &b.app,
        "endpoint_id" => &b.endpoint,
        "msg_id" => &b.message,
        "attempt_id" => b_attempt,
        "task_id" => b_task,
        "integ_id" => b_integ,
        other => panic!("route placeholder {{{other}}} is not covered by the isolation test; add it"),
    }
}

/// Every route of the served spec, driven with a token of application A at
/// application B's resources (B's ids under B's path, and under A's path):
/// each answer is 403 or 404, never B's data, and B is unchanged afterwards.
#[tokio::test]
async fn every_route_keeps_tenants_apart() {
    // No retries: B must have exactly the one attempt checked at the end.
    let server = TestServer::builder().env("HOOKLINE_RETRY_SCHEDULE", "").start().await;
    let a = tenant(&server, "tenant-a").await;
    let b = tenant(&server, "tenant-b").await;
    // B's message has an attempt (its endpoint does not resolve).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let b_attempt = loop {
        let (_, list) = server.admin().get(&format!("/api/v1/app/{}/attempt/msg/{}", b.app, b.message)).await;
        if let Some(first) = list_data(&list).first() {
            break str_of(first, "id").to_string();
        }
        assert!(std::time::Instant::now() < deadline, "B's message was never attempted");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // And a background task (a replay with nothing missing: no new attempt).
    let replay = format!("/api/v1/app/{}/endpoint/{}/replay-missing", b.app, b.endpoint);
    let (status, task) = server.admin().post(&replay, &json!({"since": "2026-01-01T00:00:00Z"})).await;
    assert_eq!(status, 202, "{task}");
    let b_task = str_of(&task, "id").to_string();
    // Both have an integration; A's key is one more token of A.
    let mut integrations = Vec::new();
    for app in [&a.app, &b.app] {
        let (status, created) =
            server.admin().post(&format!("/api/v1/app/{app}/integration"), &json!({"name": "x"})).await;
        assert_eq!(status, 201, "{created}");
        integrations.push(str_of(&created, "id").to_string());
    }
    let (_, a_key) = server.admin().get(&format!("/api/v1/app/{}/integration/{}/key", a.app, integrations[0])).await;
    let b_ids = (b_attempt.as_str(), b_task.as_str(), integrations[1].as_str());
    let tokens = [
        ("full token", server.token_for_app(&a.app, false).await),
        ("read-only token", server.token_for_app(&a.app, true).await),
        ("integration key", str_of(&a_key, "key").to_string()),
    ];
    let body = json!({
        "url": HOOK_URL, "name": "x", "eventType": "a", "payload": {}, "headers": {"x-a": "1"},
        "since": "2026-01-01T00:00:00Z", "description": "x", "key": null,
    });

    let (_, spec) = server.anonymous().get("/api/v1/openapi.json").await;
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"] == json!([]) {
                continue; // public: health, the spec itself
            }
            let method: Method = method.to_uppercase().parse().unwrap();
            if template == "/api/v1/auth/token" {
                // Describes the caller's own token: A sees A, nothing of B.
                for (name, token) in &tokens {
                    let (status, own) = server.api(token).get(template).await;
                    assert_eq!((status, own["appId"].as_str()), (200, Some(a.app.as_str())), "{name}: {own}");
                }
                continue;
            }
            if template == "/api/v1/background-task" {
                // Lists the caller's own application's tasks: none of B's.
                for (name, token) in &tokens {
                    let (status, own) = server.api(token).get(template).await;
                    assert_eq!(status, 200, "{name}: {own}");
                    assert!(list_data(&own).is_empty(), "{name} sees B's tasks: {own}");
                }
                continue;
            }
            if template == "/api/v1/auth/logout" {
                // Revokes the calling token itself, nothing of B's
                // (`logout_revokes_the_calling_token_only`).
                continue;
            }
            let placeholders: Vec<&str> = template.split('{').skip(1).filter_map(|p| p.split('}').next()).collect();
            let mut paths = Vec::new();
            if placeholders.contains(&"app_id") {
                // B's resources under B's path, and B's children under A's path.
                let mut under_b = template.clone();
                let mut under_a = template.clone();
                for p in &placeholders {
                    let value = b_value(p, &b, b_ids);
                    under_b = under_b.replace(&format!("{{{p}}}"), value);
                    let own = if *p == "app_id" { a.app.as_str() } else { value };
                    under_a = under_a.replace(&format!("{{{p}}}"), own);
                }
                paths.push(under_b);
                if placeholders.len() > 1 {
                    paths.push(under_a);
                }
            } else if template.contains("/event-type") && method == Method::GET {
                continue; // the shared catalog: every tenant reads it
            } else {
                let mut path = template.clone();
                for p in &placeholders {
                    let value = if *p == "event_type_name" { "shared.type" } else { b_value(p, &b, b_ids) };
                    path = path.replace(&format!("{{{p}}}"), value);
                }
                paths.push(path);
            }
            for (name, token) in &tokens {
                for path in &paths {
                    let r = send(server.api(token).request(method.clone(), path).json(&body)).await;
                    assert!(
                        r.status == 403 || r.status == 404,
                        "{name}: {method} {path} answered {}: {:?}",
                        r.status,
                        r.body
                    );
                    common::assert_error_shape(r.status, &r.body);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 60, "only {checked} requests were checked");

    // B is exactly as it was.
    let admin = server.admin();
    let (_, app) = admin.get(&format!("/api/v1/app/{}", b.app)).await;
    assert_eq!(app["name"], "tenant-b");
    let (_, list) = admin.get(&format!("/api/v1/app/{}/endpoint", b.app)).await;
    assert_eq!(ids(&list), [b.endpoint.as_str()]);
    assert_eq!(list_data(&list)[0]["url"], HOOK_URL);
    let (_, list) = admin.get(&format!("/api/v1/app/{}/msg", b.app)).await;
    assert_eq!(ids(&list), [b.message.as_str()]);
    assert_eq!(list_data(&list)[0]["payload"], json!({"of": "tenant-b"}));
    let (_, list) = admin.get(&format!("/api/v1/app/{}/attempt/msg/{}", b.app, b.message)).await;
    assert_eq!(list_data(&list).len(), 1, "no attempt was added: {list}");
    let (_, list) = admin.get(&format!("/api/v1/app/{}/integration", b.app)).await;
    assert_eq!(ids(&list), [integrations[1].as_str()]);
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let path = format!("/api/v1/app/{}", a.app);
    let token = server.token_for_app(&a.app, false).await;

    // A changed signature, a changed payload, another key's token, garbage.
    let (payload, mac) = token.rsplit_once('.').unwrap();
    let mut forged_mac = mac.to_string();
    forged_mac.replace_range(0..1, if mac.starts_with('A') { "B" } else { "A" });
    let other_server = TestServer::start().await;
    let other_app = other_server.create_app("Other", Some("tenant-a")).await;
    let foreign = other_server.token_for_app(other_app["id"].as_str().unwrap(), false).await;
    for (what, bad) in [
        ("forged signature", format!("{payload}.{forged_mac}")),
        ("signature of another payload", format!("{}x.{mac}", payload)),
        ("token of another deployment", foreign),
        ("not a token", "hk_".to_string()),
    ] {
        let (status, body) = server.api(&bad).get(&path).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_error(status, &body, 401);
    }

    // An expired portal token.
    let (status, body) =
        server.admin().post(&format!("/api/v1/auth/app-portal-access/{}", a.app), &json!({"expiry": 1})).await;
    assert_eq!(status, 200, "{body}");
    let short = str_of(&body, "token").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, _) = server.api(&short).get(&path).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(std::time::Instant::now() < deadline, "an expired token kept working");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Svix's `capabilities`: a `ViewBase` portal token reads, writes nothing and
/// sees no secret; `ManageEndpoint` may write; an unknown capability is a 422.
#[tokio::test]
async fn view_base_tokens_read_but_never_write_or_see_secrets() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let access = format!("/api/v1/auth/app-portal-access/{}", a.app);
    let (status, body) = server.admin().post(&access, &json!({"capabilities": ["ViewBase"]})).await;
    assert_eq!(status, 200, "{body}");
    let viewer = server.api(str_of(&body, "token"));
    let ep = format!("/api/v1/app/{}/endpoint/{}", a.app, a.endpoint);
    let (status, _) = viewer.get(&ep).await;
    assert_eq!(status, 200);
    let (status, body) = viewer.get(&format!("{ep}/secret")).await;
    assert_error(status, &body, 403);
    let (status, body) = viewer.patch(&ep, &json!({"description": "changed"})).await;
    assert_error(status, &body, 403);

    let (_, body) = server.admin().post(&access, &json!({"capabilities": ["ViewBase", "ManageEndpoint"]})).await;
    let (status, body) = server.api(str_of(&body, "token")).patch(&ep, &json!({"description": "changed"})).await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = server.admin().post(&access, &json!({"capabilities": ["Everything"]})).await;
    common::assert_invalid_field(status, &body, "capabilities");
}

/// Each of Svix's capabilities opens exactly its routes: secrets to read,
/// secrets to rotate, attempts to create, endpoints to manage.
#[tokio::test]
async fn each_capability_opens_its_own_routes_and_no_other() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let access = format!("/api/v1/auth/app-portal-access/{}", a.app);
    let ep = format!("/api/v1/app/{}/endpoint/{}", a.app, a.endpoint);
    let since = json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()});
    let calls: [(&str, Method, String, Value); 5] = [
        ("read secret", Method::GET, format!("{ep}/secret"), Value::Null),
        ("rotate secret", Method::POST, format!("{ep}/secret/rotate"), json!({})),
        ("recover", Method::POST, format!("{ep}/recover"), since.clone()),
        ("replay", Method::POST, format!("{ep}/replay-missing"), since),
        ("create endpoint", Method::POST, format!("/api/v1/app/{}/endpoint", a.app), json!({"url": HOOK_URL})),
    ];
    // Which of the calls above each capability (besides ViewBase) allows.
    let cases: [(&str, [bool; 5]); 5] = [
        ("ViewBase", [false, false, false, false, false]),
        ("ViewEndpointSecret", [true, false, false, false, false]),
        ("ManageEndpointSecret", [true, true, false, false, false]),
        ("CreateAttempts", [false, false, true, true, false]),
        ("ManageEndpoint", [true, true, true, true, true]),
    ];
    for (cap, allowed) in cases {
        let (status, body) = server.admin().post(&access, &json!({"capabilities": ["ViewBase", cap]})).await;
        assert_eq!(status, 200, "{body}");
        let api = server.api(str_of(&body, "token"));
        let (status, info) = api.get("/api/v1/auth/token").await;
        assert_eq!(status, 200);
        assert!(info["capabilities"].as_array().unwrap().contains(&json!(cap)), "{info}");
        for ((what, method, path, input), allowed) in calls.iter().zip(allowed) {
            let mut rb = api.request(method.clone(), path);
            if !input.is_null() {
                rb = rb.json(input);
            }
            let r = send(rb).await;
            if allowed {
                assert!(r.status < 300, "{cap} may {what}: {} {}", r.status, r.body);
            } else {
                assert_error(r.status, &r.body, 403);
            }
        }
    }
}

/// `application` in `app-portal-access` creates the application when the
/// path names none (Svix's "create on the fly"), once.
#[tokio::test]
async fn portal_access_creates_a_missing_application_from_its_body() {
    let server = TestServer::start().await;
    let access = "/api/v1/auth/app-portal-access/customer-42";
    let (status, body) = server.admin().post(access, &json!({})).await;
    assert_error(status, &body, 404);
    let (status, body) = server.admin().post(access, &json!({"application": {"name": "Customer 42"}})).await;
    assert_eq!(status, 200, "{body}");
    let (status, app) = server.api(str_of(&body, "token")).get("/api/v1/app/customer-42").await;
    assert_eq!(status, 200, "the token reaches the new application: {app}");
    assert_eq!(app["name"], "Customer 42");
    // Existing now: `application` is ignored, as Svix does.
    let (status, _) = server.admin().post(access, &json!({"application": {"name": "Renamed"}})).await;
    assert_eq!(status, 200);
    let (_, app) = server.admin().get("/api/v1/app/customer-42").await;
    assert_eq!(app["name"], "Customer 42");
    let (_, apps) = server.admin().get("/api/v1/app").await;
    assert_eq!(apps["data"].as_array().unwrap().len(), 1, "{apps}");
}

async fn portal_token(server: &TestServer, app: &str, body: Value) -> String {
    let (status, out) = server.admin().post(&format!("/api/v1/auth/app-portal-access/{app}"), &body).await;
    assert_eq!(status, 200, "{out}");
    str_of(&out, "token").to_string()
}

async fn works(server: &TestServer, token: &str, app: &str) -> bool {
    let (status, body) = server.api(token).get(&format!("/api/v1/app/{app}")).await;
    match status {
        200 => true,
        401 => false,
        other => panic!("unexpected {other}: {body}"),
    }
}

/// `expire-all` revokes every token of the application issued before the
/// call (or of the sessions named); tokens issued later, and other
/// applications' tokens, keep working.
#[tokio::test]
async fn expire_all_revokes_the_applications_earlier_tokens() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let b = tenant(&server, "tenant-b").await;
    let first = portal_token(&server, &a.app, json!({})).await;
    let in_session = portal_token(&server, &a.app, json!({"sessionId": "s-1"})).await;
    let other_session = portal_token(&server, &a.app, json!({"sessionId": "s-2"})).await;
    let of_b = portal_token(&server, &b.app, json!({})).await;

    let expire = format!("/api/v1/auth/app/{}/expire-all", a.app);
    let (status, body) = server.admin().post(&expire, &json!({"sessionIds": ["s-1", "s-1"]})).await;
    assert_eq!(status, 204, "{body}");
    assert!(!works(&server, &in_session, &a.app).await, "the named session's token still works");
    assert!(works(&server, &first, &a.app).await && works(&server, &other_session, &a.app).await);

    let (status, body) = server.admin().post(&expire, &json!({})).await;
    assert_eq!(status, 204, "{body}");
    assert!(!works(&server, &first, &a.app).await, "an earlier token still works");
    assert!(!works(&server, &other_session, &a.app).await, "an earlier session token still works");
    assert!(works(&server, &of_b, &b.app).await, "another application's token was revoked");
    let later = portal_token(&server, &a.app, json!({})).await;
    assert!(works(&server, &later, &a.app).await, "a token issued after expire-all is refused");

    // A grace period: refused only once it has passed.
    let (status, _) = server.admin().post(&expire, &json!({"expiry": 3600})).await;
    assert_eq!(status, 204);
    assert!(works(&server, &later, &a.app).await, "the grace period was not honoured");

    let (status, body) = server.admin().post(&expire, &json!({"expiry": -1})).await;
    common::assert_invalid_field(status, &body, "expiry");
    let (status, body) = server.api(&of_b).post(&expire, &json!({})).await;
    assert_error(status, &body, 403);
}

/// `logout` revokes the calling token alone; the configured admin token
/// cannot log out.
#[tokio::test]
async fn logout_revokes_the_calling_token_only() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let leaving = portal_token(&server, &a.app, json!({})).await;
    let staying = portal_token(&server, &a.app, json!({})).await;
    let (status, body) = server.api(&leaving).post("/api/v1/auth/logout", &json!({})).await;
    assert_eq!(status, 204, "{body}");
    assert!(!works(&server, &leaving, &a.app).await);
    assert!(works(&server, &staying, &a.app).await);
    let (status, body) = server.admin().post("/api/v1/auth/logout", &json!({})).await;
    assert_error(status, &body, 400);
    let (status, _) = server.admin().get("/api/v1/app").await;
    assert_eq!(status, 200);
}

/// A background task belongs to its application: another application's
/// token neither lists nor reads it.
#[tokio::test]
async fn background_tasks_are_scoped_to_their_application() {
    let server = TestServer::start().await;
    let a = tenant(&server, "tenant-a").await;
    let b = tenant(&server, "tenant-b").await;
    let since = json!({"since": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339()});
    let (status, task) =
        server.admin().post(&format!("/api/v1/app/{}/endpoint/{}/recover", b.app, b.endpoint), &since).await;
    assert_eq!(status, 202, "{task}");
    let task_path = format!("/api/v1/background-task/{}", str_of(&task, "id"));
    let of_a = server.api(&server.token_for_app(&a.app, false).await);
    let (status, body) = of_a.get(&task_path).await;
    assert_error(status, &body, 404);
    let (status, list) = of_a.get("/api/v1/background-task").await;
    assert_eq!(status, 200, "{list}");
    assert!(list_data(&list).is_empty(), "{list}");
    let of_b = server.api(&server.token_for_app(&b.app, false).await);
    let (status, body) = of_b.get(&task_path).await;
    assert_eq!(status, 200, "{body}");
    let (_, list) = of_b.get("/api/v1/background-task").await;
    assert_eq!(list_data(&list).len(), 1, "{list}");
    let (status, body) = server.admin().get("/api/v1/background-task?status=sleeping").await;
    common::assert_invalid_field(status, &body, "status");
}
