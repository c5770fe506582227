//! Error answers: status codes as Svix, and always a JSON `{code, detail}`
//! body (422: `detail` lists `{loc, msg, type}`), never a 500.

use crate::common;

use crate::common::{assert_error, assert_invalid_field, send, str_of, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const HOOK_URL: &str = "https://receiver.example.invalid/hook";

/// Ids that match nothing: well-formed but unknown, malformed, odd characters, huge.
fn missing_ids(prefix: &str) -> Vec<String> {
    vec![
        format!("{prefix}doesnotexist"),
        format!("{prefix}{}", "0".repeat(27)),
        format!("{prefix}2Vd1z1jnB2RoP9gZkhEp4kbcaDx"),
        "no-such-uid".to_string(),
        "%20".to_string(),
        "a%2Fb".to_string(),
        "x".repeat(300),
        "%C3%A9t%C3%A9".to_string(),
    ]
}

struct Fixture {
    app: String,
    endpoint: String,
    message: String,
}

/// An application with an endpoint and a message.
async fn fixture(server: &TestServer, name: &str) -> Fixture {
    let app = str_of(&server.create_app(name, None).await, "id").to_string();
    let (status, ep) = server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL})).await;
    assert_eq!(status, 201, "{ep}");
    let (status, msg) =
        server.admin().post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "a", "payload": {}})).await;
    assert_eq!(status, 202, "{msg}");
    Fixture { app, endpoint: str_of(&ep, "id").to_string(), message: str_of(&msg, "id").to_string() }
}

async fn raw_post(server: &TestServer, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut rb = server.admin().request(Method::POST, path).body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    let r = send(rb).await;
    (r.status, r.body)
}

// ---- 401 / 403 --------------------------------------------------------------

#[tokio::test]
async fn missing_or_invalid_token_is_unauthorized() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let routes = [
        (Method::GET, "/api/v1/app".to_string()),
        (Method::POST, "/api/v1/app".to_string()),
        (Method::GET, format!("/api/v1/app/{app}")),
        (Method::GET, "/api/v1/event-type".to_string()),
        (Method::GET, format!("/api/v1/app/{app}/endpoint")),
        (Method::POST, format!("/api/v1/app/{app}/msg")),
        (Method::POST, format!("/api/v1/auth/app-portal-access/{app}")),
    ];
    let forged = {
        let real = server.token_for_app(&app, false).await;
        let (payload, _mac) = real.split_once('.').expect("token has a MAC");
        format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    };
    for (method, path) in &routes {
        let anonymous = send(server.anonymous().request(method.clone(), path).json(&json!({"name": "x"}))).await;
        assert_error(anonymous.status, &anonymous.body, 401);
        for token in ["wrong", "hk_garbage", "hk_e30.e30", forged.as_str(), " "] {
            let r = send(server.api(token).request(method.clone(), path).json(&json!({"name": "x"}))).await;
            assert_error(r.status, &r.body, 401);
        }
        let basic = send(
            server
                .anonymous()
                .request(method.clone(), path)
                .header("authorization", "Basic dGVzdDp0ZXN0")
                .json(&json!({})),
        )
        .await;
        assert_error(basic.status, &basic.body, 401);
    }
    // Public routes need no token.
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
    let (status, spec) = server.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(status, 200, "{spec}");
}

#[tokio::test]
async fn expired_portal_token_is_unauthorized() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let (status, body) =
        server.admin().post(&format!("/api/v1/auth/app-portal-access/{app}"), &json!({"expiry": 1})).await;
    assert_eq!(status, 200, "{body}");
    let token = str_of(&body, "token").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = server.api(&token).get(&format!("/api/v1/app/{app}")).await;
    assert_error(status, &body, 401);
}

