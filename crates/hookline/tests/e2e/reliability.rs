//! Promises that must hold whatever else happens: owed work outlives
//! retention, one process per data directory, no secret in plaintext on
//! disk, and a live attempt keeps its lease.

use std::time::{Duration, Instant};

use crate::common::{skip_unless, Backend, TestServer};
use crate::fixtures::*;
use crate::receiver::{Receiver, Reply};
use base64::Engine;
use serde_json::{json, Value};

#[tokio::test]
async fn retention_keeps_a_scheduled_message_until_it_is_delivered() {
    let rx = Receiver::start().await;
    let server = server_with(&[("HOOKLINE_RETENTION", "2s")]).await;
    let (app, _, _) = app_with_endpoint(&server, &rx.url("/later"), json!({})).await;
    let deliver_at = (chrono::Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let (status, msg) = server
        .admin()
        .post(
            &format!("/api/v1/app/{app}/msg"),
            &json!({"eventType": "sync.complete", "payload": {"kept": true}, "deliverAt": deliver_at}),
        )
        .await;
    assert_eq!(status, 202, "{msg}");
    let msg_id = msg["id"].as_str().unwrap();

    // Well past retention (the sweeper runs every 500 ms), the owed message is still there.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (status, body) = server.admin().get(&format!("/api/v1/app/{app}/msg/{msg_id}")).await;
    assert_eq!(status, 200, "an owed message was purged: {body}");

    let got = rx.wait_for("/later", 1, WAIT).await;
    assert_eq!(got[0].id(), msg_id);
    assert_eq!(got[0].body, br#"{"kept":true}"#);

    // Delivered, it is no longer owed: now retention takes it.
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _) = server.admin().get(&format!("/api/v1/app/{app}/msg/{msg_id}")).await;
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "a delivered message past retention was never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn retention_keeps_a_message_whose_retry_falls_after_it() {
    // The first attempt fails; the retry comes after the retention period.
    let rx = Receiver::scripted(|n, _| Reply::status(if n == 0 { 500 } else { 200 })).await;
    let server = server_with(&[("HOOKLINE_RETENTION", "2s"), ("HOOKLINE_RETRY_SCHEDULE", "5s")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/retry"), json!({})).await;
    let msg = send(&server, &app, json!({"n": 1})).await;
    let got = rx.wait_for("/retry", 2, WAIT).await;
    assert!(got.iter().all(|r| r.id() == msg));
    assert!(got[1].at - got[0].at >= Duration::from_secs(3), "the retry kept its schedule");
    // Once delivered, the message is past its retention and may be purged
    // at any moment: its record reads "success" or is gone, nothing else.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, list) = server.admin().get(&format!("/api/v1/app/{app}/msg/{msg}/endpoint")).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200, "{list}");
        let dest = list["data"].as_array().unwrap().iter().find(|d| d["id"] == ep.as_str()).cloned();
        if dest.as_ref().is_some_and(|d| d["statusText"] == "success") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the delivery never read as success: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_second_serve_on_one_data_directory_is_refused() {
    // The data-directory lock guards the embedded store; on PostgreSQL a
    // second node on one database is the point (the multi-node tests).
    if skip_unless(Backend::Sqlite, "the data-directory lock belongs to the embedded store") {
        return;
    }
    let server = TestServer::start().await;
    let app = server.create_app("Locked", Some("locked")).await;

    let second = server.cli(&["serve"]).await;
    assert!(!second.status.success(), "a second serve started on the same data directory");
    let stderr = String::from_utf8_lossy(&second.stderr);
    let dir = server.data_dir().display().to_string();
    assert!(stderr.contains(&dir), "the refusal names the directory: {stderr}");
    assert!(stderr.contains(&format!("process {}", server.pid().unwrap())), "and the holder: {stderr}");

    // Commands that do not dispatch work beside the running server.
    let token = server.cli_ok(&["token", "create", "--app", "locked"]).await;
    let (status, body) = server.api(&token).get(&format!("/api/v1/app/{}", app["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
    let catalog = concat!(env!("CARGO_MANIFEST_DIR"), "/../../catalog/platform-events.json");
    let imported = server.cli_ok(&["event-types", "import", catalog]).await;
    assert!(imported.contains("created"), "{imported}");
    let (status, _) = server.admin().get("/api/v1/event-type/sync.complete").await;
    assert_eq!(status, 200);
    // And the first server is still the one serving.
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

/// Every file under the data directory (database, WAL, key file, lock).
fn data_dir_bytes(server: &TestServer) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    assert!(files.iter().any(|(name, _)| name.ends_with("hookline.db-wal")), "the WAL is scanned too");
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_secret_or_token_sits_in_plaintext_on_disk() {
    // It scans the SQLite files of the data directory; PostgreSQL's files
    // belong to another process and hold other tests' databases too.
    if skip_unless(Backend::Sqlite, "scans the embedded store's files in the data directory") {
        return;
    }
    let server = TestServer::start().await;
    let app = server.create_app("Sealed", None).await;
    let app = app["id"].as_str().unwrap();
    let (status, ep) =
        server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": "https://example.com/h"})).await;
    assert_eq!(status, 201, "{ep}");
    let ep = ep["id"].as_str().unwrap();
    let (_, first) = server.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}/secret")).await;

    // Answers recorded for replay carry a new signing secret and a live token.
    let rotate = format!("/api/v1/app/{app}/endpoint/{ep}/secret/rotate");
    let rotated = server.admin().post_idempotent(&rotate, "rotate-1", &json!({})).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let portal = format!("/api/v1/auth/app-portal-access/{app}");
    let access = server.admin().post_idempotent(&portal, "portal-1", &json!({})).await;
    assert_eq!(access.status, 200, "{:?}", access.body);
    // Replays still answer the same secret and token.
    let again = server.admin().post_idempotent(&rotate, "rotate-1", &json!({})).await;
    assert_eq!(again.body, rotated.body);
    let again = server.admin().post_idempotent(&portal, "portal-1", &json!({})).await;
    assert_eq!(again.body, access.body);

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for secret in [first["key"].as_str().unwrap(), rotated.body["key"].as_str().unwrap()] {
        let b64 = secret.strip_prefix("whsec_").unwrap();
        needles.push((format!("secret {b64}"), b64.as_bytes().to_vec()));
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        needles.push((format!("raw bytes of {b64}"), raw));
    }
    let token = access.body["token"].as_str().unwrap();
    needles.push(("portal token".into(), token.as_bytes().to_vec()));
    // The signature part alone would do as much harm as the whole token.
    needles.push(("portal token signature".into(), token.rsplit('.').next().unwrap().as_bytes().to_vec()));

    for (file, bytes) in data_dir_bytes(&server) {
        for (what, needle) in &needles {
            assert!(!contains(&bytes, needle), "{what} is readable in {file}");
        }
    }
}

#[tokio::test]
async fn a_slow_attempt_keeps_its_lease_and_is_sent_once() {
    // The attempt takes three lease periods; renewal keeps it from being
    // handed to a second worker.
    let rx = Receiver::scripted(|_, _| Reply::status(200).after(Duration::from_secs(9))).await;
    let server = server_with(&[("HOOKLINE_CLAIM_LEASE", "3s"), ("HOOKLINE_ATTEMPT_TIMEOUT", "20s")]).await;
    let (app, ep, _) = app_with_endpoint(&server, &rx.url("/slow"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    wait_status(&server, &app, &msg, &ep, "success").await;
    // Longer than a lease after the outcome: a stolen lease would show now.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(rx.received_on("/slow").len(), 1, "a live attempt was sent twice");
    assert_eq!(attempts_of(&server, &app, &msg).await.len(), 1);
}

#[tokio::test]
async fn deleting_an_endpoint_during_its_attempt_loses_nothing_else() {
    let rx = Receiver::scripted(|_, path| {
        Reply::status(200).after(if path == "/doomed" { Duration::from_secs(2) } else { Duration::ZERO })
    })
    .await;
    let server = server_with(&[]).await;
    let (app, doomed, _) = app_with_endpoint(&server, &rx.url("/doomed"), json!({})).await;
    let kept = add_endpoint(&server, &app, &rx.url("/kept"), json!({})).await;
    let msg = send(&server, &app, json!({})).await;
    rx.wait_for("/doomed", 1, WAIT).await;
    let (status, _) = server.admin().delete(&format!("/api/v1/app/{app}/endpoint/{doomed}")).await;
    assert_eq!(status, 204);
    wait_status(&server, &app, &msg, &kept, "success").await;
    // The outcome of the deleted endpoint's attempt has nowhere to go; that
    // is not a store failure to retry forever.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!server.log().contains("recording an attempt failed"), "{}", server.log());
    let (status, _) = server.anonymous().get("/api/v1/health").await;
    assert_eq!(status, 204);
}

/// Stands in for values a backend cannot hold: the store refuses an
/// attempt to `/refused` whatever it holds, and one to `/bodyless` while it
/// holds the receiver's answer ("reply N").
const REFUSE_ATTEMPTS_SQLITE: &str = "
    CREATE TRIGGER refuse_attempt BEFORE INSERT ON attempt
    WHEN NEW.url LIKE '%/refused' OR (NEW.url LIKE '%/bodyless' AND NEW.response LIKE 'reply %')
    BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";
const REFUSE_ATTEMPTS_POSTGRES: &str = "
    CREATE FUNCTION refuse_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.url LIKE '%/refused' OR (NEW.url LIKE '%/bodyless' AND NEW.response LIKE 'reply %') THEN
            RAISE EXCEPTION 'refused by the test';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_attempt BEFORE INSERT ON attempt FOR EACH ROW EXECUTE FUNCTION refuse_attempt();";

/// An outcome the store refuses holds no other outcome (they are recorded
/// one by one), is kept without its response body when that is what the
/// store refuses, and is held while the store refuses it whole: tried on its
/// own, its delivery in flight and not sent again, while other outcomes go
/// on; it completes once the store takes it.
#[tokio::test]
async fn outcomes_the_store_refuses_hold_no_other_and_their_deliveries_are_still_made() {
    let rx = Receiver::start().await;
    // A short lease: a delivery whose outcome waits must keep it all the same.
    let server = server_with(&[("HOOKLINE_CLAIM_LEASE", "2s"), ("HOOKLINE_RETRY_SCHEDULE", "1h")]).await;
    let (app, healthy, _) = app_with_endpoint(&server, &rx.url("/healthy"), json!({})).await;
    let bodyless = add_endpoint(&server, &app, &rx.url("/bodyless"), json!({})).await;
    let refused = add_endpoint(&server, &app, &rx.url("/refused"), json!({})).await;
    server.run_sql(REFUSE_ATTEMPTS_SQLITE, REFUSE_ATTEMPTS_POSTGRES);

    let msg = send(&server, &app, json!({"refused": "in part"})).await;
    wait_status(&server, &app, &msg, &healthy, "success").await;
    wait_status(&server, &app, &msg, &bodyless, "success").await;
    let (status, attempts) = server.admin().get(&format!("/api/v1/app/{app}/attempt/endpoint/{bodyless}")).await;
    assert_eq!(status, 200, "{attempts}");
    let responses: Vec<&Value> = attempts["data"].as_array().unwrap().iter().map(|a| &a["response"]).collect();
    assert_eq!(responses, [&json!("(the response could not be stored)")]);

    // Refused whole: held, tried on its own, its delivery in flight.
    let held = |text: &str| crate::operations::value(text, "hookline_attempt_outcomes_held");
    crate::operations::scrape_until(&server, Duration::from_secs(30), "an outcome held", |text| held(text) == 1.0)
        .await;
    // Other outcomes go on meanwhile.
    let second = send(&server, &app, json!({"while": "held"})).await;
    wait_status(&server, &app, &second, &healthy, "success").await;
    wait_status(&server, &app, &second, &bodyless, "success").await;
    tokio::time::sleep(Duration::from_secs(5)).await; // two leases and more
    wait_status(&server, &app, &msg, &refused, "sending").await;
    let ids: Vec<String> = rx.received_on("/refused").iter().map(|r| r.id().to_string()).collect();
    assert_eq!(ids, [msg.clone(), second.clone()], "a delivery in flight was sent again");

    // Once the store takes it, the delivery completes.
    server.run_sql("DROP TRIGGER refuse_attempt", "DROP TRIGGER refuse_attempt ON attempt");
    wait_status(&server, &app, &msg, &refused, "success").await;
    wait_status(&server, &app, &second, &refused, "success").await;
    for path in ["/healthy", "/bodyless", "/refused"] {
        let ids: Vec<String> = rx.received_on(path).iter().map(|r| r.id().to_string()).collect();
        assert_eq!(ids, [msg.clone(), second.clone()], "{path}: sent again");
    }
    let text =
        crate::operations::scrape_until(&server, Duration::from_secs(30), "no outcome held", |text| held(text) == 0.0)
            .await;
    let given_up = "hookline_attempt_outcomes_given_up_total";
    assert!(text.contains(given_up), "{given_up} is not exported");
    assert_eq!(crate::operations::value(&text, given_up), 0.0);
}
