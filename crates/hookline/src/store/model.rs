//! The records the store holds. Plain data: no I/O, no JSON shape of the API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub type Timestamp = DateTime<Utc>;

/// The current time as stored: whole milliseconds, the precision the API
/// shows, so a time read back from any backend equals the one shown when
/// it was written (and `after=<shown time>` excludes that row).
pub fn now() -> Timestamp {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 3)
}
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
    /// Svix's newer form of `feature_flag`: any of several flags.
    pub feature_flags: Option<Vec<String>>,
    /// Where the portal's catalog files it.
    pub group_name: Option<String>,
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

#[derive(Clone)]
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

/// Without its URL, headers, metadata or secrets: a URL may carry a
/// credential and a header an API key, and a log line must show neither.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("uid", &self.uid)
            .field("version", &self.version)
            .field("disabled", &self.disabled)
            .field("rate_limit", &self.rate_limit)
            .field("filter_types", &self.filter_types)
            .field("channels", &self.channels)
            .field("failing_since", &self.failing_since)
            .finish_non_exhaustive()
    }
}

/// Whether a message with this type and these channels goes to an endpoint
/// with these settings.
fn routes_to(
    disabled: bool,
    filter_types: Option<&[String]>,
    wanted_channels: Option<&[String]>,
    event_type: &str,
    channels: Option<&[String]>,
) -> bool {
    if disabled {
        return false;
    }
    if let Some(types) = filter_types {
        if !types.iter().any(|t| t == event_type) {
            return false;
        }
    }
    match (wanted_channels, channels) {
        (None, _) => true,
        (Some(wanted), Some(sent)) => wanted.iter().any(|c| sent.contains(c)),
        (Some(_), None) => false,
    }
}

impl Endpoint {
    /// Whether a message with this type and these channels goes to this endpoint.
    pub fn wants(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        routes_to(self.disabled, self.filter_types.as_deref(), self.channels.as_deref(), event_type, channels)
    }
}

/// What fan-out needs of an endpoint, and nothing more: a message reads one
/// of these per endpoint of its application.
#[derive(Debug, Clone)]
pub struct FanoutTarget {
    pub id: String,
    pub disabled: bool,
    pub filter_types: Option<Vec<String>>,
    pub channels: Option<Vec<String>>,
}

impl FanoutTarget {
    pub fn wants(&self, event_type: &str, channels: Option<&[String]>) -> bool {
        routes_to(self.disabled, self.filter_types.as_deref(), self.channels.as_deref(), event_type, channels)
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
    pub const ALL: [DeliveryStatus; 4] =
        [DeliveryStatus::Success, DeliveryStatus::Pending, DeliveryStatus::Failed, DeliveryStatus::Sending];

    /// The stored number; an unknown one is corruption, not a default.
    pub fn from_i64(v: i64) -> Option<DeliveryStatus> {
        match v {
            0 => Some(DeliveryStatus::Success),
            1 => Some(DeliveryStatus::Pending),
            2 => Some(DeliveryStatus::Failed),
            3 => Some(DeliveryStatus::Sending),
            _ => None,
        }
    }
}

/// A delivery to create with a message (fan-out) or a resend.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub msg_id: String,
    pub endpoint_id: String,
    pub app_id: String,
    /// When it falls due; `None` is now, by the store's clock.
    pub due_at: Option<Timestamp>,
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

impl IdempotentResponse {
    /// The answer a key is taken with while its request runs: it never
    /// commits (filled or released in the same transaction).
    pub fn pending() -> IdempotentResponse {
        IdempotentResponse { body_hash: Vec::new(), status: 0, body: Vec::new() }
    }
}

/// Delivery counts of one endpoint by status.
#[derive(Debug, Clone, Default)]
pub struct DeliveryStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub failed: u64,
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

/// What a background task does (Svix's `BackgroundTaskType` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Retry the endpoint's failed deliveries of a time range.
    EndpointRecover,
    /// Deliver to the endpoint the messages of a range it never got.
    EndpointReplay,
    /// Send again the endpoint's deliveries of a range that match a
    /// filter, whatever their outcome.
    EndpointBulkReplay,
    /// Delete the payload of every message of an application created
    /// before the task (no endpoint).
    ApplicationPurgeContent,
}