#[tokio::test]
async fn app_token_on_organization_routes_is_forbidden() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let (status, body) = server.admin().post("/api/v1/event-type", &json!({"name": "a.b", "description": ""})).await;
    assert_eq!(status, 201, "{body}");
    for read_only in [false, true] {
        let token = server.token_for_app(&app, read_only).await;
        let api = server.api(&token);
        let (status, body) = api.get("/api/v1/app").await;
        assert_error(status, &body, 403);
        let (status, body) = api.post("/api/v1/app", &json!({"name": "Mine"})).await;
        assert_error(status, &body, 403);
        let (status, body) = api.post("/api/v1/event-type", &json!({"name": "c.d", "description": ""})).await;
        assert_error(status, &body, 403);
        let (status, body) = api.put("/api/v1/event-type/a.b", &json!({"description": "x"})).await;
        assert_error(status, &body, 403);
        let (status, body) = api.patch("/api/v1/event-type/a.b", &json!({"description": "x"})).await;
        assert_error(status, &body, 403);
        let (status, body) = api.delete("/api/v1/event-type/a.b").await;
        assert_error(status, &body, 403);
        let (status, body) = api.put(&format!("/api/v1/app/{app}"), &json!({"name": "Renamed"})).await;
        assert_error(status, &body, 403);
        let (status, body) = api.delete(&format!("/api/v1/app/{app}")).await;
        assert_error(status, &body, 403);
        let (status, body) = api.post(&format!("/api/v1/auth/app-portal-access/{app}"), &json!({})).await;
        assert_error(status, &body, 403);
    }
    // Nothing changed.
    let (status, body) = server.admin().get(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "App");
    let (status, body) = server.admin().get("/api/v1/event-type/a.b").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["archived"], false);
}

#[tokio::test]
async fn read_only_token_cannot_write() {
    let server = TestServer::start().await;
    let f = fixture(&server, "App").await;
    let token = server.token_for_app(&f.app, true).await;
    let api = server.api(&token);
    let ep = format!("/api/v1/app/{}/endpoint/{}", f.app, f.endpoint);
    let writes = [
        (Method::POST, format!("/api/v1/app/{}/endpoint", f.app), json!({"url": HOOK_URL})),
        (Method::PUT, ep.clone(), json!({"url": HOOK_URL})),
        (Method::PATCH, ep.clone(), json!({"description": "x"})),
        (Method::DELETE, ep.clone(), Value::Null),
        (Method::POST, format!("{ep}/secret/rotate"), json!({})),
        (Method::PUT, format!("{ep}/headers"), json!({"headers": {}})),
        (Method::PATCH, format!("{ep}/headers"), json!({"headers": {}})),
        (Method::POST, format!("/api/v1/app/{}/msg", f.app), json!({"eventType": "a", "payload": {}})),
        (Method::DELETE, format!("/api/v1/app/{}/msg/{}/content", f.app, f.message), Value::Null),
    ];
    for (method, path, body) in writes {
        let r = send(api.request(method.clone(), &path).json(&body)).await;
        assert_error(r.status, &r.body, 403);
        // Refused before its body was read: the connection is not reused
        // (a client that sent another request on it would see it cut).
        assert_eq!(r.header("connection"), Some("close"), "{method} {path}");
    }
    let (status, body) = api.get(&ep).await;
    assert_eq!(status, 200, "reads are allowed: {body}");
}

// ---- 404 ----------------------------------------------------------------------

