//! Durable state. One interface (`Tx`, the repository traits), one
//! implementation per backend; callers never see SQL.
//!
//! Work runs as closures over a transaction: `Store::write` for changes (all
//! of a closure commits, or none of it), `Store::read` for queries. The
//! embedded backend funnels writes through one writer thread that commits many
//! closures in one transaction (group commit); each closure still succeeds or
//! fails on its own.

pub mod model;
pub mod page;
pub mod postgres;
pub mod queue;
mod repo;
mod series;
pub mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

pub use repo::*;

use std::fmt;
use std::sync::Arc;

use tokio::sync::Notify;

use queue::{AttemptOutcome, ClaimReport, ClaimRequest, ClaimSink, Claimed, LeaseRef, Purged, Recorded};

/// What a store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A unique constraint: the named thing already exists.
    Conflict(&'static str),
    NotFound,
    /// The backend failed (I/O, corruption, a bug); not the caller's fault.
    Backend(String),
    /// The database cannot be reached right now; nothing was committed.
    Unavailable(String),
    /// A value the backend cannot store (PostgreSQL text holds no NUL).
    Invalid(&'static str),
    /// The backend refused the values written (a constraint, check or
    /// trigger; a value out of range), or a store job panicked on them: the
    /// same write fails again. Unlike `Backend` (the store's condition: a
    /// full disk, I/O, a timeout, a failover), waiting does not cure it.
    Refused(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(what) => write!(f, "{what} already exists"),
            StoreError::NotFound => write!(f, "not found"),
            StoreError::Backend(e) => write!(f, "store: {e}"),
            StoreError::Unavailable(e) => write!(f, "store unavailable: {e}"),
            StoreError::Invalid(why) => write!(f, "invalid value: {why}"),
            StoreError::Refused(e) => write!(f, "the store refused the statement: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// Where a store's schema stands against the migrations this binary knows.
#[derive(Debug, Clone)]
pub struct SchemaState {
    /// Migrations applied (the schema version).
    pub current: usize,
    /// Migrations this binary knows.
    pub known: usize,
    /// The ones not applied yet, in order: (version, SQL).
    pub pending: Vec<(usize, &'static str)>,
}

impl SchemaState {
    pub(crate) fn new(current: usize, migrations: &[&'static str]) -> SchemaState {
        let pending = migrations.iter().enumerate().skip(current).map(|(i, sql)| (i + 1, *sql)).collect();
        SchemaState { current, known: migrations.len(), pending }
    }

    /// Refuses a schema written by a newer Hookline, saying what to do.
    pub fn refuse_newer(&self) -> StoreResult<()> {
        if self.current > self.known {
            return Err(StoreError::Backend(format!(
                "the database is at schema version {}, newer than this hookline ({}) knows ({}): a newer \
                 release migrated it. Run that release or a later one (every node of a deployment must be \
                 upgraded together), or restore the backup taken before the upgrade; hookline never migrates a \
                 schema down",
                self.current,
                env!("CARGO_PKG_VERSION"),
                self.known
            )));
        }
        Ok(())
    }
}

/// The store a process runs on.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Runs `f` in a transaction that is durable on disk when this returns
    /// `Ok`. An `Err` from `f` undoes everything `f` did. `f` may run more
    /// than once (a backend retries a transaction that lost a race, e.g. a
    /// serialization failure): it must not have effects outside `tx`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.write(f).await,
            Store::Postgres(s) => s.write(f).await,
        }
    }

    /// [`write`](Self::write), with the result handed to `then` as soon as
    /// the transaction has ended (durable if `Ok`), on the thread that ends
    /// it. Returns once the work is handed over: `then` runs once, later,
    /// unless the store's writer stops first, which drops it unrun (and
    /// whatever it owns). On the embedded store that thread is the writer
    /// thread, right after the COMMIT, so an answer `then` sends skips a
    /// hop through a task woken only to pass it on: keep `then` short, the
    /// next batch waits for it.
    pub async fn write_then<T, E, F, C>(&self, f: F, then: C)
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        C: FnOnce(Result<T, E>) + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.write_then(f, then).await,
            Store::Postgres(s) => then(s.write(f).await),
        }
    }

    /// Runs `f` against a consistent snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.read(f).await,
            Store::Postgres(s) => s.read(f).await,
        }
    }

    /// The embedded store, which only one process may use at a time.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// Rung after a commit that made deliveries due (on any node, for
    /// stores shared by several).
    pub fn wakeups(&self) -> Arc<Notify> {
        match self {
            Store::Sqlite(s) => s.wakeups(),
            Store::Postgres(s) => s.wakeups(),
        }
    }

    // ---- the dispatcher's interface (see `queue`) ---------------------------

    pub async fn claim(&self, req: ClaimRequest) -> StoreResult<Claimed> {
        match self {
            Store::Sqlite(s) => s.claim(req).await,
            Store::Postgres(s) => s.claim(req).await,
        }
    }

    /// Claims what `sink` has room for and starts it there once committed;
    /// `None` when the sink had no room.
    pub async fn claim_into(&self, sink: Arc<dyn ClaimSink>) -> StoreResult<Option<ClaimReport>> {
        match self {
            Store::Sqlite(s) => s.claim_into(sink).await,
            Store::Postgres(s) => {
                let Some(req) = sink.request() else { return Ok(None) };
                let began = crate::ops::trace::now();
                let budget = req.slots.budget;
                let claimed = s.claim(req).await?;
                let report = ClaimReport::of(&claimed, budget);
                sink.start(claimed.jobs, began);
                Ok(Some(report))
            }
        }
    }

    /// Has the embedded store claim the deliveries each write makes due into
    /// `sink`, in the write's own transaction. Other stores wake the
    /// dispatcher's loop instead (on every node).
    pub fn claim_on_commit(&self, sink: Arc<dyn ClaimSink>) {
        match self {
            Store::Sqlite(s) => s.claim_on_commit(sink),
            Store::Postgres(_) => {}
        }
    }

    /// Records attempts and moves their deliveries on; an outcome whose claim
    /// was lost (or whose message or endpoint is gone) keeps its attempt row
    /// when it can and changes nothing else.
    pub async fn record_outcomes(
        &self,
        outcomes: Vec<AttemptOutcome>,
        disable_after: chrono::Duration,
    ) -> StoreResult<Recorded> {
        match self {
            Store::Sqlite(s) => s.record_outcomes(outcomes, disable_after).await,
            Store::Postgres(s) => s.record_outcomes(outcomes, disable_after).await,
        }
    }

    /// Keeps the leases of attempts in flight for `lease` more, from now.
    pub async fn extend_leases(&self, leases: Vec<LeaseRef>, lease: chrono::Duration) -> StoreResult<usize> {
        match self {
            Store::Sqlite(s) => s.extend_leases(leases, lease).await,
            Store::Postgres(s) => s.extend_leases(leases, lease).await,
        }
    }

    /// Voids every claim: right only for a store no other process uses (the
    /// embedded store under its data-dir lock), at start-up.
    pub async fn release_all_claims(&self) -> StoreResult<usize> {
        match self {
            Store::Sqlite(s) => s.release_all_claims().await,
            // Other nodes' claims are live leases: never void them.
            Store::Postgres(_) => Ok(0),
        }
    }

    /// The overview's counts (no lists, no recent attempts) for the
    /// metrics, taken at most `max_age` ago. Counting the backlog reads every
    /// delivery not finished, so on a store several nodes share one node
    /// counts at a time and the others read its counts.
    pub async fn sampled_overview(&self, max_age: chrono::Duration) -> StoreResult<model::DeliveryOverview> {
        match self {
            Store::Sqlite(_) => {
                let window = OverviewWindow::counts_only(model::now());
                self.read(move |tx| tx.delivery_overview(&window)).await
            }
            Store::Postgres(s) => s.sampled_overview(max_age).await,
        }
    }

    /// One batch of the retention sweep; `None` when another node is
    /// sweeping right now.
    pub async fn purge_expired(&self, retention: chrono::Duration, batch: usize) -> StoreResult<Option<Purged>> {
        match self {
            Store::Sqlite(s) => s.purge_expired(retention, batch).await.map(Some),
            Store::Postgres(s) => s.purge_expired(retention, batch).await,
        }
    }
}
