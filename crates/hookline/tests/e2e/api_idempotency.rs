//! `Idempotency-Key`: the first 2xx answer to a POST is replayed for the same
//! key, token and path; a different body is a 422; failures are not stored.

use crate::common;

use crate::common::{assert_invalid_field, list_data, str_of, Resp, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const HOOK_URL: &str = "https://receiver.example.invalid/hook";

async fn message_count(server: &TestServer, app: &str) -> usize {
    let (status, list) = server.admin().get(&format!("/api/v1/app/{app}/msg?limit=250")).await;
    assert_eq!(status, 200, "{list}");
    list_data(&list).len()
}

#[track_caller]
fn assert_replay_of(replay: &Resp, first: &Resp) {
    assert_eq!(replay.status, first.status, "replayed status: {:?}", replay.body);
    assert_eq!(replay.body, first.body, "replayed body");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"), "replay header: {:?}", replay.headers);
    assert!(
        replay.header("content-type").is_some_and(|ct| ct.starts_with("application/json")),
        "replay content-type: {:?}",
        replay.headers
    );
}

#[tokio::test]
async fn same_key_and_body_replays_the_first_answer() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let admin = server.admin();
    let path = format!("/api/v1/app/{app}/msg");
    let body = json!({"eventType": "order.created", "payload": {"n": 1}});

    let first = admin.post_idempotent(&path, "key-1", &body).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None, "a first answer is not a replay");
    let second = admin.post_idempotent(&path, "key-1", &body).await;
    assert_replay_of(&second, &first);
    let third = admin.post_idempotent(&path, "key-1", &body).await;
    assert_replay_of(&third, &first);
    assert_eq!(message_count(&server, &app).await, 1);

    // Without a key, the same body is a new message each time.
    let (status, _) = admin.post(&path, &body).await;
    assert_eq!(status, 202);
    let (status, _) = admin.post(&path, &body).await;
    assert_eq!(status, 202);
    assert_eq!(message_count(&server, &app).await, 3);
}

#[tokio::test]
async fn a_replayed_message_is_the_message_as_it_is_now_not_a_copy_of_its_payload() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let admin = server.admin();
    let path = format!("/api/v1/app/{app}/msg");
    let body = json!({"eventType": "card.added", "payload": {"card": "4242 4242 4242 4242", "pad": "x".repeat(2000)}});

    let first = admin.post_idempotent(&path, "card-key", &body).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent(&path, "card-key", &body).await, &first);
    // The record names the message; it holds no copy of the 2 KB payload.
    let longest = server
        .sql_number("SELECT max(length(body)) FROM idempotency", "SELECT max(length(body))::int8 FROM idempotency");
    assert!(longest < 200, "an idempotency record of {longest} bytes");

    let msg = str_of(&first.body, "id");
    let (status, _) = admin.delete(&format!("{path}/{msg}/content")).await;
    assert_eq!(status, 204);
    let replay = admin.post_idempotent(&path, "card-key", &body).await;
    assert_eq!(replay.status, 202, "{:?}", replay.body);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["id"], first.body["id"], "the same message");
    assert_eq!(replay.body["payload"], json!({}), "an expunged payload is not answered again");
    let (status, now) = admin.get(&format!("{path}/{msg}")).await;
    assert_eq!(status, 200);
    assert_eq!(replay.body, now, "the replay is the message as it is now");

    // A message whose application was created inline replays too (its
    // record names the application made in the same transaction).
    let inline =
        json!({"eventType": "card.added", "payload": {"n": 1}, "application": {"name": "Inline", "uid": "inline-app"}});
    let first = admin.post_idempotent("/api/v1/app/inline-app/msg", "inline-key", &inline).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent("/api/v1/app/inline-app/msg", "inline-key", &inline).await, &first);
    assert_eq!(message_count(&server, "inline-app").await, 1);

    // send-example creates a message too, with a payload of the caller's.
    let (status, _) = admin.post("/api/v1/event-type", &json!({"name": "card.added", "description": "d"})).await;
    assert_eq!(status, 201);
    let (status, ep) = admin.post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": HOOK_URL})).await;
    assert_eq!(status, 201, "{ep}");
    let example = format!("/api/v1/app/{app}/endpoint/{}/send-example", str_of(&ep, "id"));
    let secret = json!({"eventType": "card.added", "payload": {"card": "4000 0000 0000 0002"}});
    let sent = admin.post_idempotent(&example, "example-key", &secret).await;
    assert_eq!(sent.status, 202, "{:?}", sent.body);
    assert_replay_of(&admin.post_idempotent(&example, "example-key", &secret).await, &sent);
    let (status, _) = admin.delete(&format!("{path}/{}/content", str_of(&sent.body, "id"))).await;
    assert_eq!(status, 204);
    let replay = admin.post_idempotent(&example, "example-key", &secret).await;
    assert_eq!((replay.status, &replay.body["id"]), (202, &sent.body["id"]), "{:?}", replay.body);
    assert_eq!(replay.body["payload"], json!({}), "an expunged example payload is not answered again");

    // Without its content, the replay is without it too.
    let quiet = admin.post_idempotent(&format!("{path}?with_content=false"), "quiet-key", &body).await;
    assert_eq!(quiet.status, 202, "{:?}", quiet.body);
    assert_eq!(quiet.body["payload"], json!({}));
    assert_replay_of(&admin.post_idempotent(&format!("{path}?with_content=false"), "quiet-key", &body).await, &quiet);
}

