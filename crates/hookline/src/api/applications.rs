//! `/api/v1/app`: one application per customer of the platform.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::access::{AppTarget, ScopedApp};
use super::error::{ApiError, ApiResult, Validation};
use super::extract::{JsonBody, QueryParams};
use super::idempotency::Idem;
use super::json::{
    check_metadata, check_rate_limit, check_uid, is_blank, metadata_schema, ts, NOT_BLANK_PATTERN, UID_PATTERN,
};
use super::AppState;
use crate::ids::{is_valid_uid, IdKind};
use crate::store::model::{Application, StringMap, Timestamp};
use crate::store::page::{Cursor, ListQuery, Order, Page};
use crate::store::{StoreError, Tx};

/// Svix's `ApplicationIn`.
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"name": "Acme Inc.", "uid": "acme", "metadata": {"plan": "pro"}}))]
pub struct ApplicationIn {
    #[schemars(regex(pattern = NOT_BLANK_PATTERN))]
    pub name: String,
    /// Your own id for the application; not starting with `app_`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256), regex(pattern = UID_PATTERN))]
    #[schemars(extend("not" = {"type": "string", "pattern": "^app_"}))]
    pub uid: Option<String>,
    /// Deliveries per second to each endpoint that sets none (also read as `throttleRate`).
    #[serde(default, alias = "throttleRate", deserialize_with = "super::json::whole::opt")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub rate_limit: Option<i64>,
    #[serde(default)]
    #[schemars(transform = metadata_schema)]
    pub metadata: Option<StringMap>,
}

/// A uid with the id prefix would be looked up as an id (and `app_…` names
/// are Hookline's own, like its operational webhooks' application).
fn check_app_uid(v: &mut Validation, uid: Option<&str>) {
    check_uid(v, "uid", uid);
    if uid.is_some_and(|u| is_valid_uid(u) && !IdKind::Application.is_creatable_uid(u)) {
        v.push(&["body", "uid"], "must not start with app_ (the prefix of application ids)");
    }
}

impl ApplicationIn {
    pub fn validate(&self, v: &mut Validation) {
        if is_blank(&self.name) {
            v.push(&["body", "name"], "must not be empty");
        }
        check_app_uid(v, self.uid.as_deref());
        check_rate_limit(v, "rateLimit", self.rate_limit);
        check_metadata(v, self.metadata.as_ref());
    }

