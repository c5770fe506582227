//! Buffers request bodies up to `HOOKLINE_MAX_PAYLOAD`.
//!
//! Runs after authentication (`access::check`), so only a caller with a
//! valid token can make the server read a body. A body over the limit is
//! still read (up to a hard cap) and discarded, so the client reads our 413
//! instead of a reset connection.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use http_body_util::BodyExt;

use super::error::ApiError;

/// Past this much we stop draining and let the connection close.
const DRAIN_CAP: usize = 64 * 1024 * 1024;
/// A body must arrive within this long: a client dripping bytes cannot hold
/// a request (and its buffer) open.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a whole request body of at most `limit` bytes.
pub async fn buffer(body: Body, limit: usize) -> Result<Body, ApiError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, read(body, limit)).await {
        Ok(result) => result.map(|bytes| Body::from(Bytes::from(bytes))),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("The request body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
        )),
    }
}

async fn read(mut body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("Could not read the request body: {e}")))?;
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
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("Request body is {seen} bytes; the limit is {limit}"),
        ));
    }
    Ok(buf)
}
