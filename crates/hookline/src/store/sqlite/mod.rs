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

mod alloc;
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
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, Notify};

use super::queue::{
    self, AttemptOutcome, ClaimReport, ClaimRequest, ClaimSink, Claimed, LeaseRef, NextStep, Purged, Recorded,
};
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
/// Prepared statements kept by the writer. It runs a few dozen distinct
/// statements per batch (messages, keys, fan-out, claims, outcomes, one
/// text per list length); with rusqlite's default of 16 it parsed most of
/// them again each time (7 % of its CPU, docs/performance.md).
const WRITER_STATEMENTS: usize = 256;
/// Prepared statements kept by each reader: its reads are many shapes of
/// listing, some with a text per filter length, and a large cache in each
/// of them would hold memory the way large page caches did.
const READER_STATEMENTS: usize = 32;

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
/// have succeeded or failed, and whether its work made deliveries due.
struct Job {
    run: Run,
    commit: Commit,
    /// A claim into the dispatcher: the batch claims nothing more of its own.
    claims: bool,
}

type Run = Box<dyn FnOnce(Option<&Connection>) -> (Finish, bool) + Send>;
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
    dispatch: Arc<LocalDispatch>,
}

impl Inner {
    fn new(jobs: mpsc::Sender<Job>, readers: Vec<Connection>, path: PathBuf, dispatch: Arc<LocalDispatch>) -> Inner {
        Inner { jobs, readers: Mutex::new(readers), path, dispatch }
    }
}

/// How the writer reaches this process's dispatcher: the wake-up its loop
/// waits on and, once one is attached, the sink the writer claims into.
#[derive(Default)]
struct LocalDispatch {
    wake: Arc<Notify>,
    sink: RwLock<Option<Arc<dyn ClaimSink>>>,
}

impl LocalDispatch {
    fn sink(&self) -> Option<Arc<dyn ClaimSink>> {
        self.sink.read().unwrap_or_else(|p| p.into_inner()).clone()
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
        let dispatch = Arc::new(LocalDispatch::default());
        let for_writer = dispatch.clone();
        std::thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue, &for_writer))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore { inner: Arc::new(Inner::new(jobs, Vec::new(), path, dispatch)) })
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
        Ok(SqliteStore { inner: Arc::new(Inner::new(jobs, vec![conn], path, Arc::default())) })
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

    /// Rung after a commit that made deliveries due, unless the writer
    /// claimed them into the attached sink and the loop need not look.
    pub fn wakeups(&self) -> Arc<Notify> {
        self.inner.dispatch.wake.clone()
    }

    /// From now on, the writer claims the deliveries each batch makes due
    /// into `sink`, in the batch's own transaction.
    pub fn claim_on_commit(&self, sink: Arc<dyn ClaimSink>) {
        *self.inner.dispatch.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// `f` runs once: the single writer never loses a race.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        self.on_writer(Commit::Durable, in_tx(f)).await
    }

    /// See [`Store::write_then`]: `then` runs on the writer thread, after
    /// the COMMIT of the batch `f` ran in.
    pub async fn write_then<T, E, F, C>(&self, f: F, then: C)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        C: FnOnce(Result<T, E>) + Send + 'static,
    {
        let run = job_run(in_tx(f), then);
        if let Err(refused) = self.inner.jobs.send(Job { run, commit: Commit::Durable, claims: false }).await {
            // The writer thread has stopped: the job fails as if no
            // transaction could be opened, which tells `then`.
            (refused.0.run)(None).0(Err(StoreError::Backend("the writer thread has stopped".into())));
        }
    }

    // ---- the dispatcher's interface ---------------------------------------

    pub async fn claim(&self, req: ClaimRequest) -> StoreResult<Claimed> {
        // A claim: the batch makes none of its own beside it, which would
        // not count this one's jobs.
        let job = move |conn: &Connection| (queue::claim(&mut SqliteQueue { conn }, &req), false);
        self.on_writer_as(Commit::Relaxed, true, job).await
    }

    /// Claims what `sink` has room for and starts it there, on the writer
    /// thread, right after the COMMIT; `None` when the sink has no room.
    pub async fn claim_into(&self, sink: Arc<dyn ClaimSink>) -> StoreResult<Option<ClaimReport>> {
        let (reply, answer) = oneshot::channel();
        let run = claim_run(
            sink,
            Box::new(move |report| {
                let _ = reply.send(report);
            }),
        );
        self.submit(Job { run, commit: Commit::Relaxed, claims: true }, answer).await
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
        self.on_writer_as(commit, false, job).await
    }

    /// [`on_writer`](Self::on_writer) for a job that may be a claim.
    async fn on_writer_as<T, E, J>(&self, commit: Commit, claims: bool, job: J) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        J: FnOnce(&Connection) -> (Result<T, E>, bool) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let run = job_run(job, move |result| {
            let _ = reply.send(result);
        });
        self.submit(Job { run, commit, claims }, answer).await
    }

    /// Queues `job` on the writer and waits for the answer it sends.
    async fn submit<T, E: From<StoreError>>(&self, job: Job, answer: oneshot::Receiver<Result<T, E>>) -> Result<T, E> {
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
                None => open_connection(&inner.path, Role::Reader)?,
            };
            exec_cached(&conn, "BEGIN").map_err(backend)?;
            let result = f(&mut SqliteTx::new(&conn));
            let _ = exec_cached(&conn, "COMMIT");
            let mut pool = inner.readers.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < READ_POOL_SIZE {
                pool.push(conn);
            }
            result
        });
        task.await.unwrap_or_else(|e| Err(E::from(StoreError::Backend(format!("read task failed: {e}")))))
    }
}

