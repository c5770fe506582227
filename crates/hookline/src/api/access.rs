//! The one place that decides who may call a route.
//!
//! Each route declares an `Access`; this middleware verifies the bearer
//! token, enforces the scope, resolves the `{app_id}` path segment (id or
//! uid) and hands handlers the `Caller` and the `ScopedApp` as extensions.
//! Handlers never see an application the caller may not reach, so every
//! child lookup they do is already filtered by an allowed application.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request, State};
use axum::http::header::{AUTHORIZATION, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{Access, AppState};
use crate::auth::{Caller, Capabilities, Scope};
use crate::ids::IdKind;
use crate::store::model::Application;
use crate::store::AppTokenFacts;

/// The application named in the path, already checked against the caller.
#[derive(Clone, Debug)]
pub struct ScopedApp(pub Application);

/// Authenticates from the headers alone, then reads the body (a caller
/// without a valid token never makes the server buffer anything).
pub async fn check(
    State((state, access)): State<(AppState, Access)>,
    path: Result<RawPathParams, RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    // A path segment that is not UTF-8, or holds a NUL, names nothing that
    // exists (and no store could look it up).
    let (mut parts, body) = req.into_parts();
    let refused = match path {
        Err(_) => Err(ApiError::not_found()),
        Ok(path) if path.iter().any(|(_, value)| value.contains('\0')) => Err(ApiError::not_found()),
        Ok(path) => authorize(&state, access, &path, &mut parts).await,
    };
    if let Err(e) = refused {
        let mut response = e.into_response();
        // The body was never read: the connection cannot carry another
        // request, and a client that reused it would see it cut. Say so.
        if has_body(&parts) {
            response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
        }
        return response;
    }
    match super::body::buffer(body, state.settings.max_payload).await {
        Ok(body) => super::idempotency::apply(state, Request::from_parts(parts, body), next).await,
        Err(e) => e.into_response(),
    }
}

fn has_body(parts: &Parts) -> bool {
    parts.headers.contains_key(TRANSFER_ENCODING)
        || parts
            .headers
            .get(CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) != Some(0))
}

async fn authorize(state: &AppState, access: Access, path: &RawPathParams, req: &mut Parts) -> Result<(), ApiError> {
    let token = req
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let caller = state.tokens.verify(token, chrono::Utc::now().timestamp()).ok_or_else(ApiError::unauthorized)?;
    if !caller.is_static && is_revoked(state, &caller).await? {
        return Err(ApiError::unauthorized());
    }

    let caps = caller.capabilities();
    match access {
        Access::Public | Access::Authenticated => {}
        Access::Admin | Access::AdminApp | Access::AdminAppOrCreate if !caller.is_admin() => {
            return Err(ApiError::forbidden("This route needs an organization (admin) token"));
        }
        Access::Admin | Access::AdminApp | Access::AdminAppOrCreate => {}
        Access::AppOrCreate if !caps.contains(Capabilities::MANAGE_ENDPOINT) => {
            return Err(ApiError::forbidden("This token may not send messages"));
        }
        Access::App(grant) if !caps.any_of(grant.needs()) => {
            let names: Vec<&str> = grant.needs().iter().flat_map(|c| c.names()).filter(|n| *n != "ViewBase").collect();
            return Err(ApiError::forbidden(format!(
                "This token lacks the capability this needs (one of: {})",
                names.join(", ")
            )));
        }
        Access::AppOrCreate | Access::App(_) => {}
    }

    let may_create = matches!(access, Access::AppOrCreate | Access::AdminAppOrCreate);
    if matches!(access, Access::App(_) | Access::AdminApp) || may_create {
        let key = path.iter().find(|(name, _)| *name == "app_id").map(|(_, v)| v.to_string()).unwrap_or_default();
        if access == Access::AppOrCreate && reaches_by_id(&caller, &key) {
            req.extensions.insert(UnverifiedApp(key));
        } else {
            match resolve_target(state, &caller, key, may_create).await? {
                AppTarget::Existing(app) => {
                    req.extensions.insert(ScopedApp(app));
                }
                target => {
                    req.extensions.insert(target);
                }
            }
        }
    } else if let Scope::App { app, .. } = &caller.scope {
        require_live_app(state, app.clone()).await?;
    }
    req.extensions.insert(caller);
    Ok(())
}

