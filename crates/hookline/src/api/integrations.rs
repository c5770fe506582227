//! `/app/{app_id}/integration`: named keys to one application that a
//! customer hands to a third party. A key is an application token (every
//! capability of that application) that names the integration and its key
//! version; rotating the key, deleting the integration or the
//! application's `expire-all` refuses it on every node (reading the key
//! again then shows a fresh one). Only the platform manages integrations.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::ScopedApp;
use super::applications::ListOut;
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::json::ts;
use super::AppState;
use crate::ids::IdKind;
use crate::store::model::{now, Integration, Timestamp};
use crate::store::page::Order;
use crate::store::{StoreError, Tx};

/// Svix's `IntegrationIn` and `IntegrationUpdate`.
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"name": "Zapier"}))]
pub struct IntegrationIn {
    #[schemars(length(max = 256), regex(pattern = super::json::NOT_BLANK_PATTERN))]
    name: String,
    #[serde(default)]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256), regex(pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")))]
    feature_flags: Option<Vec<String>>,
}

impl IntegrationIn {
    fn validate(&self) -> ApiResult<()> {
        let mut v = Validation::default();
        if super::json::is_blank(&self.name) || self.name.chars().count() > 256 {
            v.push(&["body", "name"], "must be 1 to 256 characters");
        }
        super::event_types::check_flags_and_group(&mut v, None, self.feature_flags.as_deref(), None);
        v.finish()
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationOut {
    id: String,
    name: String,
    feature_flags: Option<Vec<String>>,
    #[serde(serialize_with = "ts")]
    created_at: Timestamp,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<Integration> for IntegrationOut {
    fn from(i: Integration) -> IntegrationOut {
        IntegrationOut {
            id: i.id,
            name: i.name,
            feature_flags: i.feature_flags,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// Svix's `IntegrationKeyOut`.
#[derive(Serialize, JsonSchema)]
pub struct IntegrationKeyOut {
    key: String,
}

/// The integration's current key: its key version, in its application's
/// current token generation.
fn key_of(state: &AppState, tx: &mut dyn Tx, i: &Integration) -> Result<IntegrationKeyOut, StoreError> {
    let generation = tx.app_token_generation(&i.app_id)?;
    Ok(IntegrationKeyOut { key: state.tokens.integration_key(&i.app_id, &i.id, i.key_version, generation) })
}

pub async fn list(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    q: QueryParams,
) -> ApiResult<Json<ListOut<IntegrationOut>>> {
    let query = q.list_query(Order::Descending)?;
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_integrations(&app.id, &query)?)).await?;
    Ok(Json(ListOut::from_page(page, IntegrationOut::from)))
}

pub async fn create(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<IntegrationIn>,
) -> ApiResult<Response> {
    input.validate()?;
    state
        .commit(idem, StatusCode::CREATED, move |tx| {
            let now = now();
            let integration = Integration {
                id: IdKind::Integration.generate(),
                app_id: app.id.clone(),
                name: input.name.clone(),
                feature_flags: input.feature_flags.clone(),
                key_version: 1,
                created_at: now,
                updated_at: now,
            };
            tx.insert_integration(&integration)?;
            Ok(IntegrationOut::from(integration))
        })
        .await
}

pub async fn get(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<IntegrationOut>> {
    let found = state.store.read(move |tx| Ok::<_, ApiError>(tx.integration(&app.id, &id)?)).await?;
    Ok(Json(found.ok_or_else(ApiError::not_found)?.into()))
}

pub async fn update(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, id)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<IntegrationIn>,
) -> ApiResult<Response> {
    input.validate()?;
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let mut integration = tx.integration(&app.id, &id)?.ok_or(StoreError::NotFound)?;
            integration.name = input.name.clone();
            integration.feature_flags = input.feature_flags.clone();
            integration.updated_at = now();
            tx.update_integration(&integration)?;
            Ok(IntegrationOut::from(integration))
        })
        .await
}

/// Deletes the integration; its key stops working at once.
pub async fn delete(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.store.write(move |tx| Ok::<_, ApiError>(tx.delete_integration(&app.id, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current key (Svix deprecates reading it back; it still answers).
pub async fn get_key(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<IntegrationKeyOut>> {
    let tokens = state.clone();
    let key = state
        .store
        .read(move |tx| {
            let found = tx.integration(&app.id, &id)?.ok_or(StoreError::NotFound)?;
            Ok::<_, ApiError>(key_of(&tokens, tx, &found)?)
        })
        .await?;
    Ok(Json(key))
}

/// A new key; the previous one stops working at once.
pub async fn rotate_key(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, id)): Path<(String, String)>,
    idem: Idem,
) -> ApiResult<Response> {
    let tokens = state.clone();
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let rotated = tx.rotate_integration_key(&app.id, &id, None, now())?.ok_or(StoreError::NotFound)?;
            Ok(key_of(&tokens, tx, &rotated)?)
        })
        .await
}
