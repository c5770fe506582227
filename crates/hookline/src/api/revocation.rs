//! Token revocation: `auth/app/{app}/expire-all` and `auth/logout`.
//! Tokens are stateless and signed, so a revoked one still verifies; the
//! access check then asks the store (shared by every node) whether it is
//! refused.

use axum::extract::State;
use axum::response::Response;
use chrono::Duration;
use schemars::JsonSchema;
use serde::Deserialize;

use super::access::ScopedApp;
use super::error::{ApiError, ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::auth::{Caller, Scope};

/// The longest grace period `expire-all` may give the tokens it revokes.
const MAX_EXPIRY_SECS: i64 = 30 * 86400;

/// Svix's `ApplicationTokenExpireIn`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"expiry": 60}))]
pub struct ExpireAllIn {
    /// Seconds the revoked tokens keep working (0, the default: at once).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 0, max = 2592000))]
    expiry: Option<i64>,
    /// Only the tokens issued for these sessions.
    #[serde(default)]
    #[schemars(length(min = 1, max = 100), inner(length(min = 1, max = 256)))]
    session_ids: Option<Vec<String>>,
}

pub async fn expire_all(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<Option<ExpireAllIn>>,
) -> ApiResult<Response> {
    let input = input.unwrap_or_default();
    let expiry = input.expiry.unwrap_or(0);
    let mut v = Validation::default();
    if !(0..=MAX_EXPIRY_SECS).contains(&expiry) {
        v.push(&["body", "expiry"], format!("must be from 0 to {MAX_EXPIRY_SECS} seconds"));
    }
    if let Some(ids) = &input.session_ids {
        if ids.is_empty() || ids.len() > 100 || ids.iter().any(|s| s.is_empty() || s.chars().count() > 256) {
            v.push(&["body", "sessionIds"], "must name 1 to 100 sessions of 1 to 256 characters");
        }
    }
    v.finish()?;
    let effective_at = crate::store::model::now() + Duration::seconds(expiry);
    // Through the key: a retried call must not push the cut-off past
    // tokens issued since the first one.
    state
        .commit_no_content(idem, move |tx| {
            Ok(tx.expire_app_tokens(&app.id, input.session_ids.as_deref(), effective_at)?)
        })
        .await
}

pub async fn logout(State(state): State<AppState>, caller: Caller, idem: Idem) -> ApiResult<Response> {
    if caller.is_static {
        return Err(ApiError::bad_request(
            "The configured admin token (HOOKLINE_ADMIN_TOKEN) cannot be logged out; change the setting instead",
        ));
    }
    let expires_at = caller.expires_at.and_then(|t| chrono::DateTime::from_timestamp(t, 0));
    let digest = caller.token_digest;
    state
        .commit_no_content(idem, move |tx| {
            match (&caller.scope, &caller.integration_key) {
                // An integration's key reads back the same until its version
                // moves on: logging it out rotates it, so the key shown next
                // is a live one. Only from the caller's version: a key
                // rotated since the caller authenticated is not the caller's.
                (Scope::App { app, .. }, Some((integration, version))) => {
                    tx.rotate_integration_key(app, integration, Some(*version), crate::store::model::now())?;
                }
                _ => tx.revoke_token(&digest, expires_at)?,
            }
            Ok(())
        })
        .await
}