#[tokio::test]
async fn unknown_or_malformed_ids_are_not_found() {
    let server = TestServer::start().await;
    let f = fixture(&server, "App").await;
    let admin = server.admin();
    for id in missing_ids("app_") {
        // PUT on a free, well-formed uid creates the application (upsert,
        // tests/api_upsert.rs); every other missing id is a 404 for PUT too.
        let creatable = !id.starts_with("app_")
            && id.len() <= 256
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            if method == Method::PUT && creatable {
                continue;
            }
            let r = send(admin.request(method.clone(), &format!("/api/v1/app/{id}")).json(&json!({"name": "x"}))).await;
            assert_error(r.status, &r.body, 404);
        }
        let (status, body) = admin.get(&format!("/api/v1/app/{id}/endpoint")).await;
        assert_error(status, &body, 404);
        let (status, body) = admin.get(&format!("/api/v1/app/{id}/msg")).await;
        assert_error(status, &body, 404);
    }
    let app = &f.app;
    for id in missing_ids("ep_") {
        for path in [
            format!("/api/v1/app/{app}/endpoint/{id}"),
            format!("/api/v1/app/{app}/endpoint/{id}/secret"),
            format!("/api/v1/app/{app}/endpoint/{id}/headers"),
            format!("/api/v1/app/{app}/attempt/endpoint/{id}"),
        ] {
            let (status, body) = admin.get(&path).await;
            assert_error(status, &body, 404);
        }
        let (status, body) = admin.patch(&format!("/api/v1/app/{app}/endpoint/{id}"), &json!({})).await;
        assert_error(status, &body, 404);
        let (status, body) = admin.delete(&format!("/api/v1/app/{app}/endpoint/{id}")).await;
        assert_error(status, &body, 404);
        let (status, body) = admin.post(&format!("/api/v1/app/{app}/endpoint/{id}/secret/rotate"), &json!({})).await;
        assert_error(status, &body, 404);
    }
    for id in missing_ids("msg_") {
        for path in [
            format!("/api/v1/app/{app}/msg/{id}"),
            format!("/api/v1/app/{app}/msg/{id}/endpoint"),
            format!("/api/v1/app/{app}/attempt/msg/{id}"),
            format!("/api/v1/app/{app}/msg/{id}/attempt/atmpt_doesnotexist"),
        ] {
            let (status, body) = admin.get(&path).await;
            assert_error(status, &body, 404);
        }
        let (status, body) = admin.delete(&format!("/api/v1/app/{app}/msg/{id}/content")).await;
        assert_error(status, &body, 404);
    }
    let (status, body) = admin.get(&format!("/api/v1/app/{app}/msg/{}/attempt/atmpt_doesnotexist", f.message)).await;
    assert_error(status, &body, 404);
    for name in ["no.such.type", "%20", "x".repeat(300).as_str()] {
        let (status, body) = admin.get(&format!("/api/v1/event-type/{name}")).await;
        assert_error(status, &body, 404);
        let (status, body) = admin.delete(&format!("/api/v1/event-type/{name}")).await;
        assert_error(status, &body, 404);
    }
}

#[tokio::test]
async fn another_apps_ids_are_not_found_even_for_admin() {
    let server = TestServer::start().await;
    let a = fixture(&server, "A").await;
    let b = fixture(&server, "B").await;
    let admin = server.admin();
    let under_a = |rest: &str| format!("/api/v1/app/{}/{rest}", a.app);

    for path in [
        under_a(&format!("endpoint/{}", b.endpoint)),
        under_a(&format!("endpoint/{}/secret", b.endpoint)),
        under_a(&format!("endpoint/{}/headers", b.endpoint)),
        under_a(&format!("attempt/endpoint/{}", b.endpoint)),
        under_a(&format!("msg/{}", b.message)),
        under_a(&format!("msg/{}/endpoint", b.message)),
        under_a(&format!("attempt/msg/{}", b.message)),
    ] {
        let (status, body) = admin.get(&path).await;
        assert_error(status, &body, 404);
    }
    let (status, body) = admin.put(&under_a(&format!("endpoint/{}", b.endpoint)), &json!({"url": HOOK_URL})).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.patch(&under_a(&format!("endpoint/{}", b.endpoint)), &json!({"description": "x"})).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.post(&under_a(&format!("endpoint/{}/secret/rotate", b.endpoint)), &json!({})).await;
    assert_error(status, &body, 404);
    let (status, body) =
        admin.put(&under_a(&format!("endpoint/{}/headers", b.endpoint)), &json!({"headers": {}})).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.delete(&under_a(&format!("endpoint/{}", b.endpoint))).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.delete(&under_a(&format!("msg/{}/content", b.message))).await;
    assert_error(status, &body, 404);
    let (status, body) =
        admin.get(&format!("/api/v1/app/{}/attempt/msg/{}?endpoint_id={}", a.app, a.message, b.endpoint)).await;
    assert_error(status, &body, 404);

    // B's endpoint and message are untouched.
    let (status, ep) = admin.get(&format!("/api/v1/app/{}/endpoint/{}", b.app, b.endpoint)).await;
    assert_eq!(status, 200, "{ep}");
    assert_eq!(ep["description"], "");
    let (status, msg) = admin.get(&format!("/api/v1/app/{}/msg/{}", b.app, b.message)).await;
    assert_eq!(status, 200, "{msg}");
}

