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
mod deliveries;
mod endpoints;
mod event_types;
mod idempotency;
mod insights;
mod lock;
mod messages;
mod meta;
mod schema;
mod sql;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, Tx};
pub use lock::DataDirLock;

/// Largest number of jobs committed in one transaction.
const MAX_BATCH: usize = 512;
const READ_POOL_SIZE: usize = 8;

/// A transaction as the repository traits see it.
pub struct SqliteTx<'c> {
    conn: &'c Connection,
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
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/hookline.db`, migrates it and starts the writer.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let path = dir.join("hookline.db");
        let writer = open_connection(&path, false)?;
        schema::migrate(&writer)?;
        let (jobs, queue) = mpsc::channel::<Job>(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("hookline-sqlite-writer".into())
            .spawn(move || run_writer(writer, queue))
            .map_err(|e| StoreError::Backend(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore { inner: Arc::new(Inner { jobs, readers: Mutex::new(Vec::new()), path }) })
    }

    /// Applies migrations without starting anything else.
    pub fn migrate_only(dir: &Path) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Backend(format!("{}: {e}", dir.display())))?;
        let conn = open_connection(&dir.join("hookline.db"), false)?;
        schema::migrate(&conn)
    }

    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => run_in_savepoint(conn, f),
                None => Err(E::from(StoreError::Backend("the store could not open a transaction".into()))),
            };
            Box::new(move |commit: Result<(), StoreError>| {
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
            let result = f(&mut SqliteTx { conn: &conn });
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

fn run_in_savepoint<T, E, F>(conn: &Connection, f: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnOnce(&mut dyn Tx) -> Result<T, E>,
{
    conn.execute_batch("SAVEPOINT job").map_err(|e| E::from(backend(e)))?;
    // A panicking job must not take the writer thread (and every later
    // write) down with it: it fails alone, like a job that returned an error.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut SqliteTx { conn })))
        .unwrap_or_else(|_| Err(E::from(StoreError::Backend("a store job panicked; it was rolled back".into()))));
    let end = if result.is_ok() { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
    conn.execute_batch(end).map_err(|e| E::from(backend(e)))?;
    result
}

fn run_writer(conn: Connection, mut queue: mpsc::Receiver<Job>) {
    let mut finishers = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
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
        }
        for finish in finishers.drain(..) {
            finish(commit.clone());
        }
    }
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

    fn endpoint(id: &str, app_id: &str) -> crate::store::model::Endpoint {
        let now = chrono::Utc::now();
        crate::store::model::Endpoint {
            id: id.into(),
            app_id: app_id.into(),
            uid: None,
            url: "https://example.com".into(),
            description: String::new(),
            version: 1,
            disabled: false,
            rate_limit: None,
            filter_types: None,
            channels: None,
            metadata: Default::default(),
            headers: Default::default(),
            secret: crate::store::model::SealedSecret(vec![0; 40]),
            retired_secrets: Vec::new(),
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// One app, the given endpoints, and one message owed to each of them.
    async fn fixture(endpoints: &[&'static str]) -> (tempfile::TempDir, SqliteStore) {
        use crate::store::model::{Delivery, DeliveryStatus, Message};
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let eps: Vec<&'static str> = endpoints.to_vec();
        store
            .write(move |tx| {
                tx.insert_application(&app("app_f"))?;
                let now = chrono::Utc::now();
                for (i, ep) in eps.iter().enumerate() {
                    tx.insert_endpoint(&endpoint(ep, "app_f"))?;
                    let msg_id = format!("msg_{i}");
                    tx.insert_message(&Message {
                        id: msg_id.clone(),
                        app_id: "app_f".into(),
                        event_type: "t".into(),
                        // Short ids are not well-formed: look them up as eventId.
                        event_id: Some(msg_id.clone()),
                        channels: None,
                        tags: None,
                        payload: Some("{}".into()),
                        payload_expires_at: now - chrono::Duration::seconds(1),
                        deliver_at: None,
                        created_at: now,
                    })?;
                    tx.insert_delivery(&Delivery {
                        msg_id,
                        endpoint_id: ep.to_string(),
                        app_id: "app_f".into(),
                        status: DeliveryStatus::Pending,
                        attempts: 0,
                        next_attempt_at: Some(now),
                        updated_at: now,
                    })?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        (dir, store)
    }

    /// A claim as the dispatcher makes it (512 slots, 128 kept for idle endpoints).
    fn claim_request(
        now: chrono::DateTime<chrono::Utc>,
        in_flight: std::collections::HashMap<String, usize>,
        total_in_flight: usize,
    ) -> crate::store::model::ClaimRequest {
        crate::store::model::ClaimRequest {
            now,
            lease_until: now + chrono::Duration::seconds(30),
            budget: 512 - total_in_flight,
            per_endpoint_cap: 64,
            in_flight,
            total_in_flight,
            busy_slot_limit: 384,
            default_rate_limit: 1000,
        }
    }

    #[tokio::test]
    async fn busy_endpoints_cannot_take_the_slots_kept_for_idle_ones() {
        let (_dir, store) = fixture(&["ep_capped", "ep_idle", "ep_busy"]).await;
        let now = chrono::Utc::now();
        let in_flight = [("ep_capped".to_string(), 64), ("ep_busy".to_string(), 5)].into_iter().collect();
        let req = claim_request(now, in_flight, 400);
        let claimed = store.write(move |tx| tx.claim_deliveries(&req)).await.unwrap();
        let ids: Vec<&str> = claimed.jobs.iter().map(|j| j.endpoint_id.as_str()).collect();
        assert_eq!(ids, ["ep_idle"], "only the idle endpoint may start work");
        assert!(claimed.waiting_for_slots);
        // The waiting endpoints' due work does not make the dispatcher spin:
        // the only other queued work is the idle endpoint's lease.
        assert!(claimed.next_due.unwrap() > now + chrono::Duration::seconds(20));
    }

    #[tokio::test]
    async fn a_row_referring_to_a_deleted_one_is_not_found_not_a_conflict() {
        use crate::store::model::{Delivery, DeliveryStatus};
        let (_dir, store) = fixture(&["ep_a"]).await;
        let now = chrono::Utc::now();
        let delivery = |endpoint: &str| Delivery {
            msg_id: "msg_0".into(),
            endpoint_id: endpoint.into(),
            app_id: "app_f".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            updated_at: now,
        };
        let gone = delivery("ep_deleted");
        let result = store.write(move |tx| tx.insert_delivery(&gone)).await;
        assert_eq!(result, Err(StoreError::NotFound));
        let twice = delivery("ep_a");
        let result = store.write(move |tx| tx.insert_delivery(&twice)).await;
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
        let result =
            store.write(|tx| tx.schedule_delivery("app_f", "msg_0", "ep_deleted", chrono::Utc::now(), true)).await;
        assert_eq!(result, Err(StoreError::NotFound));
    }

    #[tokio::test]
    async fn payloads_are_kept_while_a_delivery_is_owed() {
        let (_dir, store) = fixture(&["ep_a"]).await;
        let retention = chrono::Duration::days(90);
        let purged = store.write(move |tx| tx.purge_expired(chrono::Utc::now(), retention, 100)).await.unwrap();
        assert_eq!(purged.payloads, 0, "the delivery is still pending");
        let payload = store.read(|tx| tx.message("app_f", "msg_0")).await.unwrap().unwrap().payload;
        assert!(payload.is_some());
        // Deliver it: claim, then record a success.
        use crate::store::model::*;
        let now = chrono::Utc::now();
        let req = claim_request(now, Default::default(), 0);
        let job = store.write(move |tx| tx.claim_deliveries(&req)).await.unwrap().jobs.remove(0);
        let outcome = AttemptOutcome {
            claim_id: job.claim_id,
            attempt: Attempt {
                id: "atmpt_1".into(),
                msg_id: job.msg_id,
                endpoint_id: job.endpoint_id,
                app_id: job.app_id,
                url: job.url,
                status: DeliveryStatus::Success,
                response_status_code: 200,
                response: String::new(),
                response_duration_ms: 1,
                trigger: AttemptTrigger::Scheduled,
                error: None,
                created_at: now,
            },
            next: NextStep::Succeeded,
            disable_after: chrono::Duration::days(5),
            disable_now: false,
            failed_on_our_side: false,
        };
        store.write(move |tx| tx.finish_delivery(&outcome)).await.unwrap();
        let purged = store.write(move |tx| tx.purge_expired(chrono::Utc::now(), retention, 100)).await.unwrap();
        assert_eq!(purged.payloads, 1, "delivered: the expired payload goes");
    }
}
