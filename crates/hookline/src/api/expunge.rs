//! Deleting content that should not have been kept: message payloads in
//! bulk or all at once (a background task), and attempts' response bodies.
//! (One message's payload: `messages::expunge_content`.)

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::ScopedApp;
use super::background_tasks::TaskStartedOut;
use super::error::{ApiError, ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::store::model::{now, BackgroundTask, TaskKind};
use crate::store::StoreError;

/// Most messages one bulk expunge names.
const MAX_BULK_IDS: usize = 1000;

/// Deletes the response body an attempt recorded (an endpoint answered
/// with something sensitive).
pub async fn attempt_content(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, msg_key, attempt_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .write(move |tx| {
            let msg = tx.message(&app.id, &msg_key)?.ok_or(StoreError::NotFound)?;
            tx.expunge_attempt_response(&app.id, &msg.id, &attempt_id)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Hookline extension: the payloads of these messages go.
#[derive(Deserialize, JsonSchema)]
#[schemars(example = serde_json::json!({"ids": ["msg_2mQ3yuq6bY3cHj1Bl4Lq8bqXQ7e", "order-1234"]}))]
pub struct BulkExpungeIn {
    /// Message ids or eventIds.
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 256), regex(pattern = "^[^\\x00]*$")))]
    ids: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct BulkExpungeOut {
    /// For each id (or eventId) given: `expunged` or `not-found`.
    #[schemars(extend("additionalProperties" = {"enum": ["expunged", "not-found"]}))]
    results: BTreeMap<String, &'static str>,
}

/// Deletes the payloads of the named messages, in one transaction.
pub async fn bulk(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<BulkExpungeIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    if input.ids.is_empty() || input.ids.len() > MAX_BULK_IDS {
        v.push(&["body", "ids"], format!("must name 1 to {MAX_BULK_IDS} messages"));
    }
    if input.ids.iter().any(|id| id.is_empty() || id.chars().count() > 256 || id.contains('\0')) {
        v.push(&["body", "ids"], "each must be a message id or eventId of 1 to 256 characters");
    }
    v.finish()?;
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let mut results = BTreeMap::new();
            for key in &input.ids {
                let outcome = match tx.message(&app.id, key)? {
                    Some(msg) => {
                        tx.expunge_message_payload(&app.id, &msg.id)?;
                        "expunged"
                    }
                    None => "not-found",
                };
                results.insert(key.clone(), outcome);
            }
            Ok(BulkExpungeOut { results })
        })
        .await
}

/// Starts a task that deletes the payload of every message of the
/// application sent before now.
pub async fn all_contents(State(state): State<AppState>, ScopedApp(app): ScopedApp, idem: Idem) -> ApiResult<Response> {
    let response = state
        .commit(idem, StatusCode::ACCEPTED, move |tx| {
            // Through the current millisecond: what was sent before the call.
            let until = now() + chrono::Duration::milliseconds(1);
            let task = BackgroundTask::start(
                TaskKind::ApplicationPurgeContent,
                &app.id,
                "",
                chrono::DateTime::UNIX_EPOCH,
                until,
            );
            tx.insert_task(&task)?;
            Ok(TaskStartedOut::from(&task))
        })
        .await?;
    state.task_wake.notify_one();
    Ok(response)
}
