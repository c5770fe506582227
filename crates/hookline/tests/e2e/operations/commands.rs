//! `hookline backup`, `status` and `migrate --dry-run` beside a running
//! server, and a node that refuses a schema newer than it knows.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{skip_unless, Backend, TestServer};
use crate::fixtures::*;
use crate::receiver::Receiver;

#[tokio::test]
async fn dry_run_lists_nothing_on_a_current_store_while_serve_runs() {
    let server = TestServer::start().await;
    let out = server.cli_ok(&["migrate", "--dry-run"]).await;
    assert!(out.contains("nothing to migrate"), "{out}");
    let status = server.cli_ok(&["status"]).await;
    assert!(status.contains("backlog:") && status.contains("last sweep:"), "{status}");
}

#[tokio::test]
async fn dry_run_on_an_empty_data_dir_creates_nothing() {
    if skip_unless(Backend::Sqlite, "an embedded store that does not exist yet") {
        return;
    }
    let server = TestServer::start().await;
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().join("fresh");
    let out = server.cli_ok(&["migrate", "--dry-run", "--data-dir", dir.to_str().unwrap()]).await;
    assert!(out.contains("no embedded store"), "{out}");
    assert!(!dir.exists(), "--dry-run created {}", dir.display());
}

/// Marks the store as migrated by a newer release (schema version 99).
fn bump_schema(server: &TestServer) {
    server.run_sql("PRAGMA user_version = 99", "INSERT INTO schema_migration (version) VALUES (99)");
}

#[tokio::test]
async fn dry_run_lists_pending_migrations_without_applying_them() {
    let mut server = TestServer::start().await;
    assert!(server.stop().await);
    // Pretend the last migration is not applied yet.
    let current = server.cli_ok(&["migrate", "--dry-run"]).await;
    let latest: usize = current
        .split("this hookline knows ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no latest version in {current:?}"));
    let sqlite_version = format!("PRAGMA user_version = {}", latest - 1);
    let pg_latest = "DELETE FROM schema_migration WHERE version = (SELECT max(version) FROM schema_migration)";
    match server.database_url() {
        None => server.run_sql(&sqlite_version, ""),
        Some(_) => server.run_sql("", pg_latest),
    }
    let mut known = 0;
    for _ in 0..2 {
        let out = server.cli_ok(&["migrate", "--dry-run"]).await;
        assert!(out.contains("1 pending migration(s)"), "{out}");
        known = out.split("this hookline knows ").nth(1).and_then(|r| r.lines().next()).unwrap().parse().unwrap();
        // The pending migration, with its statements (or, having none, what it marks).
        let listed = out.split(&format!("  {known}: ")).nth(1).and_then(|r| r.lines().next()).unwrap_or("");
        assert!(["CREATE ", "ALTER ", "DROP ", "no statement ("].iter().any(|s| listed.contains(s)), "{out}");
    }
    // The dry runs applied nothing: put the marker back, and it is current.
    server.run_sql(
        &format!("PRAGMA user_version = {known}"),
        &format!("INSERT INTO schema_migration (version) VALUES ({known})"),
    );
    let out = server.cli_ok(&["migrate", "--dry-run"]).await;
    assert!(out.contains("nothing to migrate"), "{out}");
    server.start_again().await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_with_what_to_do() {
    let mut server = TestServer::start().await;
    assert!(server.stop().await);
    bump_schema(&server);
    let out = server.cli(&["serve"]).await;
    assert!(!out.status.success(), "serve started on a newer schema");
    let err = String::from_utf8_lossy(&out.stderr);
    for phrase in ["schema version 99", "newer than this hookline", "Run that release", "restore the backup"] {
        assert!(err.contains(phrase), "{phrase:?} missing: {err}");
    }
    let dry = server.cli(&["migrate", "--dry-run"]).await;
    assert!(!dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("schema version 99"));
    assert!(String::from_utf8_lossy(&dry.stderr).contains("restore the backup"));
    let status = server.cli(&["status"]).await;
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stderr).contains("newer than this hookline"));
}

