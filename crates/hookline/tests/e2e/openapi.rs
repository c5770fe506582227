//! `GET /api/v1/openapi.json` and the router agree both ways: every operation
//! in the spec is routed (with or without a trailing slash), paths outside it
//! hit the fallback, and each operation is scoped as it declares.

use crate::common::{assert_error_shape, send, str_of, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn is_fallback(status: u16, body: &Value) -> bool {
    status == 404 && body == &json!({"code": "not_found", "detail": "No such route"})
}

/// The spec's path with every `{param}` replaced by a value that names nothing.
fn fill(path: &str, app: &str) -> String {
    path.split('/')
        .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some("app_id") => app.to_string(),
            Some("endpoint_id") => "ep_doesnotexist".to_string(),
            Some("msg_id") => "msg_doesnotexist".to_string(),
            Some("attempt_id") => "atmpt_doesnotexist".to_string(),
            Some(_) => "doesnotexist".to_string(),
            None => segment.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.to_ascii_uppercase().as_bytes()).expect("HTTP method")
}

async fn spec(server: &TestServer) -> Value {
    let (status, spec) = server.anonymous().get("/api/v1/openapi.json").await;
    assert_eq!(status, 200, "{spec}");
    spec
}

/// (path, method, operation) for every operation of the spec.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let paths = spec["paths"].as_object().expect("paths is an object");
    let mut out = Vec::new();
    for (path, item) in paths {
        for (m, op) in item.as_object().unwrap_or_else(|| panic!("path item of {path} is not an object")) {
            out.push((path.clone(), m.clone(), op.clone()));
        }
    }
    out
}

async fn call(server: &TestServer, token: Option<&str>, m: &str, path: &str) -> (u16, Value) {
    let api = match token {
        Some(t) => server.api(t),
        None => server.anonymous(),
    };
    let mut rb = api.request(method(m), path);
    if matches!(m, "post" | "put" | "patch") {
        rb = rb.json(&json!({}));
    }
    let r = send(rb).await;
    (r.status, r.body)
}

#[tokio::test]
async fn spec_is_well_formed() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    assert!(str_of(&spec, "openapi").starts_with("3."), "{}", spec["openapi"]);
    assert!(spec["info"]["title"].is_string() && spec["info"]["version"].is_string(), "{}", spec["info"]);

    let servers = spec["servers"].as_array().expect("servers is a list");
    assert!(!servers.is_empty(), "servers is empty");
    for s in servers {
        assert!(s["url"].is_string(), "server without url: {s}");
    }

    let ops = operations(&spec);
    assert!(ops.len() >= 30, "only {} operations", ops.len());
    let mut op_ids = std::collections::HashSet::new();
    for (path, m, op) in &ops {
        assert!(path.starts_with("/api/v1/"), "{path}");
        assert!(!path.ends_with('/'), "{path} has a trailing slash");
        assert!(METHODS.contains(&m.as_str()), "{m} {path}");
        let op_id = op["operationId"].as_str().unwrap_or_else(|| panic!("{m} {path} has no operationId"));
        assert!(!op_id.is_empty());
        assert!(op_ids.insert(op_id.to_string()), "operationId {op_id} is used twice");
        assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{m} {path} has no summary");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{m} {path} has no responses");
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{m} {path} has no tags");

        // Every {param} of the path is declared, and nothing else in the path.
        let in_path: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{m} {path}: path parameter {p} is not required");
                str_of(p, "name")
            })
            .collect();
        assert_eq!(in_path, declared, "{m} {path}: path parameters");
        for segment in path.split('/') {
            assert!(
                segment.is_empty()
                    || segment.starts_with('{') && segment.ends_with('}')
                    || segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{path} has an odd segment {segment:?}"
            );
        }
        // A body, when the operation reads one, has a schema (never a bare
        // `{"type": "object"}` placeholder).
        if let Some(body) = op.get("requestBody") {
            let schema = &body["content"]["application/json"]["schema"];
            assert!(schema.is_object() && schema != &json!({"type": "object"}), "{m} {path}: body schema {schema}");
        }
        // Every answer is declared with its status: no `2XX`/`4XX` ranges.
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.keys().all(|s| s.parse::<u16>().is_ok()), "{m} {path}: {:?}", responses.keys());
        assert!(responses.keys().any(|s| s.starts_with('2')), "{m} {path} declares no success");
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            assert!(responses.contains_key("401"), "{m} {path} does not declare 401");
        }
        for (status, response) in responses {
            if status.starts_with('4') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert!(schema.is_string(), "{m} {path}: {status} has no error schema");
            }
        }
        if m == "post" {
            let has_key = op["parameters"].as_array().into_iter().flatten().any(|p| p["name"] == "idempotency-key");
            assert!(has_key, "POST {path} does not declare idempotency-key");
        }
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{m} {path} has no security list"));
        for requirement in security {
            for scheme in requirement.as_object().expect("security requirement is an object").keys() {
                assert!(spec["components"]["securitySchemes"][scheme].is_object(), "undeclared scheme {scheme}");
            }
        }
    }
    for op_id in ["v1.application.create", "v1.endpoint.rotate-secret", "v1.message.create", "v1.health.get"] {
        assert!(op_ids.contains(op_id), "{op_id} is missing from the spec");
    }
    // Hookline's own operations are marked; Svix's are not.
    for (_, _, op) in &ops {
        let hookline = op["operationId"].as_str().unwrap().starts_with("hookline.");
        assert_eq!(op.get("x-hookline-extension").is_some(), hookline, "{}", op["operationId"]);
    }
    let schemas = spec["components"]["schemas"].as_object().expect("components/schemas");
    for name in ["ApplicationIn", "ApplicationOut", "EndpointIn", "MessageIn", "MessageOut", "HttpError"] {
        assert!(schemas.contains_key(name), "{name} is missing from components/schemas");
    }
    assert!(schemas["MessageIn"]["examples"].is_array(), "MessageIn has no example");
}