/// An API write as a writer job: `f` against the connection, and whether
/// it made deliveries due.
fn in_tx<T, E, F>(mut f: F) -> impl FnOnce(&Connection) -> (Result<T, E>, bool)
where
    F: FnMut(&mut dyn Tx) -> Result<T, E>,
{
    move |conn| {
        let mut tx = SqliteTx::new(conn);
        let result = f(&mut tx);
        (result, tx.wake)
    }
}

/// A writer job running `job` in a savepoint of the batch's transaction;
/// `then` gets its result once the batch's COMMIT ended (its error if the
/// COMMIT failed), on the writer thread.
fn job_run<T, E, J, C>(job: J, then: C) -> Run
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    J: FnOnce(&Connection) -> (Result<T, E>, bool) + Send + 'static,
    C: FnOnce(Result<T, E>) + Send + 'static,
{
    Box::new(move |conn: Option<&Connection>| {
        let (result, woke) = match conn {
            Some(conn) => run_in_savepoint(conn, job),
            None => (Err(E::from(StoreError::Backend("the store could not open a transaction".into()))), false),
        };
        let finish = Box::new(move |commit: Result<(), StoreError>| {
            then(match commit {
                Ok(()) => result,
                Err(e) => Err(E::from(e)),
            })
        }) as Finish;
        (finish, woke)
    })
}

fn run_in_savepoint<T, E, J>(conn: &Connection, job: J) -> (Result<T, E>, bool)
where
    E: From<StoreError>,
    J: FnOnce(&Connection) -> (Result<T, E>, bool),
{
    if let Err(e) = exec_cached(conn, "SAVEPOINT job") {
        return (Err(E::from(backend(e))), false);
    }
    // A panicking job must not take the writer thread (and every later
    // write) down with it: it fails alone, like a job that returned an error.
    let (result, wake) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))).unwrap_or_else(|_| {
        (Err(E::from(StoreError::Refused("a store job panicked; it was rolled back".into()))), false)
    });
    let ok = result.is_ok();
    let end = if ok { Ok(()) } else { exec_cached(conn, "ROLLBACK TO job") };
    if let Err(e) = end.and_then(|()| exec_cached(conn, "RELEASE job")) {
        return (Err(E::from(backend(e))), false);
    }
    (result, wake && ok)
}

/// A claim into `sink` as a writer job. Its jobs start once the COMMIT has
/// succeeded, on this thread before the next batch; if it failed they are
/// dropped with the rest of the batch. `then` gets the report.
fn claim_run(sink: Arc<dyn ClaimSink>, then: Box<dyn FnOnce(StoreResult<Option<ClaimReport>>) + Send>) -> Run {
    Box::new(move |conn: Option<&Connection>| {
        let claimed = match conn {
            None => Err(StoreError::Backend("the store could not open a transaction".into())),
            Some(conn) => {
                run_in_savepoint(conn, |conn| {
                    let claimed = sink.request().map(|req| {
                        let began = crate::ops::trace::now();
                        queue::claim(&mut SqliteQueue { conn }, &req).map(|c| (c, req.slots.budget, began))
                    });
                    (claimed.transpose(), false)
                })
                .0
            }
        };
        let finish = Box::new(move |commit: Result<(), StoreError>| {
            let (report, jobs) = match commit.and(claimed) {
                Ok(Some((claimed, budget, began))) => {
                    (Ok(Some(ClaimReport::of(&claimed, budget))), Some((claimed.jobs, began)))
                }
                Ok(None) => (Ok(None), None),
                Err(e) => (Err(e), None),
            };
            // Told first: whoever acts on the report (a claim of the loop's)
            // runs on this thread after the jobs have taken their slots.
            then(report);
            if let Some((jobs, began)) = jobs {
                // The writer thread must outlive a bug in the sink; the
                // jobs' leases run out and they are claimed again.
                let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink.start(jobs, began)));
                if started.is_err() {
                    tracing::error!("starting claimed deliveries panicked; they go again once their lease ends");
                }
            }
        }) as Finish;
        (finish, false)
    })
}

