//! A PostgreSQL store for the store tests: a fresh database on the server
//! named by `HOOKLINE_TEST_DATABASE_URL` (started by `scripts/test.sh`).

use crate::store::Store;

pub const SETUP: &str = "HOOKLINE_TEST_DATABASE_URL is not set: the store tests run against PostgreSQL too.\n\
    Run scripts/test.sh, or start a throwaway server with `eval \"$(scripts/pg-test-cluster.sh start)\"`.";

/// A fresh, migrated database, its store started.
pub async fn test_store() -> Store {
    let store = unstarted_test_store().await;
    store.start();
    Store::Postgres(store)
}

/// A fresh, migrated database, its store without its background tasks.
pub async fn unstarted_test_store() -> super::PgStore {
    let url = fresh_database().await;
    tokio::task::spawn_blocking(move || super::PgStore::open(&url)).await.unwrap().unwrap()
}

/// The URL of a fresh, empty database.
pub async fn fresh_database() -> String {
    let admin = std::env::var("HOOKLINE_TEST_DATABASE_URL").unwrap_or_else(|_| panic!("{SETUP}"));
    let name = format!("hl_unit_{:016x}", rand::random::<u64>());
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| panic!("{admin}: {e}"));
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut url = url::Url::parse(&admin).expect("HOOKLINE_TEST_DATABASE_URL is a URL");
        url.set_path(&format!("/{name}"));
        url.to_string()
    })
    .await
    .unwrap()
}

/// A session of its own on the store's database, beside its pools.
pub async fn session(store: &Store) -> postgres::Client {
    let Store::Postgres(pg) = store else { unreachable!("a PostgreSQL store") };
    let db: String = pg.dispatcher_op(|tx| Ok(tx.query_one("SELECT current_database()", &[])?.get(0))).await.unwrap();
    let mut url = url::Url::parse(&std::env::var("HOOKLINE_TEST_DATABASE_URL").unwrap()).unwrap();
    url.set_path(&format!("/{db}"));
    tokio::task::spawn_blocking(move || postgres::Client::connect(url.as_str(), postgres::NoTls).unwrap())
        .await
        .unwrap()
}

/// Runs `statements` in an open transaction on a session of its own,
/// which keeps its locks until the caller rolls back or commits.
pub async fn holding(store: &Store, statements: &str) -> (postgres::Client, i32) {
    let mut holder = session(store).await;
    let statements = statements.to_string();
    tokio::task::spawn_blocking(move || {
        holder.batch_execute(&format!("BEGIN; {statements}")).unwrap();
        let pid: i32 = holder.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        (holder, pid)
    })
    .await
    .unwrap()
}

/// The lines of an `EXPLAIN`, one plan.
pub fn explained(rows: &[postgres::Row]) -> String {
    rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
}

/// Fails unless `plan` updates or reads `delivery` by key, with no scan or
/// wholesale join of a table; `what` names the plan in the message.
pub fn assert_claims_by_key(plan: &str, what: &str) {
    assert!(!plan.contains("Seq Scan"), "{what} scans a whole table:\n{plan}");
    assert!(!plan.contains("Hash Join") && !plan.contains("Merge Join"), "{what} joins wholesale:\n{plan}");
    assert!(plan.contains("Index Scan using delivery_pkey"), "{what} updates its rows by key:\n{plan}");
}
