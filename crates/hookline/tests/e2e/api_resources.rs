//! CRUD of every API resource, through the real binary, with the output
//! fields the Svix SDKs require.

use crate::common;

use crate::common::{assert_error, assert_list_shape, list_data, str_of, TestServer};
use serde_json::{json, Value};

/// An endpoint URL that never resolves (RFC 6761), so no test sends traffic
/// anywhere even when the dispatcher tries to deliver.
const HOOK_URL: &str = "https://receiver.example.invalid/hook";

fn ids(list: &Value) -> Vec<String> {
    list_data(list).iter().map(|item| str_of(item, "id").to_string()).collect()
}

#[track_caller]
fn assert_timestamps(v: &Value) {
    for field in ["createdAt", "updatedAt"] {
        let t = str_of(v, field);
        assert!(t.len() >= 20 && t.contains('T') && t.ends_with('Z'), "{field} is not an RFC 3339 UTC datetime: {v}");
    }
}

async fn create_event_type(server: &TestServer, name: &str) {
    let (status, body) = server.admin().post("/api/v1/event-type", &json!({"name": name, "description": name})).await;
    assert_eq!(status, 201, "create event type {name}: {body}");
}

async fn create_endpoint(server: &TestServer, app: &str, input: Value) -> Value {
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &input).await;
    assert_eq!(status, 201, "create endpoint {input}: {body}");
    body
}

async fn send_message(server: &TestServer, app: &str, input: Value) -> Value {
    let (status, body) = server.admin().post(&format!("/api/v1/app/{app}/msg"), &input).await;
    assert_eq!(status, 202, "create message {input}: {body}");
    body
}

// ---- applications -----------------------------------------------------------

