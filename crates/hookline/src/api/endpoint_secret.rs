//! An endpoint's signing secret: read it, rotate it.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::Duration;
use rand::RngCore;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::ScopedApp;
use super::endpoints::{load, modify};
use super::error::{ApiError, ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
pub use crate::endpoint_key::{format_secret, parse_secret};
use crate::keys::Owner;
use crate::store::model::{RetiredSecret, SealedSecret};
use zeroize::Zeroizing;

/// Retired secrets kept signing at once, at most.
pub const MAX_RETIRED_SECRETS: usize = 5;
/// How long a rotated-out secret keeps signing when the request names no grace period (seconds).
pub const DEFAULT_GRACE: i64 = 24 * 3600;

/// Svix's `EndpointSecretOut`.
#[derive(Serialize, Deserialize, JsonSchema, Clone)]
pub struct SecretOut {
    key: String,
}

/// Svix's `EndpointSecretRotateIn`.
#[derive(Deserialize, JsonSchema, Default)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))]
pub struct RotateIn {
    /// The new secret; generated when absent.
    #[serde(default)]
    #[schemars(transform = super::endpoints::secret_schema)]
    key: Option<String>,
    /// Hookline extension: how long the old secret keeps signing (default a day).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 0, max = 604800), extend("x-hookline-extension" = true))]
    grace_period_seconds: Option<i64>,
}

pub(super) fn generate_secret() -> Vec<u8> {
    let mut key = vec![0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

pub async fn get_secret(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<Json<SecretOut>> {
    let ep = load(&state, app.id, key).await?;
    let secret = state.cipher.open(&ep.secret.0, Owner::Endpoint(&ep.id)).map_err(ApiError::internal)?;
    Ok(Json(SecretOut { key: format_secret(&secret) }))
}

/// The new secret signs from now on; the old one keeps signing beside it
/// until the grace period ends, so receivers can switch without a gap.
pub async fn rotate_secret(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<Option<RotateIn>>,
) -> ApiResult<Response> {
    let input = input.unwrap_or_default();
    let mut v = Validation::default();
    let new_secret = match input.key.as_deref().map(parse_secret) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            v.push(&["body", "key"], e);
            Vec::new()
        }
        None => generate_secret(),
    };
    let grace = input.grace_period_seconds.unwrap_or(DEFAULT_GRACE);
    if !(0..=7 * 86400).contains(&grace) {
        v.push(&["body", "gracePeriodSeconds"], "must be from 0 to 604800 seconds");
    }
    v.finish()?;
    let out = SecretOut { key: format_secret(&new_secret) };
    let new_secret = Zeroizing::new(new_secret);
    let cipher = state.cipher.clone();
    modify(&state, idem, app.id, key, move |_, ep| {
        let sealed = SealedSecret(cipher.seal(&new_secret, Owner::Endpoint(&ep.id)));
        let now = crate::store::model::now();
        ep.retired_secrets.retain(|r| r.expires_at > now);
        if grace > 0 {
            let old = std::mem::replace(&mut ep.secret, sealed);
            ep.retired_secrets.insert(0, RetiredSecret { secret: old, expires_at: now + Duration::seconds(grace) });
            ep.retired_secrets.truncate(MAX_RETIRED_SECRETS);
        } else {
            ep.secret = sealed;
        }
        Ok(out.clone())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    #[test]
    fn secrets_follow_svix_rules() {
        let generated = format_secret(&generate_secret());
        assert!(generated.starts_with("whsec_"));
        assert_eq!(parse_secret(&generated).unwrap().len(), 24);
        assert!(parse_secret("whsec_c2hvcnQ=").is_err());
        assert!(parse_secret("not base64!").is_err());
        assert!(parse_secret(&B64.encode([1u8; 32])).is_ok());
    }
}