#[tokio::test]
async fn unknown_route_is_json_not_found() {
    let server = TestServer::start().await;
    for path in ["/api/v1/nope", "/api/v1/app/x/unknown", "/api/v2/app", "/api/v1/app/x/endpoint/y/z/w"] {
        let (status, body) = server.admin().get(path).await;
        assert_error(status, &body, 404);
        let (status, body) = server.anonymous().get(path).await;
        assert_error(status, &body, 404);
    }
}

#[tokio::test]
async fn wrong_method_is_json_method_not_allowed() {
    let server = TestServer::start().await;
    for (method, path) in [
        (Method::PUT, "/api/v1/app"),
        (Method::DELETE, "/api/v1/app"),
        (Method::POST, "/api/v1/health"),
        (Method::DELETE, "/api/v1/event-type"),
        (Method::POST, "/api/v1/app/x/msg/y"),
        (Method::PATCH, "/api/v1/app/x/endpoint/y/secret"),
        (Method::GET, "/api/v1/auth/app-portal-access/x"),
    ] {
        let r = send(server.admin().request(method.clone(), path).json(&json!({}))).await;
        assert_error(r.status, &r.body, 405);
    }
}

// ---- request bodies -------------------------------------------------------------

#[tokio::test]
async fn oversized_body_is_payload_too_large_as_json() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();

    // 10 MB: the client must read our 413, not a reset connection.
    let big = json!({"eventType": "a", "payload": {"blob": "x".repeat(10 * 1024 * 1024)}});
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &big).await;
    assert_error(status, &body, 413);
    let (status, body) = raw_post(&server, "/api/v1/app", Some("application/json"), vec![b' '; 10_000_000]).await;
    assert_error(status, &body, 413);

    // The server is still fine, and just under 1 MiB is accepted.
    let fits = json!({"eventType": "a", "payload": {"blob": "x".repeat(1024 * 1024 - 200)}});
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &fits).await;
    assert_eq!(status, 202, "{}", &body.to_string()[..200.min(body.to_string().len())]);
    let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/msg?with_content=false")).await;
    assert_eq!(common::list_data(&list).len(), 1, "only the accepted message exists");
}