#[tokio::test]
async fn replays_work_for_every_kind_of_post() {
    let server = TestServer::start().await;
    let admin = server.admin();

    let first = admin.post_idempotent("/api/v1/app", "app-key", &json!({"name": "Once"})).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent("/api/v1/app", "app-key", &json!({"name": "Once"})).await, &first);
    let (_, apps) = admin.get("/api/v1/app").await;
    assert_eq!(list_data(&apps).len(), 1, "{apps}");
    let app = str_of(&first.body, "id").to_string();

    let ep_body = json!({"url": HOOK_URL});
    let first = admin.post_idempotent(&format!("/api/v1/app/{app}/endpoint"), "ep-key", &ep_body).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent(&format!("/api/v1/app/{app}/endpoint"), "ep-key", &ep_body).await, &first);
    let (_, eps) = admin.get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(list_data(&eps).len(), 1, "{eps}");

    // A replayed rotation does not rotate twice.
    let rotate = format!("/api/v1/app/{app}/endpoint/{}/secret/rotate", str_of(&first.body, "id"));
    let rotated = admin.post_idempotent(&rotate, "rotate-key", &json!({})).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    assert_replay_of(&admin.post_idempotent(&rotate, "rotate-key", &json!({})).await, &rotated);
    let (_, secret) = admin.get(&format!("/api/v1/app/{app}/endpoint/{}/secret", str_of(&first.body, "id"))).await;
    assert_eq!(secret["key"], rotated.body["key"], "the secret is the one the first rotation answered");

    let et = json!({"name": "a.b", "description": ""});
    let first = admin.post_idempotent("/api/v1/event-type", "et-key", &et).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent("/api/v1/event-type", "et-key", &et).await, &first);

    let portal = format!("/api/v1/auth/app-portal-access/{app}");
    let first = admin.post_idempotent(&portal, "portal-key", &json!({})).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_replay_of(&admin.post_idempotent(&portal, "portal-key", &json!({})).await, &first);
}

