//! `background-task`: the recover and replay tasks, and their progress.
//! The platform sees every task; an application token its own.

use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};

use super::applications::ListOut;
use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;
use super::json::ts;
use super::AppState;
use crate::auth::{Caller, Scope};
use crate::store::model::{BackgroundTask, TaskKind, TaskStatus, Timestamp};
use crate::store::page::Order;
use crate::store::TaskFilter;

/// Svix's `RecoverOut` and `ReplayOut`: what starting a task answers.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStartedOut {
    id: String,
    #[schemars(transform = task_status_schema)]
    status: &'static str,
    #[schemars(transform = task_kind_schema)]
    task: &'static str,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<&BackgroundTask> for TaskStartedOut {
    fn from(t: &BackgroundTask) -> TaskStartedOut {
        TaskStartedOut { id: t.id.clone(), status: t.status.as_str(), task: t.kind.as_str(), updated_at: t.updated_at }
    }
}

/// Svix's `BackgroundTaskOut`; `data` holds the task's range and progress.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskOut {
    data: serde_json::Map<String, Value>,
    id: String,
    #[schemars(transform = task_status_schema)]
    status: &'static str,
    #[schemars(transform = task_kind_schema)]
    task: &'static str,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<BackgroundTask> for TaskOut {
    fn from(t: BackgroundTask) -> TaskOut {
        let mut data = match t.kind {
            TaskKind::EndpointRecover | TaskKind::EndpointReplay => json!({
                "appId": t.app_id,
                "endpointId": t.endpoint_id,
                "since": super::json::rfc3339(&t.since),
                "until": super::json::rfc3339(&t.until),
                "messagesScheduled": t.scheduled,
            }),
            // Svix's documented shapes for these tasks.
            TaskKind::EndpointBulkReplay => json!({
                "appId": t.app_id,
                "endpointId": t.endpoint_id,
                "since": super::json::rfc3339(&t.since),
                "until": super::json::rfc3339(&t.until),
                "messagesSent": t.scheduled,
            }),
            TaskKind::ApplicationPurgeContent => json!({"appId": t.app_id, "messagesPurged": t.scheduled}),
        };
        if let Some(error) = &t.error {
            data["error"] = json!(error);
        }
        let Value::Object(data) = data else { unreachable!("task data is an object") };
        TaskOut { data, id: t.id, status: t.status.as_str(), task: t.kind.as_str(), updated_at: t.updated_at }
    }
}

fn task_status_schema(schema: &mut schemars::Schema) {
    schema.insert("enum".into(), TaskStatus::ALL.map(TaskStatus::as_str).into_iter().collect::<Vec<_>>().into());
}

fn task_kind_schema(schema: &mut schemars::Schema) {
    schema.insert("enum".into(), TaskKind::ALL.map(TaskKind::as_str).into_iter().collect::<Vec<_>>().into());
}

/// What the `task` filter accepts: Hookline's task types and Svix's others.
pub fn task_filter_schema(schema: &mut schemars::Schema) {
    let mut all: Vec<&str> = TaskKind::ALL.map(TaskKind::as_str).into();
    all.extend(SVIX_ONLY_TASKS);
    schema.insert("enum".into(), all.into());
}

pub fn task_status_filter_schema(schema: &mut schemars::Schema) {
    task_status_schema(schema)
}

fn own_app(caller: &Caller) -> Option<String> {
    match &caller.scope {
        Scope::Admin => None,
        Scope::App { app, .. } => Some(app.clone()),
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller, q: QueryParams) -> ApiResult<Json<ListOut<TaskOut>>> {
    let query = q.list_query(Order::Descending)?;
    let status = match q.raw("status") {
        None => None,
        Some(s) => Some(
            TaskStatus::parse(&s)
                .ok_or_else(|| ApiError::invalid(&["query", "status"], "status must be running, finished or failed"))?,
        ),
    };
    // Svix's other task types never run here, so a filter on one lists nothing.
    let kind = match q.raw("task") {
        None => None,
        Some(s) => match TaskKind::parse(&s) {
            Some(k) => Some(k),
            None if SVIX_ONLY_TASKS.contains(&s.as_str()) => return Ok(Json(ListOut::empty())),
            None => return Err(ApiError::invalid(&["query", "task"], format!("unknown task type {s:?}"))),
        },
    };
    let filter = TaskFilter { app_id: own_app(&caller), status, kind };
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_tasks(&filter, &query)?)).await?;
    Ok(Json(ListOut::from_page(page, TaskOut::from)))
}

/// Svix's task types that Hookline has no such work for.
const SVIX_ONLY_TASKS: &[&str] = &["application.stats", "message.broadcast", "sdk.generate", "event-type.aggregate"];

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> ApiResult<Json<TaskOut>> {
    let task = state.store.read(move |tx| Ok::<_, ApiError>(tx.task(&task_id)?)).await?;
    match (task, own_app(&caller)) {
        (Some(t), Some(app)) if t.app_id != app => Err(ApiError::not_found()),
        (Some(t), _) => Ok(Json(TaskOut::from(t))),
        (None, _) => Err(ApiError::not_found()),
    }
}
