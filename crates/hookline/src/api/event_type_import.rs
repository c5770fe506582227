//! `POST /api/v1/event-type/import/openapi`: event types from the
//! `webhooks` of an OpenAPI 3.1 document, as Svix reads them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::catalog::{plan, same_content, CatalogEntry};
use crate::ids::is_valid_uid;
use crate::store::model::{now, EventType};
use crate::store::page::{Cursor, ListQuery, Order};
use crate::store::{StoreError, Tx};

/// Svix's `EventTypeImportOpenApiIn`: exactly one of `spec` and `specRaw`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("oneOf" = [
    {"required": ["spec"], "properties": {"spec": {"type": "object"}}},
    {"required": ["specRaw"], "properties": {"specRaw": {"type": "string"}}}
]))]
#[schemars(example = serde_json::json!({"spec": {"openapi": "3.1.0", "info": {"title": "Webhooks", "version": "1"},
    "webhooks": {"invoice.paid": {"post": {"description": "An invoice was paid",
    "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}}}}}}))]
pub struct ImportIn {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    replace_all: bool,
    /// An OpenAPI 3.1 document whose `webhooks` name the event types.
    #[serde(default)]
    #[schemars(transform = spec_schema)]
    spec: Option<Value>,
    /// The same document as JSON text (Hookline reads no YAML).
    #[serde(default)]
    spec_raw: Option<String>,
}

/// What `entries_of` reads from a document, as far as a schema says it.
fn spec_schema(schema: &mut schemars::Schema) {
    schema.insert("type".into(), json!(["object", "null"]));
    schema.insert("required".into(), json!(["webhooks"]));
    schema.insert(
        "properties".into(),
        json!({"webhooks": {
            "type": "object",
            "propertyNames": {"minLength": 1, "maxLength": 256, "pattern": super::json::UID_PATTERN},
            "additionalProperties": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "object", "properties": {"requestBody": {"type": "object"}}},
            },
        }}),
    );
}

#[derive(Serialize, JsonSchema)]
pub struct ImportOut {
    data: ImportData,
}

#[derive(Serialize, JsonSchema)]
struct ImportData {
    modified: Vec<String>,
    /// What a dry run would change (Svix spells it in snake case).
    #[serde(skip_serializing_if = "Option::is_none")]
    to_modify: Option<Vec<Value>>,
}

pub async fn import(
    State(state): State<AppState>,
    idem: Idem,
    JsonBody(input): JsonBody<ImportIn>,
) -> ApiResult<Response> {
    let spec = match (input.spec, input.spec_raw) {
        (Some(spec), None) => spec,
        (None, Some(raw)) => serde_json::from_str(&raw).map_err(|e| {
            ApiError::bad_request(format!("specRaw is not JSON ({e}); Hookline reads JSON only, not YAML"))
        })?,
        _ => return Err(ApiError::bad_request("Send the OpenAPI document as exactly one of spec and specRaw")),
    };
    let entries = entries_of(&spec)?;
    let (dry_run, replace_all) = (input.dry_run, input.replace_all);
    let run = move |tx: &mut dyn Tx| -> ApiResult<ImportData> {
        let mut entries = entries.clone();
        // What a document does not say is kept: payload validation
        // (Hookline's own) and the older single `featureFlag`.
        for e in &mut entries {
            if let Some(existing) = tx.event_type(&e.name)? {
                e.validate_payloads = existing.validate_payloads;
                e.feature_flag = existing.feature_flag;
            }
        }
        let mut changes: Vec<EventType> = Vec::new();
        for (wanted, existing) in plan(tx, &entries, now())? {
            match existing {
                Some(existing) if same_content(&existing, &wanted) => {}
                Some(existing) => {
                    let changed = EventType { created_at: existing.created_at, ..wanted };
                    if !dry_run {
                        tx.update_event_type(&changed)?;
                    }
                    changes.push(changed);
                }
                None => {
                    if !dry_run {
                        tx.insert_event_type(&wanted)?;
                    }
                    changes.push(wanted);
                }
            }
        }
        if replace_all {
            let named: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            for mut et in every_event_type(tx)? {
                if !et.archived && !named.contains(&et.name.as_str()) {
                    et.archived = true;
                    et.updated_at = now();
                    if !dry_run {
                        tx.update_event_type(&et)?;
                    }
                    changes.push(et);
                }
            }
        }
        let modified = changes.iter().map(|e| e.name.clone()).collect();
        let to_modify = dry_run.then(|| changes.iter().map(from_openapi_out).collect());
        Ok(ImportData { modified, to_modify })
    };
    if dry_run {
        let data = state.store.read(run).await?;
        return Ok(Json(ImportOut { data }).into_response());
    }
    state.commit(idem, StatusCode::OK, move |tx| run(tx).map(|data| ImportOut { data })).await
}

/// Svix's `EventTypeFromOpenApi`.
fn from_openapi_out(e: &EventType) -> Value {
    json!({
        "name": e.name,
        "description": e.description,
        "schemas": e.schemas,
        "deprecated": e.deprecated,
        "featureFlags": e.feature_flags,
        "groupName": e.group_name,
    })
}

fn every_event_type(tx: &mut dyn Tx) -> Result<Vec<EventType>, StoreError> {
    let mut all = Vec::new();
    let mut query = ListQuery { limit: 250, cursor: None, order: Order::Ascending };
    loop {
        let page = tx.list_event_types(&query, true)?;
        all.extend(page.data);
        match (page.done, page.iterator) {
            (false, Some(next)) => query.cursor = Some(Cursor::After(next)),
            _ => return Ok(all),
        }
    }
}

/// One catalog entry per webhook of the document (its first operation).
fn entries_of(spec: &Value) -> ApiResult<Vec<CatalogEntry>> {
    let mut v = Validation::default();
    let Some(webhooks) = spec.get("webhooks").and_then(Value::as_object) else {
        return Err(ApiError::invalid(&["body", "spec", "webhooks"], "the document has no webhooks object"));
    };
    let mut entries = Vec::new();
    for (name, item) in webhooks {
        if !is_valid_uid(name) {
            v.push(&["body", "spec", "webhooks", name], "is not a valid event type name");
            continue;
        }
        let Some(op) = item.as_object().and_then(|i| i.values().find(|o| o.is_object())) else {
            v.push(&["body", "spec", "webhooks", name], "has no operation");
            continue;
        };
        let text = |key: &str| op.get(key).and_then(Value::as_str).map(str::to_string);
        let schema = match op.pointer("/requestBody/content/application~1json/schema") {
            None => None,
            Some(s) => match inline_refs(s, spec) {
                Some(schema) => Some(schema),
                None => {
                    v.push(
                        &["body", "spec", "webhooks", name],
                        format!(
                            "its payload schema, with $refs inlined, passes {MAX_SCHEMA_NODES} nodes or \
                             {MAX_SCHEMA_DEPTH} levels"
                        ),
                    );
                    continue;
                }
            },
        };
        if let Some(schema) = &schema {
            if let Err(e) = jsonschema::validator_for(schema) {
                v.push(&["body", "spec", "webhooks", name], format!("its payload schema is not valid: {e}"));
            }
        }
        let flags = op
            .get("x-svix-feature-flags")
            .and_then(Value::as_array)
            .map(|flags| flags.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>());
        entries.push(CatalogEntry {
            name: name.clone(),
            description: text("description").or_else(|| text("summary")).unwrap_or_default(),
            schemas: schema.map(|s| json!({ "1": s })),
            deprecated: op.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
            archived: false,
            feature_flag: None,
            feature_flags: flags,
            group_name: text("x-svix-group-name"),
            validate_payloads: false,
        });
    }
    v.finish()?;
    Ok(entries)
}

/// Bounds on a schema after its `$ref`s are inlined: what the store (and
/// every later read of the event type) can hold.
const MAX_SCHEMA_NODES: usize = 10_000;
const MAX_SCHEMA_DEPTH: usize = 64;

/// The schema with each local `$ref` (`#/…`) replaced by what it names. A
/// recursive reference stays open (`{}`, any value): inlining it has no end.
/// `None` when the result would pass the bounds above.
fn inline_refs(schema: &Value, spec: &Value) -> Option<Value> {
    let mut budget = MAX_SCHEMA_NODES;
    resolve_refs(schema, spec, &mut Vec::new(), 0, &mut budget)
}

fn resolve_refs<'s>(
    schema: &'s Value,
    spec: &'s Value,
    path: &mut Vec<&'s str>,
    depth: usize,
    budget: &mut usize,
) -> Option<Value> {
    if depth > MAX_SCHEMA_DEPTH || *budget == 0 {
        return None;
    }
    *budget -= 1;
    match schema {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let found = target.strip_prefix('#').and_then(|pointer| spec.pointer(pointer));
                return match found {
                    Some(found) if !path.contains(&target) => {
                        path.push(target);
                        let resolved = resolve_refs(found, spec, path, depth + 1, budget);
                        path.pop();
                        resolved
                    }
                    _ => Some(Value::Object(Map::new())),
                };
            }
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(k.clone(), resolve_refs(v, spec, path, depth + 1, budget)?);
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| resolve_refs(v, spec, path, depth + 1, budget))
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        other => Some(other.clone()),
    }
}
