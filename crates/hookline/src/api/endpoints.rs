//! `/api/v1/app/{app_id}/endpoint`: where a customer wants webhooks sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::access::ScopedApp;
use super::applications::{double_option, ListOut};
use super::endpoint_headers::check_headers;
use super::endpoint_secret::{generate_secret, parse_secret};
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::json::{
    channels_schema, check_channels, check_metadata, check_not_id_shaped, check_rate_limit, check_uid, metadata_schema,
    ts, UID_PATTERN,
};
use super::AppState;
use crate::ids::IdKind;
use crate::keys::{Owner, SecretCipher};
use crate::operational::{self, EndpointChange, Listeners};
use crate::store::model::{Endpoint, SealedSecret, StringMap, Timestamp};
use crate::store::page::Order;
use crate::store::{StoreError, Tx};

/// What `check_endpoint_uid` refuses, for schemas: the shape of an endpoint id.
const ID_SHAPED_UID: &str = "^ep_[A-Za-z0-9]{27}$";

/// Svix's `EndpointIn`.
#[derive(Deserialize, JsonSchema, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({
    "url": "https://example.com/webhooks",
    "description": "Billing events",
    "uid": "billing",
    "metadata": {"team": "billing"}
}))]
pub struct EndpointIn {
    /// An http:// or https:// URL with a host.
    #[schemars(transform = url_schema)]
    pub url: String,
    #[serde(default)]
    #[schemars(length(max = 8192))]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = UID_PATTERN))]
    #[schemars(extend("not" = {"type": "string", "pattern": ID_SHAPED_UID}))]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    pub version: Option<i32>,
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Event types sent to this endpoint (all when absent); each must exist in the catalog (422 otherwise).
    /// Also read as `eventTypes`.
    #[serde(default, alias = "eventTypes")]
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 256), regex(pattern = UID_PATTERN)))]
    pub filter_types: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(transform = channels_schema)]
    pub channels: Option<Vec<String>>,
    /// Deliveries per second, at most (also read as `throttleRate`).
    #[serde(default, alias = "throttleRate", deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub rate_limit: Option<i64>,
    /// The signing secret (`whsec_` + base64 of 24 to 75 bytes, or a `whsk_` ed25519 key); generated when absent.
    #[serde(default)]
    #[schemars(transform = secret_schema)]
    pub secret: Option<String>,
    #[serde(default)]
    #[schemars(transform = metadata_schema)]
    pub metadata: Option<StringMap>,
    /// Custom headers sent with every delivery.
    #[serde(default)]
    #[schemars(transform = super::endpoint_headers::headers_schema)]
    pub headers: Option<StringMap>,
}

/// Svix's `EndpointPatch`: absent fields stay, `null` clears.
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"disabled": true}))]
pub struct EndpointPatch {
    #[schemars(transform = url_schema)]
    url: Option<String>,
    #[schemars(length(max = 8192))]
    description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(length(min = 1, max = 256), regex(pattern = UID_PATTERN))]
    #[schemars(extend("not" = {"type": "string", "pattern": ID_SHAPED_UID}))]
    uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::json::whole::opt")]
    version: Option<i32>,
    disabled: Option<bool>,
    #[serde(default, alias = "eventTypes", deserialize_with = "double_option")]
    #[schemars(length(min = 1, max = 1000), inner(length(min = 1, max = 256), regex(pattern = UID_PATTERN)))]
    filter_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(transform = channels_schema)]
    channels: Option<Option<Vec<String>>>,
    #[serde(default, alias = "throttleRate", deserialize_with = "super::json::whole::double_opt")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    rate_limit: Option<Option<i64>>,
    #[schemars(transform = secret_schema)]
    secret: Option<String>,
    #[schemars(transform = metadata_schema)]
    metadata: Option<StringMap>,
}

