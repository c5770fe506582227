//! `/api/v1/app/{app_id}/msg`: events the platform sends, fanned out to endpoints.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::access::{resolve_target, AppTarget, MessageTarget};
use super::applications::{ApplicationIn, ListOut};
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{parse_datetime, JsonBody, QueryParams};
use super::idempotency::{replay, Idem};
use super::json::{check_channels, check_not_id_shaped, opt_ts, ts};
use super::message_writer::{prepare_answers, write_batch, Draft, Written};
use super::AppState;
use crate::auth::Caller;
use crate::ids::{is_valid_uid, IdKind};
use crate::store::model::{Application, Message, Timestamp};
use crate::store::page::Order;
use crate::store::{MessageFilter, StoreError, Tx};

/// Svix's `MessageIn`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({
    "eventType": "invoice.paid",
    "eventId": "evt_1234",
    "payload": {"invoiceId": "in_1234", "amount": 4200}
}))]
pub struct MessageIn {
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    event_type: String,
    /// Your id of the event; a second message with it answers 409.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = NO_CONTROL_PATTERN))]
    #[schemars(extend("not" = {"type": "string", "pattern": "^msg_[A-Za-z0-9]{27}$"}))]
    event_id: Option<String>,
    /// Kept as the exact text the platform sent: receivers get these bytes.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    payload: Box<RawValue>,
    #[serde(default)]
    #[schemars(transform = super::json::channels_schema)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(length(max = 50), inner(length(min = 1, max = 128), regex(pattern = NO_CONTROL_PATTERN)))]
    tags: Option<Vec<String>>,
    /// Created with the uid in the path when that application does not exist (admin tokens).
    #[serde(default, deserialize_with = "super::json::object_only")]
    application: Option<ApplicationIn>,
    /// Days to keep the payload (Svix's name).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 1, max = 1825))]
    payload_retention_period: Option<i64>,
    /// Hours to keep the payload; wins over `payloadRetentionPeriod`.
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 1, max = 43800))]
    payload_retention_hours: Option<i64>,
    /// Deliver no earlier than this (at most 30 days ahead).
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    deliver_at: Option<String>,
}

/// No control character (what `char::is_control` finds), for schemas.
const NO_CONTROL_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// Deepest nesting of objects and arrays in a payload. The payload is kept
/// as raw text, so nothing here parses it; but receivers will, and many
/// parsers (Python's, serde_json's) fail past a few hundred levels.
pub(super) const MAX_PAYLOAD_DEPTH: usize = 100;
/// Tags are filters for listing messages, not a store.
const MAX_TAGS: usize = 50;

/// The deepest nesting of `[` and `{` in a JSON text, outside strings.
pub(super) fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// How far ahead a delivery may be scheduled.
const MAX_DELIVER_AHEAD_DAYS: i64 = 30;

/// Svix's `MessageOut`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageOut {
    id: String,
    event_type: String,
    event_id: Option<String>,
    /// `{}` without `with_content`, or once the payload is gone.
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    payload: Box<RawValue>,
    channels: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    #[serde(serialize_with = "ts")]
    timestamp: Timestamp,
    #[serde(serialize_with = "opt_ts")]
    deliver_at: Option<Timestamp>,
    /// Hookline extension: the payload is gone (retention or expunge).
    #[schemars(extend("x-hookline-extension" = true))]
    expired: bool,
}

impl MessageOut {
    /// `with_content = false` answers an empty payload, as Svix does.
    pub fn new(m: Message, with_content: bool) -> MessageOut {
        let expired = m.payload.is_none();
        let payload = match (m.payload, with_content) {
            (Some(text), true) => RawValue::from_string(text).unwrap_or_else(|_| empty_object()),
            _ => empty_object(),
        };
        MessageOut {
            expired,
            id: m.id,
            event_type: m.event_type,
            event_id: m.event_id,
            payload,
            channels: m.channels,
            tags: m.tags,
            timestamp: m.created_at,
            deliver_at: m.deliver_at,
        }
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).expect("{} is JSON")
}

