//! Delivery attempts and destinations of messages.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;

use super::access::ScopedApp;
use super::applications::ListOut;
use super::endpoints::EndpointOut;
use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;
use super::json::{opt_ts, ts};
use super::AppState;
use crate::store::model::{Attempt, AttemptTrigger, Delivery, DeliveryStatus, Endpoint, Timestamp};
use crate::store::page::Order;
use crate::store::AttemptFilter;

pub fn status_text(s: DeliveryStatus) -> &'static str {
    match s {
        DeliveryStatus::Success => "success",
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Failed => "fail",
        DeliveryStatus::Sending => "sending",
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    id: String,
    msg_id: String,
    endpoint_id: String,
    url: String,
    response: String,
    response_status_code: u16,
    response_duration_ms: i64,
    status: u8,
    status_text: &'static str,
    trigger_type: u8,
    /// Hookline extension: why no HTTP answer was received.
    error: Option<String>,
    #[serde(serialize_with = "ts")]
    timestamp: Timestamp,
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
        }
    }
}

fn attempt_filter(q: &QueryParams) -> ApiResult<AttemptFilter> {
    let status = match q.string("status") {
        None => None,
        Some(s) => Some(match s.as_str() {
            "0" => DeliveryStatus::Success,
            "1" => DeliveryStatus::Pending,
            "2" => DeliveryStatus::Failed,
            "3" => DeliveryStatus::Sending,
            _ => return Err(ApiError::invalid(&["query", "status"], "must be 0, 1, 2 or 3")),
        }),
    };
    Ok(AttemptFilter { status, before: q.datetime("before")?, after: q.datetime("after")?, ..Default::default() })
}

async fn list_attempts(
    state: &AppState,
    app_id: String,
    filter: AttemptFilter,
    q: &QueryParams,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let query = q.list_query(Order::Descending)?;
    let with_content = q.bool("with_content", true)?;
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_attempts(&app_id, &filter, &query)?)).await?;
    Ok(Json(ListOut::from_page(page, |a| AttemptOut::new(a, with_content))))
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
    filter.msg_id = Some(msg.id);
    if let Some(ep) = q.string("endpoint_id") {
        let app_id = app.id.clone();
        let ep = state
            .store
            .read(move |tx| Ok::<_, ApiError>(tx.endpoint(&app_id, &ep)?))
            .await?
            .ok_or_else(ApiError::not_found)?;
        filter.endpoint_id = Some(ep.id);
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
    filter.endpoint_id = Some(ep.id);
    list_attempts(&state, app.id, filter, &q).await
}

pub async fn get(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<Json<AttemptOut>> {
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
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationOut {
    #[serde(flatten)]
    endpoint: EndpointOut,
    status: u8,
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

pub async fn destinations(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key)): Path<(String, String)>,
) -> ApiResult<Json<ListOut<DestinationOut>>> {
    let rows = state
        .store
        .read(move |tx| {
            let msg = tx.message(&app.id, &msg_key)?.ok_or_else(ApiError::not_found)?;
            let mut out = Vec::new();
            for d in tx.deliveries_of_message(&app.id, &msg.id)? {
                if let Some(ep) = tx.endpoint(&app.id, &d.endpoint_id)? {
                    out.push(DestinationOut::new(ep, d));
                }
            }
            Ok::<_, ApiError>(out)
        })
        .await?;
    let page = crate::store::page::Page {
        iterator: rows.last().map(|d| d.endpoint.id.clone()),
        prev_iterator: rows.first().map(|d| format!("-{}", d.endpoint.id)),
        done: true,
        data: rows,
    };
    Ok(Json(ListOut::from_page(page, |d| d)))
}

/// Svix's `EndpointMessageOut`: a message plus where it stands for one endpoint.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointMessageOut {
    #[serde(flatten)]
    message: super::messages::MessageOut,
    status: u8,
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
    let status = attempt_filter(&q)?.status;
    let page = state
        .store
        .read(move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or_else(ApiError::not_found)?;
            Ok::<_, ApiError>(tx.list_endpoint_messages(&ep.id, status, &query)?)
        })
        .await?;
    Ok(Json(ListOut::from_page(page, |(d, m)| EndpointMessageOut {
        message: super::messages::MessageOut::new(m, with_content),
        status: d.status as u8,
        status_text: status_text(d.status),
        next_attempt: if d.status == DeliveryStatus::Pending { d.next_attempt_at } else { None },
    })))
}