/// What `check_url` accepts, as far as a schema can say it. Not
/// `format: uri`: Svix takes what the WHATWG parser takes, and RFC 3986
/// refuses some of it (brackets in a query, Unicode hosts).
fn url_schema(schema: &mut schemars::Schema) {
    schema.insert(
        "pattern".into(),
        r"^[Hh][Tt][Tt][Pp][Ss]?://[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
            .into(),
    );
    schema.insert("maxLength".into(), 65_536.into());
}

/// What `parse_secret` accepts, as far as a schema can say it.
pub fn secret_schema(schema: &mut schemars::Schema) {
    schema.insert("pattern".into(), SECRET_PATTERN.into());
}

/// `whsec_` (optional) and canonical base64 of 24 to 75 bytes; or `whsk_`
/// and the base64 of an ed25519 seed (32 bytes).
pub const SECRET_PATTERN: &str = concat!(
    r"^((whsec_)?([A-Za-z0-9+/]{4}){8,24}([A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/][AQgw]==)?",
    r"|whsk_([A-Za-z0-9+/]{4}){10}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$"
);

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    uid: Option<String>,
    url: String,
    description: String,
    version: i32,
    disabled: bool,
    filter_types: Option<Vec<String>>,
    event_types: Option<Vec<String>>,
    channels: Option<Vec<String>>,
    rate_limit: Option<u32>,
    throttle_rate: Option<u32>,
    metadata: StringMap,
    #[serde(serialize_with = "ts")]
    created_at: Timestamp,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        EndpointOut {
            id: e.id,
            uid: e.uid,
            url: e.url,
            description: e.description,
            version: e.version,
            disabled: e.disabled,
            event_types: e.filter_types.clone(),
            filter_types: e.filter_types,
            channels: e.channels,
            rate_limit: e.rate_limit,
            throttle_rate: e.rate_limit,
            metadata: e.metadata,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

// ---- validation -----------------------------------------------------------

/// Longest endpoint description, in characters (as the schema counts).
const MAX_DESCRIPTION: usize = 8192;

fn check_description(v: &mut Validation, description: Option<&str>) {
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        v.push(&["body", "description"], format!("must be at most {MAX_DESCRIPTION} characters"));
    }
}

pub fn check_url(v: &mut Validation, url: &str) {
    match reqwest::Url::parse(url) {
        // The WHATWG parser takes what Svix takes, but it would quietly drop
        // or encode whitespace and control characters, so the URL stored
        // would not be the URL delivered to.
        Ok(_) if url.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            v.push(&["body", "url"], "must not contain whitespace or control characters")
        }
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(_) => v.push(&["body", "url"], "must be an http:// or https:// URL with a host"),
        Err(e) => v.push(&["body", "url"], format!("is not a valid URL: {e}")),
    }
    if url.chars().count() > 65_536 {
        v.push(&["body", "url"], "is too long");
    }
}

/// Most event types one endpoint may filter on.
const MAX_FILTER_TYPES: usize = 1000;
/// Most endpoints of one application: every message reads them all.
pub const MAX_ENDPOINTS_PER_APP: usize = 1000;

fn check_filter_types(v: &mut Validation, types: Option<&[String]>) {
    if let Some(list) = types {
        if list.is_empty() {
            v.push(&["body", "filterTypes"], "must hold at least one event type, or be omitted for all");
        }
        if list.len() > MAX_FILTER_TYPES {
            v.push(&["body", "filterTypes"], format!("must hold at most {MAX_FILTER_TYPES} event types"));
        }
    }
}

/// Refuses a new endpoint past the per-application limit. The application
/// is held until the transaction ends, so concurrent creations count in turn.
fn check_room_for_endpoint(tx: &mut dyn Tx, app_id: &str) -> ApiResult<()> {
    tx.application_for_update(app_id)?.ok_or(StoreError::NotFound)?;
    if tx.count_endpoints(app_id)? >= MAX_ENDPOINTS_PER_APP {
        return Err(ApiError::invalid(
            &["body"],
            format!("an application may have at most {MAX_ENDPOINTS_PER_APP} endpoints; delete one first"),
        ));
    }
    Ok(())
}

