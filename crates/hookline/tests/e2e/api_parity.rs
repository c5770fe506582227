//! Svix operations beyond the basics: message precheck, deleting content
//! (attempt bodies, payloads in bulk, every payload as a task), event
//! types imported from an OpenAPI document, and integrations.

use std::time::{Duration, Instant};

use crate::common::{assert_error, assert_invalid_field, list_data, str_of, TestServer};
use crate::fixtures::*;
use crate::receiver::Receiver;
use serde_json::{json, Value};

async fn new_app(server: &TestServer) -> String {
    let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "c"})).await;
    assert_eq!(status, 201, "{app}");
    str_of(&app, "id").to_string()
}

#[tokio::test]
async fn precheck_says_whether_any_endpoint_wants_the_message() {
    let server = TestServer::start().await;
    let app = new_app(&server).await;
    let precheck = format!("/api/v1/app/{app}/msg/precheck/active");
    let ask = |body: Value| {
        let (server, precheck) = (&server, precheck.clone());
        async move {
            let (status, out) = server.admin().post(&precheck, &body).await;
            assert_eq!(status, 200, "{out}");
            out["active"].as_bool().unwrap()
        }
    };
    assert!(!ask(json!({"eventType": "a.b"})).await, "no endpoint yet");
    let (status, body) = server.admin().post("/api/v1/event-type", &json!({"name": "a.b", "description": ""})).await;
    assert_eq!(status, 201, "{body}");
    add_endpoint(&server, &app, "https://example.invalid/h", json!({"filterTypes": ["a.b"], "channels": ["eu"]})).await;
    assert!(ask(json!({"eventType": "a.b", "channels": ["eu"]})).await);
    assert!(!ask(json!({"eventType": "a.b", "channels": ["us"]})).await, "wrong channel");
    assert!(!ask(json!({"eventType": "c.d", "channels": ["eu"]})).await, "filtered type");
    let (status, body) = server.admin().post(&precheck, &json!({"eventType": "bad type"})).await;
    assert_invalid_field(status, &body, "eventType");
}

#[tokio::test]
async fn attempt_bodies_and_payloads_can_be_expunged() {
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/h"), json!({})).await;
    let mut msgs = Vec::new();
    for n in 0..3 {
        msgs.push(send(&server, &app, json!({"n": n})).await);
    }
    for m in &msgs {
        wait_status(&server, &app, m, &ep, "success").await;
    }

    // One attempt's response body.
    let attempt = attempts_of(&server, &app, &msgs[0]).await.remove(0);
    assert!(attempt["response"].as_str().unwrap().starts_with("reply "), "the receiver's body: {attempt}");
    let path = format!("/api/v1/app/{app}/msg/{}/attempt/{}/content", msgs[0], str_of(&attempt, "id"));
    let (status, body) = server.admin().delete(&path).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(attempts_of(&server, &app, &msgs[0]).await[0]["response"], "");
    let (status, body) =
        server.admin().delete(&format!("/api/v1/app/{app}/msg/{}/attempt/atmpt_nope/content", msgs[0])).await;
    assert_error(status, &body, 404);

    // Payloads by id, in bulk.
    let bulk = format!("/api/v1/app/{app}/msg/bulk-expunge");
    let (status, out) = server.admin().post(&bulk, &json!({"ids": [msgs[0], "msg_missing"]})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["results"], json!({msgs[0].clone(): "expunged", "msg_missing": "not-found"}));
    let payload = |m: String| {
        let (server, app) = (&server, app.clone());
        async move { server.admin().get(&format!("/api/v1/app/{app}/msg/{m}")).await.1["payload"].clone() }
    };
    assert_eq!(payload(msgs[0].clone()).await, json!({}));
    assert_eq!(payload(msgs[1].clone()).await, json!({"n": 1}));
    let (status, body) = server.admin().post(&bulk, &json!({"ids": []})).await;
    assert_invalid_field(status, &body, "ids");

    // Every payload, as a background task.
    let (status, task) = server.admin().post(&format!("/api/v1/app/{app}/msg/expunge-all-contents"), &json!({})).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["task"], "application.purge_content");
    let task_path = format!("/api/v1/background-task/{}", str_of(&task, "id"));
    let deadline = Instant::now() + WAIT;
    let done = loop {
        let (_, t) = server.admin().get(&task_path).await;
        if t["status"] != "running" {
            break t;
        }
        assert!(Instant::now() < deadline, "purge never finished: {t}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["data"]["messagesPurged"], 2, "{done}");
    for m in &msgs {
        assert_eq!(payload(m.clone()).await, json!({}), "{m} kept its payload");
    }
    // A message sent after the purge keeps its payload.
    let later = send(&server, &app, json!({"later": true})).await;
    assert_eq!(payload(later).await, json!({"later": true}));
}

fn spec() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Platform", "version": "1"},
        "webhooks": {
            "sync.complete": {"post": {
                "summary": "A sync finished",
                "x-svix-group-name": "sync",
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Sync"}}}}
            }},
            "sync.paused": {"post": {"description": "A sync was paused", "deprecated": true}}
        },
        "components": {"schemas": {"Sync": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string"}, "rows": {"type": "integer"}}
        }}}
    })
}

