//! The PostgreSQL store: for production, and for several nodes sharing one
//! database.
//!
//! The closures of `Store::write` run synchronously on a blocking thread,
//! over a pooled connection of the synchronous `postgres` client (the same
//! shape as the embedded store, so the domain code is written once). Each
//! write is one READ COMMITTED transaction; races between nodes are settled
//! by the statements themselves (`ON CONFLICT`, `FOR UPDATE`; a key taken by
//! an open transaction makes the next taker wait), and a transaction that still loses one
//! (serialization failure, deadlock) is run again: closures are `FnMut`.
//!
//! Commits are durable (`synchronous_commit = on`) for every API write. The
//! dispatcher's own transactions (claims, lease renewals, outcomes) run with
//! it off: losing one in a database crash only repeats a delivery, which
//! at-least-once allows; it never loses one.
//!
//! Wake-ups: a write that made deliveries due wakes the local dispatcher
//! after COMMIT, and a background publisher (`wake.rs`) re-marks those
//! endpoints' queue entries and sends `NOTIFY hookline_work` (outside the
//! write: NOTIFY serializes committing transactions), which the `LISTEN`
//! task of every node turns into a wake-up.

mod app_locks;
mod apps;
mod attempts;
mod deliveries;
mod dispatch_queue;
mod endpoints;
mod event_types;
mod idempotency;
mod insights;
mod integrations;
mod message_batch;
mod messages;
mod meta;
mod schema;
mod sql;
mod statistics;
mod tasks;
#[cfg(test)]
pub mod test_support;
mod tokens;
mod wake;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use tokio::sync::{Notify, Semaphore};

use super::model::Timestamp;
use super::queue::{AttemptOutcome, ClaimRequest, Claimed, LeaseRef, Purged, Recorded};
use super::{SchemaState, StoreError, StoreResult, Tx};

/// Connections per node for API transactions, at most.
const API_POOL: usize = 24;
/// Connections per node for the dispatcher's transactions, at most.
const DISPATCHER_POOL: usize = 8;
/// Runs of one closure, at most, when its transaction keeps losing races.
const MAX_TRIES: usize = 8;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 256;

/// A pooled connection and the statements prepared on it.
struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    /// Commits with `synchronous_commit = on` (API writes).
    durable: bool,
}

#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

/// Connections of one kind, and how many may be in use at once.
struct Pool {
    idle: Mutex<Vec<PgConn>>,
    permits: Semaphore,
    /// API sessions commit durably; the dispatcher's do not (see above).
    durable: bool,
}

impl Pool {
    fn new(size: usize, durable: bool) -> Pool {
        Pool { idle: Mutex::new(Vec::new()), permits: Semaphore::new(size), durable }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A sync client closes itself on a runtime of its own, which may not
        // start on an async thread: drop them on a plain thread.
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::Builder::new().name("hookline-pg-close".into()).spawn(move || drop(idle));
        }
    }
}

struct Inner {
    config: postgres::Config,
    /// With its password: for the LISTEN connection only, never logged.
    url: String,
    url_for_logs: String,
    api: Pool,
    dispatcher: Pool,
    /// Rung after a commit that made deliveries due, here or (through
    /// LISTEN) on another node.
    wake: Arc<Notify>,
    publisher: wake::Publisher,
}

/// How a statement failed, as far as the transaction around it cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Lost a race (serialization failure, deadlock): run it again.
    Retry,
    /// The connection is gone; nothing was committed.
    Lost,
}