#[tokio::test]
async fn application_crud_by_id_and_by_uid() {
    let server = TestServer::start().await;
    let admin = server.admin();

    let (status, app) = admin
        .post("/api/v1/app", &json!({"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}, "rateLimit": 7}))
        .await;
    assert_eq!(status, 201, "{app}");
    let id = str_of(&app, "id").to_string();
    assert!(id.starts_with("app_"), "{app}");
    assert_eq!(app["uid"], "acme");
    assert_eq!(app["name"], "Acme");
    assert_eq!(app["metadata"], json!({"plan": "pro"}));
    assert_eq!(app["rateLimit"], 7);
    assert_eq!(app["throttleRate"], 7);
    assert_timestamps(&app);

    let (status, by_id) = admin.get(&format!("/api/v1/app/{id}")).await;
    assert_eq!(status, 200, "{by_id}");
    assert_eq!(by_id, app);
    let (status, by_uid) = admin.get("/api/v1/app/acme").await;
    assert_eq!(status, 200, "{by_uid}");
    assert_eq!(by_uid, app);

    let (status, list) = admin.get("/api/v1/app").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![id.clone()]);

    // PUT replaces (by uid): metadata and rate limit not given are cleared.
    let (status, put) = admin.put("/api/v1/app/acme", &json!({"name": "Acme Corp", "uid": "acme"})).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["id"], id.as_str());
    assert_eq!(put["name"], "Acme Corp");
    assert_eq!(put["metadata"], json!({}));
    assert_eq!(put["rateLimit"], Value::Null);
    assert_eq!(put["createdAt"], app["createdAt"]);

    // PATCH (by id) changes only what it names.
    let (status, patched) = admin.patch(&format!("/api/v1/app/{id}"), &json!({"metadata": {"tier": "gold"}})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"], "Acme Corp");
    assert_eq!(patched["uid"], "acme");
    assert_eq!(patched["metadata"], json!({"tier": "gold"}));
    let (_, fetched) = admin.get("/api/v1/app/acme").await;
    assert_eq!(fetched, patched);

    let (status, body) = admin.delete("/api/v1/app/acme").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = admin.get(&format!("/api/v1/app/{id}")).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.get("/api/v1/app/acme").await;
    assert_error(status, &body, 404);
    let (status, body) = admin.delete(&format!("/api/v1/app/{id}")).await;
    assert_error(status, &body, 404);
    let (_, list) = admin.get("/api/v1/app").await;
    assert!(ids(&list).is_empty(), "{list}");
}

#[tokio::test]
async fn a_message_to_an_application_id_that_names_none_is_404_alone() {
    let server = TestServer::start().await;
    let live = str_of(&server.create_app("Live", None).await, "id").to_string();
    let gone = str_of(&server.create_app("Gone", Some("gone")).await, "id").to_string();
    let sent_before = json!({"eventType": "a", "payload": {}});
    let first = server.admin().post_idempotent(&format!("/api/v1/app/{gone}/msg"), "key-1", &sent_before).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let (status, _) = server.admin().delete(&format!("/api/v1/app/{gone}")).await;
    assert_eq!(status, 204);
    // Its answer is not replayed once the application is gone.
    let again = server.admin().post_idempotent(&format!("/api/v1/app/{gone}/msg"), "key-1", &sent_before).await;
    assert_error(again.status, &again.body, 404);
    // An id that never existed, well formed (it is checked in the message's
    // own transaction, not read before).
    let never = format!("app_{}", "0".repeat(gone.len() - 4));

    // Sent together, so that the writer batches them: the messages to no
    // application fail alone.
    let admin = server.admin();
    let sends = (0..24).map(|i| {
        let app = [&live, &gone, &never][i % 3].clone();
        let admin = &admin;
        async move {
            let body = json!({"eventType": "a", "payload": {"n": i}});
            (app.clone(), admin.post(&format!("/api/v1/app/{app}/msg"), &body).await)
        }
    });
    for (app, (status, body)) in futures_util::future::join_all(sends).await {
        if app == live {
            assert_eq!(status, 202, "{body}");
        } else {
            assert_error(status, &body, 404);
        }
    }
    let (_, list) = admin.get(&format!("/api/v1/app/{live}/msg")).await;
    assert_eq!(list_data(&list).len(), 8, "{list}");

    // An id is never a uid to create an application from, whatever the body says.
    let with_app = json!({"eventType": "a", "payload": {}, "application": {"name": "New"}});
    let (status, body) = admin.post(&format!("/api/v1/app/{never}/msg"), &with_app).await;
    assert_error(status, &body, 404);
    // A uid is still created from the inline application.
    let (status, body) = admin.post("/api/v1/app/fresh-uid/msg", &with_app).await;
    assert_eq!(status, 202, "{body}");
    let (status, app) = admin.get("/api/v1/app/fresh-uid").await;
    assert_eq!((status, &app["name"]), (200, &json!("New")), "{app}");
}

#[tokio::test]
async fn duplicate_app_uid_is_conflict_unless_get_if_exists() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = server.create_app("First", Some("dup")).await;

    let (status, body) = admin.post("/api/v1/app", &json!({"name": "Second", "uid": "dup"})).await;
    assert_error(status, &body, 409);

    let (status, existing) =
        admin.post("/api/v1/app?get_if_exists=true", &json!({"name": "Second", "uid": "dup"})).await;
    assert_eq!(status, 200, "{existing}");
    assert_eq!(existing, app, "get_if_exists returns the existing application unchanged");

    let (status, fresh) = admin.post("/api/v1/app?get_if_exists=true", &json!({"name": "Third", "uid": "new"})).await;
    assert_eq!(status, 201, "{fresh}");
    assert_ne!(fresh["id"], app["id"]);

    // A uid taken by another application cannot be given by PATCH either.
    let (status, body) = admin.patch(&format!("/api/v1/app/{}", str_of(&fresh, "id")), &json!({"uid": "dup"})).await;
    assert_error(status, &body, 409);

    let (_, list) = admin.get("/api/v1/app").await;
    assert_eq!(list_data(&list).len(), 2, "{list}");
}

#[tokio::test]
async fn application_without_optional_fields_has_sdk_defaults() {
    let server = TestServer::start().await;
    let app = server.create_app("Plain", None).await;
    assert_eq!(app["uid"], Value::Null);
    assert_eq!(app["metadata"], json!({}));
    assert_eq!(app["rateLimit"], Value::Null);
    assert_timestamps(&app);
}

// ---- event types ------------------------------------------------------------

#[tokio::test]
async fn event_type_crud_with_schemas() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let schemas = json!({"1": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}});

    let (status, et) = admin
        .post("/api/v1/event-type", &json!({"name": "invoice.paid", "description": "Paid", "schemas": schemas}))
        .await;
    assert_eq!(status, 201, "{et}");
    assert_eq!(et["name"], "invoice.paid");
    assert_eq!(et["description"], "Paid");
    assert_eq!(et["schemas"], schemas);
    assert_eq!(et["archived"], false);
    assert_eq!(et["deprecated"], false);
    assert_timestamps(&et);

    let (status, body) = admin.post("/api/v1/event-type", &json!({"name": "invoice.paid", "description": "x"})).await;
    assert_error(status, &body, 409);

    let (status, got) = admin.get("/api/v1/event-type/invoice.paid").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got, et);

    // PUT of an existing type updates it; of a new name creates it.
    let (status, put) = admin.put("/api/v1/event-type/invoice.paid", &json!({"description": "Invoice paid"})).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["description"], "Invoice paid");
    assert_eq!(put["createdAt"], et["createdAt"]);
    let (status, created) = admin.put("/api/v1/event-type/invoice.voided", &json!({"description": "Voided"})).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "invoice.voided");

    // PATCH changes only what it names.
    let (status, patched) =
        admin.patch("/api/v1/event-type/invoice.paid", &json!({"deprecated": true, "schemas": schemas})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["deprecated"], true);
    assert_eq!(patched["description"], "Invoice paid");
    assert_eq!(patched["schemas"], schemas);

    let (status, list) = admin.get("/api/v1/event-type").await;
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list_data(&list).iter().map(|e| str_of(e, "name")).collect();
    assert_eq!(names, ["invoice.paid", "invoice.voided"]);

    let (status, body) = admin.get("/api/v1/event-type/no.such.type").await;
    assert_error(status, &body, 404);
    let (status, body) = admin.patch("/api/v1/event-type/no.such.type", &json!({"description": "x"})).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn deleting_an_event_type_archives_it_and_expunge_removes_it() {
    let server = TestServer::start().await;
    let admin = server.admin();
    create_event_type(&server, "user.created").await;
    create_event_type(&server, "user.deleted").await;

    let (status, body) = admin.delete("/api/v1/event-type/user.created").await;
    assert_eq!(status, 204, "{body}");
    let (status, archived) = admin.get("/api/v1/event-type/user.created").await;
    assert_eq!(status, 200, "an archived type can still be read: {archived}");
    assert_eq!(archived["archived"], true);

    let (_, list) = admin.get("/api/v1/event-type").await;
    let names: Vec<&str> = list_data(&list).iter().map(|e| str_of(e, "name")).collect();
    assert_eq!(names, ["user.deleted"], "archived types are hidden by default");
    let (_, list) = admin.get("/api/v1/event-type?include_archived=true").await;
    let names: Vec<&str> = list_data(&list).iter().map(|e| str_of(e, "name")).collect();
    assert_eq!(names, ["user.created", "user.deleted"]);

    // Unarchiving is a PATCH.
    let (status, body) = admin.patch("/api/v1/event-type/user.created", &json!({"archived": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["archived"], false);

    let (status, body) = admin.delete("/api/v1/event-type/user.created?expunge=true").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = admin.get("/api/v1/event-type/user.created").await;
    assert_error(status, &body, 404);
    let (_, list) = admin.get("/api/v1/event-type?include_archived=true").await;
    assert_eq!(list_data(&list).len(), 1, "{list}");
    let (status, body) = admin.delete("/api/v1/event-type/user.created").await;
    assert_error(status, &body, 404);
}

// ---- endpoints --------------------------------------------------------------

#[tokio::test]
async fn endpoint_crud_by_id_and_by_uid() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = server.create_app("App", Some("app-1")).await;
    let app_id = str_of(&app, "id");
    create_event_type(&server, "a.created").await;
    create_event_type(&server, "b.created").await;

    let ep = create_endpoint(
        &server,
        "app-1",
        json!({
            "url": HOOK_URL,
            "uid": "primary",
            "description": "Main receiver",
            "filterTypes": ["a.created"],
            "channels": ["eu", "project-1"],
            "rateLimit": 10,
            "metadata": {"owner": "ops"},
        }),
    )
    .await;
    let ep_id = str_of(&ep, "id").to_string();
    assert!(ep_id.starts_with("ep_"), "{ep}");
    assert_eq!(ep["uid"], "primary");
    assert_eq!(ep["url"], HOOK_URL);
    assert_eq!(ep["description"], "Main receiver");
    assert_eq!(ep["filterTypes"], json!(["a.created"]));
    assert_eq!(ep["eventTypes"], json!(["a.created"]));
    assert_eq!(ep["channels"], json!(["eu", "project-1"]));
    assert_eq!(ep["rateLimit"], 10);
    assert_eq!(ep["throttleRate"], 10);
    assert_eq!(ep["metadata"], json!({"owner": "ops"}));
    assert_eq!(ep["disabled"], false);
    assert_eq!(ep["version"], 1);
    assert_timestamps(&ep);

    for path in [
        format!("/api/v1/app/{app_id}/endpoint/{ep_id}"),
        "/api/v1/app/app-1/endpoint/primary".to_string(),
        format!("/api/v1/app/{app_id}/endpoint/primary"),
    ] {
        let (status, got) = admin.get(&path).await;
        assert_eq!(status, 200, "{path}: {got}");
        assert_eq!(got, ep, "{path}");
    }

    let (status, list) = admin.get("/api/v1/app/app-1/endpoint").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![ep_id.clone()]);

    // PUT replaces: what is not given returns to its default.
    let (status, put) = admin
        .put("/api/v1/app/app-1/endpoint/primary", &json!({"url": "https://other.example.invalid/", "uid": "primary"}))
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["id"], ep_id.as_str());
    assert_eq!(put["url"], "https://other.example.invalid/");
    assert_eq!(put["description"], "");
    assert_eq!(put["filterTypes"], Value::Null);
    assert_eq!(put["channels"], Value::Null);
    assert_eq!(put["rateLimit"], Value::Null);
    assert_eq!(put["metadata"], json!({}));
    assert_eq!(put["createdAt"], ep["createdAt"]);

    // PATCH changes only what it names; null clears a nullable field.
    let (status, patched) = admin
        .patch(
            &format!("/api/v1/app/{app_id}/endpoint/{ep_id}"),
            &json!({"description": "Patched", "filterTypes": ["a.created", "b.created"], "channels": ["us"]}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["description"], "Patched");
    assert_eq!(patched["url"], "https://other.example.invalid/");
    assert_eq!(patched["eventTypes"], json!(["a.created", "b.created"]));
    assert_eq!(patched["channels"], json!(["us"]));
    let (status, patched) =
        admin.patch(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}"), &json!({"channels": null})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["channels"], Value::Null);
    assert_eq!(patched["description"], "Patched");
    let (_, got) = admin.get(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}")).await;
    assert_eq!(got, patched);

    let (status, body) = admin.delete("/api/v1/app/app-1/endpoint/primary").await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = admin.get(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}")).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.delete(&format!("/api/v1/app/{app_id}/endpoint/{ep_id}")).await;
    assert_error(status, &body, 404);
    let (_, list) = admin.get("/api/v1/app/app-1/endpoint").await;
    assert!(ids(&list).is_empty(), "{list}");
}

