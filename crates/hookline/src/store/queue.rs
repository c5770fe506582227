//! The dispatcher's side of the store: claim due deliveries as leases, keep
//! leases alive, record outcomes, purge what retention allows.
//!
//! These operations never share a transaction with API writes (one
//! exception: the embedded store's writer ends a batch that made work due
//! with a claim, see [`ClaimSink`]), and each backend runs them with its own
//! tools (the embedded writer thread;
//! `FOR UPDATE SKIP LOCKED` and the database clock on PostgreSQL). The claim
//! itself is written once, in [`claim`], over the small [`ClaimSource`]
//! interface each backend implements; its rules (rate limits, slots) are the
//! pure policies of `dispatch::policy`.

use std::collections::HashMap;
use std::sync::Arc;

use rand::RngCore;

use super::model::*;
use super::StoreResult;
use crate::dispatch::policy::fairness::{idle_first, EndpointLoad, Slots};
use crate::dispatch::policy::rate::{self, StartSlots};
use crate::endpoint_key::SigningKeys;

/// Endpoints looked at per claim (plus one per endpoint busy on this node,
/// so busy ones cannot hide the others).
const ENDPOINTS_PER_CLAIM: usize = 64;

/// A delivery claimed for one attempt, with everything the attempt needs.
#[derive(Clone)]
pub struct DeliveryJob {
    /// Proves this claim is still ours when the outcome is recorded.
    pub claim_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub event_type: String,
    /// Shared, not copied, by every attempt that sends it.
    pub payload: Option<bytes::Bytes>,
    /// Shared by every job of the endpoint in one claim.
    pub destination: Arc<Destination>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Asked for by a person (resend), not by the schedule.
    pub manual: bool,
    /// A manual resend of a delivery that had finished: one attempt only.
    pub one_shot: bool,
    /// When the attempt may start: its endpoint's rate limit gave it a
    /// start slot up to `rate::HORIZON` ahead. On this process's clock,
    /// counted from when the claim read the store's, so that however long
    /// the claim then took to commit, the attempt keeps to its slot.
    pub starts_at: std::time::Instant,
}

/// Where and how an endpoint's deliveries are sent.
pub struct Destination {
    pub url: String,
    pub headers: StringMap,
    pub secret: SealedSecret,
    pub retired_secrets: Vec<RetiredSecret>,
    /// The secrets opened for signing by the first attempt that needs them
    /// (decrypting, and for ed25519 deriving the key, is not free).
    pub signing_keys: std::sync::OnceLock<Result<Arc<SigningKeys>, String>>,
}

/// Ids and counts only: the payload is the platform's data, and the
/// destination holds credentials (see [`Destination`]'s `Debug`).
impl std::fmt::Debug for DeliveryJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryJob")
            .field("claim_id", &self.claim_id)
            .field("msg_id", &self.msg_id)
            .field("endpoint_id", &self.endpoint_id)
            .field("app_id", &self.app_id)
            .field("event_type", &self.event_type)
            .field("payload_bytes", &self.payload.as_ref().map(|p| p.len()))
            .field("destination", &self.destination)
            .field("attempts", &self.attempts)
            .field("manual", &self.manual)
            .field("one_shot", &self.one_shot)
            .field("starts_at", &self.starts_at)
            .finish()
    }
}

/// The names of its headers only: a URL may carry a credential, a header
/// value an API key, and the secrets sign what receivers trust.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("retired_secrets", &self.retired_secrets.len())
            .finish_non_exhaustive()
    }
}

/// A claim held by this node: renewed while its attempt runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRef {
    pub claim_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
}

impl LeaseRef {
    /// The lease as the stores match it (see [`lease_key`]).
    pub fn key(&self) -> String {
        lease_key(&self.claim_id, &self.msg_id, &self.endpoint_id)
    }
}

/// A lease as the stores match it: `claim msg endpoint` (ids hold no
/// spaces), the same expression they compute over a delivery row.
pub fn lease_key(claim_id: &str, msg_id: &str, endpoint_id: &str) -> String {
    format!("{claim_id} {msg_id} {endpoint_id}")
}