/// Where a `PgTx`'s statements run: an open transaction (writes), or the
/// connection itself, each statement on its own (reads: one round trip a
/// statement instead of three).
enum Session<'t, 'c> {
    Transaction(&'t mut Transaction<'c>),
    Autocommit(&'t mut Client),
}

macro_rules! on_session {
    ($session:expr, $method:ident ( $($arg:expr),* )) => {
        match $session {
            Session::Transaction(tx) => tx.$method($($arg),*),
            Session::Autocommit(client) => client.$method($($arg),*),
        }
    };
}

/// A transaction as the repository traits see it.
pub struct PgTx<'t, 'c> {
    tx: Session<'t, 'c>,
    statements: &'t mut HashMap<String, Statement>,
    /// The first failure a statement reported, which decides whether the
    /// closure is run again.
    failure: Option<Failure>,
    /// Endpoints whose deliveries this transaction made due, and when.
    touched: Touched,
    /// Applications this transaction holds against deletion (`app_locks`).
    held_apps: Vec<String>,
}

impl<'t, 'c> PgTx<'t, 'c> {
    fn new(tx: Session<'t, 'c>, statements: &'t mut HashMap<String, Statement>) -> PgTx<'t, 'c> {
        PgTx { tx, statements, failure: None, touched: Vec::new(), held_apps: Vec::new() }
    }

    /// Maps a driver error, remembering whether it means "run it again" or
    /// "the connection is gone".
    fn fail(&mut self, e: postgres::Error) -> StoreError {
        let (failure, error) = classify(e);
        if self.failure.is_none() {
            self.failure = failure;
        }
        error
    }

    fn statement(&mut self, sql: &str) -> StoreResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = on_session!(&mut self.tx, prepare(sql)).map_err(|e| self.fail(e))?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), prepared.clone());
        Ok(prepared)
    }

    pub(super) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        on_session!(&mut self.tx, query(&stmt, params)).map_err(|e| self.fail(e))
    }

    pub(super) fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        let stmt = self.statement(sql)?;
        on_session!(&mut self.tx, query_opt(&stmt, params)).map_err(|e| self.fail(e))
    }

    pub(super) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Row> {
        let stmt = self.statement(sql)?;
        on_session!(&mut self.tx, query_one(&stmt, params)).map_err(|e| self.fail(e))
    }

    pub(super) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let stmt = self.statement(sql)?;
        on_session!(&mut self.tx, execute(&stmt, params)).map_err(|e| self.fail(e))
    }

    /// Runs `sql` with unique violations answered as `Conflict(what)`. The
    /// statement runs under a savepoint, so the transaction stays usable
    /// after the conflict (the caller may look up what is already there).
    pub(super) fn execute_unique(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<u64> {
        let stmt = self.statement(sql)?;
        on_session!(&mut self.tx, batch_execute("SAVEPOINT unique_write")).map_err(|e| self.fail(e))?;
        match on_session!(&mut self.tx, execute(&stmt, params)) {
            Ok(n) => {
                on_session!(&mut self.tx, batch_execute("RELEASE SAVEPOINT unique_write")).map_err(|e| self.fail(e))?;
                Ok(n)
            }
            Err(e) => {
                // Back to before the statement: the transaction stays usable.
                on_session!(&mut self.tx, batch_execute("ROLLBACK TO SAVEPOINT unique_write"))
                    .map_err(|e| self.fail(e))?;
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    Err(StoreError::Conflict(what))
                } else {
                    Err(self.fail(e))
                }
            }
        }
    }

    /// Runs an `INSERT … ON CONFLICT DO NOTHING` that must insert `expected`
    /// rows; fewer means a unique key was taken: `Conflict(what)`. No
    /// savepoint, so it is cheap enough for the hot path.
    pub(super) fn insert_new(
        &mut self,
        what: &'static str,
        expected: u64,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> StoreResult<()> {
        if self.execute(sql, params)? < expected {
            return Err(StoreError::Conflict(what));
        }
        Ok(())
    }

    /// Records that deliveries of `endpoint_id` fall due at `due` (`None`:
    /// now): the dispatchers are woken once this transaction commits.
    pub(super) fn touch(&mut self, endpoint_id: &str, due: Option<Timestamp>) {
        self.touched.push((endpoint_id.to_string(), due));
    }
}

