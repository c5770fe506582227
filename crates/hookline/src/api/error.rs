//! The one error type of the API, answered as Svix's `{"code", "detail"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    /// A sentence, or for 422 a list of `{loc, msg, type}`.
    pub detail: Value,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError { status, code, detail: Value::String(detail.into()) }
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "Entity not found")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_failed", "Missing, invalid or expired bearer token")
    }

    pub fn forbidden(why: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "insufficient_access", why)
    }

    pub fn conflict(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// A 422 naming the failing input: `loc` is e.g. `["body", "url"]`.
    pub fn invalid(loc: &[&str], msg: impl Into<String>) -> ApiError {
        Validation::default().field(loc, msg).into_error()
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %what, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Internal error; see the server log")
    }
}

/// Collects every invalid field of a request, so one 422 names them all.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<Value>,
}

impl Validation {
    pub fn field(mut self, loc: &[&str], msg: impl Into<String>) -> Validation {
        self.push(loc, msg);
        self
    }

    pub fn push(&mut self, loc: &[&str], msg: impl Into<String>) {
        self.errors.push(json!({"loc": loc, "msg": msg.into(), "type": "value_error"}));
    }

    pub fn push_value(&mut self, loc: Vec<Value>, msg: impl Into<String>, kind: &str) {
        self.errors.push(json!({"loc": loc, "msg": msg.into(), "type": kind}));
    }

    pub fn into_error(self) -> ApiError {
        ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, code: "validation", detail: Value::Array(self.errors) }
    }

    /// Each problem as one line, `field message`, for writers that answer
    /// no request (the import).
    pub fn problems(&self) -> Vec<String> {
        self.errors
            .iter()
            .map(|e| {
                // `loc` starts with where the value came from (`body`).
                let field: Vec<String> = e["loc"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .skip(1)
                    .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string))
                    .collect();
                let msg = e["msg"].as_str().unwrap_or_default();
                match field.join(".") {
                    f if f.is_empty() => msg.to_string(),
                    f => format!("{f} {msg}"),
                }
            })
            .collect()
    }

    /// `Ok` when nothing was invalid.
    pub fn finish(self) -> ApiResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.into_error())
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Conflict(what) => ApiError::conflict(format!("{what} already exists")),
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Backend(e) | StoreError::Refused(e) => ApiError::internal(e),
            StoreError::Invalid(why) => ApiError::invalid(&["body"], why),
            StoreError::Unavailable(e) => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "The store is unavailable right now; nothing was changed. Retry shortly.",
                )
            }
        }
    }
}

/// The Svix `code` of a status, for errors raised outside our handlers.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "authentication_failed",
        403 => "insufficient_access",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation",
        429 => "rate_limited",
        503 => "service_unavailable",
        s if s >= 500 => "internal_error",
        _ => "error",
    }
}

/// Middleware: an error answered by a framework layer or extractor as plain
/// text becomes `{code, detail}` with the same status, so every rejection a
/// client can see has the Svix shape.
pub async fn json_errors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let text = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    let error = if status == StatusCode::UNPROCESSABLE_ENTITY {
        Validation::default().field(&["body"], text).into_error()
    } else {
        ApiError::new(status, code_for(status), text)
    };
    let mut rebuilt = error.into_response();
    // Keep what the layer said besides the body (e.g. `allow` on a 405).
    parts.headers.remove(axum::http::header::CONTENT_TYPE);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (name, value) in parts.headers.iter() {
        rebuilt.headers_mut().entry(name).or_insert(value.clone());
    }
    rebuilt
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"code": self.code, "detail": self.detail}))).into_response()
    }
}
