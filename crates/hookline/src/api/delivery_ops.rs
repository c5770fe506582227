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
use super::json::{is_channel_name, ts};
use super::messages::{nesting_depth, MAX_PAYLOAD_DEPTH};
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

fn check_range(v: &mut Validation, range: &RangeIn) {
    if range.until.is_some_and(|u| u <= range.since) {
        v.push(&["body", "until"], "must be after since");
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
    let mut v = Validation::default();
    check_range(&mut v, &range);
    v.finish()?;
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
    // RangeIn's fields, not flattened: a flattened field's error loses its path.
    #[serde(deserialize_with = "datetime")]
    since: Timestamp,
    #[serde(default, deserialize_with = "opt_datetime")]
    until: Option<Timestamp>,
    #[serde(default)]
    #[schemars(length(max = 1000), inner(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN)))]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 128), regex(pattern = super::json::CHANNEL_PATTERN))]
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

/// The most event types a bulk replay may name (as an endpoint's filter).
const MAX_EVENT_TYPES: usize = 1000;

impl BulkReplayIn {
    fn range(&self) -> RangeIn {
        RangeIn { since: self.since, until: self.until }
    }

    /// The filter it asks for; `None` when nothing can match (status 4,
    /// canceled: Hookline cancels no delivery).
    fn filter(&self) -> ApiResult<Option<ResendFilter>> {
        let mut v = Validation::default();
        check_range(&mut v, &self.range());
        let status = match self.status {
            None | Some(4) => None,
            Some(n) => DeliveryStatus::from_i64(i64::from(n)).or_else(|| {
                v.push(&["body", "status"], "must be 0, 1, 2, 3 or 4");
                None
            }),
        };
        if self.status_code_class.is_some_and(|c| ![0, 100, 200, 300, 400, 500].contains(&c)) {
            v.push(&["body", "statusCodeClass"], "must be 0, 100, 200, 300, 400 or 500");
        }
        let event_types = self.event_types.clone().unwrap_or_default();
        if event_types.len() > MAX_EVENT_TYPES || !event_types.iter().all(|t| crate::ids::is_valid_uid(t)) {
            v.push(&["body", "eventTypes"], format!("must hold at most {MAX_EVENT_TYPES} event type names"));
        }
        if self.channel.as_deref().is_some_and(|c| !is_channel_name(c)) {
            v.push(&["body", "channel"], "is not a valid channel name");
        }
        if self
            .tag
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().count() > 128 || t.chars().any(char::is_control))
        {
            v.push(&["body", "tag"], "must be 1 to 128 characters, none of them a control character");
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
    start_task(state, app.id, ep_key, idem, input.range(), TaskKind::EndpointBulkReplay, filter).await
}

/// Svix's `EventExampleIn`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendExampleIn {
    /// An event type of the catalog (422 otherwise).
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    event_type: String,
    /// Which of the schema's `examples` to send (Svix's default: the first).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 0))]
    example_index: Option<usize>,
    /// A payload to send instead of an example.
    #[serde(default)]
    payload: Option<Value>,
}

/// The example of the event type's newest schema at `index` of its
/// `examples` (or its single `example`), else a placeholder naming the type.
/// An index that was asked for and is past the end of the schema's
/// `examples`, or an example that is not an object (a payload must be one),
/// is an error, not another example.
pub fn example_payload(et: Option<&EventType>, name: &str, index: Option<usize>) -> Result<Value, ApiError> {
    let schema = et.and_then(|et| et.schemas.as_ref()).and_then(|schemas| {
        let obj = schemas.as_object()?;
        let newest = obj.keys().max_by_key(|k| k.parse::<u64>().unwrap_or(0))?;
        Some(&obj[newest])
    });
    let examples = schema.and_then(|s| s.get("examples")).and_then(Value::as_array);
    let from_schema = match (examples, index) {
        (Some(examples), Some(i)) => Some(examples.get(i).ok_or_else(|| {
            let msg = format!("the event type has {} example(s); index {i} is past the end", examples.len());
            ApiError::invalid(&["body", "exampleIndex"], msg)
        })?),
        (Some(examples), None) if !examples.is_empty() => examples.first(),
        _ => schema.and_then(|s| s.get("example")),
    };
    match from_schema {
        Some(example) if example.is_object() => Ok(example.clone()),
        Some(_) => Err(ApiError::invalid(&["body", "exampleIndex"], "the schema's example is not a JSON object")),
        None => Ok(json!({"webhook_event_type": name, "example": true})),
    }
}

/// Sends the event type's example payload to this endpoint alone.
pub async fn send_example(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<SendExampleIn>,
) -> ApiResult<Response> {
    // The rules of a message's payload.
    if let Some(payload) = &input.payload {
        if !payload.is_object() {
            return Err(ApiError::invalid(&["body", "payload"], "must be a JSON object"));
        }
        if nesting_depth(&payload.to_string()) > MAX_PAYLOAD_DEPTH {
            let msg = format!("is nested deeper than {MAX_PAYLOAD_DEPTH} levels");
            return Err(ApiError::invalid(&["body", "payload"], msg));
        }
    }
    let now = crate::store::model::now();
    let retention = Duration::from_std(state.settings.retention).unwrap_or(Duration::days(90));
    let response = state
        .commit_message(idem, move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            let et = tx.event_type(&input.event_type)?;
            if et.is_none() {
                return Err(ApiError::invalid(&["body", "eventType"], "no such event type"));
            }
            let payload = match &input.payload {
                // A payload of the caller's is held to the type's schema,
                // as a message's is; the schema's own examples are not.
                Some(payload) => {
                    if let Some(et) = &et {
                        crate::catalog::check_payload(et, &payload.to_string())?;
                    }
                    payload.clone()
                }
                None => example_payload(et.as_ref(), &input.event_type, input.example_index)?,
            };
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
            Ok(msg)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event_type(schemas: Value) -> EventType {
        EventType {
            name: "a.b".into(),
            description: String::new(),
            archived: false,
            deprecated: false,
            schemas: Some(schemas),
            feature_flag: None,
            feature_flags: None,
            group_name: None,
            validate_payloads: false,
            created_at: crate::store::model::now(),
            updated_at: crate::store::model::now(),
        }
    }

    #[test]
    fn the_example_index_chooses_among_the_newest_schemas_examples() {
        let et = event_type(json!({
            "1": {"examples": [{"v": 1}]},
            "2": {"examples": [{"n": 0}, {"n": 1}]},
        }));
        assert_eq!(example_payload(Some(&et), "a.b", None).unwrap(), json!({"n": 0}));
        assert_eq!(example_payload(Some(&et), "a.b", Some(0)).unwrap(), json!({"n": 0}));
        assert_eq!(example_payload(Some(&et), "a.b", Some(1)).unwrap(), json!({"n": 1}));
        let past_the_end = example_payload(Some(&et), "a.b", Some(2)).unwrap_err();
        assert_eq!(past_the_end.status, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn without_examples_the_index_is_ignored() {
        let single = event_type(json!({"1": {"example": {"only": true}}}));
        assert_eq!(example_payload(Some(&single), "a.b", Some(3)).unwrap(), json!({"only": true}));
        let placeholder = json!({"webhook_event_type": "a.b", "example": true});
        assert_eq!(example_payload(Some(&event_type(json!({"1": {}}))), "a.b", Some(3)).unwrap(), placeholder);
        assert_eq!(example_payload(None, "a.b", None).unwrap(), placeholder);
        // An empty list is no examples, unless an index was asked for.
        let empty = event_type(json!({"1": {"examples": []}}));
        assert_eq!(example_payload(Some(&empty), "a.b", None).unwrap(), placeholder);
        assert!(example_payload(Some(&empty), "a.b", Some(0)).is_err());
    }

    #[test]
    fn an_example_that_is_not_an_object_is_refused() {
        let et = event_type(json!({"1": {"examples": [[1, 2], {"n": 1}]}}));
        let err = example_payload(Some(&et), "a.b", Some(0)).unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(example_payload(Some(&et), "a.b", Some(1)).unwrap(), json!({"n": 1}));
    }
}