#[tokio::test]
async fn endpoint_accepts_svix_input_aliases() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    create_event_type(&server, "order.shipped").await;

    // What current SDKs send: eventTypes and throttleRate.
    let ep = create_endpoint(
        &server,
        &app,
        json!({"url": HOOK_URL, "eventTypes": ["order.shipped"], "throttleRate": 3, "tags": ["ignored"], "featureFlags": []}),
    )
    .await;
    assert_eq!(ep["filterTypes"], json!(["order.shipped"]));
    assert_eq!(ep["eventTypes"], json!(["order.shipped"]));
    assert_eq!(ep["throttleRate"], 3);
    assert_eq!(ep["rateLimit"], 3);

    let (status, patched) = server
        .admin()
        .patch(&format!("/api/v1/app/{app}/endpoint/{}", str_of(&ep, "id")), &json!({"throttleRate": 9}))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["throttleRate"], 9);
    assert_eq!(patched["rateLimit"], 9);
}

#[tokio::test]
async fn endpoint_without_optional_fields_has_sdk_defaults() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let ep = create_endpoint(&server, &app, json!({"url": HOOK_URL})).await;
    assert_eq!(ep["description"], "", "description is \"\", never null: {ep}");
    assert_eq!(ep["metadata"], json!({}));
    assert_eq!(ep["uid"], Value::Null);
    assert_eq!(ep["disabled"], false);
    assert_eq!(ep["version"], 1);
    assert_timestamps(&ep);
    let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(list_data(&list)[0]["description"], "");
}

