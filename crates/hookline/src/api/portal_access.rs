//! `POST /api/v1/auth/app-portal-access/{app_id}`: a scoped token and portal URL.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::access::ScopedApp;
use super::error::{ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::auth::Scope;

const DEFAULT_EXPIRY_SECS: i64 = 7 * 24 * 3600;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PortalAccessIn {
    /// Seconds until the token expires.
    #[serde(default)]
    expiry: Option<i64>,
    #[serde(default)]
    read_only: Option<bool>,
    /// Svix's capabilities. Without `ManageEndpoint` (e.g. `["ViewBase"]`)
    /// the token is read-only, and read-only tokens never see secrets.
    #[serde(default)]
    capabilities: Option<Vec<String>>,
}

const CAPABILITIES: &[&str] = &[
    "ViewBase",
    "ViewEndpointSecret",
    "ManageEndpointSecret",
    "ManageTransformations",
    "CreateAttempts",
    "ManageEndpoint",
];

#[derive(Serialize)]
pub struct PortalAccessOut {
    url: String,
    token: String,
}

pub async fn create(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<Option<PortalAccessIn>>,
) -> ApiResult<Response> {
    let input = input.unwrap_or_default();
    let expiry = input.expiry.unwrap_or(DEFAULT_EXPIRY_SECS);
    let mut v = Validation::default();
    if !(1..=365 * 24 * 3600).contains(&expiry) {
        v.push(&["body", "expiry"], "must be from 1 second to 1 year");
    }
    for cap in input.capabilities.iter().flatten() {
        if !CAPABILITIES.contains(&cap.as_str()) {
            v.push(&["body", "capabilities"], format!("unknown capability {cap:?}"));
        }
    }
    v.finish()?;
    let may_manage = input.capabilities.as_ref().is_none_or(|caps| caps.iter().any(|c| c == "ManageEndpoint"));
    let read_only = input.read_only.unwrap_or(false) || !may_manage;
    let token = state.tokens.issue(Scope::App { app: app.id, read_only }, Some(Utc::now().timestamp() + expiry));
    let url = crate::portal::portal_url(&state.settings.public_url, &token);
    state.commit(idem, StatusCode::OK, move |_| Ok(PortalAccessOut { url: url.clone(), token: token.clone() })).await
}
