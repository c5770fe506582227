//! Delivery attempts and destinations of messages.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::access::ScopedApp;
use super::applications::ListOut;
use super::endpoints::EndpointOut;
use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;
use super::json::{opt_ts, ts};
use super::messages::MessageOut;
use super::AppState;
use crate::store::model::{Attempt, AttemptTrigger, Delivery, DeliveryStatus, Endpoint, Timestamp};
use crate::store::page::Order;
use crate::store::{AttemptFilter, MessageFilter};

/// 0 success, 1 pending, 2 fail, 3 sending.
fn status_schema(schema: &mut schemars::Schema) {
    schema.insert("enum".into(), serde_json::json!([0, 1, 2, 3]));
}

fn status_text_schema(schema: &mut schemars::Schema) {
    let all = [DeliveryStatus::Success, DeliveryStatus::Pending, DeliveryStatus::Failed, DeliveryStatus::Sending];
    schema.insert("enum".into(), all.map(status_text).into_iter().collect::<Vec<_>>().into());
}

pub fn status_text(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Failed => "fail",
        DeliveryStatus::Sending => "sending",
    }
}

/// Svix's `MessageAttemptOut`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    id: String,
    msg_id: String,
    endpoint_id: String,
    url: String,
    response: String,
    response_status_code: u16,
    response_duration_ms: i64,
    #[schemars(transform = status_schema)]
    status: u8,
    #[schemars(transform = status_text_schema)]
    status_text: &'static str,
    /// 0 scheduled, 1 manual.
    #[schemars(extend("enum" = [0, 1]))]
    trigger_type: u8,
    /// Hookline extension: why no HTTP answer was received.
    #[schemars(extend("x-hookline-extension" = true))]
    error: Option<String>,
    #[serde(serialize_with = "ts")]
    timestamp: Timestamp,
    /// The attempted message, without its payload (`with_msg=true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<MessageOut>,
}

impl AttemptOut {
    pub fn new(a: Attempt, with_content: bool) -> AttemptOut {
        AttemptOut {
            id: a.id,
            msg_id: a.msg_id,
            endpoint_id: a.endpoint_id,
            url: a.url,
            response: if with_content { a.response } else { String::new() },
            response_status_code: a.response_status_code,
            response_duration_ms: a.response_duration_ms,
            status: a.status as u8,
            status_text: status_text(a.status),
            trigger_type: match a.trigger {
                AttemptTrigger::Scheduled => 0,
                AttemptTrigger::Manual => 1,
            },
            error: a.error,
            timestamp: a.created_at,
            msg: None,
        }
    }
}

/// Svix's `status` filter. `4` (Canceled) is a valid status that Hookline
/// never gives (it cancels no attempt), so it is `Err(())`: nothing matches.
fn status_filter(q: &QueryParams) -> ApiResult<Result<Option<DeliveryStatus>, ()>> {
    // `expanded_statuses` only decides whether canceled attempts show as 4
    // or 0; with none, both read the same. It is still checked.
    q.bool("expanded_statuses", false)?;
    Ok(Ok(match q.raw("status").as_deref() {
        None => None,
        Some("0") => Some(DeliveryStatus::Success),
        Some("1") => Some(DeliveryStatus::Pending),
        Some("2") => Some(DeliveryStatus::Failed),
        Some("3") => Some(DeliveryStatus::Sending),
        Some("4") => return Ok(Err(())),
        Some(_) => return Err(ApiError::invalid(&["query", "status"], "must be 0, 1, 2, 3 or 4")),
    }))
}

/// `event_types`, `channel`, `tag`, `before` and `after`.
fn message_filter(q: &QueryParams) -> ApiResult<MessageFilter> {
    Ok(MessageFilter {
        event_types: q.event_types()?,
        channel: q.string("channel"),
        tag: q.string("tag"),
        before: q.datetime("before")?,
        after: q.datetime("after")?,
    })
}

/// The attempt filters of the query; `None` when nothing can match.
fn attempt_filter(q: &QueryParams) -> ApiResult<Option<AttemptFilter>> {
    let Ok(status) = status_filter(q)? else { return Ok(None) };
    let status_code_class = match q.raw("status_code_class") {
        None => None,
        Some(s) => match s.parse::<u16>() {
            Ok(class @ (0 | 100 | 200 | 300 | 400 | 500)) => Some(class),
            _ => {
                return Err(ApiError::invalid(&["query", "status_code_class"], "must be 0, 100, 200, 300, 400 or 500"))
            }
        },
    };
    let message = message_filter(q)?;
    let (before, after) = (message.before, message.after);
    Ok(Some(AttemptFilter { status, status_code_class, before, after, message, ..Default::default() }))
}

async fn list_attempts(
    state: &AppState,
    app_id: String,
    filter: Option<AttemptFilter>,
    q: &QueryParams,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let query = q.list_query(Order::Descending)?;
    let with_content = q.bool("with_content", true)?;
    let with_msg = q.bool("with_msg", false)?;
    let Some(filter) = filter else { return Ok(Json(ListOut::empty())) };
    let (page, messages) = state
        .store
        .read(move |tx| {
            let page = tx.list_attempts(&app_id, &filter, &query)?;
            let mut messages = HashMap::new();
            if with_msg {
                for a in &page.data {
                    if !messages.contains_key(&a.msg_id) {
                        if let Some(m) = tx.message(&app_id, &a.msg_id)? {
                            messages.insert(a.msg_id.clone(), m);
                        }
                    }
                }
            }
            Ok::<_, ApiError>((page, messages))
        })
        .await?;
    Ok(Json(ListOut::from_page(page, |a| {
        // Svix never includes the payload here, whatever `with_content` says.
        let msg = messages.get(&a.msg_id).map(|m| MessageOut::new(m.clone(), false));
        AttemptOut { msg, ..AttemptOut::new(a, with_content) }
    })))
}

