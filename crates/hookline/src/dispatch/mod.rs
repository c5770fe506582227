//! The delivery engine: claims due deliveries, sends them, records outcomes.
//!
//! The delivery rows in the store are the only queue. This loop claims a
//! bounded window of them as leases (rate limits are applied inside the
//! claim), runs one task per attempt, and records each outcome in the store.
//! Nothing here survives a crash, and nothing needs to: a lease not
//! finished falls due again by itself.

mod in_flight;
pub mod policy;
mod recording;
mod sender;
mod ssrf;
mod supervise;
mod sweeper;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};

pub use policy::retry::{AttemptReport, RetrySchedule};
pub use ssrf::SsrfGuard;
pub use supervise::supervise;
pub use sweeper::sweep_forever;

use crate::config::Settings;
use crate::endpoint_key::SigningKeys;
use crate::ids::IdKind;
use crate::keys::{Owner, SecretCipher};
use crate::ops::health::Heartbeat;
use crate::ops::metrics::{self, AttemptOutcome as Measured};
use crate::ops::trace::{self, Attribute, MessageTrace, SpanRecord};
use crate::store::model::Timestamp;
use crate::store::model::{Attempt, AttemptTrigger, DeliveryStatus};
use crate::store::queue::{AttemptOutcome, ClaimRequest, ClaimSink, DeliveryJob, LeaseRef, NextStep};
use crate::store::{Store, StoreResult};

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
use in_flight::{InFlight, Slot};
use policy::fairness::Slots;
use sender::{FailureKind, Outgoing, SendResult, Sender};

/// Attempts in flight on this node, at most.
const MAX_IN_FLIGHT: usize = 512;
/// Open requests to one endpoint from this node, at most.
const PER_ENDPOINT_IN_FLIGHT: usize = 64;
/// Slots only endpoints with nothing in flight may take: however many slow
/// endpoints hold the rest, a fresh endpoint's delivery can always start.
const RESERVED_FOR_IDLE_ENDPOINTS: usize = 128;
/// Longest sleep between claims when nothing signals new work.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest time between two claims that were not saturated: a burst of
/// wake-ups (one per committed message) makes one claim of several
/// deliveries instead of one claim each. Every delivery waits half of it on
/// average: at 2 ms, accept→receive at 1 000 messages/s was p50 3.36 ms and
/// p99 8.33 ms; at 0.5 ms 2.20 and 6.10 ms, with no more CPU per delivery.
const MIN_CLAIM_INTERVAL: Duration = Duration::from_micros(500);
/// First wait before recording outcomes again.
const FIRST_RECORD_BACKOFF: Duration = Duration::from_millis(50);
/// Most outcomes held at once (tried on their own while the store does not
/// take them), each holding an in-flight slot: a store refusing every
/// outcome of an endpoint must not take the node's whole budget.
const MAX_HELD: usize = 64;
/// Longest an outcome is held before it is given up.
const HOLD_FOR: Duration = Duration::from_secs(600);
/// Most outcomes recorded in one store call.
const MAX_OUTCOME_BATCH: usize = 256;

/// An outcome waiting to be recorded, and who waits for it: told `true`
/// once it is in the store, `false` if it was given up.
struct PendingOutcome {
    outcome: AttemptOutcome,
    recorded: oneshot::Sender<bool>,
}

pub struct Dispatcher {
    store: Store,
    cipher: SecretCipher,
    sender: Sender,
    schedule: RetrySchedule,
    lease: chrono::Duration,
    disable_after: chrono::Duration,
    default_rate_limit: u32,
    in_flight: Arc<InFlight>,
    outcomes: mpsc::Sender<PendingOutcome>,
    /// Taken by the recording loop (again after a restart).
    outcome_queue: tokio::sync::Mutex<mpsc::Receiver<PendingOutcome>>,
    /// Outcomes held by [`hold`](Self::hold) right now.
    held_outcomes: AtomicUsize,
    /// Beats every time the claim loop goes round (readiness reads it).
    heartbeat: Heartbeat,
    /// Where the store sends what it claims for this node.
    sink: Arc<dyn ClaimSink>,
    /// Off once shutdown began (see [`stop_claiming`](Self::stop_claiming)):
    /// nothing new starts.
    claiming: AtomicBool,
    /// When the claim loop claims next whatever happens; `None` while it is
    /// about to claim or claiming.
    next_look: Mutex<Option<Timestamp>>,
    runtime: tokio::runtime::Handle,
}