impl TaskKind {
    pub const ALL: [TaskKind; 4] = [
        TaskKind::EndpointRecover,
        TaskKind::EndpointReplay,
        TaskKind::EndpointBulkReplay,
        TaskKind::ApplicationPurgeContent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::EndpointRecover => "endpoint.recover",
            TaskKind::EndpointReplay => "endpoint.replay",
            TaskKind::EndpointBulkReplay => "endpoint.bulk-replay",
            TaskKind::ApplicationPurgeContent => "application.purge_content",
        }
    }

    pub fn parse(s: &str) -> Option<TaskKind> {
        TaskKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Finished,
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 3] = [TaskStatus::Running, TaskStatus::Finished, TaskStatus::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Finished => "finished",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A recover or replay over a time range, worked through in steps of one
/// transaction each, so it survives a crash and several nodes share the work.
#[derive(Debug, Clone)]
pub struct BackgroundTask {
    pub id: String,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub app_id: String,
    /// Empty for a task of the whole application.
    pub endpoint_id: String,
    /// The range of message creation times the task covers.
    pub since: Timestamp,
    pub until: Timestamp,
    /// The last message id handled: the next step starts after it.
    pub cursor: Option<String>,
    /// What the task did so far: deliveries scheduled, or payloads purged.
    pub scheduled: u64,
    /// Why the task failed.
    pub error: Option<String>,
    /// Which deliveries a bulk replay sends again.
    pub filter: ResendFilter,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl BackgroundTask {
    /// A task starting now over messages created in [since, until).
    pub fn start(
        kind: TaskKind,
        app_id: &str,
        endpoint_id: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> BackgroundTask {
        let now = now();
        BackgroundTask {
            id: crate::ids::IdKind::Task.generate_at(now.timestamp_millis()),
            kind,
            status: TaskStatus::Running,
            app_id: app_id.into(),
            endpoint_id: endpoint_id.into(),
            since,
            until,
            cursor: None,
            scheduled: 0,
            error: None,
            filter: ResendFilter::default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// Svix's integration: a named key to one application, for a third party
/// the customer connects. The key is a signed application token naming the
/// integration and its key version; rotating bumps the version, which
/// refuses the old key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub feature_flags: Option<Vec<String>>,
    pub key_version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Which of an endpoint's deliveries are sent again: all of them when
/// empty. Svix's bulk-replay filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResendFilter {
    pub status: Option<DeliveryStatus>,
    /// The hundred some attempt's response status is in (`0`: no response).
    pub status_code_class: Option<u16>,
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub tag: Option<String>,
}

impl ResendFilter {
    /// What it asks of the message itself.
    pub fn content(&self) -> crate::store::MessageFilter {
        crate::store::MessageFilter {
            event_types: self.event_types.clone(),
            channel: self.channel.clone(),
            tag: self.tag.clone(),
            ..Default::default()
        }
    }

    /// What recover sends again.
    pub fn failed() -> ResendFilter {
        ResendFilter { status: Some(DeliveryStatus::Failed), ..ResendFilter::default() }
    }

    /// The stored form: `None` for the empty filter, else a JSON object.
    pub fn encode(&self) -> Option<String> {
        if *self == ResendFilter::default() {
            return None;
        }
        let json = serde_json::json!({
            "status": self.status.map(|s| s as u8),
            "statusCodeClass": self.status_code_class,
            "eventTypes": self.event_types,
            "channel": self.channel,
            "tag": self.tag,
        });
        Some(json.to_string())
    }

    /// Reads the stored form back; `None` when it is not one.
    pub fn decode(stored: Option<&str>) -> Option<ResendFilter> {
        let Some(text) = stored else { return Some(ResendFilter::default()) };
        let v: Value = serde_json::from_str(text).ok()?;
        let text_of = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let status = match v.get("status").and_then(Value::as_i64) {
            None => None,
            Some(n) => Some(DeliveryStatus::from_i64(n)?),
        };
        let event_types = match v.get("eventTypes").and_then(Value::as_array) {
            None => Vec::new(),
            Some(types) => types.iter().map(|t| t.as_str().map(str::to_string)).collect::<Option<_>>()?,
        };
        Some(ResendFilter {
            status,
            status_code_class: v.get("statusCodeClass").and_then(Value::as_u64).map(|c| c as u16),
            event_types,
            channel: text_of("channel"),
            tag: text_of("tag"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resend_filter_reads_back_as_it_was_stored() {
        let full = ResendFilter {
            status: Some(DeliveryStatus::Success),
            status_code_class: Some(0),
            event_types: vec!["a.one".into(), "b.two".into()],
            channel: Some("eu+west".into()),
            tag: Some("t1".into()),
        };
        for filter in [ResendFilter::default(), ResendFilter::failed(), full] {
            let stored = filter.encode();
            assert_eq!(ResendFilter::decode(stored.as_deref()), Some(filter));
        }
        assert_eq!(ResendFilter::default().encode(), None, "the empty filter stores nothing");
        assert_eq!(ResendFilter::decode(Some(r#"{"status": 9}"#)), None, "an unknown status is not a filter");
    }

    #[test]
    fn an_endpoint_shown_for_debugging_keeps_its_credentials_to_itself() {
        let now = Utc::now();
        let endpoint = Endpoint {
            id: "ep_2abc".into(),
            app_id: "app_2abc".into(),
            uid: Some("billing".into()),
            url: "https://hook-user:url-password@receiver.example/in".into(),
            description: String::new(),
            version: 1,
            disabled: false,
            rate_limit: None,
            filter_types: None,
            channels: None,
            metadata: [("owner".to_string(), "metadata-value".to_string())].into(),
            headers: [("Authorization".to_string(), "Bearer header-token".to_string())].into(),
            secret: SealedSecret(b"sealed-bytes".to_vec()),
            retired_secrets: vec![RetiredSecret { secret: SealedSecret(b"retired-bytes".to_vec()), expires_at: now }],
            failing_since: None,
            created_at: now,
            updated_at: now,
        };
        let shown = format!("{endpoint:?}");
        assert!(shown.contains("ep_2abc") && shown.contains("billing"), "{shown}");
        for hidden in
            ["url-password", "receiver.example", "header-token", "metadata-value", "115, 101, 97", "114, 101, 116"]
        {
            assert!(!shown.contains(hidden), "{hidden} shown in {shown}");
        }
    }
}