/// Filtering on an event type that is not in the catalog is a mistake the
/// customer would never notice otherwise: refuse it (422), as Svix does.
/// (Operational endpoints filter on the operational event types.)
fn check_types_registered(tx: &mut dyn Tx, app_id: &str, types: Option<&[String]>) -> ApiResult<()> {
    let mut v = Validation::default();
    for name in types.unwrap_or_default() {
        let known = match app_id {
            operational::APP_ID => operational::EVENT_TYPES.contains(&name.as_str()),
            _ => tx.event_type(name)?.is_some(),
        };
        if !known {
            v.push(&["body", "filterTypes"], format!("event type {name:?} does not exist"));
        }
    }
    v.finish()
}

/// Tells the operational webhooks how an endpoint changed: its own change,
/// and being disabled or enabled on the way.
fn announce(tx: &mut dyn Tx, ep: &Endpoint, change: EndpointChange, was_disabled: bool) -> ApiResult<()> {
    if ep.app_id == operational::APP_ID {
        return Ok(());
    }
    let listeners = Listeners::read(tx)?;
    if listeners.is_empty() {
        return Ok(());
    }
    let app = tx.application(&ep.app_id)?.ok_or(StoreError::NotFound)?;
    operational::endpoint_changed(tx, &listeners, &app, ep, change)?;
    if change != EndpointChange::Deleted && ep.disabled != was_disabled {
        let toggled = if ep.disabled { EndpointChange::Disabled } else { EndpointChange::Enabled };
        operational::endpoint_changed(tx, &listeners, &app, ep, toggled)?;
    }
    Ok(())
}

// ---- handlers -------------------------------------------------------------

pub async fn list(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    q: QueryParams,
) -> ApiResult<Json<ListOut<EndpointOut>>> {
    let query = q.list_query(Order::Descending)?;
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_endpoints(&app.id, &query)?)).await?;
    Ok(Json(ListOut::from_page(page, EndpointOut::from)))
}

/// A uid lookups can find: valid, and not shaped like an endpoint id.
fn check_endpoint_uid(v: &mut Validation, uid: Option<&str>) {
    check_uid(v, "uid", uid);
    check_not_id_shaped(v, "uid", IdKind::Endpoint, uid);
}

/// Checks an `EndpointIn`; returns the secret to use (given or generated).
pub fn check_endpoint_in(v: &mut Validation, input: &EndpointIn) -> Vec<u8> {
    check_url(v, &input.url);
    check_description(v, input.description.as_deref());
    check_endpoint_uid(v, input.uid.as_deref());
    check_rate_limit(v, "rateLimit", input.rate_limit);
    check_filter_types(v, input.filter_types.as_deref());
    check_channels(v, input.channels.as_deref());
    check_metadata(v, input.metadata.as_ref());
    check_headers(v, input.headers.as_ref().unwrap_or(&StringMap::new()));
    match &input.secret {
        Some(s) => parse_secret(s).unwrap_or_else(|e| {
            v.push(&["body", "secret"], e);
            Vec::new()
        }),
        None => generate_secret(),
    }
}

/// A new endpoint; its secret is sealed for its (new) id.
fn new_endpoint(cipher: &SecretCipher, app_id: String, input: EndpointIn, secret: &[u8]) -> Endpoint {
    let id = IdKind::Endpoint.generate();
    let secret = SealedSecret(cipher.seal(secret, Owner::Endpoint(&id)));
    input.into_endpoint(id, app_id, secret, crate::store::model::now())
}

