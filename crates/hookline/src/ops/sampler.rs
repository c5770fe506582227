//! Samples the store's figures into the metrics' gauges every few seconds:
//! one aggregate query (the operator overview's), never one per request.

use std::time::Duration;

use tokio::sync::watch;

use super::metrics::{self, BacklogSample};
use crate::store::model::{now, DeliveryOverview};
use crate::store::{OverviewWindow, Store, StoreError};

/// Time between two samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// A sample that takes longer than this counts as a failed one.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the store's figures once (also what `hookline status` shows).
pub async fn read_backlog(store: &Store) -> Result<(BacklogSample, DeliveryOverview), StoreError> {
    let window = OverviewWindow::counts_only(now());
    let overview = store.read(move |tx| tx.delivery_overview(&window)).await?;
    Ok((backlog_sample(&overview), overview))
}

/// The metrics' view of an overview's counts.
fn backlog_sample(overview: &DeliveryOverview) -> BacklogSample {
    let now = now();
    let oldest_due_age = overview.oldest_due.map(|due| (now - due).to_std().unwrap_or_default()).unwrap_or_default();
    BacklogSample {
        pending: overview.backlog,
        due: overview.due_now,
        oldest_due_age,
        endpoints_failing: overview.failing_count,
        endpoints_disabled: overview.disabled_count,
    }
}

/// Samples until `shutdown`; `in_flight` reads this node's attempts in flight.
pub async fn sample_forever(store: Store, in_flight: impl Fn() -> usize, mut shutdown: watch::Receiver<bool>) {
    let metrics = metrics::get();
    let mut failing = false;
    loop {
        metrics.in_flight(in_flight());
        // Shared by the nodes of one database: a sample is at most one
        // interval old, whichever node took it.
        let max_age = chrono::Duration::from_std(SAMPLE_INTERVAL).unwrap_or_default();
        match tokio::time::timeout(SAMPLE_TIMEOUT, store.sampled_overview(max_age)).await {
            Ok(Ok(overview)) => {
                metrics.backlog(&backlog_sample(&overview));
                metrics.store_up(true);
                failing = false;
            }
            outcome => {
                metrics.store_up(false);
                if !failing {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {SAMPLE_TIMEOUT:?}"),
                    };
                    tracing::warn!(error = %why, "sampling the store for metrics failed");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_INTERVAL) => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
    }
}