#[tokio::test]
async fn endpoint_disabled_flag_round_trips() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let ep = create_endpoint(&server, &app, json!({"url": HOOK_URL, "disabled": true})).await;
    assert_eq!(ep["disabled"], true);
    let path = format!("/api/v1/app/{app}/endpoint/{}", str_of(&ep, "id"));
    let (status, body) = admin.patch(&path, &json!({"disabled": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], false);
    let (_, got) = admin.get(&path).await;
    assert_eq!(got["disabled"], false);
}

#[tokio::test]
async fn duplicate_endpoint_uid_in_one_app_is_conflict() {
    let server = TestServer::start().await;
    let a = str_of(&server.create_app("A", None).await, "id").to_string();
    let b = str_of(&server.create_app("B", None).await, "id").to_string();
    create_endpoint(&server, &a, json!({"url": HOOK_URL, "uid": "same"})).await;
    let (status, body) =
        server.admin().post(&format!("/api/v1/app/{a}/endpoint"), &json!({"url": HOOK_URL, "uid": "same"})).await;
    assert_error(status, &body, 409);
    // Uids are per application.
    create_endpoint(&server, &b, json!({"url": HOOK_URL, "uid": "same"})).await;
}

#[tokio::test]
async fn endpoint_headers_get_put_patch() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let ep =
        create_endpoint(&server, &app, json!({"url": HOOK_URL, "headers": {"X-Api-Key": "k1", "X-Env": "prod"}})).await;
    let path = format!("/api/v1/app/{app}/endpoint/{}/headers", str_of(&ep, "id"));

    let (status, headers) = admin.get(&path).await;
    assert_eq!(status, 200, "{headers}");
    // Credentials are named, never shown (as Svix does); still sent on delivery.
    assert_eq!(headers["headers"], json!({"X-Env": "prod"}));
    assert_eq!(headers["sensitive"], json!(["X-Api-Key"]), "{headers}");

    let (status, body) = admin.put(&path, &json!({"headers": {"X-One": "1"}})).await;
    assert_eq!(status, 204, "{body}");
    let (_, headers) = admin.get(&path).await;
    assert_eq!(headers["headers"], json!({"X-One": "1"}), "PUT replaces all headers");

    let (status, body) = admin.patch(&path, &json!({"headers": {"X-Two": "2", "X-One": null}})).await;
    assert_eq!(status, 204, "{body}");
    let (_, headers) = admin.get(&path).await;
    assert_eq!(headers["headers"], json!({"X-Two": "2"}), "PATCH merges; null removes");

    // Current SDKs remove headers by name in `deleteHeaders`.
    let (status, body) = admin.patch(&path, &json!({"headers": {"X-Three": "3"}, "deleteHeaders": ["X-Two"]})).await;
    assert_eq!(status, 204, "{body}");
    let (_, headers) = admin.get(&path).await;
    assert_eq!(headers["headers"], json!({"X-Three": "3"}), "deleteHeaders removes");

    let (status, body) = admin.put(&path, &json!({"headers": {"webhook-signature": "forged"}})).await;
    common::assert_invalid_field(status, &body, "headers");
}

