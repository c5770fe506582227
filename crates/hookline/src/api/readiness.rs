//! `GET /api/v1/health/ready`: whether this node should get traffic (see
//! `ops::health`). `GET /api/v1/health` stays Svix's liveness answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::AppState;
use crate::ops::health::{self, Check};

/// A ready node's answer.
#[derive(Serialize, JsonSchema)]
pub struct ReadyOut {
    #[schemars(extend("const" = "ready"))]
    status: &'static str,
    store: Check,
    dispatcher: Check,
}

/// A node that is not ready: `{code, detail}` with the checks riding along.
#[derive(Serialize, JsonSchema)]
pub struct NotReadyOut {
    #[schemars(extend("const" = "not_ready"))]
    code: &'static str,
    detail: String,
    store: Check,
    dispatcher: Check,
}

pub async fn ready(State(state): State<AppState>) -> Response {
    let report = health::check(&state.store, &state.dispatcher_heartbeat).await;
    if report.is_ready() {
        let out = ReadyOut { status: "ready", store: report.store, dispatcher: report.dispatcher };
        (StatusCode::OK, Json(out)).into_response()
    } else {
        let detail = report.detail();
        let out = NotReadyOut { code: "not_ready", detail, store: report.store, dispatcher: report.dispatcher };
        (StatusCode::SERVICE_UNAVAILABLE, Json(out)).into_response()
    }
}
