//! `POST /api/v1/auth/app-portal-access/{app_id}`: a scoped token and portal URL.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::AppTarget;
use super::applications::ApplicationIn;
use super::error::{ApiError, ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::auth::{Capabilities, Grant, Scope};

const DEFAULT_EXPIRY_SECS: i64 = 7 * 24 * 3600;

/// Svix's `AppPortalAccessIn`.
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"expiry": 3600, "capabilities": ["ViewBase", "ViewEndpointSecret"]}))]
pub struct PortalAccessIn {
    /// Seconds until the token expires (default 7 days).
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 1, max = 31536000))]
    expiry: Option<i64>,
    /// Only `ViewBase`: overrides `capabilities`.
    #[serde(default)]
    read_only: Option<bool>,
    /// Svix's capabilities (`ViewBase` is implied); all of them when absent.
    #[serde(default)]
    #[schemars(transform = capabilities_schema)]
    capabilities: Option<Vec<String>>,
    /// Created when the application in the path does not exist yet.
    #[serde(default, deserialize_with = "super::json::object_only")]
    application: Option<ApplicationIn>,
    /// `expire-all` may name it to revoke only this session's tokens.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    session_id: Option<String>,
}

fn capabilities_schema(schema: &mut schemars::Schema) {
    let names: Vec<&str> = Capabilities::all().names();
    schema.insert("items".into(), serde_json::json!({"type": "string", "enum": names}));
}

#[derive(Serialize, JsonSchema)]
pub struct PortalAccessOut {
    url: String,
    token: String,
}

pub async fn create(
    State(state): State<AppState>,
    target: AppTarget,
    idem: Idem,
    JsonBody(input): JsonBody<Option<PortalAccessIn>>,
) -> ApiResult<Response> {
    let input = input.unwrap_or_default();
    let expiry = input.expiry.unwrap_or(DEFAULT_EXPIRY_SECS);
    let mut v = Validation::default();
    if !(1..=365 * 24 * 3600).contains(&expiry) {
        v.push(&["body", "expiry"], "must be from 1 second to 1 year");
    }
    let caps = match &input.capabilities {
        None => Capabilities::all(),
        Some(names) => Capabilities::parse(names.iter().map(String::as_str)).unwrap_or_else(|unknown| {
            v.push(&["body", "capabilities"], format!("unknown capability {unknown:?}"));
            Capabilities::read_only()
        }),
    };
    let caps = if input.read_only == Some(true) { Capabilities::read_only() } else { caps };
    if let Some(sid) = &input.session_id {
        if sid.is_empty() || sid.chars().count() > 256 || sid.chars().any(char::is_control) {
            v.push(&["body", "sessionId"], "must be 1 to 256 characters without control characters");
        }
    }
    if let Some(app) = &input.application {
        app.validate(&mut v);
    }
    v.finish()?;
    let (tokens, public_url) = (state.tokens.clone(), state.settings.public_url.clone());
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let app_id = match &target {
                AppTarget::Existing(app) => app.id.clone(),
                AppTarget::Missing(key) => {
                    let Some(app) = input.application.clone() else { return Err(ApiError::not_found()) };
                    super::messages::create_inline_app(tx, key, Some(app))?
                }
            };
            let generation = tx.app_token_generation(&app_id)?;
            let token = tokens.issue_grant(Grant {
                scope: Scope::App { app: app_id, caps },
                expires_at: Some(Utc::now().timestamp() + expiry),
                session_id: input.session_id.clone(),
                generation,
            });
            let url = crate::portal::portal_url(&public_url, &token);
            Ok(PortalAccessOut { url, token })
        })
        .await
}
