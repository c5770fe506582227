//! Manual delivery operations: resend, recover, replay-missing, send-example,
//! and the endpoint's delivery stats.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::access::ScopedApp;
use super::background_tasks::TaskStartedOut;
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::json::ts;
use super::messages::MessageOut;
use super::AppState;
use crate::ids::IdKind;
use crate::store::model::{
    BackgroundTask, DeliveryStatus, EventType, Message, ResendFilter, TaskKind, TaskStatus, Timestamp,
};
use crate::store::StoreError;

/// Svix's `RecoverIn` and `ReplayIn`.
#[derive(Deserialize, JsonSchema)]
#[schemars(example = serde_json::json!({"since": "2025-01-01T00:00:00Z"}))]
pub struct RangeIn {
    #[serde(deserialize_with = "datetime")]
    since: Timestamp,
    #[serde(default, deserialize_with = "opt_datetime")]
    until: Option<Timestamp>,
}

fn datetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let s = String::deserialize(d)?;
    super::extract::parse_datetime(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 datetime")))
}

fn opt_datetime<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => super::extract::parse_datetime(&s)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 datetime"))),
    }
}

/// `{}`: what Svix answers a resend with.
#[derive(Serialize, JsonSchema)]
pub struct EmptyOut {}

/// Sends a message to one endpoint again, now, as a manual attempt.
pub async fn resend(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key, ep_key)): Path<(String, String, String)>,
    idem: Idem,
) -> ApiResult<Response> {
    let response = state
        .commit(idem, StatusCode::ACCEPTED, move |tx| {
            let msg = tx.message(&app.id, &msg_key)?.ok_or(StoreError::NotFound)?;
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            if msg.payload.is_none() {
                return Err(ApiError::bad_request(
                    "The message's payload has expired or was expunged; it cannot be resent",
                ));
            }
            tx.schedule_delivery(&app.id, &msg.id, &ep.id, None, true)?;
            Ok(EmptyOut {})
        })
        .await?;
    Ok(response)
}

/// Starts a task that schedules, for one endpoint, the messages of a time
/// range (see `crate::tasks`), and answers it as running. A `filter` of
/// `None` matches nothing: the task is born finished.
async fn start_task(
    state: AppState,
    app_id: String,
    ep_key: String,
    idem: Idem,
    range: RangeIn,
    kind: TaskKind,
    filter: Option<ResendFilter>,
) -> ApiResult<Response> {
    if range.until.is_some_and(|u| u <= range.since) {
        return Err(ApiError::invalid(&["body", "until"], "must be after since"));
    }
    let response = state
        .commit(idem, StatusCode::ACCEPTED, move |tx| {
            let ep = tx.endpoint(&app_id, &ep_key)?.ok_or(StoreError::NotFound)?;
            // An open range ends now: messages sent from here on reach the
            // endpoint anyway.
            let until = range.until.unwrap_or(crate::store::model::now() + Duration::milliseconds(1));
            let mut task = BackgroundTask::start(kind, &app_id, &ep.id, range.since, until);
            match &filter {
                Some(filter) => task.filter = filter.clone(),
                None => task.status = TaskStatus::Finished,
            }
            tx.insert_task(&task)?;
            Ok(TaskStartedOut::from(&task))
        })
        .await?;
    state.task_wake.notify_one();
    Ok(response)
}

/// Schedules every failed delivery to the endpoint (of messages created in
/// the range) for a fresh round of attempts.
pub async fn recover(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(range): JsonBody<RangeIn>,
) -> ApiResult<Response> {
    start_task(state, app.id, ep_key, idem, range, TaskKind::EndpointRecover, Some(ResendFilter::failed())).await
}

/// Delivers to the endpoint the messages of the range it never got (e.g.
/// sent before it existed, or while it filtered them out).
pub async fn replay_missing(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(range): JsonBody<RangeIn>,
) -> ApiResult<Response> {
    start_task(state, app.id, ep_key, idem, range, TaskKind::EndpointReplay, Some(ResendFilter::default())).await
}

/// Svix's `BulkReplayIn`: a range and what the deliveries must match.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"since": "2025-01-01T00:00:00Z", "status": 2}))]
pub struct BulkReplayIn {
    #[serde(flatten)]
    range: RangeIn,
    #[serde(default)]
    #[schemars(inner(length(min = 1, max = 256)))]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    channel: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 128))]
    tag: Option<String>,
    /// 0 success, 1 pending, 2 fail, 3 sending, 4 canceled (matches nothing here).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(extend("enum" = [0, 1, 2, 3, 4, null]))]
    status: Option<u8>,
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(extend("enum" = [0, 100, 200, 300, 400, 500, null]))]
    status_code_class: Option<u16>,
}