#[tokio::test]
async fn event_types_import_from_an_openapi_document() {
    let server = TestServer::start().await;
    let import = "/api/v1/event-type/import/openapi";
    let (status, out) = server.admin().post(import, &json!({"spec": spec(), "dryRun": true})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"]["modified"], json!(["sync.complete", "sync.paused"]));
    assert_eq!(out["data"]["to_modify"][0]["groupName"], "sync", "{out}");
    let (_, list) = server.admin().get("/api/v1/event-type").await;
    assert!(list_data(&list).is_empty(), "a dry run wrote: {list}");

    let raw = serde_json::to_string(&spec()).unwrap();
    let (status, out) = server.admin().post(import, &json!({"specRaw": raw})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["data"]["modified"], json!(["sync.complete", "sync.paused"]));
    let (_, et) = server.admin().get("/api/v1/event-type/sync.complete").await;
    assert_eq!(et["description"], "A sync finished");
    assert_eq!(et["groupName"], "sync");
    assert_eq!(et["schemas"]["1"]["properties"]["status"], json!({"type": "string"}), "the $ref was resolved: {et}");
    let (_, et) = server.admin().get("/api/v1/event-type/sync.paused").await;
    assert_eq!((et["deprecated"].as_bool(), et["schemas"].clone()), (Some(true), Value::Null));

    // Again: nothing to change. replaceAll archives what the document lacks.
    let (_, out) = server.admin().post(import, &json!({"spec": spec()})).await;
    assert_eq!(out["data"]["modified"], json!([]));
    let (status, _) = server.admin().post("/api/v1/event-type", &json!({"name": "old.type", "description": ""})).await;
    assert_eq!(status, 201);
    let (_, out) = server.admin().post(import, &json!({"spec": spec(), "replaceAll": true})).await;
    assert_eq!(out["data"]["modified"], json!(["old.type"]));
    let (_, et) = server.admin().get("/api/v1/event-type/old.type").await;
    assert_eq!(et["archived"], true);

    // Recursive schemas: each recursion stays open rather than unrolled, and
    // what is stored reads back.
    let tree = json!({
        "webhooks": {"tree.changed": {"post": {"requestBody": {"content": {"application/json": {"schema":
            {"$ref": "#/components/schemas/Node"}}}}}}},
        "components": {"schemas": {"Node": {"type": "object", "properties": {
            "left": {"$ref": "#/components/schemas/Node"},
            "right": {"$ref": "#/components/schemas/Node"},
            "parent": {"oneOf": [{"$ref": "#/components/schemas/Node"}, {"type": "null"}]}
        }}}}
    });
    let (status, out) = server.admin().post(import, &json!({"spec": tree})).await;
    assert_eq!(status, 200, "{out}");
    let (status, et) = server.admin().get("/api/v1/event-type/tree.changed").await;
    assert_eq!(status, 200, "{et}");
    assert_eq!(et["schemas"]["1"]["properties"]["left"], json!({}), "{et}");
    let (status, list) = server.admin().get("/api/v1/event-type").await;
    assert_eq!(status, 200, "{list}");

    for (body, expected) in [
        (json!({}), 400),
        (json!({"spec": spec(), "specRaw": "{}"}), 400),
        (json!({"specRaw": "webhooks: {}"}), 400),
        (json!({"spec": {"openapi": "3.1.0"}}), 422),
        (json!({"spec": {"webhooks": {"bad name": {"post": {}}}}}), 422),
    ] {
        let (status, out) = server.admin().post(import, &body).await;
        assert_error(status, &out, expected);
    }
    let app = new_app(&server).await;
    let token = server.token_for_app(&app, false).await;
    let (status, out) = server.api(&token).post(import, &json!({"spec": spec()})).await;
    assert_error(status, &out, 403);
}

/// An integration's key reaches its application like an application token;
/// rotating it or deleting the integration refuses the old key.
#[tokio::test]
async fn integration_keys_are_application_tokens_until_rotated_or_deleted() {
    let server = TestServer::start().await;
    let app = new_app(&server).await;
    let other = new_app(&server).await;
    let base = format!("/api/v1/app/{app}/integration");
    let (status, created) = server.admin().post(&base, &json!({"name": "Zapier", "featureFlags": ["beta"]})).await;
    assert_eq!(status, 201, "{created}");
    let id = str_of(&created, "id").to_string();
    assert!(id.starts_with("integ_"), "{id}");
    assert_eq!(created["featureFlags"], json!(["beta"]));
    assert!(created["createdAt"].is_string() && created["updatedAt"].is_string(), "{created}");
    let one = format!("{base}/{id}");

    let (status, list) = server.admin().get(&base).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list_data(&list).len(), 1);
    let (status, updated) = server.admin().put(&one, &json!({"name": "Zapier EU"})).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["name"].as_str(), &updated["featureFlags"]), (Some("Zapier EU"), &Value::Null));
    let (_, got) = server.admin().get(&one).await;
    assert_eq!(got, updated);
    let (status, in_other) = server.admin().get(&format!("/api/v1/app/{other}/integration/{id}")).await;
    assert_error(status, &in_other, 404);

    let (status, key) = server.admin().get(&format!("{one}/key")).await;
    assert_eq!(status, 200, "{key}");
    let key = str_of(&key, "key").to_string();
    let integration = server.api(&key);
    let (status, body) =
        integration.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": "https://example.invalid/z"})).await;
    assert_eq!(status, 201, "the key manages its application's endpoints: {body}");
    let (status, body) = integration.get(&format!("/api/v1/app/{other}/endpoint")).await;
    assert_error(status, &body, 404);
    let (status, body) = integration.get("/api/v1/app").await;
    assert_error(status, &body, 403);
    let (status, body) = integration.get(&base).await;
    assert_error(status, &body, 403);

    // expire-all revokes every token of the application, keys included;
    // the key read next is a live one. So does logging a key out.
    let mut key = key;
    for revoke in ["expire-all", "logout"] {
        let (status, body) = match revoke {
            "expire-all" => server.admin().post(&format!("/api/v1/auth/app/{app}/expire-all"), &json!({})).await,
            _ => server.api(&key).post("/api/v1/auth/logout", &json!({})).await,
        };
        assert_eq!(status, 204, "{revoke}: {body}");
        let (status, body) = server.api(&key).get(&format!("/api/v1/app/{app}/endpoint")).await;
        assert_error(status, &body, 401);
        let (_, shown) = server.admin().get(&format!("{one}/key")).await;
        let fresh = str_of(&shown, "key").to_string();
        assert_ne!(fresh, key, "{revoke}");
        let (status, body) = server.api(&fresh).get(&format!("/api/v1/app/{app}/endpoint")).await;
        assert_eq!(status, 200, "{revoke}: {body}");
        key = fresh;
    }
    let integration = server.api(&key);

    let (status, rotated) = server.admin().post(&format!("{one}/key/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = str_of(&rotated, "key").to_string();
    assert_ne!(new_key, key);
    let (status, body) = integration.get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_error(status, &body, 401);
    let (status, body) = server.api(&new_key).get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(status, 200, "{body}");
    let (_, shown) = server.admin().get(&format!("{one}/key")).await;
    assert_eq!(str_of(&shown, "key"), new_key, "the key shown is the current one");

    let (status, _) = server.admin().delete(&one).await;
    assert_eq!(status, 204);
    let (status, body) = server.api(&new_key).get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_error(status, &body, 401);
    for (status, body) in
        [server.admin().get(&one).await, server.admin().post(&format!("{one}/key/rotate"), &json!({})).await]
    {
        assert_error(status, &body, 404);
    }

    let (status, body) = server.admin().post(&base, &json!({"name": " "})).await;
    assert_invalid_field(status, &body, "name");
    let (status, body) = server.admin().post(&base, &json!({"name": "x", "featureFlags": [""]})).await;
    assert_invalid_field(status, &body, "featureFlags");
}
