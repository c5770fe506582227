//! The embedded store: SQLite in WAL mode.
//!
//! Writes go through one writer thread that commits batches (group commit):
//! while one batch waits for its fsync, the next fills up, so a thousand
//! concurrent API requests cost a handful of fsyncs, not a thousand. Each job
//! in a batch runs inside its own SAVEPOINT, so one job's error undoes that
//! job alone. Nobody is answered before the COMMIT that holds their work is
//! on disk (`synchronous=FULL`). Reads use a pool of read-only connections,
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
const READ_POOL_SIZE: usize = 8;

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
type Job = Box<dyn FnOnce(Option<&Connection>) -> Box<dyn FnOnce(Result<(), StoreError>) + Send> + Send>;

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

impl SqliteStore {
    /// Opens (creating if needed) `dir/hookline.db`, migrates it and starts the writer.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let writer = open_connection(&path, false)?;
        schema::migrate(&writer)?;
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        let wake = Arc::new(Notify::new());
        Ok(SqliteStore { inner: Arc::new(Inner { jobs, readers: Mutex::new(Vec::new()), path, wake }) })
    }

    /// Applies migrations without starting anything else.
    pub fn migrate_only(dir: &Path) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let conn = open_connection(&dir.join(DB_FILE), false)?;
        schema::migrate(&conn)
    }

    /// Opens an existing store for reading only, beside a running `serve`
    /// (no lock, no migration, no writer: every write fails). Refuses a
    /// store whose schema is not the one this binary knows.
    pub fn open_read_only(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = existing_database(dir)?;
        let conn = open_connection(&path, true)?;
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
        Ok(SqliteStore { inner: Arc::new(Inner { jobs, readers: Mutex::new(vec![conn]), path, wake }) })
    }

    /// The schema of the store in `dir`, read without changing anything;
    /// `None` when there is no store there yet.
    pub fn schema_state(dir: &Path) -> Result<Option<SchemaState>, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let conn = open_connection(&path, true)?;
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
        self.on_writer(move |conn| {
            let mut tx = SqliteTx::new(conn);
            let result = f(&mut tx);
            (result, tx.wake)
        })
        .await
    }

    // ---- the dispatcher's interface ---------------------------------------

    pub async fn claim(&self, req: ClaimRequest) -> StoreResult<Claimed> {
        self.on_writer(move |conn| (queue::claim(&mut SqliteQueue { conn }, &req), false)).await
    }

    pub async fn record_outcomes(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after: chrono::Duration,
    ) -> StoreResult<Recorded> {
        // A retry due now must wake the claim loop like new work does.
        let wake = outcomes.iter().any(|o| matches!(o.next, NextStep::RetryIn(_)));
        self.on_writer(move |conn| {
            let recorded = dispatch_queue::record_outcomes(conn, &outcomes, disable_after);
            let events = recorded.as_ref().is_ok_and(|r| r.operational_events);
            (recorded, wake || events)
        })
        .await
    }

    pub async fn extend_leases(&self, leases: Vec<LeaseRef>, lease: chrono::Duration) -> StoreResult<usize> {
        self.on_writer(move |conn| (dispatch_queue::extend_leases(conn, &leases, lease), false)).await
    }

    pub async fn release_all_claims(&self) -> StoreResult<usize> {
        self.on_writer(|conn| (dispatch_queue::release_all_claims(conn), true)).await
    }

    pub async fn purge_expired(&self, retention: chrono::Duration, batch: usize) -> StoreResult<Purged> {
        self.on_writer(move |conn| (dispatch_queue::purge_expired(conn, retention, batch), false)).await
    }

    /// Runs `job` on the writer thread inside its own savepoint of the
    /// current batch; answers once the batch's COMMIT is on disk. The job
    /// says whether its work, once committed, should wake the dispatcher.
    async fn on_writer<T, E, J>(&self, job: J) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        J: FnOnce(&Connection) -> (Result<T, E>, bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let wake = self.inner.wake.clone();
        let job: Job = Box::new(move |conn| {
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
            })
        });
        if self.inner.jobs.send(job).await.is_err() {
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
                None => open_connection(&inner.path, true)?,
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
    while let Some(first) = queue.blocking_recv() {
        let began = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Never run a job outside a transaction: it would commit on its
            // own while its caller is told it failed.
            first(None)(Err(backend(e)));
            continue;
        }
        finishers.push(first(Some(&conn)));
        // SQLite rolls the whole transaction back on some errors (I/O, full
        // disk); then the batch is over, and every job in it failed.
        let mut rolled_back = conn.is_autocommit();
        while !rolled_back && finishers.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => {
                    finishers.push(job(Some(&conn)));
                    rolled_back = conn.is_autocommit();
                }
                Err(_) => break,
            }
        }
        let commit = if rolled_back {
            Err(StoreError::Backend("the transaction was rolled back by SQLite".into()))
        } else {
            conn.execute_batch("COMMIT").map_err(backend)
        };
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        } else {
            crate::ops::metrics::get().store_commit(began.elapsed(), finishers.len());
        }
        for finish in finishers.drain(..) {
            finish(commit.clone());
        }
    }
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

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -16000;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(backend)?;
    if read_only {
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
}
