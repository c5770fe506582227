//! Readiness: whether this node should get traffic. `GET /api/v1/health`
//! keeps Svix's shape (204, always, while the process answers: liveness);
//! `GET /api/v1/health/ready` (a Hookline extension in the route table)
//! answers 200 only when the store answers a query and the dispatcher's
//! claim loop has gone round recently, and 503 with a JSON body saying which
//! check failed otherwise, so an orchestrator stops routing to a broken node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::store::{Store, StoreError};

/// A claim loop silent for longer than this is not running. It goes round
/// at least every second when idle; a claim on a slow store may take a few.
pub const DISPATCHER_STALE_AFTER: Duration = Duration::from_secs(15);
/// The store must answer within this.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// When a loop last went round: written by the loop, read by readiness.
#[derive(Clone)]
pub struct Heartbeat {
    /// Milliseconds since `origin`, plus one; 0 means never.
    last: Arc<AtomicU64>,
    origin: Instant,
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat { last: Arc::new(AtomicU64::new(0)), origin: Instant::now() }
    }
}

impl Heartbeat {
    /// The loop is alive now.
    pub fn beat(&self) {
        let ms = self.origin.elapsed().as_millis() as u64 + 1;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// How long ago the last beat was; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        match self.last.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.origin.elapsed().saturating_sub(Duration::from_millis(ms - 1))),
        }
    }
}

/// One check's result, as readiness reports it.
#[derive(Debug, Serialize, schemars::JsonSchema, PartialEq, Eq)]
pub struct Check {
    /// `ok` or `error`.
    #[schemars(extend("enum" = ["ok", "error"]))]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Check {
    fn ok() -> Check {
        Check { status: "ok", error: None }
    }

    fn failed(why: String) -> Check {
        Check { status: "error", error: Some(why) }
    }

    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub store: Check,
    pub dispatcher: Check,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.store.is_ok() && self.dispatcher.is_ok()
    }

    /// What failed, in one sentence.
    pub fn detail(&self) -> String {
        let failed: Vec<String> = [("store", &self.store), ("dispatcher", &self.dispatcher)]
            .into_iter()
            .filter_map(|(name, c)| c.error.as_ref().map(|e| format!("{name}: {e}")))
            .collect();
        if failed.is_empty() {
            "ready".into()
        } else {
            format!("not ready: {}", failed.join("; "))
        }
    }
}

/// Runs both checks.
pub async fn check(store: &Store, dispatcher: &Heartbeat) -> Readiness {
    let store = match tokio::time::timeout(STORE_TIMEOUT, ping(store)).await {
        Ok(Ok(())) => Check::ok(),
        Ok(Err(e)) => Check::failed(format!("the store did not answer: {e}")),
        Err(_) => Check::failed(format!("the store did not answer within {STORE_TIMEOUT:?}")),
    };
    let dispatcher = dispatcher_check(dispatcher.age());
    Readiness { store, dispatcher }
}

fn dispatcher_check(age: Option<Duration>) -> Check {
    match age {
        None => Check::failed("the claim loop has not started".into()),
        Some(age) if age > DISPATCHER_STALE_AFTER => {
            Check::failed(format!("the claim loop has not gone round for {}s", age.as_secs()))
        }
        Some(_) => Check::ok(),
    }
}

/// One cheap query through the ordinary read path.
async fn ping(store: &Store) -> Result<(), StoreError> {
    store.read(|tx| tx.meta("main_key_fingerprint").map(drop)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silent_claim_loop_is_not_ready() {
        assert!(!dispatcher_check(None).is_ok());
        assert!(dispatcher_check(Some(Duration::from_secs(1))).is_ok());
        let stale = dispatcher_check(Some(DISPATCHER_STALE_AFTER + Duration::from_secs(1)));
        assert!(!stale.is_ok());
        assert!(stale.error.unwrap().contains("has not gone round"));
    }

    #[test]
    fn a_heartbeat_knows_its_age() {
        let beat = Heartbeat::default();
        assert_eq!(beat.age(), None);
        beat.beat();
        assert!(beat.age().unwrap() < Duration::from_secs(1));
    }
}
