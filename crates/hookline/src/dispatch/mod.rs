//! The delivery engine: claims due deliveries, sends them, records outcomes.
//!
//! The delivery rows in the store are the only queue. This loop claims a
//! bounded window of them as leases (rate limits are applied inside the
//! claim), runs one task per attempt, and records each outcome in the store.
//! Nothing here survives a crash, and nothing needs to: a lease not
//! finished falls due again by itself.

mod retry;
mod sender;
mod ssrf;
mod sweeper;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{watch, Notify};

pub use retry::{AttemptReport, RetrySchedule};
pub use ssrf::SsrfGuard;
pub use sweeper::spawn_sweeper;

use crate::config::Settings;
use crate::ids::IdKind;
use crate::keys::SecretCipher;
use crate::store::model::{
    Attempt, AttemptOutcome, AttemptTrigger, ClaimRequest, DeliveryJob, DeliveryStatus, NextStep,
};
use crate::store::Store;
use sender::{Outgoing, SendResult, Sender, SigningKeys};

/// Attempts in flight on this node, at most.
const MAX_IN_FLIGHT: usize = 512;
/// Attempts in flight to one endpoint on this node, at most.
const PER_ENDPOINT_IN_FLIGHT: usize = 64;
/// Slots only endpoints with nothing in flight may take: however many slow
/// endpoints hold the rest, a fresh endpoint's delivery can always start.
const RESERVED_FOR_IDLE_ENDPOINTS: usize = 128;
/// Longest sleep between claims when nothing signals new work.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    store: Store,
    cipher: SecretCipher,
    sender: Sender,
    schedule: RetrySchedule,
    lease: chrono::Duration,
    disable_after: chrono::Duration,
    default_rate_limit: u32,
    in_flight: Mutex<HashMap<String, usize>>,
    total_in_flight: AtomicUsize,
    /// Rung when an attempt finishes, freeing a slot.
    slot_freed: Notify,
}

impl Dispatcher {
    pub fn new(store: Store, cipher: SecretCipher, settings: &Settings) -> Result<Arc<Dispatcher>, String> {
        let guard = SsrfGuard::new(settings.allowed_private_cidrs.clone());
        let timeout = settings.attempt_timeout;
        // A lease must outlive the attempt it covers, or a slow but live
        // attempt would be sent twice.
        let lease = Duration::from_secs(30).max(timeout + Duration::from_secs(5));
        Ok(Arc::new(Dispatcher {
            store,
            cipher,
            sender: Sender::new(guard, timeout)?,
            schedule: RetrySchedule::new(settings.retry_schedule.clone()),
            lease: chrono::Duration::from_std(lease).map_err(|e| e.to_string())?,
            disable_after: chrono::Duration::from_std(settings.disable_after).map_err(|e| e.to_string())?,
            default_rate_limit: settings.default_rate_limit,
            in_flight: Mutex::new(HashMap::new()),
            total_in_flight: AtomicUsize::new(0),
            slot_freed: Notify::new(),
        }))
    }