#[tokio::test]
async fn every_spec_operation_is_routed() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    for (path, m, _) in operations(&spec) {
        let concrete = fill(&path, "app_doesnotexist");
        for url in [concrete.clone(), format!("{concrete}/")] {
            let (status, body) = call(&server, Some(server.admin_token()), &m, &url).await;
            assert!(!is_fallback(status, &body), "{m} {url} (spec {path}) hit the router's fallback");
            assert_ne!(status, 405, "{m} {url} (spec {path}) is not allowed: {body}");
            if !(200..300).contains(&status) {
                assert_error_shape(status, &body);
            }
        }
    }
}

#[tokio::test]
async fn methods_outside_the_spec_are_not_allowed() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    let paths = spec["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let concrete = fill(path, "app_doesnotexist");
        for m in METHODS {
            if item.get(m).is_some() {
                continue;
            }
            let (status, body) = call(&server, Some(server.admin_token()), m, &concrete).await;
            assert_eq!(status, 405, "{m} {concrete} is not in the spec but answered: {body}");
            assert_error_shape(status, &body);
        }
    }
}

#[tokio::test]
async fn paths_outside_the_spec_hit_the_fallback() {
    let server = TestServer::start().await;
    for path in [
        "/api/v1/nope",
        "/api/v1/app/x/unknown",
        "/api/v1/app/x/endpoint/y/bogus",
        "/api/v1/event-type/x/y",
        "/api/v1/app/x/msg/y/attempt",
        "/api/v1/auth/app-portal-access",
        "/api/v1",
        "/api/v2/app",
        "/api/v1//app",
    ] {
        for m in ["get", "post"] {
            let (status, body) = call(&server, Some(server.admin_token()), m, path).await;
            assert!(is_fallback(status, &body), "{m} {path} should be unrouted: {status} {body}");
        }
    }
}

#[tokio::test]
async fn operations_are_scoped_as_declared() {
    let server = TestServer::start().await;
    let spec = spec(&server).await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let app_token = server.token_for_app(&app, false).await;

    for (path, m, op) in operations(&spec) {
        let public = op["security"].as_array().is_some_and(|s| s.is_empty());
        let concrete = fill(&path, &app);

        // Without a token: 401 unless the operation is public.
        let (status, body) = call(&server, None, &m, &concrete).await;
        if public {
            assert!((200..300).contains(&status), "public {m} {path} answered {status}: {body}");
        } else {
            assert_eq!(status, 401, "{m} {path} without a token: {body}");
        }

        // Admin-only operations refuse an application's own token.
        let access = op["x-hookline-access"].as_str().unwrap_or_else(|| panic!("{m} {path} has no x-hookline-access"));
        if access.starts_with("Admin") {
            let (status, body) = call(&server, Some(&app_token), &m, &concrete).await;
            assert_eq!(status, 403, "admin-only {m} {path} with an app token: {body}");
        }
    }
}