#[tokio::test]
async fn same_key_with_a_different_body_is_unprocessable() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let admin = server.admin();
    let path = format!("/api/v1/app/{app}/msg");

    let first = admin.post_idempotent(&path, "k", &json!({"eventType": "a", "payload": {"n": 1}})).await;
    assert_eq!(first.status, 202, "{:?}", first.body);
    let other = admin.post_idempotent(&path, "k", &json!({"eventType": "a", "payload": {"n": 2}})).await;
    assert_invalid_field(other.status, &other.body, "idempotency-key");
    assert_eq!(message_count(&server, &app).await, 1);
    // The original is still replayed afterwards.
    let again = admin.post_idempotent(&path, "k", &json!({"eventType": "a", "payload": {"n": 1}})).await;
    assert_replay_of(&again, &first);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_message() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let url = server.url(&format!("/api/v1/app/{app}/msg"));
    let body = json!({"eventType": "burst", "payload": {"same": true}});

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let rb = server
            .http()
            .request(Method::POST, &url)
            .bearer_auth(server.admin_token())
            .header("idempotency-key", "burst-key")
            .json(&body);
        tasks.spawn(common::send(rb));
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("request task"));
    }
    assert_eq!(answers.len(), 20);
    let first = &answers[0];
    assert_eq!(first.status, 202, "{:?}", first.body);
    for a in &answers {
        assert_eq!(a.status, first.status, "{:?}", a.body);
        assert_eq!(a.body, first.body, "every concurrent answer is the same message");
    }
    let fresh = answers.iter().filter(|a| a.header("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "exactly one answer is not a replay");
    assert_eq!(message_count(&server, &app).await, 1);
}

#[tokio::test]
async fn key_is_remembered_across_a_restart() {
    let mut server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let path = format!("/api/v1/app/{app}/msg");
    let body = json!({"eventType": "a", "payload": {"before": "restart"}});
    let first = server.admin().post_idempotent(&path, "durable", &body).await;
    assert_eq!(first.status, 202, "{:?}", first.body);

    let pid = server.pid();
    server.restart().await;
    assert_ne!(server.pid(), pid, "restart runs a new process");
    let again = server.admin().post_idempotent(&path, "durable", &body).await;
    assert_replay_of(&again, &first);

    let pid = server.pid();
    server.kill9().await;
    assert!(!server.is_running());
    server.start_again().await;
    assert_ne!(server.pid(), pid);
    let again = server.admin().post_idempotent(&path, "durable", &body).await;
    assert_replay_of(&again, &first);
    assert_eq!(message_count(&server, &app).await, 1);
}

#[tokio::test]
async fn different_tokens_or_paths_do_not_collide() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let other_app = str_of(&server.create_app("Other", None).await, "id").to_string();
    let path = format!("/api/v1/app/{app}/msg");
    let body = json!({"eventType": "a", "payload": {}});

    let cli_admin = server.cli_ok(&["token", "create"]).await;
    let portal = server.token_for_app(&app, false).await;
    let mut ids = Vec::new();
    for token in [server.admin_token().to_string(), cli_admin, portal] {
        let r = server.api(&token).post_idempotent(&path, "shared-key", &body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.header("idempotent-replayed"), None, "another token's answer was replayed");
        ids.push(str_of(&r.body, "id").to_string());
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 3, "three distinct messages: {ids:?}");
    assert_eq!(message_count(&server, &app).await, 3);

    // The same key on another path is another request too.
    let r = server.admin().post_idempotent(&format!("/api/v1/app/{other_app}/msg"), "shared-key", &body).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.header("idempotent-replayed"), None);
    assert_eq!(message_count(&server, &other_app).await, 1);
}

#[tokio::test]
async fn failed_requests_are_not_stored() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let admin = server.admin();

    // A 422, then the fixed body under the same key succeeds.
    let ep_path = format!("/api/v1/app/{app}/endpoint");
    let bad = admin.post_idempotent(&ep_path, "fix-me", &json!({"url": "ftp://nope"})).await;
    assert_invalid_field(bad.status, &bad.body, "url");
    let good = admin.post_idempotent(&ep_path, "fix-me", &json!({"url": HOOK_URL})).await;
    assert_eq!(good.status, 201, "{:?}", good.body);
    assert_eq!(good.header("idempotent-replayed"), None);

    // A 409 is not stored either.
    let msg_path = format!("/api/v1/app/{app}/msg");
    let (status, _) = admin.post(&msg_path, &json!({"eventType": "a", "eventId": "taken", "payload": {}})).await;
    assert_eq!(status, 202);
    let conflict =
        admin.post_idempotent(&msg_path, "retry", &json!({"eventType": "a", "eventId": "taken", "payload": {}})).await;
    common::assert_error(conflict.status, &conflict.body, 409);
    let ok =
        admin.post_idempotent(&msg_path, "retry", &json!({"eventType": "a", "eventId": "free", "payload": {}})).await;
    assert_eq!(ok.status, 202, "{:?}", ok.body);

    // Nor a 404 (an unknown application without an inline one).
    let missing =
        admin.post_idempotent("/api/v1/app/later-app/msg", "later", &json!({"eventType": "a", "payload": {}})).await;
    common::assert_error(missing.status, &missing.body, 404);
    server.create_app("Later", Some("later-app")).await;
    let created =
        admin.post_idempotent("/api/v1/app/later-app/msg", "later", &json!({"eventType": "a", "payload": {}})).await;
    assert_eq!(created.status, 202, "{:?}", created.body);
}

