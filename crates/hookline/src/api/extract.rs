//! Request extractors whose rejections are Svix-shaped errors.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, ApiResult, Validation};
use crate::store::page::{Cursor, ListQuery, Order};

/// A JSON body decoded into `T`; syntax errors answer 400, shape errors 422
/// with the failing path in `loc`.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim().to_string();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("Expected content-type application/json, got {essence:?}"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        // serde also reads a struct from an array of its fields; no body of
        // this API is an array.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::invalid(&["body"], "must be a JSON object"));
        }
        // No body at all reads as `null`, so optional bodies may be omitted.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            if let Ok(value) = serde_json::from_slice::<T>(b"null") {
                return Ok(JsonBody(value));
            }
        }
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        if let Err(e) = de.end() {
            return Err(ApiError::bad_request(format!("Request body is not valid JSON: {e}")));
        }
    }
    value.map_err(|err| {
        let inner = err.inner();
        if inner.is_data() {
            let mut loc = vec![Value::from("body")];
            for segment in err.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => loc.push(Value::from(*index)),
                    serde_path_to_error::Segment::Map { key } => loc.push(Value::from(key.clone())),
                    serde_path_to_error::Segment::Enum { variant } => loc.push(Value::from(variant.clone())),
                    serde_path_to_error::Segment::Unknown => {}
                }
            }
            let mut v = Validation::default();
            v.push_value(loc, strip_position(&inner.to_string()), "type_error");
            v.into_error()
        } else {
            ApiError::bad_request(format!("Request body is not valid JSON: {inner}"))
        }
    })
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Query parameters as a multimap; lists may be repeated or comma-joined.
pub struct QueryParams {
    params: BTreeMap<String, Vec<String>>,
    declared: Option<DeclaredQuery>,
}

/// The query parameters the route table declares for the route being
/// served (a request extension the router sets on every route).
#[derive(Clone, Debug)]
pub struct DeclaredQuery(pub Arc<[String]>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Ok(QueryParams { params: map, declared: parts.extensions.get::<DeclaredQuery>().cloned() })
    }
}

impl QueryParams {
    /// In debug builds (every test), reading a parameter that the route
    /// table does not declare for this route is a bug: `openapi.json`
    /// would not tell clients about it.
    fn values(&self, name: &str) -> Option<&Vec<String>> {
        if cfg!(debug_assertions) {
            if let Some(DeclaredQuery(declared)) = &self.declared {
                assert!(
                    declared.iter().any(|d| d == name),
                    "this handler reads the query parameter {name:?}, which its route in api/routes.rs does not declare"
                );
            }
        }
        self.params.get(name)
    }

    /// A free-text parameter; empty reads as absent.
    pub fn string(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|s| !s.is_empty())
    }

    /// A typed parameter as given: empty is a value (and not a valid one).
    pub fn raw(&self, name: &str) -> Option<String> {
        self.values(name).and_then(|v| v.last()).cloned()
    }

    /// A list of event type names (`event_types`), each checked.
    pub fn event_types(&self) -> ApiResult<Vec<String>> {
        // `?event_types=` is how a form-style query writes an empty list:
        // empty names are skipped, the others must be names.
        let types: Vec<String> = self
            .values("event_types")
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if types.iter().any(|t| !crate::ids::is_valid_uid(t)) {
            return Err(ApiError::invalid(
                &["query", "event_types"],
                "event type names are 1 to 256 of A-Z a-z 0-9 - _ .",
            ));
        }
        Ok(types)
    }

    pub fn bool(&self, name: &str, default: bool) -> ApiResult<bool> {
        match self.raw(name).as_deref() {
            None => Ok(default),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(ApiError::invalid(&["query", name], format!("expected true or false, got {other:?}"))),
        }
    }

    pub fn datetime(&self, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
        self.raw(name).map(|s| parse_datetime(&s).ok_or_else(|| bad_datetime(name, &s))).transpose()
    }

    /// `limit` (1..=250, default 50), `iterator` and `order`.
    pub fn list_query(&self, default_order: Order) -> ApiResult<ListQuery> {
        let limit = match self.raw("limit") {
            None => 50,
            Some(s) => match s.parse::<i64>() {
                Ok(n) if (1..=250).contains(&n) => n as usize,
                _ => return Err(ApiError::invalid(&["query", "limit"], "limit must be a whole number from 1 to 250")),
            },
        };
        let order = match self.raw("order").as_deref() {
            None => default_order,
            Some("ascending") => Order::Ascending,
            Some("descending") => Order::Descending,
            Some(_) => return Err(ApiError::invalid(&["query", "order"], "order must be ascending or descending")),
        };
        let iterator = self.string("iterator");
        // A key is at most 256 characters; `-` before it pages backwards.
        if iterator.as_ref().is_some_and(|i| i.chars().count() > 257) {
            return Err(ApiError::invalid(&["query", "iterator"], "iterator is too long"));
        }
        let cursor = iterator.and_then(|i| Cursor::parse(&i));
        Ok(ListQuery { limit, cursor, order })
    }
}

fn bad_datetime(name: &str, value: &str) -> ApiError {
    ApiError::invalid(&["query", name], format!("{value:?} is not an RFC 3339 datetime"))
}

/// RFC 3339; without an offset the time is UTC (as Svix reads it). Years
/// are RFC 3339's four digits: `%Y` alone reads any signed year chrono can
/// hold, and arithmetic near those limits panics, while PostgreSQL refuses
/// years before 4713 BC.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    parse_any_year(s).filter(|t| (1..=9999).contains(&t.year()))
}

fn parse_any_year(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}
