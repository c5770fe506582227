//! The HTTP API: Svix v1 compatible routes under `/api/v1`.
//!
//! Request path: body buffering (413 as JSON) → routing → the route's access
//! check (token, scope, application) → idempotency → handler. Every route is
//! declared once in `routes::ROUTES`; the router and `openapi.json` are both
//! built from that table.

mod access;
mod applications;
mod attempts;
mod background_tasks;
mod body;
mod delivery_ops;
mod endpoint_headers;
mod endpoint_secret;
mod endpoints;
pub mod error;
mod event_type_import;
mod event_types;
mod expunge;
mod extract;
mod idempotency;
mod insights;
mod integrations;
mod json;
mod message_writer;
mod messages;
mod openapi;
mod operational_webhooks;
mod params;
mod portal_access;
mod readiness;
mod revocation;
mod routes;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::Router;

use crate::auth::TokenAuthority;
use crate::config::Settings;
use crate::keys::SecretCipher;
use crate::store::Store;
use error::ApiError;

pub use message_writer::MessageWriter;
pub use routes::{Access, Grant, ROUTES};

/// The API's input rules, for what writes the store without a request
/// (`hookline import svix`): it writes only what these routes would accept.
pub mod rules {
    pub use super::applications::ApplicationIn;
    pub use super::endpoint_headers::check_headers;
    pub use super::endpoint_secret::{DEFAULT_GRACE, MAX_RETIRED_SECRETS};
    pub use super::endpoints::{check_endpoint_in, EndpointIn, MAX_ENDPOINTS_PER_APP};
    pub use super::error::Validation;
    pub use super::event_types::EventTypeIn;
}

/// What every handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub store: Store,
    pub tokens: TokenAuthority,
    pub cipher: SecretCipher,
    pub settings: Settings,
    /// Message creations, written in batches.
    pub messages: message_writer::MessageWriter,
    /// The claim loop's heartbeat, for readiness.
    pub dispatcher_heartbeat: crate::ops::health::Heartbeat,
    /// Rung after a background task is created here.
    pub task_wake: Arc<tokio::sync::Notify>,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

/// Requests handled at once, at most; more wait for a free place. With
/// bodies of up to `HOOKLINE_MAX_PAYLOAD` this bounds the memory requests
/// can hold.
pub const MAX_CONCURRENT_REQUESTS: usize = 512;

/// The whole HTTP surface: API routes from the table plus the JSON fallbacks.
///
/// Layers, outermost first: a panic becomes a JSON 500; any non-JSON error
/// (from a framework layer) becomes `{code, detail}`; the concurrency cap;
/// routing; per route, `access::check` authenticates from the headers alone
/// and only then reads the body.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in ROUTES {
        let (method, template) = (route.method, route.path);
        let declared = extract::DeclaredQuery(openapi::query_names(route));
        let method_router = (route.handler)()
            .route_layer(axum::middleware::from_fn_with_state((state.clone(), route.access), access::check))
            .route_layer(axum::middleware::from_fn(
                move |mut req: axum::extract::Request, next: axum::middleware::Next| {
                    req.extensions_mut().insert(declared.clone());
                    next.run(req)
                },
            ))
            // Outside the access check, so refusals are counted too.
            .route_layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| observe(method, template, req, next),
            ));
        router = router.route(route.path, method_router.clone());
        router = router.route(&format!("{}/", route.path), method_router);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(MAX_CONCURRENT_REQUESTS))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn(catch_panic))
        .with_state(state)
}

/// Times one request of a route of the table, labelled by its template.
async fn observe(
    method: &'static str,
    template: &'static str,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    crate::ops::metrics::get().http_request(method, template, response.status().as_u16(), started.elapsed());
    response
}

/// A bug in a handler answers a JSON 500 instead of dropping the connection.
async fn catch_panic(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => ApiError::internal("a request handler panicked").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such route")
}

async fn method_not_allowed(method: Method) -> impl IntoResponse {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("Method {method} is not allowed here"))
}
