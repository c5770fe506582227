//! `GET /api/v1/openapi.json`, generated from the route table and the Rust
//! types each route names (`schemars`, JSON Schema 2020-12: the dialect of
//! OpenAPI 3.1). Request bodies and query strings are described as they are
//! read (serde's deserialize view), responses as they are written (fields
//! always sent are required, `null` included).

use std::sync::{Arc, OnceLock};

use axum::Json;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::routes::{Access, Route, ROUTES};

/// Any JSON object (the answer of `GET /openapi.json`).
pub type JsonObject = Map<String, Value>;

/// A type's schema, as the route table names it.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The `SchemaFn` of `T`.
pub fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

pub async fn serve() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(document).clone())
}

fn generator(contract: Contract, inline: bool) -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.contract = contract;
            s.inline_subschemas = inline;
        })
        .into_generator()
}

/// The query parameters a route declares, by name (for `QueryParams`).
pub fn query_names(route: &Route) -> Arc<[String]> {
    query_parameters(route, &mut generator(Contract::Deserialize, true))
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The route's query type as OpenAPI parameters: one per property.
fn query_parameters(route: &Route, generator: &mut SchemaGenerator) -> Vec<Value> {
    let Some(query) = route.query else { return Vec::new() };
    let schema = query(generator).to_value();
    let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut out = Vec::new();
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        let mut property = property.clone();
        // An absent parameter is how a query says "none": never `null`.
        if let Some(types) = property.get_mut("type").and_then(Value::as_array_mut) {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                property["type"] = types[0].clone();
            }
        }
        if let Some(values) = property.get_mut("enum").and_then(Value::as_array_mut) {
            values.retain(|v| !v.is_null());
        }
        let description = property.as_object_mut().and_then(|p| p.remove("description"));
        let mut parameter = json!({
            "name": name,
            "in": "query",
            "required": required.contains(&name.as_str()),
            "schema": property,
        });
        if let Some(description) = description {
            parameter["description"] = description;
        }
        if parameter["schema"]["type"] == "array" {
            // Lists arrive comma-joined (`event_types=a,b`), as the SDKs send them.
            parameter["style"] = json!("form");
            parameter["explode"] = json!(false);
        }
        out.push(parameter);
    }
    out
}

fn error_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
    })
}

/// Every status the route may answer besides success, as the access check,
/// the body reader and the handlers give them.
fn error_responses(route: &Route, has_query: bool) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    let has_body = route.body.is_some();
    // Logout of the static admin token; resending a message whose payload is gone.
    if has_body || matches!(route.operation_id, "v1.authentication.logout" | "v1.message-attempt.resend") {
        out.push((400, error_response("The body is not JSON (or the request cannot be done as asked)", "HttpError")));
    }
    if route.access != Access::Public {
        out.push((401, error_response("Missing, invalid, expired or revoked bearer token", "HttpError")));
    }
    if !matches!(route.access, Access::Public | Access::Authenticated) {
        out.push((403, error_response("The token may not do this (admin only, or a missing capability)", "HttpError")));
    }
    if route.path.contains('{') {
        out.push((404, error_response("Nothing of that id or uid here", "HttpError")));
    }
    if matches!(route.method, "POST" | "PUT" | "PATCH") {
        out.push((
            409,
            error_response(
                "A conflict: the uid, eventId or name exists, or a request with this idempotency key is running",
                "HttpError",
            ),
        ));
    }
    if has_body {
        out.push((413, error_response("The body is larger than HOOKLINE_MAX_PAYLOAD", "HttpError")));
        out.push((415, error_response("The body is not application/json", "HttpError")));
    }
    if has_body || has_query || route.method == "POST" {
        out.push((422, error_response("Invalid input: every failing field, by location", "HTTPValidationError")));
    }
    out
}

fn success_description(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No content",
        _ => "Success",
    }
}