#[tokio::test]
async fn endpoint_secret_get_and_rotate() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let ep = create_endpoint(&server, &app, json!({"url": HOOK_URL})).await;
    let secret_path = format!("/api/v1/app/{app}/endpoint/{}/secret", str_of(&ep, "id"));

    let (status, body) = admin.get(&secret_path).await;
    assert_eq!(status, 200, "{body}");
    let original = str_of(&body, "key").to_string();
    assert_generated_secret(&original);
    let (_, again) = admin.get(&secret_path).await;
    assert_eq!(again["key"], original.as_str(), "the secret is stable between reads");

    let (status, rotated) = admin.post(&format!("{secret_path}/rotate"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = str_of(&rotated, "key").to_string();
    assert_generated_secret(&new_key);
    assert_ne!(new_key, original);
    let (_, current) = admin.get(&secret_path).await;
    assert_eq!(current["key"], new_key.as_str(), "GET secret shows the rotated key");

    // A key supplied by the caller is honoured.
    let chosen = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (status, rotated) = admin.post(&format!("{secret_path}/rotate"), &json!({"key": chosen})).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["key"], chosen);
    let (_, current) = admin.get(&secret_path).await;
    assert_eq!(current["key"], chosen);

    // So is one given at creation.
    let ep2 = create_endpoint(&server, &app, json!({"url": HOOK_URL, "secret": chosen})).await;
    let (_, body) = admin.get(&format!("/api/v1/app/{app}/endpoint/{}/secret", str_of(&ep2, "id"))).await;
    assert_eq!(body["key"], chosen);

    // A raw HTTP client may rotate without any body at all.
    let r = common::send(admin.request(reqwest::Method::POST, &format!("{secret_path}/rotate"))).await;
    assert_eq!(r.status, 200, "rotate without a body: {:?}", r.body);
    assert_ne!(r.body["key"], chosen);
}

