//! PUT creates what does not exist yet, with the path segment as its uid
//! (the SDKs call it `upsert`).

use crate::common;

use crate::common::TestServer;
use serde_json::json;

#[tokio::test]
async fn put_application_creates_then_updates() {
    let server = TestServer::start().await;
    let (status, created) = server.admin().put("/api/v1/app/customer-7", &json!({"name": "Seven"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["uid"], "customer-7");
    let (status, updated) =
        server.admin().put("/api/v1/app/customer-7", &json!({"name": "Seven Inc", "uid": "customer-7"})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "Seven Inc");

    // An app id that does not exist cannot be created by PUT.
    let (status, body) = server.admin().put("/api/v1/app/app_2Nq8hVgk4Fs1aaaaaaaaaaaaaaa", &json!({"name": "x"})).await;
    common::assert_error(status, &body, 404);
    // A uid in the body must match the path.
    let (status, body) = server.admin().put("/api/v1/app/other", &json!({"name": "x", "uid": "different"})).await;
    common::assert_invalid_field(status, &body, "uid");
}

#[tokio::test]
async fn put_application_needs_an_admin_token() {
    let server = TestServer::start().await;
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "a", "uid": "a"})).await;
    let token = server.token_for_app(app["id"].as_str().unwrap(), false).await;
    let (status, body) = server.api(&token).put("/api/v1/app/new-one", &json!({"name": "x"})).await;
    common::assert_error(status, &body, 403);
    let (status, body) = server.api(&token).put("/api/v1/app/a", &json!({"name": "x"})).await;
    common::assert_error(status, &body, 403);
}

#[tokio::test]
async fn put_endpoint_creates_then_updates() {
    let server = TestServer::start().await;
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "a"})).await;
    let app = app["id"].as_str().unwrap();
    let path = format!("/api/v1/app/{app}/endpoint/primary");
    let (status, created) = server.admin().put(&path, &json!({"url": "https://example.com/a"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["uid"], "primary");
    let (status, updated) =
        server.admin().put(&path, &json!({"url": "https://example.com/b", "uid": "primary", "description": "d"})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["url"], "https://example.com/b");
    let (status, secret) = server.admin().get(&format!("{path}/secret")).await;
    assert_eq!(status, 200);
    assert!(secret["key"].as_str().unwrap().starts_with("whsec_"));
    let (status, body) = server
        .admin()
        .put(&format!("/api/v1/app/{app}/endpoint/ep_2Nq8hVgk4Fs1aaaaaaaaaaaaaaa"), &json!({"url": "https://e.com"}))
        .await;
    common::assert_error(status, &body, 404);
}

#[tokio::test]
async fn concurrent_first_messages_create_one_inline_application() {
    let server = TestServer::start().await;
    let mut sends = Vec::new();
    for i in 0..10 {
        let body = json!({"eventType": "t", "payload": {"i": i}, "application": {"name": "Fresh"}});
        let url = server.url("/api/v1/app/fresh-customer/msg");
        let req = server.http().post(url).bearer_auth(server.admin_token()).json(&body);
        sends.push(tokio::spawn(async move { req.send().await.unwrap().status().as_u16() }));
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 202);
    }
    let (_, apps) = server.admin().get("/api/v1/app").await;
    let fresh: Vec<_> = apps["data"].as_array().unwrap().iter().filter(|a| a["uid"] == "fresh-customer").collect();
    assert_eq!(fresh.len(), 1);
    let (_, msgs) = server.admin().get("/api/v1/app/fresh-customer/msg").await;
    assert_eq!(msgs["data"].as_array().unwrap().len(), 10);
}
