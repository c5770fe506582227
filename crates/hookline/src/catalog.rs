//! The event catalog: event types with JSON Schemas and examples, imported
//! from a file, and payload validation for types that opt in
//! (`validatePayloads: true`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::Value;

use crate::api::error::{ApiError, ApiResult, Validation};
use crate::ids::is_valid_uid;
use crate::store::model::{EventType, Timestamp};
use crate::store::{StoreError, Tx};

/// One entry of a catalog file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub schemas: Option<Value>,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
    #[serde(default)]
    pub group_name: Option<String>,
    #[serde(default)]
    pub validate_payloads: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogFile {
    event_types: Vec<CatalogEntry>,
}

/// Reads and checks a catalog file: `{"eventTypes": [...]}`.
pub fn read_catalog(path: &Path) -> Result<Vec<CatalogEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: CatalogFile = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for entry in &file.event_types {
        if !is_valid_uid(&entry.name) {
            return Err(format!("{}: {:?} is not a valid event type name", path.display(), entry.name));
        }
        if let Some(schemas) = &entry.schemas {
            for (version, schema) in
                schemas.as_object().ok_or_else(|| format!("{}: schemas must be an object", entry.name))?
            {
                jsonschema::validator_for(schema)
                    .map_err(|e| format!("{}: schema version {version} is not a valid JSON Schema: {e}", entry.name))?;
            }
        }
    }
    Ok(file.event_types)
}

/// What an import changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Upserts every entry; running it twice changes nothing the second time.
pub fn import(tx: &mut dyn Tx, entries: &[CatalogEntry], now: Timestamp) -> Result<ImportReport, StoreError> {
    let mut report = ImportReport::default();
    for (wanted, existing) in plan(tx, entries, now)? {
        match existing {
            None => {
                tx.insert_event_type(&wanted)?;
                report.created += 1;
            }
            Some(existing) if same_content(&existing, &wanted) => report.unchanged += 1,
            Some(existing) => {
                tx.update_event_type(&EventType { created_at: existing.created_at, ..wanted })?;
                report.updated += 1;
            }
        }
    }
    Ok(report)
}

/// Each entry as the event type it asks for, with the one stored now.
pub fn plan(
    tx: &mut dyn Tx,
    entries: &[CatalogEntry],
    now: Timestamp,
) -> Result<Vec<(EventType, Option<EventType>)>, StoreError> {
    let mut planned = Vec::with_capacity(entries.len());
    for e in entries {
        let wanted = EventType {
            name: e.name.clone(),
            description: e.description.clone(),
            archived: e.archived,
            deprecated: e.deprecated,
            schemas: e.schemas.clone(),
            feature_flag: e.feature_flag.clone(),
            feature_flags: e.feature_flags.clone(),
            group_name: e.group_name.clone(),
            validate_payloads: e.validate_payloads,
            created_at: now,
            updated_at: now,
        };
        let existing = tx.event_type(&e.name)?;
        planned.push((wanted, existing));
    }
    Ok(planned)
}

pub fn same_content(a: &EventType, b: &EventType) -> bool {
    a.description == b.description
        && a.archived == b.archived
        && a.deprecated == b.deprecated
        && a.schemas == b.schemas
        && a.feature_flag == b.feature_flag
        && a.feature_flags == b.feature_flags
        && a.group_name == b.group_name
        && a.validate_payloads == b.validate_payloads
}

/// Compiled validators, keyed by event type and its last change.
type ValidatorCache = Mutex<HashMap<(String, Timestamp), Arc<jsonschema::Validator>>>;

fn cache() -> &'static ValidatorCache {
    static CACHE: OnceLock<ValidatorCache> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Checks a payload against the newest schema of an event type that opted
/// into validation; a failure is a 422 naming the failing path.
pub fn check_payload(et: &EventType, payload: &str) -> ApiResult<()> {
    if !et.validate_payloads {
        return Ok(());
    }
    let Some(schema) = newest_schema(et) else {
        return Ok(());
    };
    let validator = {
        let key = (et.name.clone(), et.updated_at);
        let mut cache = cache().lock().expect("validator cache poisoned");
        match cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let compiled = jsonschema::validator_for(schema)
                    .map_err(|e| ApiError::internal(format!("event type {} has an invalid schema: {e}", et.name)))?;
                if cache.len() > 1000 {
                    cache.clear();
                }
                let v = Arc::new(compiled);
                cache.insert(key, v.clone());
                v
            }
        }
    };
    let instance: Value = serde_json::from_str(payload).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut v = Validation::default();
    for error in validator.iter_errors(&instance).take(20) {
        let mut loc = vec![Value::from("body"), Value::from("payload")];
        let pointer = error.instance_path().to_string();
        for segment in pointer.split('/').skip(1) {
            loc.push(match segment.parse::<u64>() {
                Ok(i) => Value::from(i),
                Err(_) => Value::from(segment.replace("~1", "/").replace("~0", "~")),
            });
        }
        v.push_value(loc, format!("{} (schema of {})", error, et.name), "schema_error");
    }
    v.finish()
}

/// The schema of the highest version key (`"1"`, `"2"`, …).
fn newest_schema(et: &EventType) -> Option<&Value> {
    let schemas = et.schemas.as_ref()?.as_object()?;
    schemas.iter().max_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0)).map(|(_, v)| v)
}

/// Imports `path` into a store at start-up or from the CLI.
pub async fn import_file(store: &crate::store::Store, path: &Path) -> Result<ImportReport, String> {
    let entries = read_catalog(path)?;
    store.write(move |tx| import(tx, &entries, crate::store::model::now())).await.map_err(|e| e.to_string())
}
