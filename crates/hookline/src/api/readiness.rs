//! `GET /api/v1/health/ready`: whether this node should get traffic (see
//! `ops::health`). `GET /api/v1/health` stays Svix's liveness answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::ops::health;

pub async fn ready(State(state): State<AppState>) -> Response {
    let report = health::check(&state.store, &state.dispatcher_heartbeat).await;
    if report.is_ready() {
        (StatusCode::OK, Json(json!({"status": "ready", "store": report.store, "dispatcher": report.dispatcher})))
            .into_response()
    } else {
        // Every non-2xx is `{code, detail}`; the checks ride along.
        let body = json!({
            "code": "not_ready",
            "detail": report.detail(),
            "store": report.store,
            "dispatcher": report.dispatcher,
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