#[tokio::test]
async fn keys_are_ignored_on_reads() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let path = format!("/api/v1/app/{app}");
    let r = common::send(server.admin().request(Method::GET, &path).header("idempotency-key", "read")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (status, _) = server.admin().patch(&path, &json!({"name": "Renamed"})).await;
    assert_eq!(status, 200);
    let r = common::send(server.admin().request(Method::GET, &path).header("idempotency-key", "read")).await;
    assert_eq!(r.body["name"], Value::from("Renamed"), "a GET is never replayed");
}

/// Writes that answer no object of their own (a bulk expunge, a token
/// revocation, an event type import) check the key in their transaction
/// too: a retry does not repeat them, and a reused key with another body
/// changes nothing.
#[tokio::test]
async fn writes_without_an_object_of_their_own_take_effect_once() {
    let server = TestServer::start().await;
    let app = str_of(&server.create_app("App", None).await, "id").to_string();
    let admin = server.admin();
    let msg_path = format!("/api/v1/app/{app}/msg");
    let mut ids = Vec::new();
    for n in 0..2 {
        let (status, msg) = admin.post(&msg_path, &json!({"eventType": "a", "payload": {"n": n}})).await;
        assert_eq!(status, 202, "{msg}");
        ids.push(str_of(&msg, "id").to_string());
    }

    let expunge = format!("/api/v1/app/{app}/msg/bulk-expunge");
    let first = admin.post_idempotent(&expunge, "expunge-key", &json!({"ids": [ids[0]]})).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["results"][&ids[0]], "expunged");
    let other = admin.post_idempotent(&expunge, "expunge-key", &json!({"ids": [ids[1]]})).await;
    assert_invalid_field(other.status, &other.body, "idempotency-key");
    let (_, kept) = admin.get(&format!("{msg_path}/{}", ids[1])).await;
    assert_eq!(kept["payload"], json!({"n": 1}), "a refused request expunged a payload");
    assert_replay_of(&admin.post_idempotent(&expunge, "expunge-key", &json!({"ids": [ids[0]]})).await, &first);

    // A retried expire-all must not revoke what was issued after the first.
    let expire = format!("/api/v1/auth/app/{app}/expire-all");
    let revoked = server.token_for_app(&app, false).await;
    let first = admin.post_idempotent(&expire, "expire-key", &json!({})).await;
    assert_eq!(first.status, 204, "{:?}", first.body);
    let issued_since = server.token_for_app(&app, false).await;
    let retry = admin.post_idempotent(&expire, "expire-key", &json!({})).await;
    assert_eq!(retry.status, 204, "{:?}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    for answer in [&first, &retry] {
        assert_eq!(answer.header("content-type"), None, "a 204 has no body to type");
    }
    let app_path = format!("/api/v1/app/{app}");
    assert_eq!(server.api(&revoked).get(&app_path).await.0, 401, "the first expire-all did not revoke");
    let (status, body) = server.api(&issued_since).get(&app_path).await;
    assert_eq!(status, 200, "the retry revoked a token issued after the first call: {body}");
    let access = format!("/api/v1/auth/app-portal-access/{app}");
    let (status, in_session) = admin.post(&access, &json!({"sessionId": "s"})).await;
    assert_eq!(status, 200, "{in_session}");
    let other = admin.post_idempotent(&expire, "expire-key", &json!({"sessionIds": ["s"]})).await;
    assert_invalid_field(other.status, &other.body, "idempotency-key");
    let (status, body) = server.api(str_of(&in_session, "token")).get(&app_path).await;
    assert_eq!(status, 200, "a refused expire-all revoked the session's token: {body}");

    let import = "/api/v1/event-type/import/openapi";
    let spec = |name: &str| {
        json!({"spec": {"openapi": "3.1.0", "info": {"title": "t", "version": "1"},
            "webhooks": {name: {"post": {"description": "d"}}}}})
    };
    let first = admin.post_idempotent(import, "import-key", &spec("first.type")).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let other = admin.post_idempotent(import, "import-key", &spec("second.type")).await;
    assert_invalid_field(other.status, &other.body, "idempotency-key");
    let (status, _) = admin.get("/api/v1/event-type/second.type").await;
    assert_eq!(status, 404, "a refused import created an event type");
    assert_replay_of(&admin.post_idempotent(import, "import-key", &spec("first.type")).await, &first);
}