fn operation(
    route: &Route,
    gen_in: &mut SchemaGenerator,
    gen_out: &mut SchemaGenerator,
    gen_query: &mut SchemaGenerator,
) -> Value {
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let query = query_parameters(route, gen_query);
    let has_query = !query.is_empty();
    params.extend(query);
    if route.method == "POST" {
        params.push(json!({
            "name": "idempotency-key",
            "in": "header",
            "required": false,
            "description": "The first 2xx answer to a POST with this key (same token and path) is replayed for 24 hours; a created message is answered as it is at the replay (an expunged payload is not answered again)",
            "schema": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[\\x21-\\x7e]+$"},
        }));
    }
    let security = if route.access == Access::Public { json!([]) } else { json!([{"HTTPBearer": []}]) };
    let mut responses = Map::new();
    for status in route.ok {
        let mut response = json!({"description": success_description(*status)});
        if let Some(out) = route.response {
            response["content"] = json!({"application/json": {"schema": out(gen_out).to_value()}});
        }
        responses.insert(status.to_string(), response);
    }
    for (status, response) in error_responses(route, has_query) {
        responses.insert(status.to_string(), response);
    }
    let mut op = json!({
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": params,
        "security": security,
        "x-hookline-access": format!("{:?}", route.access),
        "responses": responses,
    });
    if route.operation_id.starts_with("hookline.") {
        op["x-hookline-extension"] = json!(true);
    }
    if route.operation_id == "hookline.health.ready" {
        op["responses"]["503"] = json!({
            "description": "Not ready: the store or the dispatcher failed its check",
            "content": {"application/json": {"schema": schema_of::<super::readiness::NotReadyOut>(gen_out).to_value()}},
        });
    }
    if let Some(body) = route.body {
        let schema = body(gen_in).to_value();
        // `Option<T>`: the body may be left out.
        // `Option<T>`: the body may be left out (or be `null`).
        let required = !schema
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|branches| branches.contains(&json!({"type": "null"})));
        op["requestBody"] = json!({"required": required, "content": {"application/json": {"schema": schema}}});
    }
    op
}

pub fn document() -> Value {
    let mut gen_in = generator(Contract::Deserialize, false);
    let mut gen_out = generator(Contract::Serialize, false);
    let mut gen_query = generator(Contract::Deserialize, true);
    let mut paths = Map::new();
    for route in ROUTES {
        let op = operation(route, &mut gen_in, &mut gen_out, &mut gen_query);
        paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("path item is an object")
            .insert(route.method.to_ascii_lowercase(), op);
    }
    let mut schemas = gen_in.take_definitions(true);
    for (name, schema) in gen_out.take_definitions(true) {
        match schemas.get(&name) {
            Some(existing) => {
                assert_eq!(existing, &schema, "{name} is read and written with different shapes: name them apart")
            }
            None => {
                schemas.insert(name, schema);
            }
        }
    }
    schemas.insert(
        "HttpError".into(),
        json!({
            "type": "object",
            "description": "Every non-2xx answer but 422: Svix's error shape",
            "required": ["code", "detail"],
            "properties": {"code": {"type": "string"}, "detail": {"type": "string"}},
        }),
    );
    schemas.insert(
        "HTTPValidationError".into(),
        json!({
            "type": "object",
            "description": "A 422: every invalid input, by location",
            "required": ["detail"],
            "properties": {
                "code": {"type": "string", "const": "validation"},
                "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
            },
        }),
    );
    schemas.insert(
        "ValidationError".into(),
        json!({
            "type": "object",
            "required": ["loc", "msg", "type"],
            "properties": {
                "loc": {
                    "type": "array",
                    "description": "Where: `body`, `query` or `header` then the path to the field",
                    "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                },
                "msg": {"type": "string"},
                "type": {"type": "string"},
            },
        }),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Webhook delivery, compatible with the Svix v1 API. Operations and fields that Svix does \
                            not have are marked `x-hookline-extension: true`.",
        },
        // Relative to where the document is served: the paths carry `/api/v1`.
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_builds_and_every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let needle = "\"$ref\":\"#/components/schemas/";
        let mut rest = text.as_str();
        while let Some(i) = rest.find(needle) {
            rest = &rest[i + needle.len()..];
            let name = &rest[..rest.find('"').unwrap()];
            assert!(doc["components"]["schemas"].get(name).is_some(), "dangling $ref to {name}");
        }
    }

    #[test]
    fn hookline_operations_are_marked() {
        let doc = document();
        let op = &doc["paths"]["/api/v1/hookline/overview"]["get"];
        assert_eq!(op["x-hookline-extension"], true);
        assert!(doc["paths"]["/api/v1/app"]["get"].get("x-hookline-extension").is_none());
    }

    #[test]
    fn list_query_parameters_are_declared() {
        let doc = document();
        let params = doc["paths"]["/api/v1/app/{app_id}/msg"]["get"]["parameters"].as_array().unwrap();
        let names: Vec<&str> = params.iter().filter_map(|p| p["name"].as_str()).collect();
        for name in ["app_id", "limit", "iterator", "order", "with_content", "event_types", "before", "after"] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        let event_types = params.iter().find(|p| p["name"] == "event_types").unwrap();
        assert_eq!(event_types["explode"], false);
    }
}
