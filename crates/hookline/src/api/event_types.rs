//! `/api/v1/event-type`: the platform's catalog of event types.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::applications::{double_option, ListOut};
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::json::ts;
use super::AppState;
use crate::ids::is_valid_uid;
use crate::store::model::{EventType, Timestamp};
use crate::store::page::Order;
use crate::store::StoreError;

/// Svix's `EventTypeIn`.
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({
    "name": "invoice.paid",
    "description": "An invoice was paid",
    "schemas": {"1": {"type": "object", "required": ["invoiceId"], "properties": {"invoiceId": {"type": "string"}}}}
}))]
pub struct EventTypeIn {
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    /// JSON Schemas of the payload, by version (`{"1": {...}}`).
    #[serde(default)]
    #[schemars(transform = schemas_schema)]
    pub schemas: Option<Value>,
    #[serde(default)]
    #[schemars(transform = flag_schema)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256), regex(pattern = FLAG_PATTERN)))]
    pub feature_flags: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(transform = flag_schema)]
    pub group_name: Option<String>,
    /// Hookline extension: refuse (422) messages whose payload fails the newest schema.
    #[serde(default)]
    #[schemars(extend("x-hookline-extension" = true))]
    pub validate_payloads: bool,
}

/// Svix's `EventTypeUpdate` (PUT): `EventTypeIn` whose name is the path's.
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"description": "An invoice was paid"}))]
pub struct EventTypeUpdate {
    /// The name in the path, if given.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = super::json::UID_PATTERN))]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    archived: bool,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    #[schemars(transform = schemas_schema)]
    schemas: Option<Value>,
    #[serde(default)]
    #[schemars(transform = flag_schema)]
    feature_flag: Option<String>,
    #[serde(default)]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256), regex(pattern = FLAG_PATTERN)))]
    feature_flags: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(transform = flag_schema)]
    group_name: Option<String>,
    #[serde(default)]
    #[schemars(extend("x-hookline-extension" = true))]
    validate_payloads: bool,
}

impl EventTypeUpdate {
    fn into_in(self, name: &str) -> EventTypeIn {
        EventTypeIn {
            name: self.name.unwrap_or_else(|| name.to_string()),
            description: self.description,
            archived: self.archived,
            deprecated: self.deprecated,
            schemas: self.schemas,
            feature_flag: self.feature_flag,
            feature_flags: self.feature_flags,
            group_name: self.group_name,
            validate_payloads: self.validate_payloads,
        }
    }
}

/// Svix's `EventTypePatch`.
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"deprecated": true}))]
pub struct EventTypePatch {
    description: Option<String>,
    archived: Option<bool>,
    deprecated: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(transform = schemas_schema)]
    schemas: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(transform = flag_schema)]
    feature_flag: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(length(max = 10), inner(length(min = 1, max = 256), regex(pattern = FLAG_PATTERN)))]
    feature_flags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(transform = flag_schema)]
    group_name: Option<Option<String>>,
    #[schemars(extend("x-hookline-extension" = true))]
    validate_payloads: Option<bool>,
}

/// `schemas`: an object of JSON Schemas (objects or booleans), or null.
fn schemas_schema(schema: &mut schemars::Schema) {
    schema.insert("type".into(), serde_json::json!(["object", "null"]));
    schema.insert("additionalProperties".into(), serde_json::json!({"type": ["object", "boolean"]}));
}

/// No control character (what `char::is_control` finds), for schemas.
const FLAG_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