impl EndpointIn {
    /// The endpoint this input describes under `id`, with its sealed
    /// secret, created and updated at `now`.
    pub fn into_endpoint(self, id: String, app_id: String, secret: SealedSecret, now: Timestamp) -> Endpoint {
        Endpoint {
            id,
            app_id,
            uid: self.uid,
            url: self.url,
            description: self.description.unwrap_or_default(),
            version: self.version.unwrap_or(1),
            disabled: self.disabled.unwrap_or(false),
            rate_limit: self.rate_limit.map(|r| r as u32),
            filter_types: self.filter_types,
            channels: self.channels,
            metadata: self.metadata.unwrap_or_default(),
            headers: self.headers.unwrap_or_default(),
            secret,
            retired_secrets: Vec::new(),
            failing_since: None,
            created_at: now,
            updated_at: now,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<EndpointIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    let secret = Zeroizing::new(check_endpoint_in(&mut v, &input));
    v.finish()?;
    let ep = new_endpoint(&state.cipher, app.id, input, &secret);
    state
        .commit(idem, StatusCode::CREATED, move |tx| {
            check_types_registered(tx, &ep.app_id, ep.filter_types.as_deref())?;
            check_room_for_endpoint(tx, &ep.app_id)?;
            tx.insert_endpoint(&ep)?;
            announce(tx, &ep, EndpointChange::Created, ep.disabled)?;
            Ok(EndpointOut::from(ep.clone()))
        })
        .await
}

pub(super) async fn load(state: &AppState, app_id: String, key: String) -> ApiResult<Endpoint> {
    state.store.read(move |tx| Ok::<_, ApiError>(tx.endpoint(&app_id, &key)?)).await?.ok_or_else(ApiError::not_found)
}

pub async fn get(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<Json<EndpointOut>> {
    Ok(Json(load(&state, app.id, key).await?.into()))
}

/// Saves a changed endpoint; work that waited while it was disabled resumes
/// when it is enabled again.
fn save_endpoint(tx: &mut dyn Tx, ep: &Endpoint, was_disabled: bool) -> ApiResult<()> {
    tx.update_endpoint(ep)?;
    if was_disabled && !ep.disabled {
        tx.requeue_endpoint(&ep.id)?;
    }
    Ok(())
}

/// Runs `change` on the current endpoint inside one transaction and saves it.
pub(super) async fn modify<T, F>(
    state: &AppState,
    idem: Idem,
    app_id: String,
    key: String,
    mut change: F,
) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    F: FnMut(&mut dyn Tx, &mut Endpoint) -> ApiResult<T> + Send + 'static,
{
    let response = state
        .commit(idem, StatusCode::OK, move |tx| {
            // Held until commit: a concurrent auto-disable is not undone.
            let mut ep = tx.endpoint_for_update(&app_id, &key)?.ok_or(StoreError::NotFound)?;
            let was_disabled = ep.disabled;
            // Before `change`, so the answer it builds carries the new time.
            ep.updated_at = crate::store::model::now();
            let out = change(tx, &mut ep)?;
            save_endpoint(tx, &ep, was_disabled)?;
            announce(tx, &ep, EndpointChange::Updated, was_disabled)?;
            Ok(out)
        })
        .await;
    response
}

/// PUT: replaces the endpoint, or creates it with the path segment as its
/// uid (Svix's upsert).
pub async fn update(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<EndpointIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    let secret = Zeroizing::new(check_endpoint_in(&mut v, &input));
    v.finish()?;
    let cipher = state.cipher.clone();
    let response = state
        .commit_with_status(idem, move |tx| {
            check_types_registered(tx, &app.id, input.filter_types.as_deref())?;
            // A concurrent PUT may create this uid between the look and the
            // insert: then this one updates what it created.
            let mut tries = 0;
            loop {
                tries += 1;
                let input = input.clone();
                match tx.endpoint_for_update(&app.id, &key)? {
                    Some(mut ep) => {
                        let was_disabled = ep.disabled;
                        ep.updated_at = crate::store::model::now();
                        ep.url = input.url;
                        ep.uid = input.uid;
                        ep.description = input.description.unwrap_or_default();
                        ep.version = input.version.unwrap_or(ep.version);
                        set_disabled(&mut ep, input.disabled.unwrap_or(false));
                        ep.rate_limit = input.rate_limit.map(|r| r as u32);
                        ep.filter_types = input.filter_types;
                        ep.channels = input.channels;
                        ep.metadata = input.metadata.unwrap_or_default();
                        save_endpoint(tx, &ep, was_disabled)?;
                        announce(tx, &ep, EndpointChange::Updated, was_disabled)?;
                        return Ok((StatusCode::OK, EndpointOut::from(ep)));
                    }
                    None if IdKind::Endpoint.is_creatable_uid(&key) => {
                        if input.uid.as_ref().is_some_and(|u| *u != key) {
                            return Err(ApiError::invalid(
                                &["body", "uid"],
                                "must match the uid in the path when creating",
                            ));
                        }
                        check_room_for_endpoint(tx, &app.id)?;
                        let ep = new_endpoint(
                            &cipher,
                            app.id.clone(),
                            EndpointIn { uid: Some(key.clone()), ..input },
                            &secret,
                        );
                        match tx.insert_endpoint(&ep) {
                            Ok(()) => {
                                announce(tx, &ep, EndpointChange::Created, ep.disabled)?;
                                return Ok((StatusCode::CREATED, EndpointOut::from(ep)));
                            }
                            Err(StoreError::Conflict(_)) if tries < 2 => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    None => return Err(ApiError::not_found()),
                }
            }
        })
        .await;
    response
}

/// Re-enabling restarts the auto-disable clock.
fn set_disabled(ep: &mut Endpoint, disabled: bool) {
    if ep.disabled && !disabled {
        ep.failing_since = None;
    }
    ep.disabled = disabled;
}

pub async fn patch(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
    idem: Idem,
    JsonBody(input): JsonBody<EndpointPatch>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    if let Some(url) = &input.url {
        check_url(&mut v, url);
    }
    check_description(&mut v, input.description.as_deref());
    check_endpoint_uid(&mut v, input.uid.clone().flatten().as_deref());
    check_rate_limit(&mut v, "rateLimit", input.rate_limit.flatten());
    check_filter_types(&mut v, input.filter_types.clone().flatten().as_deref());
    check_channels(&mut v, input.channels.clone().flatten().as_deref());
    check_metadata(&mut v, input.metadata.as_ref());
    let secret = input.secret.as_deref().map(parse_secret).transpose().unwrap_or_else(|e| {
        v.push(&["body", "secret"], e);
        None
    });
    v.finish()?;
    let secret = secret.map(Zeroizing::new);
    let cipher = state.cipher.clone();
    modify(&state, idem, app.id, key, move |tx, ep| {
        let input = input.clone();
        if let Some(types) = &input.filter_types {
            check_types_registered(tx, &ep.app_id, types.as_deref())?;
        }
        if let Some(url) = input.url {
            ep.url = url;
        }
        if let Some(d) = input.description {
            ep.description = d;
        }
        if let Some(uid) = input.uid {
            ep.uid = uid;
        }
        if let Some(version) = input.version {
            ep.version = version;
        }
        if let Some(disabled) = input.disabled {
            set_disabled(ep, disabled);
        }
        if let Some(types) = input.filter_types {
            ep.filter_types = types;
        }
        if let Some(channels) = input.channels {
            ep.channels = channels;
        }
        if let Some(rate) = input.rate_limit {
            ep.rate_limit = rate.map(|r| r as u32);
        }
        if let Some(metadata) = input.metadata {
            ep.metadata = metadata;
        }
        if let Some(secret) = &secret {
            ep.secret = SealedSecret(cipher.seal(secret, Owner::Endpoint(&ep.id)));
        }
        Ok(EndpointOut::from(ep.clone()))
    })
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .store
        .write(move |tx| {
            let ep = tx.endpoint(&app.id, &key)?.ok_or(StoreError::NotFound)?;
            tx.delete_endpoint(&app.id, &ep.id)?;
            announce(tx, &ep, EndpointChange::Deleted, ep.disabled)?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
