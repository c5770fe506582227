//! Planner statistics for the tables that grow with traffic.
//!
//! Statements are prepared once per connection, and after five runs
//! PostgreSQL may switch one to a generic plan, made from the statistics
//! of that moment and kept until its tables are next analyzed. On a new
//! database those statistics describe empty tables, so a batch of keys
//! joined to `message` or `delivery` is planned as a hash join over a
//! sequential scan: right for a few pages, ruinous for a million rows.
//! Autovacuum analyzes a table at most once per `autovacuum_naptime` (a
//! minute by default), while a new deployment under load grows by
//! thousands of rows a second, and every statement planned early scans the
//! whole table until then.
//!
//! So one node at a time analyzes these tables whenever one has grown to
//! [`GROWTH`] times the size its statistics describe, past a floor below
//! which a scan is the right plan anyway: a handful of times in a table's
//! first million rows; after that autovacuum's own threshold (a tenth of
//! the table changed) comes first. An `ANALYZE` invalidates the plans made
//! from the old statistics in every session.

use std::time::Duration;

use super::{backoff, PgStore, PgTx};
use crate::store::StoreResult;

/// The tables every message, delivery and attempt adds rows to.
const TABLES: [&str; 4] = ["message", "delivery", "attempt", "idempotency"];
/// A table is analyzed again once it is this many times the size its
/// statistics were taken at.
const GROWTH: i64 = 4;
/// Pages below which a table is not worth analyzing: scanning it is as
/// cheap as looking a batch of keys up in an index.
const FLOOR_PAGES: i32 = 16;
/// How often each node checks the tables' sizes (a catalog read).
const EVERY: Duration = Duration::from_secs(2);
/// One node at a time analyzes ("hw_stats").
const STATISTICS_LOCK: i64 = 0x6877_5f73_7461_7473;

/// Keeps the statistics of [`TABLES`] in step with their growth, for as
/// long as the process runs.
pub(super) async fn keep_fresh(store: PgStore) {
    let mut failures = 0;
    // Where the next round starts looking: each round starts at the next
    // table, so a table skipped while autovacuum holds it (it stays grown)
    // cannot keep the others waiting.
    let mut first = 0;
    loop {
        tokio::time::sleep(EVERY.max(backoff(failures))).await;
        match store.dispatcher_op(move |tx| analyze_grown(tx, first)).await {
            Ok(analyzed) => {
                failures = 0;
                first = (first + 1) % TABLES.len();
                if let Some(table) = analyzed {
                    tracing::debug!(table, "planner statistics refreshed");
                }
            }
            // Once per outage: the API's answers already say the database is down.
            Err(e) if failures == 0 => {
                failures += 1;
                tracing::warn!(error = %e, "refreshing planner statistics failed");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(error = %e, "refreshing planner statistics failed again");
            }
        }
    }
}

/// Analyzes the first of [`TABLES`], from the one at `first` on, that has
/// outgrown its statistics, unless another node is doing so; returns its
/// name. One table a transaction, and a round: an `ANALYZE` holds its
/// table's lock until the transaction ends, and a table analyzed after it
/// would prolong that.
pub(super) fn analyze_grown(tx: &mut PgTx<'_, '_>, first: usize) -> StoreResult<Option<&'static str>> {
    let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&STATISTICS_LOCK])?.get(0);
    if !mine {
        return Ok(None);
    }
    // `relpages` is what the last ANALYZE or VACUUM (autovacuum's too) saw.
    // The tables are found by their oids first: the size of every relation
    // in the catalog costs 40 ms. A table the role does not own cannot be
    // analyzed by it (ANALYZE would only warn, every round).
    let grown: Vec<String> = tx
        .query(
            "SELECT c.relname::text FROM pg_class c
             WHERE c.oid = ANY($1::text[]::regclass[]) AND pg_has_role(c.relowner, 'USAGE')
               AND pg_relation_size(c.oid) / current_setting('block_size')::bigint
                   >= $2::bigint * greatest(c.relpages, $3::int)",
            &[&TABLES.as_slice(), &GROWTH, &FLOOR_PAGES],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut from_first = TABLES.into_iter().cycle().skip(first).take(TABLES.len());
    let Some(table) = from_first.find(|t| grown.iter().any(|g| g == t)) else { return Ok(None) };
    // SKIP_LOCKED: a table autovacuum is working on is left to it.
    tx.execute(&format!("ANALYZE (SKIP_LOCKED) {table}"), &[])?;
    Ok(Some(table))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{explained, session, unstarted_test_store};
    use super::*;
    use crate::store::Store;

    async fn analyze(store: &Store) -> Option<&'static str> {
        let Store::Postgres(pg) = store else { unreachable!("a PostgreSQL store") };
        pg.dispatcher_op(|tx| analyze_grown(tx, 0)).await.unwrap()
    }

    /// The plan `probe` runs with now.
    fn plan(s: &mut postgres::Client) -> String {
        explained(&s.query("EXPLAIN EXECUTE probe('{msg_000001,msg_000002}')", &[]).unwrap())
    }

    /// A statement prepared while `message` was empty keeps its generic
    /// plan, a scan of the whole table, as the table grows; once the table
    /// has outgrown its statistics, analyzing it gives the statement a plan
    /// that looks its keys up.
    #[tokio::test]
    async fn a_table_that_outgrew_its_statistics_is_analyzed_and_its_plans_made_again() {
        // Neither this node's keeper nor autovacuum may analyze the table
        // behind the test's back.
        let store = Store::Postgres(unstarted_test_store().await);
        let mut s = session(&store).await;
        let mut s = tokio::task::spawn_blocking(move || {
            s.batch_execute("ALTER TABLE message SET (autovacuum_enabled = off)").unwrap();
            s.batch_execute(
                "PREPARE probe(text[]) AS SELECT m.id, m.payload FROM unnest($1) AS k(id) JOIN message m ON m.id = k.id",
            )
            .unwrap();
            for _ in 0..6 {
                s.execute("EXECUTE probe('{msg_000001}')", &[]).unwrap();
            }
            s
        })
        .await
        .unwrap();
        assert_eq!(analyze(&store).await, None, "empty tables are below the floor");

        s = tokio::task::spawn_blocking(move || {
            s.batch_execute(
                "INSERT INTO message (id, app_id, event_type, payload, payload_expires_at, created_at)
                 SELECT 'msg_' || lpad(g::text, 6, '0'), 'app_s', 't', repeat('x', 200), now() + interval '1 day', now()
                 FROM generate_series(1, 40000) g",
            )
            .unwrap();
            let early = plan(&mut s);
            assert!(early.contains("Seq Scan on message"), "the early plan scans (the premise): {early}");
            s
        })
        .await
        .unwrap();

        assert_eq!(analyze(&store).await, Some("message"));
        let now = tokio::task::spawn_blocking(move || plan(&mut s)).await.unwrap();
        assert!(now.contains("Index Scan using message_pkey"), "the keys are looked up: {now}");
        assert!(!now.contains("Seq Scan"), "nothing is scanned: {now}");

        assert_eq!(analyze(&store).await, None, "analyzed again only after it grows again");
    }
}
