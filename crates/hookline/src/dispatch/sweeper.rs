//! Retention: deletes payloads, attempts and messages past their time in
//! small batches, so live traffic never waits on one long delete; and, hourly,
//! ended background tasks and revocations of expired tokens.

use std::time::Duration;

use tokio::sync::watch;

use crate::ops::metrics::{self, Deleted};
use crate::ops::status;
use crate::store::Store;

const BATCH: usize = 500;

/// How often records that outlive their use are deleted: ended background
/// tasks, and revocations of tokens that have expired anyway.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

async fn purge_records(store: &Store) -> Result<(), crate::store::StoreError> {
    store
        .write(|tx| {
            let now = crate::store::model::now();
            tx.purge_ended_tasks(now - crate::tasks::KEEP_ENDED)?;
            tx.purge_revoked_tokens(now)?;
            Ok(())
        })
        .await
}

/// Sweeps every so often until `shutdown` turns true.
pub async fn sweep_forever(store: Store, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    let every = (retention / 4).clamp(Duration::from_millis(500), Duration::from_secs(60));
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(90));
    let mut last_housekeeping = None::<tokio::time::Instant>;
    {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            // What this sweep deleted; `None` until a batch ran here.
            let mut swept: Option<Deleted> = None;
            loop {
                match store.purge_expired(retention, BATCH).await {
                    // Another node is sweeping.
                    Ok(None) => break,
                    Ok(Some(p)) => {
                        let batch = Deleted {
                            payloads: p.payloads as u64,
                            messages: p.messages as u64,
                            attempts: p.attempts as u64,
                            idempotency_keys: p.idempotency_keys as u64,
                        };
                        metrics::get().retention_deleted(&batch);
                        let total = swept.get_or_insert_with(Deleted::default);
                        total.payloads += batch.payloads;
                        total.messages += batch.messages;
                        total.attempts += batch.attempts;
                        total.idempotency_keys += batch.idempotency_keys;
                        if p.payloads + p.messages + p.attempts + p.idempotency_keys > 0 {
                            tracing::info!(
                                payloads = p.payloads,
                                messages = p.messages,
                                attempts = p.attempts,
                                "retention sweep"
                            );
                        }
                        if p.payloads < BATCH && p.messages < BATCH && p.attempts < BATCH && p.idempotency_keys < BATCH
                        {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "retention sweep failed");
                        swept = None;
                        break;
                    }
                }
            }
            if last_housekeeping.is_none_or(|at| at.elapsed() > HOUSEKEEPING_EVERY) {
                match purge_records(&store).await {
                    Ok(()) => last_housekeeping = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "purging ended tasks and expired revocations failed"),
                }
            }
            // For `hookline status`: when the last complete sweep ran.
            if let Some(deleted) = swept {
                if let Err(e) = status::record_sweep(&store, deleted).await {
                    tracing::warn!(error = %e, "recording the retention sweep failed");
                }
            }
        }
    }
}