/// Sorts a driver error into what the store reports and whether the
/// transaction may be run again.
fn classify(e: postgres::Error) -> (Option<Failure>, StoreError) {
    // The error's own Display is only "db error"; the server's message is
    // what an operator needs in the log.
    let text = e.as_db_error().map_or_else(|| e.to_string(), |db| db.to_string());
    if let Some(code) = e.code() {
        let retry = [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED];
        let lost = [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW];
        return if retry.contains(code) {
            (Some(Failure::Retry), StoreError::Backend(format!("transaction lost a race: {text}")))
        } else if lost.contains(code) {
            (Some(Failure::Lost), StoreError::Unavailable(text))
        } else if *code == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *code == SqlState::UNTRANSLATABLE_CHARACTER {
            (None, StoreError::Invalid("text must not contain NUL characters"))
        } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
            (None, StoreError::NotFound)
        } else if *code == SqlState::UNIQUE_VIOLATION {
            (None, StoreError::Conflict("a row with this key"))
        } else if refuses_the_values(code) {
            (None, StoreError::Refused(text))
        } else {
            (None, StoreError::Backend(text))
        };
    }
    // No SQL state: the connection failed (closed, I/O, timeout).
    (Some(Failure::Lost), StoreError::Unavailable(text))
}

/// Whether an error refuses the values written, so that the same write
/// fails again whatever the server's state: cardinality (class 21), data
/// exceptions (22), integrity constraints (23), triggered data changes (27),
/// errors of functions and triggers (2F, 38, 39, P0: a PL/pgSQL `RAISE`),
/// check options (44), values over a limit (54). Everything else waits:
/// the server's condition (connection, resources, timeouts, a failover) or
/// the statement's own (42: a schema another node is migrating), which fail
/// every write alike and pass, or need an operator, not a resend.
fn refuses_the_values(code: &SqlState) -> bool {
    matches!(&code.code()[..2], "21" | "22" | "23" | "27" | "2F" | "38" | "39" | "44" | "54" | "P0")
}

/// A store task that did not finish: a panic (in a closure, on these
/// values: refused, as a panicking job of the embedded store is) or the
/// runtime shutting down.
fn task_failed(e: tokio::task::JoinError) -> StoreError {
    if e.is_panic() {
        StoreError::Refused(format!("a store task panicked: {e}"))
    } else {
        StoreError::Backend(format!("store task failed: {e}"))
    }
}

/// Endpoints whose deliveries a transaction made due, and when (`None`: now).
type Touched = Vec<(String, Option<Timestamp>)>;

/// The result of one run of a write closure.
enum Run<T, E> {
    /// Committed (Ok) or failed for good (Err, rolled back).
    Done(Result<T, E>),
    /// Rolled back after losing a race, or before COMMIT on a dead
    /// connection: nothing happened, run it again.
    Again(StoreError),
}