/// `whsec_` + standard base64 of 24 random bytes (32 characters, no padding).
#[track_caller]
fn assert_generated_secret(key: &str) {
    let b64 = key.strip_prefix("whsec_").unwrap_or_else(|| panic!("{key:?} lacks the whsec_ prefix"));
    assert_eq!(b64.len(), 32, "{key:?} is not the base64 of 24 bytes");
    assert!(b64.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{key:?} is not base64");
}

// ---- messages ---------------------------------------------------------------

#[tokio::test]
async fn message_create_get_by_id_and_event_id() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", Some("shop")).await, "id").to_string();

    let payload = json!({"id": "ord_1", "total": 12.5, "items": [1, 2], "nested": {"ok": true}});
    let msg = send_message(
        &server,
        "shop",
        json!({"eventType": "order.created", "eventId": "evt-1", "payload": payload, "channels": ["eu"]}),
    )
    .await;
    let msg_id = str_of(&msg, "id").to_string();
    assert!(msg_id.starts_with("msg_"), "{msg}");
    assert_eq!(msg["eventType"], "order.created");
    assert_eq!(msg["eventId"], "evt-1");
    assert_eq!(msg["payload"], payload);
    assert_eq!(msg["channels"], json!(["eu"]));
    let ts = str_of(&msg, "timestamp");
    assert!(ts.ends_with('Z') && ts.contains('T'), "{msg}");

    for key in [msg_id.as_str(), "evt-1"] {
        let (status, got) = admin.get(&format!("/api/v1/app/{app}/msg/{key}")).await;
        assert_eq!(status, 200, "{key}: {got}");
        assert_eq!(got["id"], msg_id.as_str());
        assert_eq!(got["payload"], payload);
        assert_eq!(got["eventId"], "evt-1");
    }
    let (status, got) = admin.get(&format!("/api/v1/app/{app}/msg/{msg_id}?with_content=false")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["payload"], json!({}));

    let (status, body) = admin.get(&format!("/api/v1/app/{app}/msg/evt-unknown")).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.get(&format!("/api/v1/app/{app}/msg/msg_0000000000000000000000000000")).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn duplicate_event_id_is_conflict() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let first = send_message(&server, &app, json!({"eventType": "a", "eventId": "once", "payload": {"n": 1}})).await;
    let (status, body) = server
        .admin()
        .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "a", "eventId": "once", "payload": {"n": 2}}))
        .await;
    assert_error(status, &body, 409);
    let (_, list) = server.admin().get(&format!("/api/v1/app/{app}/msg")).await;
    assert_eq!(ids(&list), vec![str_of(&first, "id").to_string()]);

    // eventIds are per application.
    let other = str_of(&server.create_app("Other", None).await, "id").to_string();
    send_message(&server, &other, json!({"eventType": "a", "eventId": "once", "payload": {}})).await;
}

#[tokio::test]
async fn message_list_filters_by_type_channel_and_time() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();

    // Apart by more than a millisecond, so ids and timestamps order them.
    let gap = std::time::Duration::from_millis(10);
    let a = send_message(&server, &app, json!({"eventType": "type.a", "payload": {"n": 1}, "channels": ["red"]})).await;
    tokio::time::sleep(gap).await;
    let b = send_message(&server, &app, json!({"eventType": "type.b", "payload": {"n": 2}})).await;
    tokio::time::sleep(gap).await;
    let c =
        send_message(&server, &app, json!({"eventType": "type.c", "payload": {"n": 3}, "channels": ["red", "blue"]}))
            .await;
    let [a, b, c] = [&a, &b, &c].map(|m| str_of(m, "id").to_string());

    let (status, list) = admin.get(&format!("/api/v1/app/{app}/msg")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), [c.as_str(), b.as_str(), a.as_str()], "newest first");
    assert_eq!(list_data(&list)[0]["payload"], json!({"n": 3}), "content is included by default");

    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?event_types=type.a,type.b")).await;
    assert_eq!(ids(&list), [b.as_str(), a.as_str()], "comma-joined event_types");
    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?event_types=type.a&event_types=type.c")).await;
    assert_eq!(ids(&list), [c.as_str(), a.as_str()], "repeated event_types");

    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?channel=red")).await;
    assert_eq!(ids(&list), [c.as_str(), a.as_str()]);
    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?channel=blue")).await;
    assert_eq!(ids(&list), [c.as_str()]);

    // before/after compare with the message timestamp.
    let (_, c_msg) = admin.get(&format!("/api/v1/app/{app}/msg/{c}")).await;
    let c_time = str_of(&c_msg, "timestamp");
    let (status, list) = admin.get(&format!("/api/v1/app/{app}/msg?before={}", encode(c_time))).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), [b.as_str(), a.as_str()]);
    let (_, b_msg) = admin.get(&format!("/api/v1/app/{app}/msg/{b}")).await;
    let b_time = str_of(&b_msg, "timestamp");
    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?after={}", encode(b_time))).await;
    assert_eq!(ids(&list), [c.as_str()]);
    let (_, list) =
        admin.get(&format!("/api/v1/app/{app}/msg?after=2000-01-01T00:00:00Z&before=2001-01-01T00:00:00")).await;
    assert!(ids(&list).is_empty(), "{list}");

    // The SDK's default: no content.
    let (_, list) = admin.get(&format!("/api/v1/app/{app}/msg?with_content=false")).await;
    assert_eq!(list_data(&list).len(), 3);
    for m in list_data(&list) {
        assert_eq!(m["payload"], json!({}), "{m}");
    }
}