    /// Runs until `shutdown` turns true, then waits (up to `drain`) for the
    /// attempts in flight to be recorded.
    pub async fn run(self: Arc<Self>, new_work: Arc<Notify>, mut shutdown: watch::Receiver<bool>, drain: Duration) {
        while !*shutdown.borrow() {
            let budget = MAX_IN_FLIGHT.saturating_sub(self.total_in_flight.load(Ordering::Acquire));
            let mut wait = POLL_INTERVAL;
            let mut waiting_for_slots = budget == 0;
            if budget > 0 {
                match self.claim(budget).await {
                    Ok((claimed, next_due, waiting)) => {
                        waiting_for_slots = waiting;
                        let saturated = claimed == budget;
                        if let Some(due) = next_due {
                            let until = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                            wait = wait.min(until);
                        }
                        if saturated {
                            continue;
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming deliveries failed; retrying"),
                }
            }
            tokio::select! {
                _ = new_work.notified() => {}
                _ = self.slot_freed.notified(), if waiting_for_slots => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(2))) => {}
                _ = shutdown.changed() => {}
            }
        }
        let deadline = tokio::time::Instant::now() + drain;
        while self.total_in_flight.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, self.slot_freed.notified()).await;
        }
        let left = self.total_in_flight.load(Ordering::Acquire);
        if left > 0 {
            tracing::warn!(in_flight = left, "shutting down with attempts in flight; their leases will expire");
        }
    }

    async fn claim(self: &Arc<Self>, budget: usize) -> Result<(usize, Option<chrono::DateTime<Utc>>, bool), String> {
        let in_flight = self.in_flight.lock().expect("in-flight map poisoned").clone();
        let total_in_flight = self.total_in_flight.load(Ordering::Acquire);
        let (lease, default_rate_limit) = (self.lease, self.default_rate_limit);
        let claimed = self
            .store
            .write(move |tx| {
                // Read the clock in the writer: the rate-limit log must hold
                // the time the claim commits, not when it was queued.
                let now = Utc::now();
                tx.claim_deliveries(&ClaimRequest {
                    now,
                    lease_until: now + lease,
                    budget,
                    per_endpoint_cap: PER_ENDPOINT_IN_FLIGHT,
                    in_flight,
                    total_in_flight,
                    busy_slot_limit: MAX_IN_FLIGHT - RESERVED_FOR_IDLE_ENDPOINTS,
                    default_rate_limit,
                })
            })
            .await
            .map_err(|e| e.to_string())?;
        let count = claimed.jobs.len();
        for job in claimed.jobs {
            self.total_in_flight.fetch_add(1, Ordering::AcqRel);
            *self.in_flight.lock().expect("in-flight map poisoned").entry(job.endpoint_id.clone()).or_default() += 1;
            let this = self.clone();
            tokio::spawn(async move {
                let endpoint_id = job.endpoint_id.clone();
                this.attempt(job).await;
                this.release_slot(&endpoint_id);
            });
        }
        Ok((count, claimed.next_due, claimed.waiting_for_slots))
    }

    fn release_slot(&self, endpoint_id: &str) {
        let mut map = self.in_flight.lock().expect("in-flight map poisoned");
        if let Some(n) = map.get_mut(endpoint_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(endpoint_id);
            }
        }
        drop(map);
        self.total_in_flight.fetch_sub(1, Ordering::AcqRel);
        self.slot_freed.notify_one();
    }

    async fn attempt(&self, job: DeliveryJob) {
        let started_at = Utc::now();
        // Set when no request could be made for a reason of ours (payload
        // gone, key unusable): such failures never count against the endpoint.
        let mut failed_on_our_side = job.payload.is_none();
        let result = match &job.payload {
            None => SendResult {
                status: None,
                body: String::new(),
                duration: Duration::ZERO,
                error: Some("the message payload has expired or was expunged".into()),
                retry_after: None,
            },
            Some(payload) => match self.signing_keys(&job) {
                Ok(keys) => {
                    self.sender
                        .send(Outgoing {
                            url: &job.url,
                            msg_id: &job.msg_id,
                            timestamp: started_at.timestamp(),
                            body: payload.as_bytes(),
                            custom_headers: &job.headers,
                            keys: &keys,
                        })
                        .await
                }
                Err(e) => {
                    failed_on_our_side = true;
                    SendResult {
                        status: None,
                        body: String::new(),
                        duration: Duration::ZERO,
                        error: Some(e),
                        retry_after: None,
                    }
                }
            },
        };
        let report = AttemptReport { status: result.status, retry_after: result.retry_after };
        let finished_at = Utc::now();
        let next = if job.payload.is_none() {
            NextStep::GiveUp
        } else {
            self.schedule.next_step(job.attempts, report, job.one_shot, finished_at)
        };
        tracing::debug!(msg = %job.msg_id, endpoint = %job.endpoint_id, status = ?result.status, error = ?result.error, ?next, "attempt");
        let outcome = AttemptOutcome {
            claim_id: job.claim_id,
            attempt: Attempt {
                id: IdKind::Attempt.generate_at(started_at.timestamp_millis()),
                msg_id: job.msg_id,
                endpoint_id: job.endpoint_id,
                app_id: job.app_id,
                url: job.url,
                status: if report.succeeded() { DeliveryStatus::Success } else { DeliveryStatus::Failed },
                response_status_code: result.status.unwrap_or(0),
                response: result.body,
                response_duration_ms: result.duration.as_millis() as i64,
                trigger: if job.manual { AttemptTrigger::Manual } else { AttemptTrigger::Scheduled },
                error: result.error,
                created_at: started_at,
            },
            next,
            disable_after: self.disable_after,
            disable_now: result.status == Some(410),
            failed_on_our_side,
        };
        // The outcome must land; a lost write would mean a duplicate send
        // after the lease expires, so retry a few times before giving up.
        for wait_ms in [0u64, 100, 500, 2000] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            let outcome = outcome.clone();
            match self.store.write(move |tx| tx.finish_delivery(&outcome)).await {
                Ok(()) => return,
                Err(e) => tracing::error!(error = %e, "recording an attempt failed"),
            }
        }
    }

    fn signing_keys(&self, job: &DeliveryJob) -> Result<SigningKeys, String> {
        let now = Utc::now();
        let mut keys = vec![self.cipher.decrypt(&job.secret.0)?];
        for retired in job.retired_secrets.iter().filter(|r| r.expires_at > now) {
            keys.push(self.cipher.decrypt(&retired.secret.0)?);
        }
        Ok(SigningKeys(keys))
    }
}