impl PgStore {
    /// Connects (checking that the server answers), migrates and returns
    /// the store. Background tasks start with [`start`](Self::start).
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let store = PgStore::open_unmigrated(url)?;
        let mut conn = store.inner.connect(true)?;
        schema::migrate(&mut conn.client)?;
        store.inner.give_back(&store.inner.api, conn);
        Ok(store)
    }

    /// The store, without touching the database yet.
    fn open_unmigrated(url: &str) -> Result<PgStore, StoreError> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("HOOKLINE_DATABASE_URL is not a PostgreSQL URL: {e}")))?;
        // A server that vanished (no RST: a dead host, a partition) is
        // noticed in seconds, not after the kernel's two hours; the URL's
        // own settings win.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_keepalives_idle() == std::time::Duration::from_secs(2 * 3600) {
            config.keepalives_idle(std::time::Duration::from_secs(30));
        }
        let url_for_logs = redact(url);
        let wake = Arc::new(Notify::new());
        let store = PgStore {
            inner: Arc::new(Inner {
                config,
                url: url.to_string(),
                url_for_logs,
                api: Pool::new(API_POOL, true),
                dispatcher: Pool::new(DISPATCHER_POOL, false),
                wake: wake.clone(),
                publisher: wake::Publisher::default(),
            }),
        };
        Ok(store)
    }

    /// Applies migrations without keeping anything open.
    pub fn migrate_only(url: &str) -> Result<(), StoreError> {
        PgStore::open(url).map(drop)
    }

    /// Connects to a database a `serve` already migrated, for commands that
    /// only read (`hookline status`): nothing is migrated, and a schema
    /// other than the one this binary knows is refused.
    pub fn open_existing(url: &str) -> Result<PgStore, StoreError> {
        let state = PgStore::schema_state(url)?;
        state.refuse_newer()?;
        if !state.pending.is_empty() {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {}, this hookline expects {}: run `hookline migrate` (or start \
                 `hookline serve`) first",
                state.current, state.known
            )));
        }
        PgStore::open_unmigrated(url)
    }

    /// The database's schema and the migrations still to apply; changes nothing.
    pub fn schema_state(url: &str) -> Result<SchemaState, StoreError> {
        let store = PgStore::open_unmigrated(url)?;
        let mut conn = store.inner.connect(true)?;
        schema::state(&mut conn.client)
    }

    /// Starts the wake-up publisher, the LISTEN task and the keeper of the
    /// planner's statistics (on the current runtime); they run as long as
    /// the process.
    pub fn start(&self) {
        tokio::spawn(wake::publish(self.clone()));
        tokio::spawn(wake::listen(self.inner.url.clone(), self.inner.wake.clone()));
        tokio::spawn(statistics::keep_fresh(self.clone()));
    }

    pub fn wakeups(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    pub fn describe(&self) -> &str {
        &self.inner.url_for_logs
    }

    /// Waits until the wake-ups of every committed write are published (a
    /// publishing round locks queue entries, which a claim then skips).
    #[cfg(test)]
    pub(crate) async fn published(&self) {
        while !self.inner.publisher.idle() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// `f` runs again (on a fresh transaction) when its transaction lost a
    /// race, or when the connection died before COMMIT.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let (result, touched) = self.transaction(false, f).await;
        if result.is_ok() && !touched.is_empty() {
            self.inner.wake.notify_one();
            self.inner.publisher.add(touched);
        }
        result
    }

    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let mut f = Some(f);
        let (result, _) = self
            .transaction(true, move |tx| match f.take() {
                Some(f) => f(tx),
                // The first run lost its connection or a race (reads take
                // their closure by value): the caller may simply ask again.
                None => Err(E::from(StoreError::Unavailable("a read was interrupted; ask again".into()))),
            })
            .await;
        result
    }

    /// Runs `f` in a transaction on a blocking thread with a pooled
    /// connection; returns its result and the endpoints it touched.
    async fn transaction<T, E, F>(&self, read_only: bool, f: F) -> (Result<T, E>, Touched)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let Ok(_permit) = self.inner.api.permits.acquire().await else {
            return (Err(E::from(StoreError::Backend("the connection pool is closed".into()))), Vec::new());
        };
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || inner.run_transaction(read_only, f));
        task.await.unwrap_or_else(|e| (Err(E::from(task_failed(e))), Vec::new()))
    }

    /// Runs a dispatcher operation (`op`) in one non-durable transaction,
    /// again when it loses a race.
    async fn dispatcher_op<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgTx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.dispatcher_run(false, op).await
    }

    /// Runs a dispatcher operation of one statement with no transaction
    /// around it (the statement commits itself): one round trip, where
    /// BEGIN and COMMIT would add two. Again when it loses a race, so the
    /// statement must be one that can run twice.
    async fn dispatcher_statement<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgTx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        self.dispatcher_run(true, op).await
    }

    async fn dispatcher_run<T, F>(&self, autocommit: bool, mut op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut PgTx<'_, '_>) -> StoreResult<T> + Send + 'static,
    {
        let Ok(_permit) = self.inner.dispatcher.permits.acquire().await else {
            return Err(StoreError::Backend("the connection pool is closed".into()));
        };
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut last = StoreError::Backend("no attempt was made".into());
            for _ in 0..MAX_TRIES {
                let mut conn = inner.connection(&inner.dispatcher)?;
                let run = Inner::run_once(&mut conn, autocommit, &mut op);
                inner.give_back(&inner.dispatcher, conn);
                match run {
                    // New deliveries (operational webhooks) wake the nodes.
                    (Run::Done(result), touched) => {
                        if result.is_ok() && !touched.is_empty() {
                            inner.wake.notify_one();
                            inner.publisher.add(touched);
                        }
                        return result;
                    }
                    (Run::Again(e), _) => last = e,
                }
            }
            Err(last)
        });
        task.await.unwrap_or_else(|e| Err(task_failed(e)))
    }

    // ---- the dispatcher's interface ---------------------------------------

    pub async fn claim(&self, req: ClaimRequest) -> StoreResult<Claimed> {
        self.dispatcher_op(move |tx| dispatch_queue::claim(tx, &req)).await
    }

    pub async fn record_outcomes(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after: chrono::Duration,
    ) -> StoreResult<Recorded> {
        let retries: Touched = outcomes
            .iter()
            .filter(|o| matches!(o.next, super::queue::NextStep::RetryIn(_)))
            .map(|o| (o.attempt.endpoint_id.clone(), None))
            .collect();
        let recorded =
            self.dispatcher_op(move |tx| dispatch_queue::record_outcomes(tx, &outcomes, disable_after)).await?;
        if !retries.is_empty() {
            self.inner.publisher.add(retries);
        }
        Ok(recorded)
    }

    pub async fn extend_leases(&self, leases: Vec<LeaseRef>, lease: chrono::Duration) -> StoreResult<usize> {
        self.dispatcher_op(move |tx| dispatch_queue::extend_leases(tx, &leases, lease)).await
    }

    pub async fn sampled_overview(
        &self,
        max_age: chrono::Duration,
    ) -> StoreResult<crate::store::model::DeliveryOverview> {
        self.dispatcher_op(move |tx| insights::sampled_overview(tx, max_age)).await
    }

    /// `None` when another node holds the sweep.
    pub async fn purge_expired(&self, retention: chrono::Duration, batch: usize) -> StoreResult<Option<Purged>> {
        // Its own short transaction: the repair locks queue entries, which
        // must not stay locked while a batch of deletions runs.
        self.dispatcher_op(dispatch_queue::repair_queue).await?;
        self.dispatcher_op(move |tx| dispatch_queue::purge_expired(tx, retention, batch)).await
    }
}

