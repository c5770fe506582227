//! The records the store holds. Plain data: no I/O, no JSON shape of the API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub type Timestamp = DateTime<Utc>;
pub type StringMap = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct Application {
    pub id: String,
    pub uid: Option<String>,
    pub name: String,
    pub rate_limit: Option<u32>,
    pub metadata: StringMap,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<Value>,
    pub feature_flag: Option<String>,
    /// Hookline extension: reject message payloads that fail the schema.
    pub validate_payloads: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// An endpoint's signing secret as stored: encrypted, never plaintext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret(pub Vec<u8>);

/// A secret replaced by rotation, still signing until `expires_at`.
#[derive(Debug, Clone)]
pub struct RetiredSecret {
    pub secret: SealedSecret,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub app_id: String,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i32,
    pub disabled: bool,
    pub rate_limit: Option<u32>,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
    pub metadata: StringMap,
    pub headers: StringMap,
    pub secret: SealedSecret,
    pub retired_secrets: Vec<RetiredSecret>,
    /// First failure since the last success; the auto-disable clock.
    pub failing_since: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Endpoint {
    /// Whether a message with this type and these channels goes to this endpoint.
    pub fn wants(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        if self.disabled {
            return false;
        }
        if let Some(types) = &self.filter_types {
            if !types.iter().any(|t| t == event_type) {
                return false;
            }
        }
        match (&self.channels, channels) {
            (None, _) => true,
            (Some(wanted), Some(sent)) => wanted.iter().any(|c| sent.contains(c)),
            (Some(_), None) => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub app_id: String,
    pub event_type: String,
    pub event_id: Option<String>,
    pub channels: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    /// The exact JSON text that is delivered; `None` once expunged or expired.
    pub payload: Option<String>,
    pub payload_expires_at: Timestamp,
    /// When to deliver, if later than creation (Svix's `deliverAt`).
    pub deliver_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// Where a message stands for one endpoint (Svix's `MessageStatus` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Failed = 2,
    Sending = 3,
}

impl DeliveryStatus {
    pub fn from_i64(v: i64) -> DeliveryStatus {
        match v {
            0 => DeliveryStatus::Success,
            2 => DeliveryStatus::Failed,
            3 => DeliveryStatus::Sending,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// One message owed to one endpoint: the outbox row, and the dispatcher's queue.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptTrigger {
    Scheduled = 0,
    Manual = 1,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub url: String,
    /// Success or Failed (Svix uses the message status numbering here too).
    pub status: DeliveryStatus,
    /// 0 when no HTTP answer was received.
    pub response_status_code: u16,
    pub response: String,
    pub response_duration_ms: i64,
    pub trigger: AttemptTrigger,
    /// Why no HTTP answer was received (timeout, refused by SSRF guard…).
    pub error: Option<String>,
    pub created_at: Timestamp,
}

/// A stored answer to replay for a repeated `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct IdempotentResponse {
    pub body_hash: Vec<u8>,
    pub status: u16,
    pub body: Vec<u8>,
}

/// A delivery claimed for one attempt, with everything the attempt needs.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    /// Proves this claim is still ours when the outcome is recorded.
    pub claim_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    pub event_type: String,
    /// Shared, not copied, by every attempt that sends it.
    pub payload: Option<bytes::Bytes>,
    pub url: String,
    pub headers: StringMap,
    pub secret: SealedSecret,
    pub retired_secrets: Vec<RetiredSecret>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Asked for by a person (resend), not by the schedule.
    pub manual: bool,
    /// A manual resend of a delivery that had finished: one attempt only.
    pub one_shot: bool,
}

/// A claim held by this node: renewed while its attempt runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRef {
    pub claim_id: String,
    pub msg_id: String,
    pub endpoint_id: String,
}

/// What the dispatcher asks of a claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: Timestamp,
    pub lease_until: Timestamp,
    /// Most deliveries to claim in all.
    pub budget: usize,
    /// Most deliveries in flight to one endpoint on this node.
    pub per_endpoint_cap: usize,
    /// Deliveries this node has in flight, by endpoint.
    pub in_flight: std::collections::HashMap<String, usize>,
    /// All deliveries this node has in flight.
    pub total_in_flight: usize,
    /// Endpoints that already have work in flight may not push the node's
    /// total past this: the rest is kept for endpoints with nothing in
    /// flight, so a few slow endpoints can never take every slot.
    pub busy_slot_limit: usize,
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

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(Timestamp),
    GiveUp,
}

/// The recorded result of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub claim_id: String,
    pub attempt: Attempt,
    pub next: NextStep,
    /// Disable the endpoint when it has failed without success this long.
    pub disable_after: chrono::Duration,
    /// Disable the endpoint now (410 Gone).
    pub disable_now: bool,
    /// The failure was ours (payload gone, unusable key), not the endpoint's:
    /// it must not count toward disabling the endpoint.
    pub failed_on_our_side: bool,
}

/// Delivery counts of one endpoint by status.
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub failed: u64,
}

/// What a retention sweep removed.
#[derive(Debug, Clone, Default)]
pub struct Purged {
    pub payloads: usize,
    pub messages: usize,
    pub attempts: usize,
    pub idempotency_keys: usize,
}

/// One time bucket of an endpoint's attempts, for the portal's charts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesBucket {
    pub start: Timestamp,
    pub success: u64,
    pub failure: u64,
    /// Latency percentiles (nearest rank) of the attempts that got an HTTP
    /// answer; `None` when none did.
    pub p50_ms: Option<i64>,
    pub p90_ms: Option<i64>,
    pub p99_ms: Option<i64>,
}

/// An endpoint as the operator's health view lists it.
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    pub endpoint_id: String,
    pub app_id: String,
    pub app_name: String,
    pub url: String,
    pub disabled: bool,
    pub failing_since: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// The whole service's delivery health, for the operator console.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOverview {
    pub applications: u64,
    pub endpoints: u64,
    /// Deliveries not finished yet (pending, or in flight).
    pub backlog: u64,
    /// Of the backlog, those due now or overdue.
    pub due_now: u64,
    /// When the longest-waiting due delivery fell due.
    pub oldest_due: Option<Timestamp>,
    pub recent_success: u64,
    pub recent_failure: u64,
    pub failing_count: u64,
    pub disabled_count: u64,
    /// Enabled endpoints failing without success, longest-failing first.
    pub failing: Vec<EndpointHealth>,
    /// Endpoints disabled (by a person or automatically) in the recent window, newest first.
    pub recently_disabled: Vec<EndpointHealth>,
}