#[tokio::test]
async fn backup_on_postgres_points_to_its_own_tools() {
    if skip_unless(Backend::Postgres, "the refusal on PostgreSQL") {
        return;
    }
    let server = TestServer::start().await;
    let out = server.cli(&["backup", "copy.db"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump") && err.contains("pg_basebackup"), "{err}");
}

/// Six senders; a backup in the middle; a server started on the copy (with
/// the same main key) has every message answered before the backup began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_holds_everything_committed_before_it_began() {
    if skip_unless(Backend::Sqlite, "backs up the embedded store") {
        return;
    }
    let rx = Receiver::start().await;
    let server = server_with(&[]).await;
    let (app, _, _) = app_with_endpoint(&server, &rx.url("/b"), json!({})).await;
    // Message id → when its 202 arrived; and the slowest answer.
    let accepted: Arc<Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let slowest = Arc::new(Mutex::new(Duration::ZERO));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..6)
        .map(|s| {
            let (url, token) = (server.url(&format!("/api/v1/app/{app}/msg")), server.admin_token().to_string());
            let (accepted, slowest, stop) = (accepted.clone(), slowest.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let sent = Instant::now();
                    let body = json!({"eventType": "load.test", "payload": {"sender": s, "i": i}});
                    let r = client.post(&url).bearer_auth(&token).json(&body).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 202);
                    let v: Value = r.json().await.unwrap();
                    let done = Instant::now();
                    accepted.lock().unwrap().insert(v["id"].as_str().unwrap().to_string(), done);
                    let mut worst = slowest.lock().unwrap();
                    *worst = (*worst).max(done - sent);
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let accepted = accepted.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            while accepted.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "fewer than {n} messages accepted");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(400).await;

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hookline-backup.db");
    let began = Instant::now();
    let out = server.cli_ok(&["backup", copy.to_str().unwrap()]).await;
    let took = began.elapsed();
    assert!(out.contains("backup of"), "{out}");
    // The API kept accepting during and after the backup.
    let at_backup = accepted.lock().unwrap().len();
    wait_for(at_backup + 200).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let worst = *slowest.lock().unwrap();
    assert!(worst < Duration::from_secs(5), "a request took {worst:?} (the backup took {took:?})");
    // Only the database: no WAL or partial file beside it.
    let files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(files, vec!["hookline-backup.db".to_string()]);

    let before: Vec<String> =
        accepted.lock().unwrap().iter().filter(|(_, at)| **at < began).map(|(id, _)| id.clone()).collect();
    assert!(before.len() >= 400);

    // Restore: a data directory holding the copy and the same main key.
    let mut restored = server_with(&[]).await;
    assert!(restored.stop().await);
    let data = restored.data_dir();
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("hookline.db") {
            std::fs::remove_file(path).unwrap();
        }
    }
    std::fs::copy(&copy, data.join("hookline.db")).unwrap();
    std::fs::copy(server.data_dir().join("main.key"), data.join("main.key")).unwrap();
    restored.start_again().await;
    for id in &before {
        let (status, body) = restored.admin().get(&format!("/api/v1/app/{app}/msg/{id}")).await;
        assert_eq!(status, 200, "{id} committed before the backup began is missing from the copy: {body}");
    }
    let (status, secret) = restored.admin().get(&format!("/api/v1/app/{app}/endpoint")).await;
    assert_eq!(status, 200, "{secret}");
    let ep = secret["data"][0]["id"].as_str().unwrap().to_string();
    // Secrets open with the restored key.
    let (status, key) = restored.admin().get(&format!("/api/v1/app/{app}/endpoint/{ep}/secret")).await;
    assert_eq!(status, 200, "{key}");
    println!("backup of {} messages under load took {took:?}; slowest request {worst:?}", before.len());
}