#[tokio::test]
async fn max_payload_setting_is_honoured() {
    let server = TestServer::builder().env("HOOKLINE_MAX_PAYLOAD", "2KiB").start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let over = json!({"eventType": "a", "payload": {"blob": "x".repeat(3000)}});
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &over).await;
    assert_error(status, &body, 413);
    let under = json!({"eventType": "a", "payload": {"blob": "x".repeat(1000)}});
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &under).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn non_json_content_type_is_unsupported_media_type() {
    let server = TestServer::start().await;
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"]
    {
        let (status, body) = raw_post(&server, "/api/v1/app", Some(ct), br#"{"name":"x"}"#.to_vec()).await;
        assert_error(status, &body, 415);
    }
    let (status, body) =
        raw_post(&server, "/api/v1/app", Some("application/json; charset=utf-8"), br#"{"name":"x"}"#.to_vec()).await;
    assert_eq!(status, 201, "a charset parameter is fine: {body}");
    let (_, list) = server.admin().get("/api/v1/app").await;
    assert_eq!(common::list_data(&list).len(), 1, "no 415 request created anything");
}

#[tokio::test]
async fn malformed_json_is_bad_request() {
    let server = TestServer::start().await;
    for body in [&b"{"[..], b"{\"name\":", b"{\"name\": \"x\",}", b"{\"name\":\"x\"} trailing", b"nul", b"{'name':'x'}"]
    {
        let (status, answer) = raw_post(&server, "/api/v1/app", Some("application/json"), body.to_vec()).await;
        assert_error(status, &answer, 400);
    }
}

#[tokio::test]
async fn non_utf8_body_is_rejected() {
    let server = TestServer::start().await;
    for body in [&b"{\"name\":\"\xff\xfe\"}"[..], b"\xff\xfe\xfd", b"{\"name\":\"caf\xe9\"}"] {
        let (status, answer) = raw_post(&server, "/api/v1/app", Some("application/json"), body.to_vec()).await;
        assert_error(status, &answer, 400);
    }
    let (_, list) = server.admin().get("/api/v1/app").await;
    assert!(common::list_data(&list).is_empty());
}

#[tokio::test]
async fn wrong_types_are_unprocessable_naming_the_field() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();

    let cases: Vec<(String, Value, &str)> = vec![
        ("/api/v1/app".into(), json!({"name": 5}), "name"),
        ("/api/v1/app".into(), json!({}), "body"),
        ("/api/v1/app".into(), json!({"name": "x", "metadata": {"k": 1}}), "k"),
        ("/api/v1/app".into(), json!({"name": "x", "rateLimit": "fast"}), "rateLimit"),
        ("/api/v1/app".into(), json!([1, 2]), "body"),
        ("/api/v1/event-type".into(), json!({"name": ["x"]}), "name"),
        (format!("/api/v1/app/{app}/endpoint"), json!({"url": 5}), "url"),
        (format!("/api/v1/app/{app}/endpoint"), json!({"url": HOOK_URL, "filterTypes": "a"}), "filterTypes"),
        (format!("/api/v1/app/{app}/endpoint"), json!({"url": HOOK_URL, "disabled": "yes"}), "disabled"),
        (format!("/api/v1/app/{app}/endpoint"), json!({"url": HOOK_URL, "channels": [1]}), "channels"),
        (format!("/api/v1/app/{app}/msg"), json!({"eventType": "a"}), "body"),
        (format!("/api/v1/app/{app}/msg"), json!({"eventType": 5, "payload": {}}), "eventType"),
        (format!("/api/v1/app/{app}/msg"), json!({"eventType": "a", "payload": "text"}), "payload"),
        (
            format!("/api/v1/app/{app}/msg"),
            json!({"eventType": "a", "payload": {}, "application": {"name": 1}}),
            "name",
        ),
        (format!("/api/v1/auth/app-portal-access/{app}"), json!({"readOnly": "no"}), "readOnly"),
    ];
    for (path, body, field) in cases {
        let (status, answer) = admin.post(&path, &body).await;
        assert_invalid_field(status, &answer, field);
    }
    let (status, answer) = admin.patch(&format!("/api/v1/app/{app}"), &json!({"name": false})).await;
    assert_invalid_field(status, &answer, "name");

    // Nested locations are spelled out in full.
    let (status, answer) = admin
        .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "a", "payload": {}, "application": {"name": 1}}))
        .await;
    assert_invalid_field(status, &answer, "application");
    let loc = &answer["detail"][0]["loc"];
    assert_eq!(loc, &json!(["body", "application", "name"]), "{answer}");
}