/// The claim a batch that made deliveries due makes at its end, in its own
/// transaction; the dispatcher's loop is woken only if it must look sooner
/// than it planned to. The price: an error that makes SQLite roll back the
/// whole transaction (I/O, a full disk) during the claim fails the batch's
/// writes with it, as it would any of them.
fn claim_at_end_of_batch(dispatch: &LocalDispatch) -> Option<Run> {
    let sink = dispatch.sink()?;
    let (asked, wake) = (sink.clone(), dispatch.wake.clone());
    Some(claim_run(
        sink,
        Box::new(move |report| {
            let look = match report {
                Ok(Some(report)) => report.needs_a_look(asked.next_look()),
                Ok(None) | Err(_) => true,
            };
            if look {
                wake.notify_one();
            }
        }),
    ))
}

fn run_writer(conn: Connection, mut queue: mpsc::Receiver<Job>, dispatch: &LocalDispatch) {
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
            set_commit(&conn, &mut synced, level).and_then(|()| exec_cached(&conn, "BEGIN IMMEDIATE").map_err(backend));
        if let Err(e) = opened {
            // Never run a job outside a transaction: it would commit on its
            // own while its caller is told it failed.
            if let Some(job) = waiting.pop_front() {
                (job.run)(None).0(Err(e));
            }
            continue;
        }
        // SQLite rolls the whole transaction back on some errors (I/O, full
        // disk); then the batch is over, and every job in it failed. Jobs
        // that came meanwhile join, except a durable one in a relaxed batch,
        // which waits for the next.
        let mut rolled_back = false;
        // Some job made deliveries due / the batch holds a claim already.
        let (mut woke, mut claims) = (false, false);
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
            claims |= job.claims;
            let (finish, made_due) = (job.run)(Some(&conn));
            woke |= made_due;
            finishers.push(finish);
            rolled_back = conn.is_autocommit();
        }
        // A claim already in the batch may have run before the work came
        // due, and a second one would not count the first one's slots: the
        // loop is woken instead.
        let mut claimed_here = false;
        if woke && !claims && !rolled_back {
            if let Some(run) = claim_at_end_of_batch(dispatch) {
                // Finished first: the deliveries start before the writes
                // that made them due are answered.
                finishers.insert(0, run(Some(&conn)).0);
                rolled_back = conn.is_autocommit();
                claimed_here = true;
            }
        }
        let commit = if rolled_back {
            Err(StoreError::Backend("the transaction was rolled back by SQLite".into()))
        } else {
            exec_cached(&conn, "COMMIT").map_err(backend)
        };
        if commit.is_err() {
            let _ = exec_cached(&conn, "ROLLBACK");
        } else if level == Commit::Durable {
            // The metric times durable commits (fsync included), as on PostgreSQL.
            crate::ops::metrics::get().store_commit(began.elapsed(), finishers.len());
        }
        if woke && commit.is_ok() && !claimed_here {
            dispatch.wake.notify_one();
        }
        for finish in finishers.drain(..) {
            // A finisher that panics (a caller's `write_then` callback) must
            // not take the writer thread, and every later write, with it.
            let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| finish(commit.clone())));
            if finished.is_err() {
                tracing::error!("a store job's completion panicked; the writer goes on");
            }
        }
    }
}