/// An outcome held by [`Dispatcher::hold`]. Dropped however its task ends
/// (a panic included), it counts itself out and lets the attempt end; the
/// attempt must not hand the outcome over again, which would hold it anew.
struct Held {
    dispatcher: Arc<Dispatcher>,
    recorded: Option<oneshot::Sender<bool>>,
    /// Outcomes held, this one included, when it was taken.
    count: usize,
    /// Set once the store took it; otherwise it was given up.
    taken: bool,
}

impl Held {
    fn take(dispatcher: Arc<Dispatcher>, recorded: oneshot::Sender<bool>) -> Held {
        let count = dispatcher.held_outcomes.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::get().outcome_held();
        Held { dispatcher, recorded: Some(recorded), count, taken: false }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.dispatcher.held_outcomes.fetch_sub(1, Ordering::SeqCst);
        metrics::get().outcome_released();
        if let Some(recorded) = self.recorded.take() {
            let _ = recorded.send(self.taken);
        }
    }
}

/// The dispatcher as the store's [`ClaimSink`]. Weak, since the dispatcher
/// holds the store: a strong link would make a cycle that is never freed.
struct LocalSink(Weak<Dispatcher>);

impl ClaimSink for LocalSink {
    fn request(&self) -> Option<ClaimRequest> {
        self.0.upgrade()?.claim_request()
    }

    fn start(&self, jobs: Vec<DeliveryJob>, claim_began: Option<SystemTime>) {
        if let Some(dispatcher) = self.0.upgrade() {
            dispatcher.start(jobs, claim_began);
        }
    }

    fn next_look(&self) -> Option<Timestamp> {
        let dispatcher = self.0.upgrade()?;
        let planned = *dispatcher.next_look.lock().unwrap_or_else(|p| p.into_inner());
        planned
    }
}

impl Dispatcher {
    pub fn new(store: Store, cipher: SecretCipher, settings: &Settings) -> Result<Arc<Dispatcher>, String> {
        let guard = SsrfGuard::new(settings.allowed_private_cidrs.clone());
        let (outcomes, outcome_queue) = mpsc::channel(MAX_IN_FLIGHT);
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let sender = Sender::new(guard, settings.attempt_timeout)?;
        let lease = chrono::Duration::from_std(settings.claim_lease).map_err(|e| e.to_string())?;
        let disable_after = chrono::Duration::from_std(settings.disable_after).map_err(|e| e.to_string())?;
        let dispatcher = Arc::new_cyclic(|me: &Weak<Dispatcher>| Dispatcher {
            store: store.clone(),
            cipher,
            sender,
            schedule: RetrySchedule::new(settings.retry_schedule.clone()),
            lease,
            disable_after,
            default_rate_limit: settings.default_rate_limit,
            in_flight: Arc::new(InFlight::default()),
            outcomes,
            outcome_queue: tokio::sync::Mutex::new(outcome_queue),
            held_outcomes: AtomicUsize::new(0),
            heartbeat: Heartbeat::default(),
            sink: Arc::new(LocalSink(me.clone())),
            claiming: AtomicBool::new(true),
            next_look: Mutex::new(None),
            runtime,
        });
        store.claim_on_commit(dispatcher.sink.clone());
        Ok(dispatcher)
    }

    /// The claim loop's heartbeat.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// Attempts in flight on this node.
    pub fn in_flight_count(&self) -> usize {
        self.in_flight.total()
    }

    /// Claims and sends until `shutdown` turns true. Attempts run as their
    /// own tasks and outlive this loop (see [`drain`](Self::drain)).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let new_work = self.store.wakeups();
        while !*shutdown.borrow() {
            self.heartbeat.beat();
            let mut wait = POLL_INTERVAL;
            let mut waiting_for_slots = false;
            match self.store.claim_into(self.sink.clone()).await {
                Ok(Some(report)) => {
                    waiting_for_slots = report.waiting_for_slots;
                    if let Some(due) = report.next_due {
                        let until = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        wait = wait.min(until);
                    }
                    if report.saturated {
                        continue;
                    }
                }
                // Every slot is taken (or claiming has stopped).
                Ok(None) => waiting_for_slots = true,
                Err(e) => tracing::error!(error = %e, "claiming deliveries failed; retrying"),
            }
            let claimed_at = tokio::time::Instant::now();
            let wait = wait.max(MIN_CLAIM_INTERVAL);
            self.plan_next_look(Some(Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default()));
            tokio::select! {
                _ = new_work.notified() => {}
                _ = self.in_flight.freed.notified(), if waiting_for_slots => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
            self.plan_next_look(None);
            tokio::time::sleep_until(claimed_at + MIN_CLAIM_INTERVAL).await;
        }
    }

