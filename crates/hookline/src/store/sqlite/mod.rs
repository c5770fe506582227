//! The embedded store: SQLite in WAL mode.
//!
//! Writes go through one writer thread that commits batches (group commit):
//! while one batch waits for its fsync, the next fills up, so a thousand
//! concurrent API requests cost a handful of fsyncs, not a thousand. Each job
//! in a batch runs inside its own SAVEPOINT, so one job's error undoes that
//! job alone. No API request is answered before the COMMIT that holds its
//! work is on disk (`synchronous=FULL`); the dispatcher's own transactions
//! skip the fsync (see `Commit`). Reads use a pool of read-only connections,
//! which WAL lets run beside the writer.

mod apps;
mod attempts;
mod backup;
mod deliveries;
mod dispatch_queue;
mod endpoints;
mod event_types;
mod idempotency;
mod insights;
mod integrations;
mod lock;
mod messages;
mod meta;
mod schema;
mod sql;
mod tasks;
mod tokens;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Notify};

use super::queue::{self, AttemptOutcome, ClaimRequest, Claimed, LeaseRef, NextStep, Purged, Recorded};
use super::{SchemaState, StoreError, StoreResult, Tx};
pub use backup::BackupReport;
use dispatch_queue::SqliteQueue;
pub use lock::{DataDirLock, LockError};

/// The database file in the data directory.
pub const DB_FILE: &str = "hookline.db";

/// Largest number of jobs committed in one transaction.
const MAX_BATCH: usize = 512;
/// Reading connections kept open between reads (a burst opens more, closed
/// after use: a read never waits for another to finish).
const READ_POOL_SIZE: usize = 8;
/// Page cache of the writer, in KiB. The writer walks the delivery queue's
/// indexes for every claim and outcome, so its cache carries the drain rate.
const WRITER_CACHE_KIB: i64 = 16_000;
/// Page cache of each reader, in KiB. A reader's cache is dropped whenever
/// another connection committed since its last read (which, under load, is
/// every read), so a large one bought nothing but memory: eight of 16 MB
/// made RSS grow with the database (docs/performance.md).
const READER_CACHE_KIB: i64 = 2_000;

/// A transaction as the repository traits see it.
pub struct SqliteTx<'c> {
    conn: &'c Connection,
    /// Set when the transaction made deliveries due: the dispatcher is woken
    /// once it commits.
    wake: bool,
}

impl<'c> SqliteTx<'c> {
    fn new(conn: &'c Connection) -> SqliteTx<'c> {
        SqliteTx { conn, wake: false }
    }
}

/// A job runs inside the open transaction (or, given `None`, is refused
/// without running) and hands back what to do once the COMMIT is known to
/// have succeeded or failed.
struct Job {
    run: Run,
    commit: Commit,
}

type Run = Box<dyn FnOnce(Option<&Connection>) -> Finish + Send>;
/// What a job does once its batch's COMMIT succeeded or failed.
type Finish = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// How the COMMIT of a job's work must reach the disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Commit {
    /// Synced before anyone is answered (`synchronous = FULL`): every API
    /// write.
    Durable,
    /// The dispatcher's own work (claims, lease renewals, outcomes), written
    /// to the WAL without waiting for fsync (`synchronous = NORMAL`), as the
    /// PostgreSQL store runs it with `synchronous_commit = off`. A process
    /// killed at any instant loses nothing (the OS holds the write); a power
    /// cut may undo the last of these commits, and that only repeats a
    /// delivery, which at-least-once allows: start-up releases the claims.
    /// The next durable commit syncs them too, since the WAL is synced as a
    /// whole. A batch is relaxed only when every job in it is.
    Relaxed,
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    wake: Arc<Notify>,
}