impl MessageIn {
    fn validate(&self, v: &mut Validation, settings_retention: std::time::Duration) -> Duration {
        if !is_valid_uid(&self.event_type) {
            v.push(&["body", "eventType"], "must be 1 to 256 characters of A-Z a-z 0-9 - _ .");
        }
        if let Some(id) = &self.event_id {
            if id.is_empty() || id.chars().count() > 256 || id.chars().any(char::is_control) {
                v.push(&["body", "eventId"], "must be 1 to 256 characters, none of them a control character");
            }
        }
        check_not_id_shaped(v, "eventId", IdKind::Message, self.event_id.as_deref());
        if let Some(tags) = &self.tags {
            if tags.len() > MAX_TAGS {
                v.push(&["body", "tags"], format!("must hold at most {MAX_TAGS} tags"));
            }
            for tag in tags {
                if tag.is_empty() || tag.chars().count() > 128 || tag.chars().any(char::is_control) {
                    v.push(
                        &["body", "tags"],
                        format!("{tag:?} must be 1 to 128 characters, none of them a control character"),
                    );
                }
            }
        }
        if !self.payload.get().trim_start().starts_with('{') {
            v.push(&["body", "payload"], "must be a JSON object");
        } else if nesting_depth(self.payload.get()) > MAX_PAYLOAD_DEPTH {
            v.push(&["body", "payload"], format!("is nested deeper than {MAX_PAYLOAD_DEPTH} levels"));
        }
        check_channels(v, self.channels.as_deref());
        if let Some(app) = &self.application {
            app.validate(v);
        }
        if let Some(text) = &self.deliver_at {
            match parse_datetime(text) {
                None => v.push(&["body", "deliverAt"], format!("{text:?} is not an RFC 3339 datetime")),
                Some(t) if t > Utc::now() + Duration::days(MAX_DELIVER_AHEAD_DAYS) => {
                    v.push(&["body", "deliverAt"], format!("must be at most {MAX_DELIVER_AHEAD_DAYS} days ahead"))
                }
                Some(_) => {}
            }
        }
        let default = Duration::from_std(settings_retention).unwrap_or(Duration::days(90));
        let hours = self.payload_retention_hours.filter(|h| (1..=24 * 365 * 5).contains(h));
        let days = self.payload_retention_period.filter(|d| (1..=365 * 5).contains(d));
        if hours != self.payload_retention_hours {
            v.push(&["body", "payloadRetentionHours"], "must be from 1 to 43800 hours");
        }
        if days != self.payload_retention_period {
            v.push(&["body", "payloadRetentionPeriod"], "must be from 1 to 1825 days");
        }
        match (hours, days) {
            (Some(h), _) => Duration::hours(h),
            (None, Some(d)) => Duration::days(d),
            (None, None) => default,
        }
    }
}

/// How many times a request whose idempotency key another request holds
/// looks for that answer (or retries, if that request failed).
const KEY_BUSY_TRIES: u32 = 20;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    mut target: MessageTarget,
    q: QueryParams,
    idem: Idem,
    JsonBody(input): JsonBody<MessageIn>,
) -> ApiResult<Response> {
    let handler_started = crate::ops::trace::now();
    let with_content = q.bool("with_content", true)?;
    let mut v = Validation::default();
    let retention = input.validate(&mut v, state.settings.retention);
    v.finish()?;
    let now = crate::store::model::now();
    let draft = Draft {
        message: Message {
            id: IdKind::Message.generate_at(now.timestamp_millis()),
            // Set below once known (an inline application is created first).
            app_id: String::new(),
            event_type: input.event_type,
            event_id: input.event_id,
            channels: input.channels,
            tags: input.tags,
            payload: Some(input.payload.get().to_string()),
            payload_expires_at: now + retention,
            // A time in the past means now.
            deliver_at: input.deliver_at.as_deref().and_then(parse_datetime).filter(|t| *t > now),
            created_at: now,
        },
        with_content,
        idem: idem.key().map(|(k, h)| (k.to_vec(), h.to_vec())),
    };
    let store_started = crate::ops::trace::now();
    for tries in 1..=KEY_BUSY_TRIES {
        let written = write_draft(&state, &caller, &mut target, &draft, &input.application).await?;
        match written {
            Written::Created(body, registered) => {
                idem.mark_recorded();
                crate::ops::metrics::get().message_accepted(&draft.message.event_type, registered);
                if let (Some(started), Some(store_started), Some(committed)) =
                    (handler_started, store_started, crate::ops::trace::now())
                {
                    trace_accept(&draft.message, started, (store_started, committed));
                }
                let mut response = (StatusCode::ACCEPTED, body).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                return Ok(response);
            }
            Written::Replay(previous) => {
                idem.mark_recorded();
                let (key, body_hash) = idem.key().expect("a replay needs a key");
                return replay(&state, key, previous, body_hash).await;
            }
            Written::KeyBusy => {
                // The request holding the key has committed by now (or is in
                // the same batch): replay its answer, or, if it failed and
                // gave the key back, try again.
                let (key, body_hash) = idem.key().expect("a busy key needs a key");
                let lookup = key.to_vec();
                if let Some(previous) = state.store.read(move |tx| tx.idempotent_response(&lookup)).await? {
                    idem.mark_recorded();
                    return replay(&state, key, previous, body_hash).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(tries))).await;
            }
        }
    }
    Err(ApiError::conflict("another request with this idempotency key is still being processed; retry"))
}

