//! `GET /api/v1/openapi.json`, generated from the route table.

use axum::Json;
use serde_json::{json, Map, Value};

use super::routes::{Access, ROUTES};

pub async fn serve() -> Json<Value> {
    Json(document())
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = if route.access == Access::Public { json!([]) } else { json!([{"HTTPBearer": []}]) };
        let mut op = json!({
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": params,
            "security": security,
            "x-hookline-access": format!("{:?}", route.access),
            "responses": {
                "2XX": {"description": "Success"},
                "4XX": {"description": "Client error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HttpError"}}}},
            },
        });
        if route.operation_id == "hookline.health.ready" {
            op["responses"]["503"] = json!({"description": "Not ready: the store or the dispatcher failed its check", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HttpError"}}}});
        }
        if matches!(route.method, "POST" | "PUT" | "PATCH") {
            op["requestBody"] = json!({"content": {"application/json": {"schema": {"type": "object"}}}});
            if route.method == "POST" {
                op["parameters"].as_array_mut().expect("parameters is an array").push(json!({
                    "name": "idempotency-key", "in": "header", "required": false, "schema": {"type": "string"}
                }));
            }
        }
        paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("path item is an object")
            .insert(route.method.to_ascii_lowercase(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Webhook delivery, compatible with the Svix v1 API."
        },
        // Relative to where the document is served: the paths carry `/api/v1`.
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "HttpError": {
                    "type": "object",
                    "required": ["code", "detail"],
                    "properties": {"code": {"type": "string"}, "detail": {}}
                }
            }
        }
    })
}