impl Inner {
    fn new(jobs: mpsc::Sender<Job>, readers: Vec<Connection>, path: PathBuf, wake: Arc<Notify>) -> Inner {
        Inner { jobs, readers: Mutex::new(readers), path, wake }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/hookline.db`, migrates it and starts the writer.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let writer = open_connection(&path, Role::Writer)?;
        schema::migrate(&writer)?;
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        let wake = Arc::new(Notify::new());
        Ok(SqliteStore { inner: Arc::new(Inner::new(jobs, Vec::new(), path, wake)) })
    }

    /// Applies migrations without starting anything else.
    pub fn migrate_only(dir: &Path) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let conn = open_connection(&dir.join(DB_FILE), Role::Writer)?;
        schema::migrate(&conn)
    }

    /// Opens an existing store for reading only, beside a running `serve`
    /// (no lock, no migration, no writer: every write fails). Refuses a
    /// store whose schema is not the one this binary knows.
    pub fn open_read_only(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = existing_database(dir)?;
        let conn = open_connection(&path, Role::Reader)?;
        let state = schema::state(&conn)?;
        state.refuse_newer()?;
        if !state.pending.is_empty() {
            return Err(StoreError::Backend(format!(
                "the store at {} is at schema version {}, this hookline expects {}: run `hookline migrate` \
                 (or start `hookline serve`) first",
                path.display(),
                state.current,
                state.known
            )));
        }
        // No writer: the job queue's receiving end is dropped at once.
        let (jobs, _) = mpsc::channel::<Job>(1);
        let wake = Arc::new(Notify::new());
        Ok(SqliteStore { inner: Arc::new(Inner::new(jobs, vec![conn], path, wake)) })
    }

    /// The schema of the store in `dir`, read without changing anything;
    /// `None` when there is no store there yet.
    pub fn schema_state(dir: &Path) -> Result<Option<SchemaState>, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = open_connection(&path, Role::Reader)?;
        schema::state(&conn).map(Some)
    }

    /// A consistent copy of the store in `dir` into the new file `dest`,
    /// while `serve` may be running (see `backup.rs`).
    pub fn backup(dir: &Path, dest: &Path) -> Result<BackupReport, StoreError> {
        backup::copy(&existing_database(dir)?, dest)
    }

    pub fn wakeups(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// `f` runs once: the single writer never loses a race.
    pub async fn write<T, E, F>(&self, mut f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.on_writer(Commit::Durable, move |conn| {
            let mut tx = SqliteTx::new(conn);
            let result = f(&mut tx);
            (result, tx.wake)
        })
        .await
    }

    // ---- the dispatcher's interface ---------------------------------------

    pub async fn claim(&self, req: ClaimRequest) -> StoreResult<Claimed> {
        self.on_writer(Commit::Relaxed, move |conn| (queue::claim(&mut SqliteQueue { conn }, &req), false)).await
    }

    pub async fn record_outcomes(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after: chrono::Duration,
    ) -> StoreResult<Recorded> {
        // A retry due now must wake the claim loop like new work does.
        let wake = outcomes.iter().any(|o| matches!(o.next, NextStep::RetryIn(_)));
        self.on_writer(Commit::Relaxed, move |conn| {
            let recorded = dispatch_queue::record_outcomes(conn, &outcomes, disable_after);
            let events = recorded.as_ref().is_ok_and(|r| r.operational_events);
            (recorded, wake || events)
        })
        .await
    }

    pub async fn extend_leases(&self, leases: Vec<LeaseRef>, lease: chrono::Duration) -> StoreResult<usize> {
        self.on_writer(Commit::Relaxed, move |conn| (dispatch_queue::extend_leases(conn, &leases, lease), false)).await
    }

    pub async fn release_all_claims(&self) -> StoreResult<usize> {
        self.on_writer(Commit::Durable, |conn| (dispatch_queue::release_all_claims(conn), true)).await
    }

    pub async fn purge_expired(&self, retention: chrono::Duration, batch: usize) -> StoreResult<Purged> {
        self.on_writer(Commit::Durable, move |conn| (dispatch_queue::purge_expired(conn, retention, batch), false))
            .await
    }

    /// Runs `job` on the writer thread inside its own savepoint of the
    /// current batch; answers once the batch's COMMIT is on disk. The job
    /// says whether its work, once committed, should wake the dispatcher.
    async fn on_writer<T, E, J>(&self, commit: Commit, job: J) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        J: FnOnce(&Connection) -> (Result<T, E>, bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let wake = self.inner.wake.clone();
        let run = Box::new(move |conn: Option<&Connection>| {
            let (result, woke) = match conn {
                Some(conn) => run_in_savepoint(conn, job),
                None => (Err(E::from(StoreError::Backend("the store could not open a transaction".into()))), false),
            };
            Box::new(move |commit: Result<(), StoreError>| {
                if commit.is_ok() && woke {
                    wake.notify_one();
                }
                let _ = reply.send(match commit {
                    Ok(()) => result,
                    Err(e) => Err(E::from(e)),
                });
            }) as Finish
        });
        if self.inner.jobs.send(Job { run, commit }).await.is_err() {
            return Err(E::from(StoreError::Backend("the writer thread has stopped".into())));
        }
        answer.await.unwrap_or_else(|_| Err(E::from(StoreError::Backend("the writer thread dropped a job".into()))))
    }

    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                Some(c) => c,
                None => open_connection(&inner.path, Role::Reader)?,
            };
            conn.execute_batch("BEGIN").map_err(backend)?;
            let result = f(&mut SqliteTx::new(&conn));
            let _ = conn.execute_batch("COMMIT");
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READ_POOL_SIZE {
                pool.push(conn);
            }
            result
        });
        task.await.unwrap_or_else(|e| Err(E::from(StoreError::Backend(format!("read task failed: {e}")))))
    }
}

fn run_in_savepoint<T, E, J>(conn: &Connection, job: J) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
    J: FnOnce(&Connection) -> (Result<T, E>, bool),
{
    if let Err(e) = conn.execute_batch("SAVEPOINT job") {
        return (Err(E::from(backend(e))), false);
    }
    // A panicking job must not take the writer thread (and every later
    // write) down with it: it fails alone, like a job that returned an error.
    let (result, wake) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))).unwrap_or_else(|_| {
        (Err(E::from(StoreError::Backend("a store job panicked; it was rolled back".into()))), false)
    });
    let ok = result.is_ok();
    let end = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    if let Err(e) = conn.execute_batch(end) {
        return (Err(E::from(backend(e))), false);
    }
    (result, wake && ok)
}

fn run_writer(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut finishers = Vec::with_capacity(MAX_BATCH);
    // The connection's `synchronous` setting, switched only when a batch needs the other one.
    let mut synced = Commit::Durable;
    // Jobs taken off the queue and not run yet, in order.
    let mut waiting: VecDeque<Job> = VecDeque::with_capacity(MAX_BATCH);
    loop {
        if waiting.is_empty() {
            let Some(job) = queue.blocking_recv() else { return };
            waiting.push_back(job);
        }
        while waiting.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        // SQLite fixes the sync level before BEGIN, so the batch's level is
        // chosen from every job waiting now: under load that is nearly
        // always a durable one, and everything shares its fsync.
        let level =
            if waiting.iter().any(|job| job.commit == Commit::Durable) { Commit::Durable } else { Commit::Relaxed };
        let began = std::time::Instant::now();
        let opened =
            set_commit(&conn, &mut synced, level).and_then(|()| conn.execute_batch("BEGIN IMMEDIATE").map_err(backend));
        if let Err(e) = opened {
            // Never run a job outside a transaction: it would commit on its
            // own while its caller is told it failed.
            if let Some(job) = waiting.pop_front() {
                (job.run)(None)(Err(e));
            }
            continue;
        }
        // SQLite rolls the whole transaction back on some errors (I/O, full
        // disk); then the batch is over, and every job in it failed. Jobs
        // that came meanwhile join, except a durable one in a relaxed batch,
        // which waits for the next.
        let mut rolled_back = false;
        while !rolled_back && finishers.len() < MAX_BATCH {
            let job = match waiting.pop_front() {
                Some(job) => job,
                None => match queue.try_recv() {
                    Ok(job) if job.commit == Commit::Durable && level == Commit::Relaxed => {
                        waiting.push_back(job);
                        break;
                    }
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            finishers.push((job.run)(Some(&conn)));
            rolled_back = conn.is_autocommit();
        }
        let commit = if rolled_back {
            Err(StoreError::Backend("the transaction was rolled back by SQLite".into()))
        } else {
            conn.execute_batch("COMMIT").map_err(backend)
        };
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else if level == Commit::Durable {
            // The metric times durable commits (fsync included), as on PostgreSQL.
            crate::ops::metrics::get().store_commit(began.elapsed(), finishers.len());
        }
        for finish in finishers.drain(..) {
            finish(commit.clone());
        }
    }
}

/// Sets how the next transaction's COMMIT reaches the disk. SQLite takes
/// this only between transactions.
fn set_commit(conn: &Connection, current: &mut Commit, wanted: Commit) -> Result<(), StoreError> {
    if *current != wanted {
        let level = match wanted {
            Commit::Durable => "FULL",
            Commit::Relaxed => "NORMAL",
        };
        conn.execute_batch(&format!("PRAGMA synchronous = {level}")).map_err(backend)?;
        *current = wanted;
    }
    Ok(())
}

fn existing_database(dir: &Path) -> Result<PathBuf, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return Err(StoreError::Backend(format!(
            "no embedded store at {} (set HOOKLINE_DATA_DIR or --data-dir to the directory `serve` uses)",
            path.display()
        )));
    }
    Ok(path)
}

/// What a connection is opened for.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Writer,
    Reader,
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
    let cache_kib = match role {
        Role::Writer => WRITER_CACHE_KIB,
        Role::Reader => READER_CACHE_KIB,
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{cache_kib};
         PRAGMA temp_store = MEMORY;"
    ))
    .map_err(backend)?;
    if role == Role::Reader {
        conn.execute_batch("PRAGMA query_only = ON").map_err(backend)?;
    }
    Ok(conn)
}

/// A failed statement. A foreign-key violation means a row refers to one
/// that is gone (deleted by a concurrent request): that is "not found", not a
/// fault of the store.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(err, _) if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::Application;

    fn app(id: &str) -> Application {
        let now = chrono::Utc::now();
        // Looked up by uid below: these short ids are not well-formed app ids.
        Application {
            id: id.into(),
            uid: Some(id.into()),
            name: "a".into(),
            rate_limit: None,
            metadata: Default::default(),
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn a_failing_or_panicking_job_undoes_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let ok = store.write(|tx| tx.insert_application(&app("app_1")));
        let failing = store.write(|tx| {
            tx.insert_application(&app("app_2"))?;
            Err::<(), StoreError>(StoreError::NotFound)
        });
        let panicking = store.write(|tx| -> Result<(), StoreError> {
            tx.insert_application(&app("app_3"))?;
            panic!("bug in a job");
        });
        let (ok, failing, panicking) = tokio::join!(ok, failing, panicking);
        assert!(ok.is_ok());
        assert_eq!(failing, Err(StoreError::NotFound));
        assert!(matches!(panicking, Err(StoreError::Backend(_))));
        // The writer is still alive, and only the successful job's row exists.
        store.write(|tx| tx.insert_application(&app("app_4"))).await.unwrap();
        for (id, exists) in [("app_1", true), ("app_2", false), ("app_3", false), ("app_4", true)] {
            let key = id.to_string();
            let found = store.read(move |tx| tx.application(&key)).await.unwrap();
            assert_eq!(found.is_some(), exists, "{id}");
        }
    }

    /// The `synchronous` level the job's transaction will commit with.
    async fn level_seen(store: &SqliteStore, commit: Commit) -> i64 {
        store
            .on_writer(commit, |conn| {
                let level = conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).map_err(backend);
                (level, false)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn api_writes_always_commit_synced_whatever_they_are_batched_with() {
        const FULL: i64 = 2;
        const NORMAL: i64 = 1;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(level_seen(&store, Commit::Relaxed).await, NORMAL);
        assert_eq!(level_seen(&store, Commit::Durable).await, FULL);

        // A relaxed job holds the writer (its batch open) while the others
        // queue in a known order; then they join batches from the queue.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let blocker = {
            let store = store.clone();
            tokio::spawn(async move {
                let wait = move |_: &Connection| {
                    let _ = running.send(());
                    (held.recv().map_err(|e| StoreError::Backend(e.to_string())), false)
                };
                store.on_writer(Commit::Relaxed, wait).await
            })
        };
        started.await.unwrap();
        let queued = |store: &SqliteStore| store.inner.jobs.max_capacity() - store.inner.jobs.capacity();
        use Commit::{Durable as D, Relaxed as R};
        let order = [R, R, D, R, D, R, R];
        let mut jobs = Vec::new();
        for (i, commit) in order.into_iter().enumerate() {
            let store2 = store.clone();
            jobs.push(tokio::spawn(async move { level_seen(&store2, commit).await }));
            while queued(&store) < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        let mut seen = Vec::new();
        for job in jobs {
            seen.push(job.await.unwrap());
        }
        // The first two join the blocker's relaxed batch, which ends before
        // the durable job; that one opens a durable batch, which everything
        // after it joins.
        assert_eq!(seen, [NORMAL, NORMAL, FULL, FULL, FULL, FULL, FULL]);
    }
}