    /// Stops every claim for this node, the store's own ones too, and
    /// returns once none can start anything any more: the last store claim
    /// that saw the node open has started its jobs (they count in
    /// [`drain`](Self::drain)).
    pub async fn stop_claiming(&self) {
        self.claiming.store(false, Ordering::SeqCst);
        // A writer batch that read the flag before it turned starts its jobs
        // before the writer takes another job: one round trip waits it out.
        if let Err(e) = self.store.claim_into(self.sink.clone()).await {
            tracing::warn!(error = %e, "the store did not answer while claiming stopped");
        }
    }

    fn plan_next_look(&self, at: Option<Timestamp>) {
        *self.next_look.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// The node's room for new attempts as it stands now.
    fn claim_request(&self) -> Option<ClaimRequest> {
        if !self.claiming.load(Ordering::SeqCst) {
            return None;
        }
        let in_flight::Snapshot { total: total_in_flight, by_endpoint: in_flight, live_claims, released } =
            self.in_flight.snapshot();
        let budget = MAX_IN_FLIGHT.saturating_sub(total_in_flight);
        (budget > 0).then_some(ClaimRequest {
            lease: self.lease,
            slots: Slots {
                budget,
                per_endpoint_cap: PER_ENDPOINT_IN_FLIGHT,
                total_in_flight,
                busy_slot_limit: MAX_IN_FLIGHT - RESERVED_FOR_IDLE_ENDPOINTS,
            },
            in_flight,
            live_claims,
            released_leases: released,
            default_rate_limit: self.default_rate_limit,
        })
    }

    /// Waits (up to `limit`) for the attempts in flight to be recorded.
    pub async fn drain(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.total() > 0 && tokio::time::Instant::now() < deadline {
            let _ = tokio::time::timeout_at(deadline, self.in_flight.freed.notified()).await;
        }
        let left = self.in_flight.total();
        if left > 0 {
            tracing::warn!(in_flight = left, "shutting down with attempts in flight; their leases will expire");
        }
    }

    /// Keeps the leases of attempts in flight alive until `shutdown`: a live
    /// attempt is never handed to another worker, however long it or the
    /// recording of its outcome takes. A node that stops renewing (it died)
    /// loses its leases within one lease period.
    pub async fn renew_leases(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let every = (self.lease / 3).to_std().unwrap_or(Duration::from_secs(10)).max(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => if *shutdown.borrow() { return },
            }
            let leases = self.in_flight.leases();
            if leases.is_empty() {
                continue;
            }
            if let Err(e) = self.store.extend_leases(leases, self.lease).await {
                tracing::error!(error = %e, "renewing the leases of attempts in flight failed; retrying");
            }
        }
    }

    /// Starts the jobs of a committed claim, each as its own task holding
    /// a slot.
    fn start(self: &Arc<Self>, jobs: Vec<DeliveryJob>, claim_began: Option<SystemTime>) {
        let count = jobs.len();
        let claim_span = claim_began.zip(trace::now());
        for job in jobs {
            // In each message's trace: the claim that took it.
            let claim_span = claim_span.map(|(start, end)| {
                let id = trace::new_span_id();
                let message = MessageTrace::of(&job.msg_id);
                trace::emit(
                    &message,
                    SpanRecord {
                        name: "claim",
                        kind: opentelemetry::trace::SpanKind::Internal,
                        id: Some(id),
                        parent: Some(message.root),
                        start,
                        end,
                        attributes: vec![
                            Attribute::new("hookline.endpoint_id", job.endpoint_id.clone()),
                            Attribute::new("hookline.claim.size", count as i64),
                        ],
                        error: None,
                    },
                );
                id
            });
            let slot = self.in_flight.take(LeaseRef {
                claim_id: job.claim_id.clone(),
                msg_id: job.msg_id.clone(),
                endpoint_id: job.endpoint_id.clone(),
            });
            let this = self.clone();
            self.runtime.spawn(async move { this.attempt(job, slot, claim_span).await });
        }
    }