#[tokio::test]
async fn invalid_uid_in_body_is_unprocessable() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let too_long = "u".repeat(257);
    for uid in ["has space", "slash/y", "", "ünï", "tab\t", too_long.as_str()] {
        let (status, body) = admin.post("/api/v1/app", &json!({"name": "x", "uid": uid})).await;
        assert_invalid_field(status, &body, "uid");
        let (status, body) =
            admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL, "uid": uid})).await;
        assert_invalid_field(status, &body, "uid");
        let (status, body) = admin.patch(&format!("/api/v1/app/{app}"), &json!({"uid": uid})).await;
        assert_invalid_field(status, &body, "uid");
        let (status, body) = admin.post("/api/v1/event-type", &json!({"name": uid, "description": ""})).await;
        assert_invalid_field(status, &body, "name");
    }
    // The limit is inclusive.
    let (status, body) = admin.post("/api/v1/app", &json!({"name": "x", "uid": "u".repeat(256)})).await;
    assert_eq!(status, 201, "{body}");
}

/// A uid (or eventId) that a lookup would read as an id could be created
/// but never found by it: refused. Other keys with the prefix are found.
#[tokio::test]
async fn uids_shaped_like_ids_are_unprocessable() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let like_id = |prefix: &str| format!("{prefix}{}", "a1".repeat(13) + "b");
    let (status, body) = admin.post("/api/v1/app", &json!({"name": "x", "uid": like_id("app_")})).await;
    assert_invalid_field(status, &body, "uid");
    let endpoints = format!("/api/v1/app/{app}/endpoint");
    let (status, body) = admin.post(&endpoints, &json!({"url": HOOK_URL, "uid": like_id("ep_")})).await;
    assert_invalid_field(status, &body, "uid");
    let (status, ep) = admin.post(&endpoints, &json!({"url": HOOK_URL, "uid": "ep_mine"})).await;
    assert_eq!(status, 201, "{ep}");
    let mine = format!("{endpoints}/ep_mine");
    let (status, found) = admin.get(&mine).await;
    assert_eq!((status, &found["id"]), (200, &ep["id"]), "{found}");
    let (status, body) = admin.put(&mine, &json!({"url": HOOK_URL, "uid": "ep_mine"})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin.put(&mine, &json!({"url": HOOK_URL, "uid": like_id("ep_")})).await;
    assert_invalid_field(status, &body, "uid");
    let (status, body) = admin.patch(&mine, &json!({"uid": like_id("ep_")})).await;
    assert_invalid_field(status, &body, "uid");

    let msgs = format!("/api/v1/app/{app}/msg");
    let (status, body) = admin.post(&msgs, &json!({"eventType": "a", "eventId": like_id("msg_"), "payload": {}})).await;
    assert_invalid_field(status, &body, "eventId");
    let (status, msg) = admin.post(&msgs, &json!({"eventType": "a", "eventId": "msg_1", "payload": {}})).await;
    assert_eq!(status, 202, "{msg}");
    let (status, found) = admin.get(&format!("{msgs}/msg_1")).await;
    assert_eq!((status, &found["id"]), (200, &msg["id"]), "{found}");
}

#[tokio::test]
async fn invalid_message_fields_are_unprocessable() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let path = format!("/api/v1/app/{app}/msg");
    let cases = [
        (json!({"eventType": "has space", "payload": {}}), "eventType"),
        (json!({"eventType": "", "payload": {}}), "eventType"),
        (json!({"eventType": "a", "payload": {}, "eventId": ""}), "eventId"),
        (json!({"eventType": "a", "payload": {}, "eventId": "e".repeat(257)}), "eventId"),
        (json!({"eventType": "a", "payload": {}, "eventId": "evt\u{0}1"}), "eventId"),
        (json!({"eventType": "a", "payload": {}, "tags": ["ok", "bell\u{7}"]}), "tags"),
        (json!({"eventType": "a", "payload": {}, "tags": [""]}), "tags"),
        (json!({"eventType": "a", "payload": {}, "tags": vec!["t"; 51]}), "tags"),
        (json!({"eventType": "a", "payload": [1, 2]}), "payload"),
        (json!({"eventType": "a", "payload": {}, "channels": ["no spaces allowed"]}), "channels"),
        (json!({"eventType": "a", "payload": {}, "channels": []}), "channels"),
        (json!({"eventType": "a", "payload": {}, "payloadRetentionPeriod": 0}), "payloadRetentionPeriod"),
    ];
    for (body, field) in cases {
        let (status, answer) = server.admin().post(&path, &body).await;
        assert_invalid_field(status, &answer, field);
    }
    // Every invalid field is named in one answer.
    let (status, answer) =
        server.admin().post(&path, &json!({"eventType": "bad type", "payload": [], "eventId": ""})).await;
    for field in ["eventType", "payload", "eventId"] {
        assert_invalid_field(status, &answer, field);
    }
    let (_, list) = server.admin().get(&path).await;
    assert!(common::list_data(&list).is_empty(), "no invalid message was stored: {list}");
}

