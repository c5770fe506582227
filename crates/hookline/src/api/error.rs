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

    pub fn forbidden(why: &str) -> ApiError {
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
            StoreError::Backend(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"code": self.code, "detail": self.detail}))).into_response()
    }
}
