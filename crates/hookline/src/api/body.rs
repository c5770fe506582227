//! Buffers request bodies up to `HOOKLINE_MAX_PAYLOAD`.
//!
//! A body over the limit is still read (up to a hard cap) and discarded, so
//! the client reads our 413 instead of a reset connection.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use super::error::ApiError;
use super::AppState;

/// Past this much we stop draining and let the connection close.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

pub async fn buffer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.settings.max_payload;
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => return ApiError::bad_request(format!("Could not read the request body: {e}")).into_response(),
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_CAP {
                break;
            }
        }
    }
    if seen > limit {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body is {seen} bytes; the limit is {limit}"),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(buf)))).await
}
