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
    // Where the next round starts looking: after the table the last round
    // chose, so one that stays grown (autovacuum holds it, or analyzing it
    // fails) cannot keep the others waiting.
    let mut first = 0;
    let mut pause = EVERY;
    loop {
        tokio::time::sleep(pause.max(backoff(failures))).await;
        pause = EVERY;
        match store.dispatcher_op(move |tx| analyze_grown(tx, first)).await {
            Ok(Round::Idle) => failures = 0,
            Ok(Round::Analyzed(i)) => {
                failures = 0;
                first = (i + 1) % TABLES.len();
                tracing::debug!(table = TABLES[i], "planner statistics refreshed");
                // The next grown table at once: this one is no longer grown.
                pause = Duration::ZERO;
            }
            Ok(Round::Skipped(i)) => {
                failures = 0;
                first = (i + 1) % TABLES.len();
            }
            Err(e) => {
                failures += 1;
                first = (first + 1) % TABLES.len();
                // Once per outage: the API's answers already say the database is down.
                if failures == 1 {
                    tracing::warn!(error = %e, "refreshing planner statistics failed");
                } else {
                    tracing::debug!(error = %e, "refreshing planner statistics failed again");
                }
            }
        }
    }
}

/// What a round of [`analyze_grown`] did, by index in [`TABLES`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Round {
    /// No table had outgrown its statistics, or another node is at work.
    Idle,
    Analyzed(usize),
    /// Autovacuum held the table: `ANALYZE (SKIP_LOCKED)` left it to it.
    Skipped(usize),
}

/// The query that names those of [`TABLES`] grown past their statistics.
/// `relpages` is what the last ANALYZE or VACUUM (autovacuum's too) saw.
/// The tables are found by their oids first: the size of every relation in
/// the catalog costs 40 ms. A table the role does not own cannot be
/// analyzed by it (ANALYZE would only warn, every round).
const GROWN: &str = "SELECT c.relname::text FROM pg_class c
     WHERE c.oid = ANY($1::text[]::regclass[]) AND pg_has_role(c.relowner, 'USAGE')
       AND pg_relation_size(c.oid) / current_setting('block_size')::bigint
           >= $2::bigint * greatest(c.relpages, $3::int)";

/// Analyzes the first of [`TABLES`], from the one at `first` on, that has
/// outgrown its statistics, unless another node is doing so. One table a
/// transaction: an `ANALYZE` holds its table's lock until the transaction
/// ends, and a table analyzed after it would prolong that.
pub(super) fn analyze_grown(tx: &mut PgTx<'_, '_>, first: usize) -> StoreResult<Round> {
    let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&STATISTICS_LOCK])?.get(0);
    if !mine {
        return Ok(Round::Idle);
    }
    let Some(i) = pick(&grown(tx, &TABLES)?, first) else { return Ok(Round::Idle) };
    // SKIP_LOCKED: a table autovacuum is working on is left to it. An
    // ANALYZE that ran updated `relpages`, so the table is no longer grown.
    tx.execute(&format!("ANALYZE (SKIP_LOCKED) {}", TABLES[i]), &[])?;
    Ok(if grown(tx, &[TABLES[i]])?.is_empty() { Round::Analyzed(i) } else { Round::Skipped(i) })
}

/// Those of `tables` grown past their statistics.
fn grown(tx: &mut PgTx<'_, '_>, tables: &[&str]) -> StoreResult<Vec<String>> {
    Ok(tx.query(GROWN, &[&tables, &GROWTH, &FLOOR_PAGES])?.iter().map(|r| r.get(0)).collect())
}

/// The index in [`TABLES`] of the first of `grown`, looking from `first` on
/// and around.
fn pick(grown: &[String], first: usize) -> Option<usize> {
    (0..TABLES.len()).map(|k| (first + k) % TABLES.len()).find(|&i| grown.iter().any(|g| g == TABLES[i]))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{explained, session, unstarted_test_store};
    use super::*;
    use crate::store::Store;

    async fn analyze(store: &Store) -> Round {
        let Store::Postgres(pg) = store else { unreachable!("a PostgreSQL store") };
        pg.dispatcher_op(|tx| analyze_grown(tx, 0)).await.unwrap()
    }

    /// The plan `probe` runs with now.
    fn plan(s: &mut postgres::Client) -> String {
        explained(&s.query("EXPLAIN EXECUTE probe('{msg_000001,msg_000002}')", &[]).unwrap())
    }

    /// The pages `message` has as its statistics last saw it.
    fn pages(s: &mut postgres::Client) -> i32 {
        s.query_one("SELECT relpages FROM pg_class WHERE oid = 'message'::regclass", &[]).unwrap().get(0)
    }

    /// A statement prepared while `message` was empty keeps its generic
    /// plan, a scan of the whole table, as the table grows: nothing makes
    /// it again until the table's statistics change. Once the table has
    /// outgrown them, the keeper analyzes it, and the statement's plan
    /// looks its keys up. (The early plan itself is not checked: a backend
    /// that falls behind on the catalog changes of the other tests'
    /// databases drops every cached plan, and makes this one again from the
    /// table's size on disk. So the final plan alone cannot tell the
    /// keeper's ANALYZE from such a reset; the statistics can.)
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
        assert_eq!(analyze(&store).await, Round::Idle, "empty tables are below the floor");

        s = tokio::task::spawn_blocking(move || {
            s.batch_execute(
                "INSERT INTO message (id, app_id, event_type, payload, payload_expires_at, created_at)
                 SELECT 'msg_' || lpad(g::text, 6, '0'), 'app_s', 't', repeat('x', 200), now() + interval '1 day', now()
                 FROM generate_series(1, 40000) g",
            )
            .unwrap();
            assert_eq!(pages(&mut s), 0, "the statistics still say the table is empty");
            s
        })
        .await
        .unwrap();

        assert_eq!(analyze(&store).await, Round::Analyzed(0), "message");
        let (now, analyzed) = tokio::task::spawn_blocking(move || (plan(&mut s), pages(&mut s))).await.unwrap();
        assert!(analyzed > 0, "the statistics see the rows");
        assert!(now.contains("Index Scan using message_pkey"), "the keys are looked up: {now}");
        assert!(!now.contains("Seq Scan"), "nothing is scanned: {now}");

        assert_eq!(analyze(&store).await, Round::Idle, "analyzed again only after it grows again");
    }

    /// Each round looks from its starting table on and around, so a table
    /// that stays grown does not hide the others.
    #[test]
    fn a_round_looks_from_its_first_table_on_and_around() {
        let grown = vec!["delivery".to_string(), "message".to_string()];
        assert_eq!(TABLES[..2], ["message", "delivery"], "the premise");
        assert_eq!(pick(&grown, 0), Some(0));
        assert_eq!(pick(&grown, 1), Some(1));
        assert_eq!(pick(&grown, 2), Some(0), "around to the start");
        assert_eq!(pick(&[], 3), None);
    }
}