    /// One attempt, start to recorded outcome. The slot (and with it the
    /// lease renewal) is held until the outcome is in the store; the
    /// endpoint's share of it, until the answer.
    async fn attempt(&self, job: DeliveryJob, mut slot: Slot, claim_span: Option<opentelemetry::trace::SpanId>) {
        // The endpoint's rate limit gave this job its start slot. (A slot
        // already reached skips the timer, which would wait for its next
        // tick.)
        if job.starts_at > std::time::Instant::now() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(job.starts_at)).await;
        }
        let started_at = crate::store::model::now();
        let traced_from = trace::now();
        let result = match &job.payload {
            None => SendResult::failed(FailureKind::Internal, "the message payload has expired or was expunged"),
            Some(payload) => match self.signing_keys(&job) {
                Ok(keys) => {
                    self.sender
                        .send(Outgoing {
                            url: &job.destination.url,
                            msg_id: &job.msg_id,
                            timestamp: started_at.timestamp(),
                            body: payload.clone(),
                            custom_headers: &job.destination.headers,
                            keys: &keys,
                        })
                        .await
                }
                Err(e) => SendResult::failed(FailureKind::Internal, e),
            },
        };
        slot.answered();
        // Failures of ours (payload gone, unusable key) never count against
        // the endpoint.
        let ignored_by_health = result.failure.as_ref().is_some_and(|(kind, _)| *kind == FailureKind::Internal);
        let report = AttemptReport { status: result.status, retry_after: result.retry_after };
        let next = if job.payload.is_none() {
            NextStep::GiveUp
        } else {
            self.schedule.next_step(job.attempts, report, job.one_shot)
        };
        let error = result.error_text();
        let measured = if result.failure.as_ref().is_some_and(|(kind, _)| *kind == FailureKind::Forbidden) {
            Measured::SsrfBlocked
        } else if report.succeeded() {
            Measured::Success
        } else if matches!(next, NextStep::RetryIn(_)) {
            Measured::RetryScheduled
        } else {
            Measured::Failed
        };
        // Ids, status, time and error kind only: never the URL (it may hold
        // a credential), headers or bodies.
        let number = job.attempts + 1;
        let duration_ms = result.duration.as_millis() as u64;
        if report.succeeded() {
            tracing::debug!(msg = %job.msg_id, endpoint = %job.endpoint_id, status = ?result.status, duration_ms, attempt = number, "attempt succeeded");
        } else {
            tracing::info!(msg = %job.msg_id, endpoint = %job.endpoint_id, status = ?result.status, duration_ms, attempt = number, outcome = measured.as_str(), error = error.as_deref().unwrap_or(""), "attempt failed");
        }
        let sent_until = trace::now();
        let (msg_id, endpoint_id, event_type) = (job.msg_id.clone(), job.endpoint_id.clone(), job.event_type.clone());
        let outcome = AttemptOutcome {
            claim_id: job.claim_id,
            attempt: Attempt {
                id: IdKind::Attempt.generate_at(started_at.timestamp_millis()),
                msg_id: job.msg_id,
                endpoint_id: job.endpoint_id,
                app_id: job.app_id,
                url: job.destination.url.clone(),
                status: if report.succeeded() { DeliveryStatus::Success } else { DeliveryStatus::Failed },
                response_status_code: result.status.unwrap_or(0),
                response: result.body,
                response_duration_ms: result.duration.as_millis() as i64,
                trigger: if job.manual { AttemptTrigger::Manual } else { AttemptTrigger::Scheduled },
                error: error.clone(),
                created_at: started_at,
            },
            next,
            ignored_by_health,
        };
        let recording_from = trace::now();
        if !self.record(outcome).await {
            // Given up: the delivery falls due when the lease runs out,
            // whatever the claim's other attempts do.
            slot.release();
        }
        metrics::get().attempt(measured, result.duration);
        if let (Some(claim_span), Some(start), Some(sent), Some(recording)) =
            (claim_span, traced_from, sent_until, recording_from)
        {
            let message = MessageTrace::of(&msg_id);
            let attempt_span = trace::new_span_id();
            let mut attributes = vec![
                Attribute::new("hookline.msg_id", msg_id),
                Attribute::new("hookline.endpoint_id", endpoint_id),
                Attribute::new("hookline.event_type", event_type),
                Attribute::new("hookline.attempt", i64::from(number)),
                Attribute::new("hookline.outcome", measured.as_str()),
            ];
            if let Some(status) = result.status {
                attributes.push(Attribute::new("http.response.status_code", i64::from(status)));
            }
            trace::emit(
                &message,
                SpanRecord {
                    name: "attempt",
                    kind: opentelemetry::trace::SpanKind::Client,
                    id: Some(attempt_span),
                    parent: Some(claim_span),
                    start,
                    end: sent,
                    attributes,
                    error: (measured != Measured::Success).then(|| error.clone().unwrap_or_else(|| "not a 2xx".into())),
                },
            );
            trace::emit(
                &message,
                SpanRecord {
                    name: "record",
                    kind: opentelemetry::trace::SpanKind::Internal,
                    id: None,
                    parent: Some(attempt_span),
                    start: recording,
                    end: std::time::SystemTime::now(),
                    attributes: Vec::new(),
                    error: None,
                },
            );
        }
    }

    /// Hands an outcome to the recording loop and waits until it is in the
    /// store (true), or given up after the store would not take it for
    /// long (false, see [`recording`]): dropping it would send the delivery
    /// again once its lease expired, and lose the attempt's log.
    async fn record(&self, outcome: AttemptOutcome) -> bool {
        loop {
            let (recorded, done) = oneshot::channel();
            let pending = PendingOutcome { outcome: outcome.clone(), recorded };
            if self.outcomes.send(pending).await.is_err() {
                return false; // the dispatcher is gone with the process
            }
            if let Ok(recorded) = done.await {
                return recorded;
            }
            // The recording loop died holding it (a panic): hand it over again.
        }
    }

    /// Records outcomes in batches (one store call for every outcome that
    /// arrived meanwhile), retrying a batch until it lands (outcome by
    /// outcome if the store refuses it, see [`recording`]), until `shutdown`.
    pub async fn record_outcomes(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut queue = self.outcome_queue.lock().await;
        loop {
            let first = tokio::select! {
                next = queue.recv() => match next {
                    Some(pending) => pending,
                    None => return,
                },
                _ = shutdown.changed() => if *shutdown.borrow() { return } else { continue },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_OUTCOME_BATCH {
                match queue.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            let (outcomes, waiting): (Vec<AttemptOutcome>, Vec<_>) =
                batch.into_iter().map(|p| (p.outcome, p.recorded)).unzip();
            let fates = recording::record_batch(&outcomes, &mut self.recorder()).await;
            for (fate, recorded) in fates.into_iter().zip(waiting) {
                match fate {
                    recording::Fate::Held(outcome) => self.hold(*outcome, recorded),
                    recording::Fate::Recorded | recording::Fate::RecordedWithoutResponse => {
                        let _ = recorded.send(true);
                    }
                }
            }
        }
    }

    /// Keeps trying an outcome the store does not take, on its own so that
    /// the others go on, its attempt (slot and lease) in flight meanwhile:
    /// its delivery is neither lost nor sent again. Past [`MAX_HELD`] held
    /// outcomes or [`HOLD_FOR`], it is given up: the slot frees, the lease
    /// expires, and the delivery is sent again.
    fn hold(self: &Arc<Self>, outcome: AttemptOutcome, recorded: oneshot::Sender<bool>) {
        let (msg, endpoint) = (outcome.attempt.msg_id.clone(), outcome.attempt.endpoint_id.clone());
        let mut held = Held::take(self.clone(), recorded);
        let record = self.recorder().record;
        self.runtime.spawn(async move {
            held.taken = held.count <= MAX_HELD && {
                let until = tokio::time::Instant::now() + HOLD_FOR;
                recording::record_until_taken(outcome, FIRST_RECORD_BACKOFF, until, record).await
            };
            if !held.taken {
                metrics::get().outcome_given_up();
                tracing::error!(%msg, %endpoint, held = held.count, "giving up an attempt's outcome the store does not take; its delivery will be sent again when its lease expires");
            }
            drop(held);
        });
    }

    /// How [`recording`] reaches the store.
    fn recorder(
        &self,
    ) -> recording::Recorder<impl FnMut(Vec<AttemptOutcome>) -> BoxFuture<StoreResult<()>> + Send + 'static> {
        let (store, disable_after) = (self.store.clone(), self.disable_after);
        let record = move |outcomes| -> BoxFuture<StoreResult<()>> {
            let store = store.clone();
            Box::pin(async move { store.record_outcomes(outcomes, disable_after).await.map(drop) })
        };
        recording::Recorder { record, first_backoff: FIRST_RECORD_BACKOFF }
    }

    /// The keys of the job's endpoint, opened once per claim: its jobs
    /// share one destination. Retired secrets are judged by the first
    /// attempt's clock, so one whose grace period ends while the claim's
    /// attempts start (within the rate limit's horizon of each other) still
    /// signs them.
    fn signing_keys(&self, job: &DeliveryJob) -> Result<Arc<SigningKeys>, String> {
        let destination = &job.destination;
        let opened = destination.signing_keys.get_or_init(|| {
            let now = Utc::now();
            let live = destination.retired_secrets.iter().filter(|r| r.expires_at > now).map(|r| &r.secret);
            std::iter::once(&destination.secret)
                .chain(live)
                .map(|sealed| {
                    let bytes = self.cipher.open(&sealed.0, Owner::Endpoint(&job.endpoint_id))?;
                    crate::endpoint_key::sender_key(bytes).map_err(|e| format!("endpoint secret is unusable: {e}"))
                })
                .collect::<Result<Vec<_>, String>>()
                .map(|keys| Arc::new(SigningKeys(keys)))
        });
        opened.clone()
    }
}