impl BulkReplayIn {
    /// The filter it asks for; `None` when nothing can match (status 4,
    /// canceled: Hookline cancels no delivery).
    fn filter(&self) -> ApiResult<Option<ResendFilter>> {
        let mut v = Validation::default();
        let status = match self.status {
            None | Some(4) => None,
            Some(n) => match DeliveryStatus::from_i64(i64::from(n)) {
                Some(s) => Some(s),
                None => {
                    v.push(&["body", "status"], "must be 0, 1, 2, 3 or 4");
                    None
                }
            },
        };
        if self.status_code_class.is_some_and(|c| ![0, 100, 200, 300, 400, 500].contains(&c)) {
            v.push(&["body", "statusCodeClass"], "must be 0, 100, 200, 300, 400 or 500");
        }
        let event_types = self.event_types.clone().unwrap_or_default();
        if event_types.iter().any(|t| t.is_empty() || t.len() > 256) {
            v.push(&["body", "eventTypes"], "event type names are 1 to 256 characters");
        }
        for (name, value) in [("channel", &self.channel), ("tag", &self.tag)] {
            if value.as_ref().is_some_and(|x| x.is_empty() || x.len() > 128) {
                v.push(&["body", name], "must be 1 to 128 characters");
            }
        }
        v.finish()?;
        if self.status == Some(4) {
            return Ok(None);
        }
        Ok(Some(ResendFilter {
            status,
            status_code_class: self.status_code_class,
            event_types,
            channel: self.channel.clone(),
            tag: self.tag.clone(),
        }))
    }
}

/// Sends again, once each, the endpoint's deliveries of the range that
/// match the filters, successful ones too.
pub async fn bulk_replay(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<BulkReplayIn>,
) -> ApiResult<Response> {
    let filter = input.filter()?;
    start_task(state, app.id, ep_key, idem, input.range, TaskKind::EndpointBulkReplay, filter).await
}

/// Svix's `EventExampleIn`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendExampleIn {
    /// An event type of the catalog (422 otherwise).
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    event_type: String,
}

/// The first example of the event type's newest schema, if the catalog has one.
pub fn example_payload(et: Option<&EventType>, name: &str) -> Value {
    let from_schema = et.and_then(|et| et.schemas.as_ref()).and_then(|schemas| {
        let obj = schemas.as_object()?;
        let newest = obj.keys().max_by_key(|k| k.parse::<u64>().unwrap_or(0))?;
        let schema = &obj[newest];
        schema.get("examples").and_then(|e| e.get(0)).or_else(|| schema.get("example")).cloned()
    });
    from_schema.filter(Value::is_object).unwrap_or_else(|| json!({"webhook_event_type": name, "example": true}))
}

/// Sends the event type's example payload to this endpoint alone.
pub async fn send_example(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<SendExampleIn>,
) -> ApiResult<Response> {
    let now = crate::store::model::now();
    let retention = Duration::from_std(state.settings.retention).unwrap_or(Duration::days(90));
    let response = state
        .commit(idem, StatusCode::ACCEPTED, move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            let et = tx.event_type(&input.event_type)?;
            if et.is_none() {
                return Err(ApiError::invalid(&["body", "eventType"], "no such event type"));
            }
            let payload = example_payload(et.as_ref(), &input.event_type);
            let msg = Message {
                id: IdKind::Message.generate_at(now.timestamp_millis()),
                app_id: app.id.clone(),
                event_type: input.event_type.clone(),
                event_id: None,
                channels: None,
                tags: Some(vec!["example".into()]),
                payload: Some(serde_json::to_string(&payload).map_err(ApiError::internal)?),
                payload_expires_at: now + retention,
                deliver_at: None,
                created_at: now,
            };
            tx.insert_message(&msg)?;
            tx.schedule_delivery(&app.id, &msg.id, &ep.id, None, false)?;
            Ok(MessageOut::new(msg, true))
        })
        .await?;
    Ok(response)
}

/// Svix's `EndpointStats`.
#[derive(Serialize, JsonSchema)]
pub struct StatsOut {
    success: u64,
    pending: u64,
    sending: u64,
    fail: u64,
    canceled: u64,
    #[serde(serialize_with = "ts")]
    since: Timestamp,
}

pub async fn stats(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<StatsOut>> {
    let since = q.datetime("since")?;
    let until = q.datetime("until")?;
    let stats = state
        .store
        .read(move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            Ok::<_, ApiError>((tx.delivery_stats(&ep.id, since, until)?, ep.created_at))
        })
        .await?;
    let (s, created) = stats;
    Ok(Json(StatsOut {
        success: s.success,
        pending: s.pending,
        sending: s.sending,
        fail: s.failed,
        canceled: 0,
        since: since.unwrap_or(created),
    }))
}
