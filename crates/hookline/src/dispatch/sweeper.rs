//! Retention: deletes payloads, attempts and messages past their time in
//! small batches, so live traffic never waits on one long delete.

use std::time::Duration;

use tokio::sync::watch;

use crate::store::Store;

const BATCH: usize = 500;

/// Sweeps every so often until `shutdown` turns true.
pub async fn sweep_forever(store: Store, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    let every = (retention / 4).clamp(Duration::from_millis(500), Duration::from_secs(60));
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(90));
    {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            loop {
                match store.purge_expired(retention, BATCH).await {
                    // Another node is sweeping.
                    Ok(None) => break,
                    Ok(Some(p)) => {
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
                        break;
                    }
                }
            }
        }
    }
}