pub async fn by_message(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let app_id = app.id.clone();
    let msg = state
        .store
        .read(move |tx| Ok::<_, ApiError>(tx.message(&app_id, &msg_key)?))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut filter = attempt_filter(&q)?;
    if let Some(f) = &mut filter {
        f.msg_id = Some(msg.id);
    }
    if let Some(ep) = q.string("endpoint_id") {
        let app_id = app.id.clone();
        let ep = state
            .store
            .read(move |tx| Ok::<_, ApiError>(tx.endpoint(&app_id, &ep)?))
            .await?
            .ok_or_else(ApiError::not_found)?;
        if let Some(f) = &mut filter {
            f.endpoint_id = Some(ep.id);
        }
    }
    list_attempts(&state, app.id, filter, &q).await
}

pub async fn by_endpoint(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let ep = super::endpoints::load(&state, app.id.clone(), ep_key).await?;
    let mut filter = attempt_filter(&q)?;
    if let Some(f) = &mut filter {
        f.endpoint_id = Some(ep.id);
    }
    list_attempts(&state, app.id, filter, &q).await
}

pub async fn get(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key, attempt_id)): Path<(String, String, String)>,
    q: QueryParams,
) -> ApiResult<Json<AttemptOut>> {
    q.bool("expanded_statuses", false)?;
    let attempt = state
        .store
        .read(move |tx| {
            let Some(msg) = tx.message(&app.id, &msg_key)? else { return Ok::<_, ApiError>(None) };
            Ok(tx.attempt(&app.id, &msg.id, &attempt_id)?)
        })
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(AttemptOut::new(attempt, true)))
}

/// Svix's `MessageEndpointOut`: an endpoint plus where this message stands for it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    #[serde(flatten)]
    endpoint: EndpointOut,
    #[schemars(transform = status_schema)]
    status: u8,
    #[schemars(transform = status_text_schema)]
    status_text: &'static str,
    #[serde(serialize_with = "opt_ts")]
    next_attempt: Option<Timestamp>,
}

impl DestinationOut {
    fn new(ep: Endpoint, d: Delivery) -> DestinationOut {
        DestinationOut {
            endpoint: ep.into(),
            status: d.status as u8,
            status_text: status_text(d.status),
            next_attempt: if d.status == DeliveryStatus::Pending { d.next_attempt_at } else { None },
        }
    }
}

/// The endpoints a message was sent to, by endpoint id, a page at a time.
pub async fn destinations(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<ListOut<DestinationOut>>> {
    let query = q.list_query(Order::Ascending)?;
    let page = state
        .store
        .read(move |tx| {
            let msg = tx.message(&app.id, &msg_key)?.ok_or_else(ApiError::not_found)?;
            let page = tx.list_message_deliveries(&app.id, &msg.id, &query)?;
            let mut endpoints = HashMap::new();
            for d in &page.data {
                if let Some(ep) = tx.endpoint(&app.id, &d.endpoint_id)? {
                    endpoints.insert(ep.id.clone(), ep);
                }
            }
            Ok::<_, ApiError>((page, endpoints))
        })
        .await?;
    let (page, mut endpoints) = page;
    // A delivery row goes with its endpoint (a cascade on the embedded
    // store, an explicit delete on PostgreSQL), so every one has its
    // endpoint; the filter only guards the snapshot's edge.
    let page = crate::store::page::Page {
        data: page.data.into_iter().filter_map(|d| endpoints.remove(&d.endpoint_id).map(|ep| (ep, d))).collect(),
        iterator: page.iterator,
        prev_iterator: page.prev_iterator,
        done: page.done,
    };
    Ok(Json(ListOut::from_page(page, |(ep, d)| DestinationOut::new(ep, d))))
}

/// Svix's `EndpointMessageOut`: a message plus where it stands for one endpoint.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    message: super::messages::MessageOut,
    #[schemars(transform = status_schema)]
    status: u8,
    #[schemars(transform = status_text_schema)]
    status_text: &'static str,
    #[serde(serialize_with = "opt_ts")]
    next_attempt: Option<Timestamp>,
}

/// The messages sent (or being sent) to one endpoint, newest first.
pub async fn endpoint_messages(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<ListOut<EndpointMessageOut>>> {
    let query = q.list_query(Order::Descending)?;
    let with_content = q.bool("with_content", true)?;
    let status = status_filter(&q)?;
    let filter = message_filter(&q)?;
    let page = state
        .store
        .read(move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or_else(ApiError::not_found)?;
            let Ok(status) = status else { return Ok(crate::store::page::Page::empty()) };
            Ok::<_, ApiError>(tx.list_endpoint_messages(&ep.id, status, &filter, &query)?)
        })
        .await?;
    Ok(Json(ListOut::from_page(page, |(d, m)| EndpointMessageOut {
        message: super::messages::MessageOut::new(m, with_content),
        status: d.status as u8,
        status_text: status_text(d.status),
        next_attempt: if d.status == DeliveryStatus::Pending { d.next_attempt_at } else { None },
    })))
}