/// Runs one statement without parameters from the connection's cache of
/// prepared statements: transaction control runs several times a batch,
/// and `execute_batch` would parse it every time.
fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
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
    alloc::install();
    let conn = Connection::open(path).map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(backend)?;
    let (cache_kib, statements) = match role {
        Role::Writer => (WRITER_CACHE_KIB, WRITER_STATEMENTS),
        Role::Reader => (READER_CACHE_KIB, READER_STATEMENTS),
    };
    conn.set_prepared_statement_cache_capacity(statements);
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
/// fault of the store. Refusals of the values written (constraints,
/// triggers, values too big or of the wrong type) fail again whatever
/// happens. The rest (a full disk, I/O, a busy, read-only or corrupt file,
/// an error in the SQL, as when another process changed the schema) are
/// the store's condition or need an operator.
pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &e {
        rusqlite::Error::SqliteFailure(err, _) if err.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::NotFound
        }
        rusqlite::Error::SqliteFailure(err, _)
            if matches!(err.code, ErrorCode::ConstraintViolation | ErrorCode::TooBig | ErrorCode::TypeMismatch) =>
        {
            StoreError::Refused(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::Application;

    #[test]
    fn refused_values_are_told_from_the_stores_condition() {
        let failure = |code| backend(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None));
        use rusqlite::ffi;
        for code in
            [ffi::SQLITE_CONSTRAINT_TRIGGER, ffi::SQLITE_CONSTRAINT_CHECK, ffi::SQLITE_TOOBIG, ffi::SQLITE_MISMATCH]
        {
            assert!(matches!(failure(code), StoreError::Refused(_)), "{code}: {:?}", failure(code));
        }
        for code in
            [ffi::SQLITE_FULL, ffi::SQLITE_IOERR_FSYNC, ffi::SQLITE_BUSY, ffi::SQLITE_READONLY, ffi::SQLITE_ERROR]
        {
            assert!(matches!(failure(code), StoreError::Backend(_)), "{code}: {:?}", failure(code));
        }
        assert!(matches!(failure(ffi::SQLITE_CONSTRAINT_FOREIGNKEY), StoreError::NotFound));
    }

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
        assert!(matches!(panicking, Err(StoreError::Refused(_))));
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

    /// Holds the writer inside a job (its batch open) until `release` is
    /// sent, so that jobs queue behind it in a known order.
    async fn hold_writer(
        store: &SqliteStore,
        commit: Commit,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), StoreError>>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = oneshot::channel::<()>();
        let store = store.clone();
        let blocker = tokio::spawn(async move {
            let wait = move |_: &Connection| {
                let _ = running.send(());
                (held.recv().map_err(|e| StoreError::Backend(e.to_string())), false)
            };
            store.on_writer(commit, wait).await
        });
        started.await.unwrap();
        (release, blocker)
    }

    /// Jobs waiting in the writer's queue.
    fn queued(store: &SqliteStore) -> usize {
        store.inner.jobs.max_capacity() - store.inner.jobs.capacity()
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
        let (release, blocker) = hold_writer(&store, Commit::Relaxed).await;
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

    /// A dispatcher stand-in: counts requests, keeps what it is handed.
    struct Sink {
        room: bool,
        next_look: Option<crate::store::model::Timestamp>,
        requests: std::sync::atomic::AtomicUsize,
        started: tokio::sync::mpsc::UnboundedSender<Vec<String>>,
    }

    impl ClaimSink for Sink {
        fn request(&self) -> Option<ClaimRequest> {
            self.requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.room.then(|| ClaimRequest {
                lease: chrono::Duration::seconds(60),
                slots: crate::dispatch::policy::fairness::Slots {
                    budget: 512,
                    per_endpoint_cap: 64,
                    total_in_flight: 0,
                    busy_slot_limit: 384,
                },
                in_flight: Default::default(),
                live_claims: Vec::new(),
                released_leases: Vec::new(),
                default_rate_limit: 1_000,
            })
        }

        fn start(&self, jobs: Vec<queue::DeliveryJob>, _: Option<std::time::SystemTime>) {
            let _ = self.started.send(jobs.into_iter().map(|j| j.msg_id).collect());
        }

        fn next_look(&self) -> Option<crate::store::model::Timestamp> {
            self.next_look
        }
    }

    /// A store with one app and endpoint, and `sink` attached.
    async fn store_with_sink(
        dir: &Path,
        room: bool,
        next_look: Option<crate::store::model::Timestamp>,
    ) -> (SqliteStore, Arc<Sink>, tokio::sync::mpsc::UnboundedReceiver<Vec<String>>) {
        let store = SqliteStore::open(dir).unwrap();
        store
            .write(|tx| {
                tx.insert_application(&app("app_1"))?;
                tx.insert_endpoint(&crate::store::tests::endpoint("ep_1", "app_1", None))
            })
            .await
            .unwrap();
        let (started, starts) = tokio::sync::mpsc::unbounded_channel();
        let sink = Arc::new(Sink { room, next_look, requests: Default::default(), started });
        store.claim_on_commit(sink.clone());
        (store, sink, starts)
    }

    /// Writes a message owed to `ep_1`, as the API does.
    async fn send(store: &SqliteStore, id: &str) {
        let msg = crate::store::tests::message(id, "app_1");
        store
            .write(move |tx| {
                tx.insert_message(&msg)?;
                tx.insert_deliveries(&[crate::store::model::NewDelivery {
                    msg_id: msg.id.clone(),
                    endpoint_id: "ep_1".into(),
                    app_id: "app_1".into(),
                    due_at: None,
                }])
            })
            .await
            .unwrap();
    }

    /// Whether the dispatcher's loop was woken (the permit is taken).
    async fn woken(store: &SqliteStore) -> bool {
        tokio::time::timeout(std::time::Duration::ZERO, store.wakeups().notified()).await.is_ok()
    }

    #[tokio::test]
    async fn a_write_that_makes_deliveries_due_claims_them_in_its_own_transaction() {
        let dir = tempfile::tempdir().unwrap();
        // As the loop plans (within its poll interval); the lease taken ends
        // after it.
        let later = chrono::Utc::now() + chrono::Duration::seconds(1);
        let (store, _sink, mut starts) = store_with_sink(dir.path(), true, Some(later)).await;
        send(&store, "msg_1").await;
        // Started before the write was answered: claimed in its batch.
        assert_eq!(starts.try_recv().unwrap(), ["msg_1"]);
        // The loop planned to look later anyway and nothing else is due: it
        // sleeps on, and a claim of its own finds the delivery leased.
        assert!(!woken(&store).await);
        let claimed = store.claim(crate::store::tests::request(chrono::Duration::seconds(60))).await.unwrap();
        assert!(claimed.jobs.is_empty());
    }

    #[tokio::test]
    async fn the_loop_is_woken_when_the_write_could_not_claim_or_it_is_busy() {
        // No room on the node: nothing is claimed, and the loop is woken to
        // take the delivery once a slot frees.
        let dir = tempfile::tempdir().unwrap();
        let (store, sink, mut starts) = store_with_sink(dir.path(), false, None).await;
        send(&store, "msg_1").await;
        assert!(woken(&store).await);
        assert_eq!(sink.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(starts.try_recv().is_err());
        let claimed = store.claim(crate::store::tests::request(chrono::Duration::seconds(60))).await.unwrap();
        assert_eq!(claimed.jobs.len(), 1);

        // Room, but the loop has no plan (it is between claims): it is woken
        // as well as handed the job.
        let dir = tempfile::tempdir().unwrap();
        let (store, _sink, mut starts) = store_with_sink(dir.path(), true, None).await;
        send(&store, "msg_2").await;
        assert_eq!(starts.try_recv().unwrap(), ["msg_2"]);
        assert!(woken(&store).await);
    }

    #[tokio::test]
    async fn a_batch_that_holds_a_claim_makes_no_second_one() {
        let dir = tempfile::tempdir().unwrap();
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let (store, sink, mut starts) = store_with_sink(dir.path(), true, Some(later)).await;
        // Hold the writer so the write and the claim queue up, in that
        // order, and run in one batch.
        let (release, blocker) = hold_writer(&store, Commit::Durable).await;
        let write = tokio::spawn({
            let store = store.clone();
            async move { send(&store, "msg_1").await }
        });
        while queued(&store) < 1 {
            tokio::task::yield_now().await;
        }
        let claim = tokio::spawn({
            let (store, sink) = (store.clone(), sink.clone());
            async move { store.claim_into(sink).await }
        });
        while queued(&store) < 2 {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        write.await.unwrap();
        let report = claim.await.unwrap().unwrap().unwrap();
        assert_eq!(report.claimed, 1);
        // The claim job's jobs start after its answer.
        let started = tokio::time::timeout(std::time::Duration::from_secs(30), starts.recv()).await;
        assert_eq!(started.expect("the claim started nothing").unwrap(), ["msg_1"]);
        // One request: the claim job's, none at the end of the batch; the
        // loop is woken in its place.
        assert_eq!(sink.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(woken(&store).await);
    }
}
