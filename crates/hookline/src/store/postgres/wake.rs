//! Wake-ups across nodes.
//!
//! A write that makes deliveries due wakes its own node's dispatcher at
//! once. For the other nodes, and to close a race with a concurrent claim
//! (which may have computed its endpoint's next look from a snapshot taken
//! before this write committed), the [`Publisher`] re-marks those
//! endpoints' queue entries after the commit and sends one `NOTIFY` for all
//! writes since its last round. That runs outside the writes themselves:
//! a transaction that NOTIFYs holds a database-wide lock while it commits,
//! which would serialize every durable API commit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::{backoff, PgStore};
use crate::store::model::Timestamp;
use crate::store::StoreResult;

pub(super) const CHANNEL: &str = "hookline_work";

/// Endpoints made due by committed writes, waiting to be published.
#[derive(Default)]
pub(super) struct Publisher {
    state: Mutex<Round>,
    ready: Notify,
}

#[derive(Default)]
struct Round {
    pending: HashMap<String, Option<Timestamp>>,
    /// A round taken from `pending` is being published.
    publishing: bool,
}

impl Publisher {
    pub(super) fn add(&self, touched: Vec<(String, Option<Timestamp>)>) {
        let mut state = self.lock();
        for (endpoint, due) in touched {
            let entry = state.pending.entry(endpoint).or_insert(due);
            // The earliest time wins; `None` (now) is the earliest of all.
            *entry = match (*entry, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
        }
        drop(state);
        self.ready.notify_one();
    }

    fn take(&self) -> HashMap<String, Option<Timestamp>> {
        let mut state = self.lock();
        state.publishing = !state.pending.is_empty();
        std::mem::take(&mut state.pending)
    }

    fn round_done(&self) {
        self.lock().publishing = false;
    }

    /// Nothing waits to be published and no round is running.
    #[cfg(test)]
    pub(super) fn idle(&self) -> bool {
        let state = self.lock();
        state.pending.is_empty() && !state.publishing
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Round> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Rounds of publishing are at least this far apart: under load, one round
/// carries the wake-ups of many writes (the local node was woken at once;
/// this only delays the other nodes, by at most this much).
const ROUND_INTERVAL: Duration = Duration::from_millis(5);

/// Publishes wake-ups as they come, one round at a time: while a round
/// runs (and for `ROUND_INTERVAL`), the next one fills up.
pub(super) async fn publish(store: PgStore) {
    let mut failures = 0;
    loop {
        store.inner.publisher.ready.notified().await;
        tokio::time::sleep(ROUND_INTERVAL).await;
        let pending = store.inner.publisher.take();
        if pending.is_empty() {
            continue;
        }
        let mut entries: Vec<(String, Option<Timestamp>)> = pending.into_iter().collect();
        entries.sort();
        let sent: StoreResult<()> = store
            .dispatcher_statement(move |tx| {
                let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
                let due: Vec<Option<Timestamp>> = entries.iter().map(|(_, due)| *due).collect();
                super::deliveries::enqueue_committed_and_notify(tx, &ids, &due, CHANNEL)
            })
            .await;
        store.inner.publisher.round_done();
        match sent {
            Ok(()) => failures = 0,
            Err(e) => {
                // The writes themselves marked their queue entries; this
                // round was the fast path, and the sweep repairs the rest.
                tracing::warn!(error = %e, "publishing wake-ups failed");
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

/// Listens for other nodes' wake-ups, reconnecting as needed, and rings
/// `wake` for each (and once after every reconnect, for what was missed).
pub(super) async fn listen(url: String, wake: Arc<Notify>) {
    let mut failures = 0;
    loop {
        match listen_once(&url, &wake).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "listening for wake-ups failed; reconnecting");
            }
        }
        tokio::time::sleep(backoff(failures).max(Duration::from_millis(200))).await;
    }
}

async fn listen_once(url: &str, wake: &Notify) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if tx.send(()).is_err() {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    wake.notify_one();
    while rx.recv().await.is_some() {
        wake.notify_one();
    }
    driver.await.unwrap_or(Ok(()))
}
