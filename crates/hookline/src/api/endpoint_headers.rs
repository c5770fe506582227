//! An endpoint's custom headers, sent with every delivery.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::ScopedApp;
use super::endpoints::{load, modify};
use super::error::{ApiResult, Validation};
use super::extract::JsonBody;
use super::idempotency::Idem;
use super::AppState;
use crate::store::model::StringMap;

/// Svix's `EndpointHeadersOut`: credential headers are named, not shown.
#[derive(Serialize, JsonSchema)]
pub struct HeadersOut {
    headers: StringMap,
    sensitive: Vec<String>,
}

/// Svix's `EndpointHeadersIn`.
#[derive(Deserialize, JsonSchema)]
#[schemars(example = serde_json::json!({"headers": {"X-Tenant": "acme"}}))]
pub struct HeadersIn {
    #[schemars(transform = headers_schema)]
    headers: StringMap,
}

/// Svix's `EndpointHeadersPatchIn`.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"headers": {"X-Tenant": "acme", "X-Old": null}}))]
pub struct HeadersPatchIn {
    /// Headers to set; a `null` value removes one.
    #[schemars(transform = headers_schema)]
    headers: std::collections::BTreeMap<String, Option<String>>,
    /// How current SDKs remove headers (`null` values work too).
    #[serde(default)]
    delete_headers: Vec<String>,
}

/// Header names Hookline sets itself, and prefixes of them.
const RESERVED_HEADERS: &[&str] =
    &["host", "content-length", "content-type", "transfer-encoding", "connection", "user-agent", "te", "upgrade"];
const RESERVED_PREFIXES: &[&str] = &["webhook-", "svix-"];

/// Headers Hookline sets itself, which an endpoint may not override.
fn is_reserved_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    RESERVED_PREFIXES.iter().any(|p| n.starts_with(p)) || RESERVED_HEADERS.contains(&n.as_str())
}

/// A header name's token characters (RFC 9110), for schemas.
const HEADER_NAME_PATTERN: &str = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$";

/// The schema of what `check_headers` accepts (but the 16 KiB total).
pub fn headers_schema(schema: &mut schemars::Schema) {
    // `[Hh][Oo][Ss][Tt]`: case-insensitive, in any regex dialect.
    let any_case = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                c if c.is_ascii_alphabetic() => format!("[{}{}]", c.to_ascii_uppercase(), c),
                '-' => "\\-".to_string(),
                c => c.to_string(),
            })
            .collect()
    };
    let mut reserved: Vec<serde_json::Value> =
        RESERVED_HEADERS.iter().map(|h| serde_json::json!({"pattern": format!("^{}$", any_case(h))})).collect();
    reserved.extend(RESERVED_PREFIXES.iter().map(|p| serde_json::json!({"pattern": format!("^{}", any_case(p))})));
    schema.insert("maxProperties".into(), MAX_HEADERS.into());
    schema.insert(
        "propertyNames".into(),
        serde_json::json!({"minLength": 1, "pattern": HEADER_NAME_PATTERN, "not": {"anyOf": reserved}}),
    );
    let value = serde_json::json!({"type": "string", "maxLength": 4096, "pattern": r"^[^\x00-\x08\x0a-\x1f\x7f]*$"});
    let value = match schema.get("additionalProperties").and_then(|v| v.get("type")) {
        // PATCH: `null` removes the header.
        Some(t) if t.is_array() => serde_json::json!({"anyOf": [value, {"type": "null"}]}),
        _ => value,
    };
    schema.insert("additionalProperties".into(), value);
}

/// Most custom headers on one endpoint, and their largest total size:
/// every delivery carries them.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub fn check_headers(v: &mut Validation, headers: &StringMap) {
    if headers.len() > MAX_HEADERS {
        v.push(&["body", "headers"], format!("must hold at most {MAX_HEADERS} headers"));
        return;
    }
    let total: usize = headers.iter().map(|(k, val)| k.len() + val.len()).sum();
    if total > MAX_HEADER_BYTES {
        v.push(&["body", "headers"], format!("must total at most {MAX_HEADER_BYTES} bytes of names and values"));
        return;
    }
    for (name, value) in headers {
        if value.chars().count() > 4096 {
            v.push(&["body", "headers"], format!("the value of {name:?} is longer than 4096 bytes"));
        }
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            v.push(&["body", "headers"], format!("{name:?} is not a valid header name"));
        } else if is_reserved_header(name) {
            v.push(&["body", "headers"], format!("{name:?} is set by Hookline and cannot be overridden"));
        }
        if axum::http::HeaderValue::from_str(value).is_err() {
            v.push(&["body", "headers"], format!("the value of {name:?} is not a valid header value"));
        }
    }
}

pub async fn get_headers(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<Json<HeadersOut>> {
    let ep = load(&state, app.id, key).await?;
    Ok(Json(HeadersOut::from(ep.headers)))
}

/// Headers whose values are credentials: their names are listed under
/// `sensitive` and their values never leave the server (Svix's list, plus
/// the common API-key and cookie headers).
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "www-authenticate",
    "proxy-authenticate",
    "x-auth-token",
    "x-api-key",
    "api-key",
    "cookie",
];

impl From<StringMap> for HeadersOut {
    fn from(all: StringMap) -> HeadersOut {
        let (sensitive, headers): (StringMap, StringMap) =
            all.into_iter().partition(|(name, _)| SENSITIVE_HEADERS.contains(&name.to_ascii_lowercase().as_str()));
        HeadersOut { headers, sensitive: sensitive.into_keys().collect() }
    }
}

pub async fn put_headers(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
    JsonBody(input): JsonBody<HeadersIn>,
) -> ApiResult<StatusCode> {
    let mut v = Validation::default();
    check_headers(&mut v, &input.headers);
    v.finish()?;
    modify(&state, Idem::default(), app.id, key, move |_, ep| {
        ep.headers = input.headers.clone();
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Merges headers; a `null` value, or a name in `deleteHeaders`, removes one.
pub async fn patch_headers(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
    JsonBody(input): JsonBody<HeadersPatchIn>,
) -> ApiResult<StatusCode> {
    let mut v = Validation::default();
    let set: StringMap = input.headers.iter().filter_map(|(k, val)| Some((k.clone(), val.clone()?))).collect();
    check_headers(&mut v, &set);
    v.finish()?;
    modify(&state, Idem::default(), app.id, key, move |_, ep| {
        for name in &input.delete_headers {
            ep.headers.remove(name);
        }
        for (name, value) in &input.headers {
            match value {
                Some(value) => ep.headers.insert(name.clone(), value.clone()),
                None => ep.headers.remove(name),
            };
        }
        // The limits hold for what is stored, not only for one request.
        let mut v = Validation::default();
        check_headers(&mut v, &ep.headers);
        v.finish()?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_headers_are_named_but_not_shown() {
        let all: StringMap = [("Authorization", "Bearer s3cret"), ("X-Api-Key", "k3y"), ("x-tenant", "acme")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = HeadersOut::from(all);
        assert_eq!(out.headers.keys().collect::<Vec<_>>(), ["x-tenant"]);
        assert_eq!(out.sensitive, ["Authorization", "X-Api-Key"]);
    }

    #[test]
    fn reserved_headers_are_refused() {
        assert!(is_reserved_header("Webhook-Signature"));
        assert!(is_reserved_header("content-type"));
        assert!(!is_reserved_header("x-api-key"));
    }
}