/// Whether `key` is an application id this caller may send to, were it to
/// exist: ids never change hands, so the message's own transaction can check
/// that it exists (`check_applications_and_claim_keys`, one statement a batch), and
/// a message costs no read before it.
fn reaches_by_id(caller: &Caller, key: &str) -> bool {
    if !IdKind::Application.matches(key) || key == crate::operational::APP_ID {
        return false;
    }
    match &caller.scope {
        Scope::Admin => true,
        Scope::App { app, .. } => app == key,
    }
}

/// The application a message is sent to, read from the store: for the
/// access check, and for a message whose unverified id named no application.
pub async fn resolve_target(
    state: &AppState,
    caller: &Caller,
    key: String,
    may_create: bool,
) -> Result<AppTarget, ApiError> {
    match resolve_app(state, caller, key.clone()).await {
        Ok(app) => Ok(AppTarget::Existing(app)),
        // Only the platform may create an application on the fly.
        Err(e) if may_create && caller.is_admin() && e.status == StatusCode::NOT_FOUND => Ok(AppTarget::Missing(key)),
        Err(e) => Err(e),
    }
}

/// The application in the path, if the caller may reach it. A token of an
/// application that no longer exists is refused outright (401), whatever
/// the path names.
async fn resolve_app(state: &AppState, caller: &Caller, key: String) -> Result<Application, ApiError> {
    let found = state.store.read(move |tx| Ok::<_, ApiError>(tx.application(&key)?)).await?;
    // The operational webhooks' internal application is reached only
    // through `/operational-webhook`.
    let found = found.filter(|app| app.id != crate::operational::APP_ID);
    match (&caller.scope, found) {
        (Scope::Admin, Some(app)) => Ok(app),
        (Scope::Admin, None) => Err(ApiError::not_found()),
        (Scope::App { app: allowed, .. }, Some(app)) if *allowed == app.id => Ok(app),
        // Another tenant's application is answered as if it did not exist.
        (Scope::App { app: allowed, .. }, _) => {
            require_live_app(state, allowed.clone()).await?;
            Err(ApiError::not_found())
        }
    }
}

/// Whether the token was logged out, expired by its application, or is the
/// key of an integration that was deleted or whose key was rotated.
async fn is_revoked(state: &AppState, caller: &Caller) -> Result<bool, ApiError> {
    let (digest, scope, session_id, generation, integration_key) = (
        caller.token_digest,
        caller.scope.clone(),
        caller.session_id.clone(),
        caller.generation,
        caller.integration_key.clone(),
    );
    let now = crate::store::model::now();
    state
        .store
        .read(move |tx| {
            let app = match &scope {
                Scope::App { app, .. } => Some(AppTokenFacts {
                    app_id: app,
                    session_id: session_id.as_deref(),
                    generation,
                    integration_key: integration_key.as_ref().map(|(id, version)| (id.as_str(), *version)),
                }),
                Scope::Admin => None,
            };
            Ok::<_, ApiError>(tx.token_revoked(&digest, app.as_ref(), now)?)
        })
        .await
}

async fn require_live_app(state: &AppState, app_id: String) -> Result<(), ApiError> {
    match state.store.read(move |tx| Ok::<_, ApiError>(tx.application(&app_id)?)).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::unauthorized()),
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ScopedApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<ScopedApp>().cloned().ok_or_else(|| ApiError::internal("route has no application scope"))
    }
}

/// The application a message is sent to: known, or to be created from the
/// message's inline `application`.
#[derive(Clone, Debug)]
pub enum AppTarget {
    Existing(Application),
    Missing(String),
}

/// An application id the caller may reach if it exists, not read yet (see
/// `reaches_by_id`); only message creation takes it.
#[derive(Clone, Debug)]
struct UnverifiedApp(String);

/// Where a message goes: an application the access check read, or an id
/// the message's transaction checks.
pub enum MessageTarget {
    Resolved(AppTarget),
    Unverified(String),
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for MessageTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(UnverifiedApp(id)) = parts.extensions.get::<UnverifiedApp>() {
            return Ok(MessageTarget::Unverified(id.clone()));
        }
        AppTarget::from_request_parts(parts, state).await.map(MessageTarget::Resolved)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AppTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(ScopedApp(app)) = parts.extensions.get::<ScopedApp>() {
            return Ok(AppTarget::Existing(app.clone()));
        }
        parts.extensions.get::<AppTarget>().cloned().ok_or_else(|| ApiError::internal("route has no application scope"))
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(ApiError::unauthorized)
    }
}
