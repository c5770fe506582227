//! `/operational-webhook/endpoint`: the platform's own endpoints for
//! operational events (see `crate::operational`). They are endpoints of an
//! internal application, so these handlers are the endpoint handlers with
//! that application in scope; only organization tokens reach them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::access::ScopedApp;
use super::applications::ListOut;
use super::endpoint_headers::{self, HeadersIn, HeadersOut};
use super::endpoint_secret::{self, RotateIn, SecretOut};
use super::endpoints::{self, EndpointIn, EndpointOut};
use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::AppState;

async fn scope(state: &AppState) -> ApiResult<ScopedApp> {
    // A write: the lookup by id locks the row on PostgreSQL.
    let app = state.store.write(|tx| Ok::<_, ApiError>(crate::operational::app(tx)?)).await?;
    app.map(ScopedApp).ok_or_else(|| ApiError::internal("the operational webhooks' application is missing"))
}

/// The endpoint handlers take `(app_id, endpoint_id)`; the first is unused.
fn path(endpoint_id: String) -> Path<(String, String)> {
    Path((String::new(), endpoint_id))
}

pub async fn list(State(state): State<AppState>, q: QueryParams) -> ApiResult<Json<ListOut<EndpointOut>>> {
    let app = scope(&state).await?;
    endpoints::list(State(state), app, q).await
}

pub async fn create(State(state): State<AppState>, idem: Idem, body: JsonBody<EndpointIn>) -> ApiResult<Response> {
    let app = scope(&state).await?;
    endpoints::create(State(state), app, idem, body).await
}

pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<EndpointOut>> {
    let app = scope(&state).await?;
    endpoints::get(State(state), app, path(id)).await
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    idem: Idem,
    body: JsonBody<EndpointIn>,
) -> ApiResult<Response> {
    let app = scope(&state).await?;
    endpoints::update(State(state), app, path(id), idem, body).await
}

pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let app = scope(&state).await?;
    endpoints::delete(State(state), app, path(id)).await
}

pub async fn get_secret(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SecretOut>> {
    let app = scope(&state).await?;
    endpoint_secret::get_secret(State(state), app, path(id)).await
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    idem: Idem,
    body: JsonBody<Option<RotateIn>>,
) -> ApiResult<Response> {
    let app = scope(&state).await?;
    endpoint_secret::rotate_secret(State(state), app, path(id), idem, body).await
}

pub async fn get_headers(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<HeadersOut>> {
    let app = scope(&state).await?;
    endpoint_headers::get_headers(State(state), app, path(id)).await
}

pub async fn put_headers(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: JsonBody<HeadersIn>,
) -> ApiResult<StatusCode> {
    let app = scope(&state).await?;
    endpoint_headers::put_headers(State(state), app, path(id), body).await
}
