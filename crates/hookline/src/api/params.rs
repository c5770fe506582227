//! The query strings of the routes, as `openapi.json` declares them. Each
//! route of the table names one of these; handlers read the query through
//! `QueryParams`, which (in debug builds) refuses to read a name the route
//! does not declare, so a handler cannot grow a filter the document lacks.
//!
//! Only the schema matters here: these types are never deserialized.

#![allow(dead_code)]

use schemars::JsonSchema;

use crate::store::model::Timestamp;

/// Svix's pagination: `limit`, `iterator`, `order`.
#[derive(JsonSchema)]
pub struct Pagination {
    /// How many items a page holds, 1 to 250 (default 50).
    #[schemars(range(min = 1, max = 250))]
    limit: Option<i64>,
    /// The `iterator` of the previous page (or its `prevIterator` to go back).
    #[schemars(length(max = 257))]
    iterator: Option<String>,
    /// The order of the list (each list has its own default).
    order: Option<Ordering>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

#[derive(JsonSchema)]
pub struct Paged {
    #[serde(flatten)]
    page: Pagination,
}

/// `GET /app`.
#[derive(JsonSchema)]
pub struct ListApplications {
    #[serde(flatten)]
    page: Pagination,
}

/// `POST /app`.
#[derive(JsonSchema)]
pub struct CreateApplication {
    /// Answer the existing application (200) when the uid is taken.
    get_if_exists: Option<bool>,
}

/// `GET /event-type`.
#[derive(JsonSchema)]
pub struct ListEventTypes {
    #[serde(flatten)]
    page: Pagination,
    /// Include archived event types.
    include_archived: Option<bool>,
}

/// `DELETE /event-type/{name}`.
#[derive(JsonSchema)]
pub struct DeleteEventType {
    /// Delete the event type instead of archiving it.
    expunge: Option<bool>,
}

/// `with_content` alone.
#[derive(JsonSchema)]
pub struct WithContent {
    /// Include the payload (default true).
    with_content: Option<bool>,
}

/// Svix's message filters.
#[derive(JsonSchema)]
pub struct MessageFilters {
    /// Only these event types (comma-separated or repeated; empty names are skipped).
    #[schemars(inner(regex(pattern = super::json::UID_OR_EMPTY_PATTERN), length(max = 256)))]
    event_types: Option<Vec<String>>,
    /// Only messages sent to this channel.
    channel: Option<String>,
    /// Only messages with this tag.
    tag: Option<String>,
    /// Only messages created before this time.
    before: Option<Timestamp>,
    /// Only messages created after this time.
    after: Option<Timestamp>,
}

/// `GET /app/{app}/msg`.
#[derive(JsonSchema)]
pub struct ListMessages {
    #[serde(flatten)]
    page: Pagination,
    #[serde(flatten)]
    content: WithContent,
    #[serde(flatten)]
    filters: MessageFilters,
}

/// Svix's attempt status filter.
#[derive(JsonSchema)]
pub struct StatusFilter {
    /// 0 success, 1 pending, 2 fail, 3 sending, 4 canceled (never given by Hookline).
    #[schemars(extend("enum" = [0, 1, 2, 3, 4]))]
    status: Option<u8>,
    /// Accepted for Svix's SDKs; Hookline cancels nothing, so it changes nothing.
    expanded_statuses: Option<bool>,
}

/// Attempt lists (`attempt/endpoint/{ep}`).
#[derive(JsonSchema)]
pub struct ListAttempts {
    #[serde(flatten)]
    page: Pagination,
    #[serde(flatten)]
    status: StatusFilter,
    /// Only attempts whose HTTP status is in this class (0: no answer).
    #[schemars(extend("enum" = [0, 100, 200, 300, 400, 500]))]
    status_code_class: Option<u16>,
    #[serde(flatten)]
    filters: MessageFilters,
    #[serde(flatten)]
    content: WithContent,
    /// Include each attempt's message (without its payload).
    with_msg: Option<bool>,
}

/// `attempt/msg/{msg}`: an attempt list that may name an endpoint.
#[derive(JsonSchema)]
pub struct ListAttemptsByMessage {
    #[serde(flatten)]
    attempts: ListAttempts,
    /// Only attempts to this endpoint (id or uid).
    endpoint_id: Option<String>,
}

/// `GET /app/{app}/msg/{msg}/attempt/{attempt}`.
#[derive(JsonSchema)]
pub struct GetAttempt {
    /// Accepted for Svix's SDKs; changes nothing.
    expanded_statuses: Option<bool>,
}

/// `GET /app/{app}/endpoint/{ep}/msg`.
#[derive(JsonSchema)]
pub struct ListEndpointMessages {
    #[serde(flatten)]
    page: Pagination,
    #[serde(flatten)]
    content: WithContent,
    #[serde(flatten)]
    status: StatusFilter,
    #[serde(flatten)]
    filters: MessageFilters,
}

/// A time range.
#[derive(JsonSchema)]
pub struct Range {
    /// From this time (default: see the operation).
    since: Option<Timestamp>,
    /// Until this time (default: now).
    until: Option<Timestamp>,
}

/// `GET /app/{app}/endpoint/{ep}/stats/series`.
#[derive(JsonSchema)]
pub struct Series {
    #[serde(flatten)]
    range: Range,
    /// Bucket width: whole seconds from 10s to 31d, e.g. `60s`, `5m`, `1h`, `1d` (default: chosen from the range).
    #[schemars(regex(pattern = r"^[0-9]{1,8}(s|m|h|d)$"))]
    bucket: Option<String>,
}

/// `GET /background-task`.
#[derive(JsonSchema)]
pub struct ListTasks {
    #[serde(flatten)]
    page: Pagination,
    #[schemars(transform = super::background_tasks::task_status_filter_schema)]
    status: Option<String>,
    /// Svix's task types that Hookline never runs list nothing.
    #[schemars(transform = super::background_tasks::task_filter_schema)]
    task: Option<String>,
}
