//! The one place that decides who may call a route.
//!
//! Each route declares an `Access`; this middleware verifies the bearer
//! token, enforces the scope, resolves the `{app_id}` path segment (id or
//! uid) and hands handlers the `Caller` and the `ScopedApp` as extensions.
//! Handlers never see an application the caller may not reach, so every
//! child lookup they do is already filtered by an allowed application.

use axum::extract::{RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{Access, AppState};
use crate::auth::{Caller, Scope};
use crate::store::model::Application;

/// The application named in the path, already checked against the caller.
#[derive(Clone, Debug)]
pub struct ScopedApp(pub Application);

pub async fn check(
    State((state, access)): State<(AppState, Access)>,
    path: RawPathParams,
    mut req: Request,
    next: Next,
) -> Response {
    match authorize(&state, access, &path, &mut req).await {
        Ok(()) => super::idempotency::apply(state, req, next).await,
        Err(e) => e.into_response(),
    }
}

async fn authorize(state: &AppState, access: Access, path: &RawPathParams, req: &mut Request) -> Result<(), ApiError> {
    if access == Access::Public {
        return Ok(());
    }
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let caller = state.tokens.verify(token, chrono::Utc::now().timestamp()).ok_or_else(ApiError::unauthorized)?;

    match access {
        Access::Public | Access::Authenticated => {}
        Access::Admin | Access::AdminApp | Access::AdminAppOrCreate if !caller.is_admin() => {
            return Err(ApiError::forbidden("This route needs an organization (admin) token"));
        }
        Access::Admin | Access::AdminApp | Access::AdminAppOrCreate => {}
        Access::AppOrCreate => {
            if let Scope::App { read_only: true, .. } = caller.scope {
                return Err(ApiError::forbidden("This token is read-only"));
            }
        }
        Access::App { write } => {
            if let Scope::App { read_only: true, .. } = caller.scope {
                if write {
                    return Err(ApiError::forbidden("This token is read-only"));
                }
            }
        }
    }

    let may_create = matches!(access, Access::AppOrCreate | Access::AdminAppOrCreate);
    if matches!(access, Access::App { .. } | Access::AdminApp) || may_create {
        let key = path.iter().find(|(name, _)| *name == "app_id").map(|(_, v)| v.to_string()).unwrap_or_default();
        match resolve_app(state, &caller, key.clone()).await {
            Ok(app) => {
                req.extensions_mut().insert(ScopedApp(app));
            }
            // Only the platform may create an application on the fly.
            Err(e) if may_create && caller.is_admin() && e.status == StatusCode::NOT_FOUND => {
                req.extensions_mut().insert(AppTarget::Missing(key));
            }
            Err(e) => return Err(e),
        }
    }
    req.extensions_mut().insert(caller);
    Ok(())
}

async fn resolve_app(state: &AppState, caller: &Caller, key: String) -> Result<Application, ApiError> {
    let app =
        state.store.read(move |tx| Ok::<_, ApiError>(tx.application(&key)?)).await?.ok_or_else(ApiError::not_found)?;
    match &caller.scope {
        Scope::Admin => Ok(app),
        // Another tenant's application is answered as if it did not exist.
        Scope::App { app: allowed, .. } if *allowed == app.id => Ok(app),
        Scope::App { .. } => Err(ApiError::not_found()),
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