/// Writes the draft into the target application. An unverified id that
/// names no application is then read as the access check would have read
/// it: 404, 401 for a token whose own application is gone, or an
/// application created from `application`.
async fn write_draft(
    state: &AppState,
    caller: &Caller,
    target: &mut MessageTarget,
    draft: &Draft,
    application: &Option<ApplicationIn>,
) -> ApiResult<Written> {
    let app = match target {
        MessageTarget::Resolved(app) => app.clone(),
        MessageTarget::Unverified(id) => {
            let id = id.clone();
            let mut draft = draft.clone();
            draft.message.app_id = id.clone();
            match state.messages.write(draft).await {
                Err(e) if e.status == StatusCode::NOT_FOUND => {
                    let app = resolve_target(state, caller, id, true).await?;
                    *target = MessageTarget::Resolved(app.clone());
                    app
                }
                written => return written,
            }
        }
    };
    match app {
        AppTarget::Existing(app) => {
            let mut draft = draft.clone();
            draft.message.app_id = app.id.clone();
            state.messages.write(draft).await
        }
        // An id is never a uid to create an application under.
        AppTarget::Missing(uid) if !IdKind::Application.is_creatable_uid(&uid) => Err(ApiError::not_found()),
        AppTarget::Missing(uid) => {
            let (application, draft, cipher) = (application.clone(), draft.clone(), state.cipher.clone());
            state
                .store
                .write(move |tx| {
                    let mut draft = draft.clone();
                    draft.message.app_id = create_inline_app(tx, &uid, application.clone())?;
                    // The answer's record names the application, known only now.
                    let answers = prepare_answers(std::slice::from_ref(&draft), &cipher)?;
                    Ok::<_, ApiError>(write_batch(tx, &[draft], &answers)?.remove(0))
                })
                .await?
        }
    }
}

/// The root of the message's trace (`accept`, from the handler to the
/// answer) and its `store` span (its batch's transaction, waiting included).
fn trace_accept(
    msg: &Message,
    started: std::time::SystemTime,
    (store_started, committed): (std::time::SystemTime, std::time::SystemTime),
) {
    use crate::ops::trace::{emit, Attribute, MessageTrace, SpanRecord};
    use opentelemetry::trace::SpanKind;
    let trace = MessageTrace::of(&msg.id);
    emit(
        &trace,
        SpanRecord {
            name: "accept",
            kind: SpanKind::Server,
            id: Some(trace.root),
            parent: None,
            start: started,
            end: std::time::SystemTime::now(),
            attributes: vec![
                Attribute::new("hookline.msg_id", msg.id.clone()),
                Attribute::new("hookline.event_type", msg.event_type.clone()),
                Attribute::new("http.route", "/api/v1/app/{app_id}/msg"),
            ],
            error: None,
        },
    );
    emit(
        &trace,
        SpanRecord {
            name: "store",
            kind: SpanKind::Internal,
            id: None,
            parent: Some(trace.root),
            start: store_started,
            end: committed,
            attributes: Vec::new(),
            error: None,
        },
    );
}