/// Percent-encodes a datetime for a query string (`+` would read as a space).
fn encode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn message_to_unknown_app_uid_creates_the_app_inline() {
    let server = TestServer::start().await;
    let admin = server.admin();

    let (status, body) = admin.post("/api/v1/app/cust-42/msg", &json!({"eventType": "a", "payload": {}})).await;
    assert_error(status, &body, 404);

    let msg = send_message(
        &server,
        "cust-42",
        json!({"eventType": "a", "payload": {"x": 1}, "application": {"name": "Customer 42", "metadata": {"k": "v"}}}),
    )
    .await;
    let (status, app) = admin.get("/api/v1/app/cust-42").await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["name"], "Customer 42");
    assert_eq!(app["uid"], "cust-42");
    assert_eq!(app["metadata"], json!({"k": "v"}));
    let (status, got) = admin.get(&format!("/api/v1/app/cust-42/msg/{}", str_of(&msg, "id"))).await;
    assert_eq!(status, 200, "{got}");

    // Once it exists, the inline application is not needed and not re-created.
    send_message(&server, "cust-42", json!({"eventType": "a", "payload": {}, "application": {"name": "Other name"}}))
        .await;
    let (_, app_after) = admin.get("/api/v1/app/cust-42").await;
    assert_eq!(app_after["id"], app["id"]);
    let (_, apps) = admin.get("/api/v1/app").await;
    assert_eq!(list_data(&apps).len(), 1);
}

#[tokio::test]
async fn expunged_message_content_reads_as_empty() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let msg = send_message(&server, &app, json!({"eventType": "a", "payload": {"secret": "pii"}})).await;
    let id = str_of(&msg, "id");

    let (status, body) = admin.delete(&format!("/api/v1/app/{app}/msg/{id}/content")).await;
    assert_eq!(status, 204, "{body}");
    let (status, got) = admin.get(&format!("/api/v1/app/{app}/msg/{id}")).await;
    assert_eq!(status, 200, "the message itself stays: {got}");
    assert_eq!(got["payload"], json!({}));
    assert_eq!(got["eventType"], "a");

    let (status, body) = admin.delete(&format!("/api/v1/app/{app}/msg/msg_0000000000000000000000000000/content")).await;
    assert_error(status, &body, 404);
}

// ---- attempts and destinations ------------------------------------------------

#[tokio::test]
async fn attempt_lists_are_well_formed_when_empty() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    create_event_type(&server, "wanted").await;
    // The endpoint wants another type, so this message is never attempted.
    let ep = create_endpoint(&server, &app, json!({"url": HOOK_URL, "filterTypes": ["wanted"]})).await;
    let msg = send_message(&server, &app, json!({"eventType": "unwanted", "payload": {}})).await;
    let (ep, msg) = (str_of(&ep, "id"), str_of(&msg, "id"));

    for path in [
        format!("/api/v1/app/{app}/attempt/msg/{msg}"),
        format!("/api/v1/app/{app}/attempt/endpoint/{ep}"),
        format!("/api/v1/app/{app}/attempt/msg/{msg}?with_content=false&limit=10&status=0"),
        format!("/api/v1/app/{app}/msg/{msg}/endpoint"),
    ] {
        let (status, body) = admin.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_list_shape(&body);
        assert_eq!(body, json!({"data": [], "iterator": null, "prevIterator": null, "done": true}), "{path}");
    }

    let (status, body) =
        admin.get(&format!("/api/v1/app/{app}/msg/{msg}/attempt/atmpt_0000000000000000000000000000")).await;
    assert_error(status, &body, 404);
    let (status, body) = admin.get(&format!("/api/v1/app/{app}/attempt/msg/msg_0000000000000000000000000000")).await;
    assert_error(status, &body, 404);
    let (status, body) =
        admin.get(&format!("/api/v1/app/{app}/attempt/endpoint/ep_0000000000000000000000000000")).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn message_destinations_are_the_matching_endpoints() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    create_event_type(&server, "type.a").await;
    create_event_type(&server, "type.b").await;
    let wants_a = create_endpoint(&server, &app, json!({"url": HOOK_URL, "filterTypes": ["type.a"]})).await;
    let wants_all = create_endpoint(&server, &app, json!({"url": HOOK_URL})).await;
    let _wants_b = create_endpoint(&server, &app, json!({"url": HOOK_URL, "filterTypes": ["type.b"]})).await;
    let _wrong_channel = create_endpoint(&server, &app, json!({"url": HOOK_URL, "channels": ["other"]})).await;
    let msg = send_message(&server, &app, json!({"eventType": "type.a", "payload": {}, "channels": ["main"]})).await;

    let (status, body) = admin.get(&format!("/api/v1/app/{app}/msg/{}/endpoint", str_of(&msg, "id"))).await;
    assert_eq!(status, 200, "{body}");
    assert_list_shape(&body);
    let mut got: Vec<String> = ids(&body);
    got.sort();
    let mut want = vec![str_of(&wants_a, "id").to_string(), str_of(&wants_all, "id").to_string()];
    want.sort();
    assert_eq!(got, want, "{body}");
    for d in list_data(&body) {
        assert!(d["status"].is_u64() && d["statusText"].is_string(), "{d}");
        assert_eq!(d["url"], HOOK_URL);
        assert_eq!(d["description"], "");
        assert_timestamps(d);
    }
}

