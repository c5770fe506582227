//! The store's durable-commit ceiling: transactions of `group` 1 KB rows,
//! each committed to disk, for a fixed time, at the group sizes the writer
//! uses (one request alone, a few, and every client of the load at once).
//! An empty transaction writes nothing (neither SQLite nor PostgreSQL syncs
//! one), so each holds at least one row.
//!
//! SQLite gets the pragmas of Hookline's embedded store
//! (`crates/hookline/src/store/sqlite/mod.rs`: WAL, `synchronous=FULL`) on
//! the file system of the data directories; PostgreSQL a fresh database
//! with `synchronous_commit=on`, one connection.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::deployment::StoreSpec;
use crate::error::{Context, Result};
use crate::figure::Measured;
use crate::offload::blocking;
use crate::plan::{Bench, CONCURRENCY};

use super::STORE;

/// Rows per transaction: one request, a small group, every client at once.
pub const GROUP_SIZES: [usize; 3] = [1, 8, CONCURRENCY];
const ROW: [u8; 1024] = [b'x'; 1024];

/// Hookline's connection pragmas (embedded store).
const HOOKLINE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA foreign_keys = ON;
     PRAGMA cache_size = -16000;
     PRAGMA temp_store = MEMORY;";

pub fn rows_figure(group: usize) -> String {
    format!("rows/s, {} a commit", rows(group))
}

fn rows(n: usize) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

pub async fn measure(bench: &Bench) -> Result<Vec<Measured>> {
    let time = bench.sizes.store_ceiling_time;
    let rates = match &bench.servers.store {
        StoreSpec::Sqlite => {
            let dir = tempfile::tempdir_in(&bench.servers.work_dir).context("a directory for the SQLite ceiling")?;
            let path = dir.path().join("ceiling.db");
            blocking(move || sqlite_rates(&path, time)).await??
        }
        StoreSpec::Postgres(server) => {
            let database = server.create_database().await?;
            let url = database.url.clone();
            blocking(move || postgres_rates(&url, time)).await??
        }
    };
    let mut figures = Vec::new();
    for (group, commits_per_second) in rates {
        figures.push(Measured::new(STORE, format!("commits/s, {} each", rows(group)), "commit/s", commits_per_second));
        figures.push(Measured::new(STORE, rows_figure(group), "row/s", commits_per_second * group as f64));
    }
    Ok(figures)
}

/// How SQLite is set up under Hookline, read back from a connection opened
/// with its pragmas on the data directories' file system.
pub async fn sqlite_durability(work_dir: &Path) -> Result<String> {
    let dir = tempfile::tempdir_in(work_dir).context(format!("a directory in {}", work_dir.display()))?;
    let path = dir.path().join("probe.db");
    blocking(move || -> Result<String> {
        let conn = open_like_hookline(&path)?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).context("PRAGMA synchronous")?;
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).context("PRAGMA journal_mode")?;
        let synchronous = ["OFF", "NORMAL", "FULL", "EXTRA"].get(synchronous as usize).copied().unwrap_or("unknown");
        Ok(format!(
            "SQLite {}: synchronous={synchronous}, journal_mode={journal} (Hookline's pragmas)",
            rusqlite::version()
        ))
    })
    .await?
}

fn open_like_hookline(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).context(path.display())?;
    conn.execute_batch(HOOKLINE_PRAGMAS).context("Hookline's pragmas")?;
    Ok(conn)
}

fn sqlite_rates(path: &Path, time: Duration) -> Result<Vec<(usize, f64)>> {
    let mut conn = open_like_hookline(path)?;
    conn.execute_batch("CREATE TABLE row (id INTEGER PRIMARY KEY, body BLOB NOT NULL)").context("CREATE TABLE")?;
    commit_rates(time, |group| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO row (body) VALUES (?1)")?;
            for _ in 0..group {
                insert.execute([&ROW[..]])?;
            }
        }
        tx.commit()
    })
}

fn postgres_rates(url: &str, time: Duration) -> Result<Vec<(usize, f64)>> {
    let mut client = crate::pg::connect(url)?;
    client
        .batch_execute("SET synchronous_commit = on; CREATE TABLE row (id bigserial PRIMARY KEY, body bytea NOT NULL)")
        .context("CREATE TABLE")?;
    // A commit's rows in one statement, as Hookline writes its batches: one
    // round trip per row would measure round trips, not commits.
    let insert = client.prepare("INSERT INTO row (body) SELECT unnest($1::bytea[])").context("PREPARE")?;
    commit_rates(time, |group| {
        let rows: Vec<&[u8]> = vec![&ROW[..]; group];
        let mut tx = client.transaction()?;
        tx.execute(&insert, &[&rows])?;
        tx.commit()
    })
}

/// Commits a second at each group size, committing for `time` each.
fn commit_rates<E: std::fmt::Display>(
    time: Duration,
    mut commit: impl FnMut(usize) -> Result<(), E>,
) -> Result<Vec<(usize, f64)>> {
    let mut rates = Vec::new();
    for group in GROUP_SIZES {
        let (started, mut commits) = (Instant::now(), 0usize);
        while started.elapsed() < time {
            commit(group).context(format!("a commit of {group} rows"))?;
            commits += 1;
        }
        rates.push((group, crate::stats::rate(commits, started.elapsed())));
    }
    Ok(rates)
}