/// What the dispatcher asks of a claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// How long a claim lasts unless renewed.
    pub lease: chrono::Duration,
    pub slots: Slots,
    /// This node's attempts, by endpoint.
    pub in_flight: HashMap<String, EndpointLoad>,
    /// The claims this node's attempts in flight hold: never taken again by
    /// this node, even if a renewal came late and the lease ran out...
    pub live_claims: Vec<String>,
    /// ...except these leases ([`LeaseRef::key`]s) of live claims, whose
    /// attempts are over though their outcomes were not recorded (given
    /// up): due again at their lease's end, however long the other attempts
    /// of their claim run.
    pub released_leases: Vec<String>,
    pub default_rate_limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub jobs: Vec<DeliveryJob>,
    /// When the earliest remaining work falls due, if any (not counting
    /// endpoints that wait for a free slot).
    pub next_due: Option<Timestamp>,
    /// Some due work waits for a slot to free up, not for a time.
    pub waiting_for_slots: bool,
}

/// What one claim found, for the loop that asked for it: the jobs
/// themselves went to the [`ClaimSink`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimReport {
    pub claimed: usize,
    /// The claim took all the room it was given: more may be due.
    pub saturated: bool,
    pub next_due: Option<Timestamp>,
    pub waiting_for_slots: bool,
}

impl ClaimReport {
    pub fn of(claimed: &Claimed, budget: usize) -> ClaimReport {
        ClaimReport {
            claimed: claimed.jobs.len(),
            saturated: claimed.jobs.len() >= budget,
            next_due: claimed.next_due,
            waiting_for_slots: claimed.waiting_for_slots,
        }
    }

    /// After a claim the store made on its own: whether the dispatcher's
    /// loop must look again sooner than it planned.
    pub fn needs_a_look(&self, next_look: Option<Timestamp>) -> bool {
        let Some(planned) = next_look else { return true };
        self.saturated || self.waiting_for_slots || self.next_due.is_some_and(|due| due < planned)
    }
}

/// The local dispatcher as a store sees it: where claimed jobs go. The
/// embedded store also claims on its own, inside the transaction whose
/// commit made deliveries due, so they start the moment it is on disk
/// instead of after a wake-up and a claim transaction of their own.
pub trait ClaimSink: Send + Sync {
    /// The node's room as it stands now; `None` while it takes no new work
    /// (no free slot, or shutting down).
    fn request(&self) -> Option<ClaimRequest>;
    /// Starts the jobs of a claim that committed. The embedded store calls
    /// it on its writer thread before it runs any later claim, so the slots
    /// these jobs take count in that claim's request.
    fn start(&self, jobs: Vec<DeliveryJob>, claim_began: Option<std::time::SystemTime>);
    /// When the dispatcher's own loop claims next whatever happens; `None`
    /// while it is busy (it is about to claim, or claiming now).
    fn next_look(&self) -> Option<Timestamp>;
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    /// Again after this long, by the store's clock.
    RetryIn(chrono::Duration),
    GiveUp,
}

/// The recorded result of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub claim_id: String,
    pub attempt: Attempt,
    pub next: NextStep,
    /// The outcome says nothing of the endpoint's health now: the failure
    /// was ours (payload gone, unusable key), or the outcome is recorded long
    /// after its attempt (held while the store refused it). It must neither
    /// disable the endpoint nor clear its failing clock.
    pub ignored_by_health: bool,
}

/// What recording a batch of outcomes changed beyond the deliveries.
#[derive(Debug, Clone, Default)]
pub struct Recorded {
    /// Endpoints this batch disabled (failing too long, or 410 Gone).
    pub disabled: Vec<String>,
    /// Whether it sent operational webhooks (new deliveries to wake for).
    pub operational_events: bool,
}

/// What a retention sweep removed.
#[derive(Debug, Clone, Default)]
pub struct Purged {
    pub payloads: usize,
    pub messages: usize,
    pub attempts: usize,
    pub idempotency_keys: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.payloads + self.messages + self.attempts + self.idempotency_keys
    }
}

// ---- the claim, written once ------------------------------------------------

/// An endpoint whose queue entry is due, as a claim sees it.
#[derive(Debug, Clone)]
pub struct QueuedEndpoint {
    pub endpoint: Endpoint,
    /// The application's rate limit, the default for its endpoints.
    pub app_rate_limit: Option<u32>,
    /// The endpoint's next free start slot (`None`: it has not sent yet).
    pub next_slot: Option<Timestamp>,
}

/// What a claim reserved for one endpoint.
struct Plan {
    candidate: QueuedEndpoint,
    slots: StartSlots,
    /// The endpoint's next free start slot once this claim commits.
    next_slot: Option<Timestamp>,
}

/// A delivery row a claim took.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub msg_id: String,
    pub endpoint_id: String,
    pub attempts: u32,
    /// 0 scheduled, 1 a one-shot resend of a finished delivery, 2 a resend
    /// that keeps the pending retries.
    pub manual: i64,
    pub event_type: String,
    pub payload: Option<String>,
}