// ---- app portal access ------------------------------------------------------

#[tokio::test]
async fn app_portal_access_returns_a_working_token() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", Some("portal-app")).await, "id").to_string();

    let (status, body) =
        server.admin().post("/api/v1/auth/app-portal-access/portal-app", &json!({"expiry": 3600})).await;
    assert_eq!(status, 200, "{body}");
    let token = str_of(&body, "token").to_string();
    let url = str_of(&body, "url");
    assert!(url.starts_with("http"), "{body}");
    assert!(url.contains(&token), "the portal URL carries the token: {body}");

    let portal = server.api(&token);
    let (status, got) = portal.get(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["id"], app.as_str());
    let (status, ep) = portal.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL})).await;
    assert_eq!(status, 201, "a portal token manages its application's endpoints: {ep}");
    let (status, list) = portal.get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(ids(&list), vec![str_of(&ep, "id").to_string()]);

    // Also with no body at all.
    let r =
        common::send(server.admin().request(reqwest::Method::POST, "/api/v1/auth/app-portal-access/portal-app")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["token"].is_string());

    let (status, body) = server.admin().post("/api/v1/auth/app-portal-access/no-such-app", &json!({})).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn messages_filter_by_tag() {
    let server = TestServer::start().await;
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "tags"})).await;
    let app = app["id"].as_str().unwrap();
    let path = format!("/api/v1/app/{app}/msg");
    for (i, tags) in [json!(["blue", "big"]), json!(["red"]), json!(null)].iter().enumerate() {
        let (status, _) =
            server.admin().post(&path, &json!({"eventType": "t", "payload": {"i": i}, "tags": tags})).await;
        assert_eq!(status, 202);
    }
    let (status, list) = server.admin().get(&format!("{path}?tag=blue")).await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["payload"]["i"], 0);
    assert_eq!(data[0]["tags"], json!(["blue", "big"]));
    let (_, list) = server.admin().get(&format!("{path}?tag=none")).await;
    assert!(list["data"].as_array().unwrap().is_empty());
}

/// Svix input that must round-trip: event types' `featureFlags` and
/// `groupName`, channels with `+`; and an endpoint PATCH with an empty
/// `filterTypes`, which Svix's server refuses ("filterTypes can't be
/// empty"), is a 422 here too.
#[tokio::test]
async fn svix_fields_round_trip_and_empty_filter_types_are_refused_like_svix() {
    let server = TestServer::start().await;
    let admin = server.admin();
    let (status, et) = admin
        .post(
            "/api/v1/event-type",
            &json!({"name": "invoice.paid", "description": "d", "featureFlags": ["beta"], "groupName": "billing"}),
        )
        .await;
    assert_eq!(status, 201, "{et}");
    assert_eq!((et["featureFlags"].clone(), et["groupName"].clone()), (json!(["beta"]), json!("billing")));
    let (status, et) = admin.patch("/api/v1/event-type/invoice.paid", &json!({"groupName": null})).await;
    assert_eq!(status, 200, "{et}");
    assert_eq!((et["featureFlags"].clone(), et["groupName"].clone()), (json!(["beta"]), Value::Null));
    let (_, et) = admin.get("/api/v1/event-type/invoice.paid").await;
    assert_eq!(et["featureFlags"], json!(["beta"]), "{et}");
    let (status, body) = admin.post("/api/v1/event-type", &json!({"name": "x.y", "groupName": ""})).await;
    crate::common::assert_invalid_field(status, &body, "groupName");

    let (status, app) = admin.post("/api/v1/app", &json!({"name": "a"})).await;
    assert_eq!(status, 201);
    let app = app["id"].as_str().unwrap().to_string();
    let (status, ep) = admin
        .post(
            &format!("/api/v1/app/{app}/endpoint"),
            &json!({"url": "https://example.invalid/h", "channels": ["team+ops"]}),
        )
        .await;
    assert_eq!(status, 201, "{ep}");
    assert_eq!(ep["channels"], json!(["team+ops"]));
    let (status, msg) = admin
        .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "a", "channels": ["team+ops"], "payload": {}}))
        .await;
    assert_eq!(status, 202, "{msg}");
    let ep_path = format!("/api/v1/app/{app}/endpoint/{}", ep["id"].as_str().unwrap());
    let (status, body) = admin.patch(&ep_path, &json!({"filterTypes": []})).await;
    crate::common::assert_invalid_field(status, &body, "filterTypes");
}