    pub fn into_new(self) -> Application {
        let now = crate::store::model::now();
        Application {
            id: IdKind::Application.generate(),
            uid: self.uid,
            name: self.name,
            rate_limit: self.rate_limit.map(|r| r as u32),
            metadata: self.metadata.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// PATCH: absent fields stay, `null` clears (where clearing makes sense).
#[derive(Deserialize, JsonSchema, Default, Clone)]
#[serde(rename_all = "camelCase")]
#[schemars(example = serde_json::json!({"name": "Acme Corporation"}))]
pub struct ApplicationPatch {
    #[serde(default)]
    #[schemars(regex(pattern = NOT_BLANK_PATTERN))]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(length(min = 1, max = 256), regex(pattern = UID_PATTERN))]
    #[schemars(extend("not" = {"type": "string", "pattern": "^app_"}))]
    uid: Option<Option<String>>,
    #[serde(default, alias = "throttleRate", deserialize_with = "super::json::whole::double_opt")]
    #[schemars(range(min = 1, max = 4294967295u32))]
    rate_limit: Option<Option<i64>>,
    #[serde(default)]
    #[schemars(transform = metadata_schema)]
    metadata: Option<StringMap>,
}

pub fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationOut {
    id: String,
    uid: Option<String>,
    name: String,
    rate_limit: Option<u32>,
    throttle_rate: Option<u32>,
    metadata: StringMap,
    #[serde(serialize_with = "ts")]
    created_at: Timestamp,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<Application> for ApplicationOut {
    fn from(a: Application) -> Self {
        ApplicationOut {
            id: a.id,
            uid: a.uid,
            name: a.name,
            rate_limit: a.rate_limit,
            throttle_rate: a.rate_limit,
            metadata: a.metadata,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A page of a list (Svix's `ListResponse_…_`).
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ListResponse_{T}_")]
pub struct ListOut<T> {
    data: Vec<T>,
    iterator: Option<String>,
    prev_iterator: Option<String>,
    done: bool,
}

impl<T> ListOut<T> {
    pub fn empty() -> ListOut<T> {
        ListOut { data: Vec::new(), iterator: None, prev_iterator: None, done: true }
    }

    pub fn from_page<U>(page: Page<U>, f: impl FnMut(U) -> T) -> ListOut<T> {
        let page = page.map(f);
        ListOut { data: page.data, iterator: page.iterator, prev_iterator: page.prev_iterator, done: page.done }
    }
}

pub async fn list(State(state): State<AppState>, q: QueryParams) -> ApiResult<Json<ListOut<ApplicationOut>>> {
    let query = q.list_query(Order::Descending)?;
    let page = state.store.read(move |tx| Ok::<_, ApiError>(tx.list_applications(&query)?)).await?;
    Ok(Json(ListOut::from_page(page, ApplicationOut::from)))
}

pub async fn create(
    State(state): State<AppState>,
    q: QueryParams,
    idem: Idem,
    JsonBody(input): JsonBody<ApplicationIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    input.validate(&mut v);
    v.finish()?;
    let get_if_exists = q.bool("get_if_exists", false)?;
    state
        .commit_with_status(idem, move |tx| {
            let app = input.clone().into_new();
            // Insert first, then look: two requests racing with one uid
            // create one application, and the other finds it.
            match tx.insert_application(&app) {
                Ok(()) => Ok((StatusCode::CREATED, ApplicationOut::from(app))),
                Err(StoreError::Conflict(what)) if get_if_exists => {
                    let uid = input.uid.as_deref().unwrap_or_default();
                    let existing = tx.application(uid)?.ok_or(StoreError::Conflict(what))?;
                    Ok((StatusCode::OK, ApplicationOut::from(existing)))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
}

pub async fn get(ScopedApp(app): ScopedApp) -> Json<ApplicationOut> {
    Json(app.into())
}

/// PUT: replaces the application, or creates it with the path segment as
/// its uid (Svix's upsert).
pub async fn update(
    State(state): State<AppState>,
    target: AppTarget,
    idem: Idem,
    JsonBody(input): JsonBody<ApplicationIn>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    input.validate(&mut v);
    if let (AppTarget::Missing(key), Some(uid)) = (&target, &input.uid) {
        if key != uid {
            v.push(&["body", "uid"], "must match the uid in the path when creating");
        }
    }
    v.finish()?;
    let replace = move |tx: &mut dyn Tx, app: Application, input: ApplicationIn| -> ApiResult<ApplicationOut> {
        let updated = Application {
            uid: input.uid,
            name: input.name,
            rate_limit: input.rate_limit.map(|r| r as u32),
            metadata: input.metadata.unwrap_or_default(),
            updated_at: crate::store::model::now(),
            ..app
        };
        tx.update_application(&updated)?;
        Ok(ApplicationOut::from(updated))
    };
    state
        .commit_with_status(idem, move |tx| match &target {
            AppTarget::Existing(app) => {
                let current = tx.application_for_update(&app.id)?.ok_or(StoreError::NotFound)?;
                Ok((StatusCode::OK, replace(tx, current, input.clone())?))
            }
            AppTarget::Missing(key) => {
                if !IdKind::Application.is_creatable_uid(key) {
                    return Err(ApiError::not_found());
                }
                let app = ApplicationIn { uid: Some(key.clone()), ..input.clone() }.into_new();
                match tx.insert_application(&app) {
                    Ok(()) => Ok((StatusCode::CREATED, ApplicationOut::from(app))),
                    // Created by a concurrent upsert: this one replaces it.
                    Err(StoreError::Conflict(_)) => {
                        let id = tx.application(key)?.ok_or(StoreError::NotFound)?.id;
                        let current = tx.application_for_update(&id)?.ok_or(StoreError::NotFound)?;
                        Ok((StatusCode::OK, replace(tx, current, input.clone())?))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        })
        .await
}

pub async fn patch(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    idem: Idem,
    JsonBody(input): JsonBody<ApplicationPatch>,
) -> ApiResult<Response> {
    let mut v = Validation::default();
    if let Some(name) = &input.name {
        if is_blank(name) {
            v.push(&["body", "name"], "must not be empty");
        }
    }
    check_app_uid(&mut v, input.uid.clone().flatten().as_deref());
    check_rate_limit(&mut v, "rateLimit", input.rate_limit.flatten());
    check_metadata(&mut v, input.metadata.as_ref());
    v.finish()?;
    state
        .commit(idem, StatusCode::OK, move |tx| {
            let input = input.clone();
            let mut app = tx.application_for_update(&app.id)?.ok_or(StoreError::NotFound)?;
            if let Some(name) = input.name {
                app.name = name;
            }
            if let Some(uid) = input.uid {
                app.uid = uid;
            }
            if let Some(rate) = input.rate_limit {
                app.rate_limit = rate.map(|r| r as u32);
            }
            if let Some(metadata) = input.metadata {
                app.metadata = metadata;
            }
            app.updated_at = crate::store::model::now();
            tx.update_application(&app)?;
            Ok(ApplicationOut::from(app))
        })
        .await
}

/// Deletes the application and everything in it; the operational webhooks
/// hear of each endpoint that goes with it.
pub async fn delete(State(state): State<AppState>, ScopedApp(app): ScopedApp) -> ApiResult<StatusCode> {
    state
        .store
        .write(move |tx| {
            let listeners = crate::operational::Listeners::read(tx)?;
            if !listeners.is_empty() {
                let mut query = ListQuery { limit: 250, cursor: None, order: Order::Ascending };
                loop {
                    let page = tx.list_endpoints(&app.id, &query)?;
                    for ep in &page.data {
                        let deleted = crate::operational::EndpointChange::Deleted;
                        crate::operational::endpoint_changed(tx, &listeners, &app, ep, deleted)?;
                    }
                    match (page.done, page.iterator) {
                        (false, Some(next)) => query.cursor = Some(Cursor::After(next)),
                        _ => break,
                    }
                }
            }
            // Its tokens die with it, and stay dead should its id ever come
            // back (`hookline import svix` keeps a source's ids).
            tx.expire_app_tokens(&app.id, None, crate::store::model::now())?;
            Ok::<_, ApiError>(tx.delete_application(&app.id)?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