/// Svix creates the application on the fly when the message names one.
pub(super) fn create_inline_app(tx: &mut dyn Tx, uid: &str, app: Option<ApplicationIn>) -> ApiResult<String> {
    let Some(mut app) = app else {
        return Err(ApiError::not_found());
    };
    if !IdKind::Application.is_creatable_uid(uid) {
        return Err(ApiError::not_found());
    }
    if app.uid.as_deref().is_some_and(|u| u != uid) {
        return Err(ApiError::invalid(&["body", "application", "uid"], "must match the application in the path"));
    }
    app.uid = Some(uid.to_string());
    let app: Application = app.into_new();
    // Insert, then look: concurrent first messages (on any node) create
    // the application once and all find it.
    match tx.insert_application(&app) {
        Ok(()) => Ok(app.id),
        Err(StoreError::Conflict(what)) => Ok(tx.application(uid)?.ok_or(StoreError::Conflict(what))?.id),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(
    State(state): State<AppState>,
    super::access::ScopedApp(app): super::access::ScopedApp,
    q: QueryParams,
) -> ApiResult<Json<ListOut<MessageOut>>> {
    let query = q.list_query(Order::Descending)?;
    let with_content = q.bool("with_content", true)?;
    let filter = MessageFilter {
        event_types: q.event_types()?,
        channel: q.string("channel"),
        tag: q.string("tag"),
        before: q.datetime("before")?,
        after: q.datetime("after")?,
    };
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_messages(&app.id, &filter, &query)?)).await?;
    Ok(Json(ListOut::from_page(page, |m| MessageOut::new(m, with_content))))
}

pub async fn get(
    State(state): State<AppState>,
    super::access::ScopedApp(app): super::access::ScopedApp,
    Path((_, key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<MessageOut>> {
    let with_content = q.bool("with_content", true)?;
    let msg = state
        .store
        .read(move |tx| Ok::<_, ApiError>(tx.message(&app.id, &key)?))
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(MessageOut::new(msg, with_content)))
}

pub async fn expunge_content(
    State(state): State<AppState>,
    super::access::ScopedApp(app): super::access::ScopedApp,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .write(move |tx| {
            let msg = tx.message(&app.id, &key)?.ok_or(StoreError::NotFound)?;
            tx.expunge_message_payload(&app.id, &msg.id)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Svix's `MessagePrecheckIn`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"eventType": "invoice.paid"}))]
pub struct PrecheckIn {
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    event_type: String,
    #[serde(default)]
    #[schemars(transform = super::json::channels_schema)]
    channels: Option<Vec<String>>,
}

#[derive(Serialize, JsonSchema)]
pub struct PrecheckOut {
    active: bool,
}

/// Whether a message of this type (and channels) would reach any endpoint
/// now, so a platform can skip building payloads nobody receives.
pub async fn precheck(
    State(state): State<AppState>,
    super::access::ScopedApp(app): super::access::ScopedApp,
    JsonBody(input): JsonBody<PrecheckIn>,
) -> ApiResult<Json<PrecheckOut>> {
    let mut v = Validation::default();
    if !crate::ids::is_valid_uid(&input.event_type) {
        v.push(&["body", "eventType"], "must be 1 to 256 characters of A-Z a-z 0-9 - _ .");
    }
    super::json::check_channels(&mut v, input.channels.as_deref());
    v.finish()?;
    let active = state
        .store
        .read(move |tx| {
            let targets = tx.fanout_targets(&app.id)?;
            Ok::<_, ApiError>(targets.iter().any(|t| t.wants(&input.event_type, input.channels.as_deref())))
        })
        .await?;
    Ok(Json(PrecheckOut { active }))
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn nesting_depth_ignores_brackets_inside_strings() {
        assert_eq!(nesting_depth(r#"{"a": [1, {"b": 2}]}"#), 3);
        assert_eq!(nesting_depth(r#"{"a": "[[[{{{", "b": "\\\"[["}"#), 1);
        assert_eq!(nesting_depth("{}"), 1);
        let deep = format!("{{\"x\": {}{}}}", "[".repeat(500), "]".repeat(500));
        assert_eq!(nesting_depth(&deep), 501);
    }
}