impl Inner {
    fn connect(&self, durable: bool) -> StoreResult<PgConn> {
        let mut client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to {}: {e}", self.url_for_logs)))?;
        // API writes are answered only once durable, whatever the server's
        // default; the dispatcher's sessions need not be.
        let commit = if durable { "on" } else { "off" };
        // Every session keeps the server's plan cache mode: a statement
        // switches to a generic plan after five runs when that plan costs
        // no more than planning it each time. Generic plans made while the
        // tables were small would scan them; `statistics` analyzes the
        // tables as they grow, which makes those plans again. (The
        // dispatcher's sessions planned every statement until that was
        // there: a sixth of PostgreSQL's CPU under ingest.)
        client
            .batch_execute(&format!("SET synchronous_commit = {commit}; SET application_name = 'hookline'"))
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(PgConn { client, statements: HashMap::new(), durable })
    }

    fn connection(&self, pool: &Pool) -> StoreResult<PgConn> {
        loop {
            let pooled = pool.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match pooled {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => return self.connect(pool.durable),
            }
        }
    }

    fn give_back(&self, pool: &Pool, conn: PgConn) {
        if !conn.client.is_closed() {
            pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
    }

    fn run_transaction<T, E, F>(&self, read_only: bool, mut f: F) -> (Result<T, E>, Touched)
    where
        E: From<StoreError>,
        F: FnMut(&mut dyn Tx) -> Result<T, E>,
    {
        let mut last = StoreError::Backend("no attempt was made".into());
        for _ in 0..MAX_TRIES {
            let mut conn = match self.connection(&self.api) {
                Ok(c) => c,
                Err(e) => return (Err(E::from(e)), Vec::new()),
            };
            let run = Inner::run_once(&mut conn, read_only, &mut |tx: &mut PgTx<'_, '_>| f(tx));
            self.give_back(&self.api, conn);
            match run {
                (Run::Done(result), touched) => return (result, touched),
                (Run::Again(e), _) => last = e,
            }
        }
        (Err(E::from(last)), Vec::new())
    }

    /// One run of `f` in one transaction, or with each statement on its
    /// own (`autocommit`).
    fn run_once<T, E, F>(conn: &mut PgConn, autocommit: bool, f: &mut F) -> (Run<T, E>, Touched)
    where
        E: From<StoreError>,
        F: FnMut(&mut PgTx<'_, '_>) -> Result<T, E>,
    {
        if autocommit {
            // Reads need no transaction: each statement is its own
            // snapshot. Nor does a write of one statement, which commits
            // itself (`dispatcher_statement`).
            let mut ptx = PgTx::new(Session::Autocommit(&mut conn.client), &mut conn.statements);
            let result = f(&mut ptx);
            // A statement that failed committed nothing of its own.
            return match (result, ptx.failure) {
                (Err(_), Some(Failure::Lost)) => {
                    (Run::Again(StoreError::Unavailable("connection lost".into())), Vec::new())
                }
                (Err(_), Some(Failure::Retry)) => {
                    (Run::Again(StoreError::Backend("statement retried".into())), Vec::new())
                }
                (result, _) => (Run::Done(result), std::mem::take(&mut ptx.touched)),
            };
        }
        let began = std::time::Instant::now();
        let mut tx = match conn.client.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let (failure, error) = classify(e);
                return match failure {
                    Some(_) => (Run::Again(error), Vec::new()),
                    None => (Run::Done(Err(E::from(error))), Vec::new()),
                };
            }
        };
        let mut ptx = PgTx::new(Session::Transaction(&mut tx), &mut conn.statements);
        let result = f(&mut ptx);
        let (failure, touched) = (ptx.failure, std::mem::take(&mut ptx.touched));
        match result {
            Ok(value) => match tx.commit() {
                Ok(()) => {
                    if conn.durable {
                        crate::ops::metrics::get().store_commit(began.elapsed(), 1);
                    }
                    (Run::Done(Ok(value)), touched)
                }
                // A serialization failure at COMMIT means nothing committed.
                Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                    (Run::Again(classify(e).1), Vec::new())
                }
                // Otherwise the outcome is unknown (the connection may have
                // died after the server committed): never run it again, and
                // never answer success.
                Err(e) => (Run::Done(Err(E::from(classify(e).1))), Vec::new()),
            },
            Err(e) => {
                drop(tx);
                match failure {
                    // Nothing was committed: running it again is safe.
                    Some(Failure::Retry) | Some(Failure::Lost) => {
                        (Run::Again(StoreError::Backend("transaction retried".into())), Vec::new())
                    }
                    None => (Run::Done(Err(e)), Vec::new()),
                }
            }
        }
    }
}

/// The URL without its password, for logs and messages.
fn redact(url: &str) -> String {
    crate::config::without_password(url).unwrap_or_else(|| "the configured database".to_string())
}

/// Sleeps a little more after each failed try, for background loops.
pub(crate) fn backoff(tries: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(tries.min(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_values_are_told_from_the_servers_condition() {
        let refused = [
            SqlState::RAISE_EXCEPTION,
            SqlState::CHECK_VIOLATION,
            SqlState::NOT_NULL_VIOLATION,
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            SqlState::PROGRAM_LIMIT_EXCEEDED,
        ];
        for code in refused {
            assert!(refuses_the_values(&code), "{}", code.code());
        }
        let waits = [
            SqlState::DISK_FULL,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::QUERY_CANCELED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::CONNECTION_FAILURE,
            SqlState::IO_ERROR,
            SqlState::UNDEFINED_COLUMN,
            SqlState::FEATURE_NOT_SUPPORTED,
            SqlState::INSUFFICIENT_PRIVILEGE,
        ];
        for code in waits {
            assert!(!refuses_the_values(&code), "{}", code.code());
        }
    }
}