#[tokio::test]
async fn bad_endpoint_url_is_unprocessable() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let (status, ep) = admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL})).await;
    assert_eq!(status, 201, "{ep}");
    let ep_path = format!("/api/v1/app/{app}/endpoint/{}", str_of(&ep, "id"));
    for url in [
        "ftp://example.com/x",
        "http://",
        "https://",
        "not a url",
        "",
        "example.com/hook",
        "mailto:a@b.c",
        "file:///etc/passwd",
        "https://example.com/a b",
        "https://example.com/\thook",
        " https://example.com/hook",
    ] {
        let (status, body) = admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": url})).await;
        assert_invalid_field(status, &body, "url");
        let (status, body) = admin.put(&ep_path, &json!({"url": url})).await;
        assert_invalid_field(status, &body, "url");
        let (status, body) = admin.patch(&ep_path, &json!({"url": url})).await;
        assert_invalid_field(status, &body, "url");
    }
    let (_, got) = admin.get(&ep_path).await;
    assert_eq!(got["url"], HOOK_URL);
    // What Svix takes is taken, as written: brackets in a query, a Unicode
    // host, an upper-case scheme (RFC 3986 refuses the first two).
    for url in ["https://example.com/hook?filter[type]=a&x={y}", "https://bücher.example/hook", "HTTPS://example.com/"]
    {
        let (status, body) = admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": url})).await;
        assert_eq!(status, 201, "{url}: {body}");
        assert_eq!(body["url"], url);
    }
}

#[tokio::test]
async fn secret_of_wrong_length_or_encoding_is_unprocessable() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let (status, ep) = admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL})).await;
    assert_eq!(status, 201, "{ep}");
    let ep_path = format!("/api/v1/app/{app}/endpoint/{}", str_of(&ep, "id"));
    let (_, before) = admin.get(&format!("{ep_path}/secret")).await;

    // 5 bytes, 23 bytes, 80 bytes, not base64.
    let bad = [
        "whsec_c2hvcnQ=",
        "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        &format!("whsec_{}", "A".repeat(108)),
        "whsec_!!!not-base64!!!",
    ];
    for secret in bad {
        let (status, body) =
            admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL, "secret": secret})).await;
        assert_invalid_field(status, &body, "secret");
        let (status, body) = admin.post(&format!("{ep_path}/secret/rotate"), &json!({"key": secret})).await;
        assert_invalid_field(status, &body, "key");
    }
    let (_, after) = admin.get(&format!("{ep_path}/secret")).await;
    assert_eq!(after, before, "failed rotations changed nothing");
}