/// A feature flag or group name: 1 to 256 characters, no control character.
fn flag_schema(schema: &mut schemars::Schema) {
    schema.insert("minLength".into(), 1.into());
    schema.insert("maxLength".into(), 256.into());
    schema.insert("pattern".into(), FLAG_PATTERN.into());
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    name: String,
    description: String,
    archived: bool,
    deprecated: bool,
    schemas: Option<Value>,
    feature_flag: Option<String>,
    feature_flags: Option<Vec<String>>,
    group_name: Option<String>,
    /// Hookline extension: messages whose payload fails the newest schema are refused.
    #[schemars(extend("x-hookline-extension" = true))]
    validate_payloads: bool,
    #[serde(serialize_with = "ts")]
    created_at: Timestamp,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<EventType> for EventTypeOut {
    fn from(e: EventType) -> Self {
        EventTypeOut {
            name: e.name,
            description: e.description,
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: e.schemas,
            feature_flag: e.feature_flag,
            feature_flags: e.feature_flags,
            group_name: e.group_name,
            validate_payloads: e.validate_payloads,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Svix's limits: flags and groups are short names.
pub(super) fn check_flags_and_group(
    v: &mut Validation,
    flag: Option<&str>,
    flags: Option<&[String]>,
    group: Option<&str>,
) {
    let is_name = |s: &str| (1..=256).contains(&s.chars().count()) && !s.chars().any(char::is_control);
    if flag.is_some_and(|f| !is_name(f)) {
        v.push(&["body", "featureFlag"], "must be 1 to 256 characters without control characters");
    }
    if let Some(flags) = flags {
        if flags.len() > 10 || flags.iter().any(|f| !is_name(f)) {
            v.push(&["body", "featureFlags"], "must hold at most 10 flags of 1 to 256 characters");
        }
    }
    if group.is_some_and(|g| !is_name(g)) {
        v.push(&["body", "groupName"], "must be 1 to 256 characters without control characters");
    }
}

pub fn check_schemas(v: &mut Validation, schemas: Option<&Value>) {
    let Some(s) = schemas else { return };
    let Some(versions) = s.as_object() else {
        v.push(&["body", "schemas"], "must be an object of JSON Schemas keyed by version, e.g. {\"1\": {...}}");
        return;
    };
    for (version, schema) in versions {
        if let Err(e) = jsonschema::validator_for(schema) {
            v.push(&["body", "schemas", version], format!("is not a valid JSON Schema: {e}"));
        }
    }
}

impl EventTypeIn {
    pub fn validate(&self, v: &mut Validation) {
        if !is_valid_uid(&self.name) {
            v.push(&["body", "name"], "must be 1 to 256 characters of A-Z a-z 0-9 - _ .");
        }
        check_schemas(v, self.schemas.as_ref());
        check_flags_and_group(
            v,
            self.feature_flag.as_deref(),
            self.feature_flags.as_deref(),
            self.group_name.as_deref(),
        );
    }

    pub fn into_record(self) -> EventType {
        let now = crate::store::model::now();
        EventType {
            name: self.name,
            description: self.description,
            archived: self.archived,
            deprecated: self.deprecated,
            schemas: self.schemas,
            feature_flag: self.feature_flag,
            feature_flags: self.feature_flags,
            group_name: self.group_name,
            validate_payloads: self.validate_payloads,
            created_at: now,
            updated_at: now,
        }
    }
}

pub async fn list(State(state): State<AppState>, q: QueryParams) -> ApiResult<Json<ListOut<EventTypeOut>>> {
    let query = q.list_query(Order::Ascending)?;
    let include_archived = q.bool("include_archived", false)?;
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_event_types(&query, include_archived)?)).await?;
    Ok(Json(ListOut::from_page(page, EventTypeOut::from)))
}

pub async fn create(
    State(state): State<AppState>,
    idem: Idem,
    JsonBody(input): JsonBody<EventTypeIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    input.validate(&mut v);
    v.finish()?;
    state
        .commit(idem, StatusCode::CREATED, move |tx| {
            let et = input.clone().into_record();
            tx.insert_event_type(&et)?;
            Ok(EventTypeOut::from(et))
        })
        .await
}

async fn load(state: &AppState, name: String) -> ApiResult<EventType> {
    state.store.read(move |tx| Ok::<_, ApiError>(tx.event_type(&name)?)).await?.ok_or_else(ApiError::not_found)
}

pub async fn get(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<EventTypeOut>> {
    Ok(Json(load(&state, name).await?.into()))
}

/// PUT creates the event type when it does not exist (as Svix does).
pub async fn update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    idem: Idem,
    JsonBody(body): JsonBody<EventTypeUpdate>,
) -> ApiResult<Response> {
    let input = body.into_in(&name);
    let mut v = Validation::default();
    input.validate(&mut v);
    if input.name != name {
        v.push(&["body", "name"], "must match the name in the path");
    }
    v.finish()?;
    state
        .commit_with_status(idem, move |tx| {
            let et = input.clone().into_record();
            if let Some(existing) = tx.event_type(&name)? {
                let et = EventType { created_at: existing.created_at, ..et };
                tx.update_event_type(&et)?;
                return Ok((StatusCode::OK, EventTypeOut::from(et)));
            }
            match tx.insert_event_type(&et) {
                Ok(()) => Ok((StatusCode::CREATED, EventTypeOut::from(et))),
                // Created by a concurrent PUT: this one replaces it.
                Err(StoreError::Conflict(_)) => {
                    let created_at = tx.event_type(&name)?.ok_or(StoreError::NotFound)?.created_at;
                    let et = EventType { created_at, ..et };
                    tx.update_event_type(&et)?;
                    Ok((StatusCode::OK, EventTypeOut::from(et)))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
}

pub async fn patch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    idem: Idem,
    JsonBody(input): JsonBody<EventTypePatch>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    check_schemas(&mut v, input.schemas.as_ref().and_then(|s| s.as_ref()));
    check_flags_and_group(
        &mut v,
        input.feature_flag.clone().flatten().as_deref(),
        input.feature_flags.clone().flatten().as_deref(),
        input.group_name.clone().flatten().as_deref(),
    );
    v.finish()?;
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let input = input.clone();
            let mut et = tx.event_type(&name)?.ok_or(StoreError::NotFound)?;
            if let Some(d) = input.description {
                et.description = d;
            }
            if let Some(a) = input.archived {
                et.archived = a;
            }
            if let Some(d) = input.deprecated {
                et.deprecated = d;
            }
            if let Some(s) = input.schemas {
                et.schemas = s;
            }
            if let Some(f) = input.feature_flag {
                et.feature_flag = f;
            }
            if let Some(f) = input.feature_flags {
                et.feature_flags = f;
            }
            if let Some(g) = input.group_name {
                et.group_name = g;
            }
            if let Some(vp) = input.validate_payloads {
                et.validate_payloads = vp;
            }
            et.updated_at = crate::store::model::now();
            tx.update_event_type(&et)?;
            Ok(EventTypeOut::from(et))
        })
        .await
}

/// Archives by default; `?expunge=true` deletes for good.
pub async fn delete(State(state): State<AppState>, Path(name): Path<String>, q: QueryParams) -> ApiResult<StatusCode> {
    let expunge = q.bool("expunge", false)?;
    state
        .store
        .write(move |tx| {
            if expunge {
                tx.delete_event_type(&name)?;
            } else {
                let mut et = tx.event_type(&name)?.ok_or(StoreError::NotFound)?;
                et.archived = true;
                et.updated_at = crate::store::model::now();
                tx.update_event_type(&et)?;
            }
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