/// A queue entry's new state after a claim.
#[derive(Debug, Clone)]
pub struct QueueUpdate {
    pub endpoint_id: String,
    pub look: Look,
    /// The next free start slot; unchanged when `None`.
    pub next_slot: Option<Timestamp>,
}

/// When a claim leaves an endpoint next worth a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Look {
    /// Not until something else marks it (it is disabled).
    Never,
    /// When its earliest work falls due (leases included: a lease's expiry
    /// is when its work falls due again), but not before `not_before`
    /// (`rate::not_before`); never when it has no work.
    AtEarliestWork { not_before: Option<Timestamp> },
}

impl Look {
    /// The entry's next due time, given the endpoint's earliest work.
    pub fn at(self, earliest_work: Option<Timestamp>) -> Option<Timestamp> {
        match self {
            Look::Never => None,
            Look::AtEarliestWork { not_before } => {
                earliest_work.map(|due| not_before.map_or(due, |earliest| due.max(earliest)))
            }
        }
    }
}

/// The mechanics of a claim, one backend's statements each (few: on a
/// shared database every one is a round trip while queue entries are held).
pub trait ClaimSource {
    /// The store's clock, which gives every time of one claim, and the
    /// queue entries due by it, earliest first, at most `limit`; each is
    /// held by this claim until it commits (others skip it).
    fn due_endpoints(&mut self, limit: usize) -> StoreResult<(Timestamp, Vec<QueuedEndpoint>)>;
    /// Leases up to `n` due deliveries of each endpoint (earliest first),
    /// until `lease_until`, under `claim_id`, never one held by a claim in
    /// `live_claims` unless it is one of `released_leases`.
    fn take(
        &mut self,
        wants: &[(String, usize)],
        now: Timestamp,
        lease_until: Timestamp,
        claim_id: &str,
        live_claims: &[String],
        released_leases: &[String],
    ) -> StoreResult<Vec<ClaimedRow>>;
    /// Leaves the queue entries as `updates` say (the earliest work of each
    /// endpoint is the earliest `next_attempt_at` of its deliveries), then
    /// answers the earliest entry not in `excluding`.
    fn settle(&mut self, updates: &[QueueUpdate], excluding: &[String]) -> StoreResult<Option<Timestamp>>;
}

