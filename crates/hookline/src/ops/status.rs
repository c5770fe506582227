//! `hookline status [--json]`: the delivery backlog and endpoint health,
//! read from the store while `serve` runs (the embedded store is opened for
//! reading only, without the data-directory lock; PostgreSQL is only read).
//! Also where the retention sweeper records its last run, so that `status`
//! can show it on either backend.

use serde::{Deserialize, Serialize};

use super::metrics::Deleted;
use crate::config::Settings;
use crate::store::model::{now, Timestamp};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// The `meta` row holding the last retention sweep.
pub const LAST_SWEEP_META: &str = "last_retention_sweep";

/// One completed retention sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LastSweep {
    pub at: Timestamp,
    pub payloads: u64,
    pub messages: u64,
    pub attempts: u64,
    pub idempotency_keys: u64,
}

/// Records a sweep that ran to its end (called by the sweeper).
pub async fn record_sweep(store: &Store, deleted: Deleted) -> Result<(), StoreError> {
    let sweep = LastSweep {
        at: now(),
        payloads: deleted.payloads,
        messages: deleted.messages,
        attempts: deleted.attempts,
        idempotency_keys: deleted.idempotency_keys,
    };
    let text = serde_json::to_string(&sweep).expect("a sweep serializes");
    store.write(move |tx| tx.set_meta(LAST_SWEEP_META, &text)).await
}

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Deliveries owed (due, scheduled later, or in flight).
    pub backlog: u64,
    pub due_now: u64,
    /// When the oldest due delivery fell due, and how long ago.
    pub oldest_due: Option<Timestamp>,
    pub oldest_due_age_seconds: Option<f64>,
    pub failing_endpoints: u64,
    pub disabled_endpoints: u64,
    pub applications: u64,
    pub endpoints: u64,
    pub last_sweep: Option<LastSweep>,
}

/// Reads the status from an open store.
pub async fn read(store: &Store) -> Result<Status, StoreError> {
    let (sample, overview) = super::sampler::read_backlog(store).await?;
    let last_sweep = store.read(|tx| tx.meta(LAST_SWEEP_META)).await?;
    Ok(Status {
        backend: if store.is_embedded() { "sqlite" } else { "postgres" },
        backlog: sample.pending,
        due_now: sample.due,
        oldest_due: overview.oldest_due,
        oldest_due_age_seconds: overview.oldest_due.map(|_| sample.oldest_due_age.as_secs_f64()),
        failing_endpoints: sample.endpoints_failing,
        disabled_endpoints: sample.endpoints_disabled,
        applications: overview.applications,
        endpoints: overview.endpoints,
        last_sweep: last_sweep.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// `hookline status`.
pub async fn run(settings: &Settings, json: bool) -> Result<(), String> {
    let settings = settings.clone();
    let store = tokio::task::spawn_blocking(move || match &settings.database_url {
        Some(url) => PgStore::open_existing(url).map(Store::Postgres),
        None => SqliteStore::open_read_only(&settings.data_dir).map(Store::Sqlite),
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let status = read(&store).await.map_err(|e| e.to_string())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status).expect("a status serializes"));
    } else {
        print!("{}", text(&status, now()));
    }
    Ok(())
}

fn text(s: &Status, now: Timestamp) -> String {
    let oldest = match (s.oldest_due, s.oldest_due_age_seconds) {
        (Some(at), Some(age)) => format!("{} ago (due since {})", human(age), at.format("%Y-%m-%dT%H:%M:%SZ")),
        _ => "nothing due".into(),
    };
    let sweep = match &s.last_sweep {
        None => "never (the sweeper runs every minute while `serve` runs)".into(),
        Some(w) => format!(
            "{} ago ({}): {} payloads, {} messages, {} attempts, {} idempotency keys deleted",
            human((now - w.at).num_milliseconds().max(0) as f64 / 1000.0),
            w.at.format("%Y-%m-%dT%H:%M:%SZ"),
            w.payloads,
            w.messages,
            w.attempts,
            w.idempotency_keys
        ),
    };
    format!(
        "store:          {}\n\
         backlog:        {} deliveries owed (due, scheduled or in flight)\n\
         due now:        {}\n\
         oldest due:     {}\n\
         endpoints:      {} failing, {} disabled (of {} endpoints in {} applications)\n\
         last sweep:     {}\n",
        s.backend,
        s.backlog,
        s.due_now,
        oldest,
        s.failing_endpoints,
        s.disabled_endpoints,
        s.endpoints,
        s.applications,
        sweep
    )
}

/// `4s`, `3m 12s`, `2h 5m`, `3d 4h`.
fn human(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        assert_eq!(human(4.2), "4s");
        assert_eq!(human(192.0), "3m 12s");
        assert_eq!(human(7500.0), "2h 5m");
        assert_eq!(human(3.0 * 86400.0 + 4.0 * 3600.0), "3d 4h");
    }
}