#[tokio::test]
async fn filter_on_unregistered_event_type_is_unprocessable() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let (status, body) = admin.post("/api/v1/event-type", &json!({"name": "known", "description": ""})).await;
    assert_eq!(status, 201, "{body}");

    for key in ["filterTypes", "eventTypes"] {
        let (status, body) = admin
            .post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL, key: ["known", "unknown"]}))
            .await;
        assert_invalid_field(status, &body, "filterTypes");
        assert!(body.to_string().contains("unknown"), "the 422 names the type: {body}");
    }
    let (status, ep) =
        admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL, "filterTypes": ["known"]})).await;
    assert_eq!(status, 201, "{ep}");
    let ep_path = format!("/api/v1/app/{app}/endpoint/{}", str_of(&ep, "id"));
    let (status, body) = admin.patch(&ep_path, &json!({"filterTypes": ["unknown"]})).await;
    assert_invalid_field(status, &body, "filterTypes");
    let (status, body) = admin.put(&ep_path, &json!({"url": HOOK_URL, "filterTypes": ["unknown"]})).await;
    assert_invalid_field(status, &body, "filterTypes");
    let (_, list) = admin.get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(common::list_data(&list).len(), 1);
    let (_, got) = admin.get(&ep_path).await;
    assert_eq!(got["filterTypes"], json!(["known"]));

    // Sending an unregistered type is allowed (as in Svix).
    let (status, body) =
        admin.post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "unknown", "payload": {}})).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn invalid_query_values_are_unprocessable() {
    let server = TestServer::start().await;
    let f = fixture(&server, "App").await;
    let app = &f.app;
    let cases = [
        (format!("/api/v1/app/{app}/msg?before=notadate"), "before"),
        (format!("/api/v1/app/{app}/msg?after=2024-13-01T00:00:00Z"), "after"),
        (format!("/api/v1/app/{app}/msg?after=yesterday"), "after"),
        (format!("/api/v1/app/{app}/msg?with_content=maybe"), "with_content"),
        (format!("/api/v1/app/{app}/msg/{}?with_content=2", f.message), "with_content"),
        (format!("/api/v1/app/{app}/attempt/msg/{}?status=9", f.message), "status"),
        (format!("/api/v1/app/{app}/attempt/endpoint/{}?before=31/12/2024", f.endpoint), "before"),
        ("/api/v1/event-type?include_archived=perhaps".to_string(), "include_archived"),
        ("/api/v1/app?order=up".to_string(), "order"),
        (format!("/api/v1/app/{app}/msg?limit=1000"), "limit"),
    ];
    for (path, field) in cases {
        let (status, body) = server.admin().get(&path).await;
        assert_invalid_field(status, &body, field);
    }
    let (status, body) = server.admin().delete("/api/v1/event-type/x?expunge=sure").await;
    assert_invalid_field(status, &body, "expunge");
    // Years past RFC 3339's four digits: arithmetic near chrono's limits
    // panicked (a 500), and PostgreSQL refuses years before 4713 BC.
    let ep = format!("/api/v1/app/{app}/endpoint/{}", f.endpoint);
    for (path, field) in [
        (format!("{ep}/attempt-stats?until=%2B262142-12-31T23:30:00"), "until"),
        (format!("{ep}/attempt-stats?until=-262143-01-01T00:00:00"), "until"),
        (format!("{ep}/stats/series?until=-262143-01-01"), "until"),
        (format!("/api/v1/app/{app}/msg?before=-5000-01-01T00:00:00"), "before"),
        (format!("/api/v1/app/{app}/msg?after=10000-01-01T00:00:00"), "after"),
    ] {
        let (status, body) = server.admin().get(&path).await;
        assert_invalid_field(status, &body, field);
    }
    for op in ["recover", "replay-missing", "bulk-replay"] {
        let (status, body) =
            server.admin().post(&format!("{ep}/{op}"), &json!({"since": "-5000-01-01T00:00:00"})).await;
        assert_invalid_field(status, &body, "since");
    }
    // Datetimes without an offset are UTC and accepted.
    let (status, body) = server.admin().get(&format!("/api/v1/app/{app}/msg?before=2030-01-01T00:00:00")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(common::list_data(&body).len(), 1);
}

#[tokio::test]
async fn bad_idempotency_key_header_is_unprocessable() {
    let server = TestServer::start().await;
    let long = "k".repeat(300);
    let r = server.admin().post_idempotent("/api/v1/app", &long, &json!({"name": "x"})).await;
    assert_invalid_field(r.status, &r.body, "idempotency-key");
    let (_, list) = server.admin().get("/api/v1/app").await;
    assert!(common::list_data(&list).is_empty());
}