pub fn new_claim_id() -> String {
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Claims due deliveries within the node's slots and every endpoint's rate
/// limit.
pub fn claim(src: &mut dyn ClaimSource, req: &ClaimRequest) -> StoreResult<Claimed> {
    let in_flight = |id: &str| req.in_flight.get(id).copied().unwrap_or_default();
    let (now, mut candidates) = src.due_endpoints(ENDPOINTS_PER_CLAIM + req.in_flight.len())?;
    // `now` on this process's clock (a little after the store read it: a
    // slot is kept late, never early).
    let local_now = std::time::Instant::now();
    idle_first(&mut candidates, |c| in_flight(&c.endpoint.id));

    // Start slots reserved beyond the work actually due are handed back,
    // and the room they held goes to the next candidates: rounds of
    // reservations and takes until the candidates or the budget run out.
    let claim_id = new_claim_id();
    let mut claimed = 0;
    let mut waiting = Vec::new();
    let mut rows: Vec<ClaimedRow> = Vec::new();
    let mut plans: HashMap<String, Plan> = HashMap::new();
    let mut updates = Vec::new();
    let mut pending = candidates.into_iter().peekable();
    while pending.peek().is_some() && claimed < req.slots.budget {
        let mut planned = claimed;
        let mut wants: Vec<(String, usize)> = Vec::new();
        while let Some(candidate) = pending.next_if(|_| planned < req.slots.budget) {
            let id = candidate.endpoint.id.clone();
            if candidate.endpoint.disabled {
                // Its deliveries wait, out of the queue, until it is enabled again.
                updates.push(QueueUpdate { endpoint_id: id, look: Look::Never, next_slot: None });
                continue;
            }
            let Some(room) = req.slots.room(in_flight(&id), planned) else {
                waiting.push(id);
                continue;
            };
            let rate =
                candidate.endpoint.rate_limit.or(candidate.app_rate_limit).unwrap_or(req.default_rate_limit).max(1);
            let (slots, next_slot) = rate::reserve(rate, candidate.next_slot, now, room);
            planned += slots.count;
            if slots.count > 0 {
                wants.push((id.clone(), slots.count));
            }
            plans.insert(id, Plan { candidate, slots, next_slot });
        }
        if wants.is_empty() {
            continue;
        }
        let taken_now = src.take(&wants, now, now + req.lease, &claim_id, &req.live_claims, &req.released_leases)?;
        for (id, reserved) in &wants {
            let got = taken_now.iter().filter(|r| &r.endpoint_id == id).count();
            let plan = plans.get_mut(id).expect("planned above");
            plan.next_slot = rate::give_back(&plan.slots, plan.next_slot, reserved.saturating_sub(got));
        }
        claimed += taken_now.len();
        rows.extend(taken_now);
    }
    // Candidates never reached wait for the next claim.
    waiting.extend(pending.map(|c| c.endpoint.id));

    for (id, plan) in &plans {
        // Next worth a look: its earliest work, but not before its next
        // start slot is near.
        let look = Look::AtEarliestWork { not_before: rate::not_before(plan.next_slot) };
        updates.push(QueueUpdate { endpoint_id: id.clone(), look, next_slot: plan.next_slot });
    }
    let next_due = src.settle(&updates, &waiting)?;

    let mut destinations: HashMap<String, Arc<Destination>> = HashMap::new();
    // Each endpoint's jobs take its reserved slots in order.
    let mut started: HashMap<String, usize> = HashMap::new();
    let jobs = rows
        .into_iter()
        .map(|row| {
            let plan = &plans[&row.endpoint_id];
            let ep = &plan.candidate.endpoint;
            let slot = plan.slots.at(*started.entry(ep.id.clone()).and_modify(|n| *n += 1).or_insert(0));
            let destination = destinations
                .entry(ep.id.clone())
                .or_insert_with(|| {
                    Arc::new(Destination {
                        url: ep.url.clone(),
                        headers: ep.headers.clone(),
                        secret: ep.secret.clone(),
                        retired_secrets: ep.retired_secrets.clone(),
                        signing_keys: std::sync::OnceLock::new(),
                    })
                })
                .clone();
            DeliveryJob {
                claim_id: claim_id.clone(),
                msg_id: row.msg_id,
                endpoint_id: ep.id.clone(),
                app_id: ep.app_id.clone(),
                event_type: row.event_type,
                payload: row.payload.map(bytes::Bytes::from),
                destination,
                attempts: row.attempts,
                manual: row.manual != 0,
                one_shot: row.manual == 1,
                starts_at: local_now + (slot - now).to_std().unwrap_or_default(),
            }
        })
        .collect();
    Ok(Claimed { jobs, next_due, waiting_for_slots: !waiting.is_empty() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_looks_again_only_when_it_would_look_too_late() {
        let now = chrono::Utc::now();
        let planned = Some(now + chrono::Duration::seconds(1));
        let quiet = ClaimReport { claimed: 3, saturated: false, next_due: None, waiting_for_slots: false };
        assert!(!quiet.needs_a_look(planned));
        // The loop's plan is unknown (it is between claims).
        assert!(quiet.needs_a_look(None));
        assert!(ClaimReport { saturated: true, ..quiet }.needs_a_look(planned));
        assert!(ClaimReport { waiting_for_slots: true, ..quiet }.needs_a_look(planned));
        let due = |ms| ClaimReport { next_due: Some(now + chrono::Duration::milliseconds(ms)), ..quiet };
        assert!(due(500).needs_a_look(planned));
        assert!(!due(1_000).needs_a_look(planned));
        assert!(!due(30_000).needs_a_look(planned));
    }

    #[test]
    fn a_job_shown_for_debugging_shows_neither_payload_nor_credentials() {
        let destination = Arc::new(Destination {
            url: "https://hook-user:url-password@receiver.example/in".into(),
            headers: [("X-Api-Key".to_string(), "header-token".to_string())].into(),
            secret: SealedSecret(b"sealed-bytes".to_vec()),
            retired_secrets: Vec::new(),
            signing_keys: std::sync::OnceLock::new(),
        });
        let job = DeliveryJob {
            claim_id: "claim-1".into(),
            msg_id: "msg_2abc".into(),
            endpoint_id: "ep_2abc".into(),
            app_id: "app_2abc".into(),
            event_type: "sync.complete".into(),
            payload: Some(bytes::Bytes::from_static(br#"{"card":"payload-secret"}"#)),
            destination,
            attempts: 0,
            manual: false,
            one_shot: false,
            starts_at: std::time::Instant::now(),
        };
        let shown = format!("{job:?}");
        assert!(shown.contains("msg_2abc") && shown.contains("X-Api-Key"), "{shown}");
        for hidden in ["payload-secret", "url-password", "receiver.example", "header-token", "115, 101, 97"] {
            assert!(!shown.contains(hidden), "{hidden} shown in {shown}");
        }
    }
}
