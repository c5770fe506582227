//! Hookline extensions for the portal: the caller's own token, an endpoint's
//! attempts as a time series (charts), and the operator's delivery-health
//! overview. Declared in the route table like every route, scoped like every
//! route: the series lives under `/app/{app_id}` and reads only through the
//! already-resolved application.

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::Serialize;

use super::access::ScopedApp;
use super::error::{ApiError, ApiResult};
use super::extract::QueryParams;
use super::json::{opt_ts, ts};
use super::AppState;
use crate::auth::{Caller, Capabilities, Scope};
use crate::store::model::{EndpointHealth, SeriesBucket, Timestamp};
use crate::store::{OverviewWindow, StoreError};

/// Most buckets one series answer may hold.
pub const MAX_BUCKETS: i64 = 1000;
const MIN_BUCKET_SECS: i64 = 10;
const MAX_BUCKET_SECS: i64 = 31 * 86400;

/// What the presented token may do. The portal derives its whole UI from
/// this one answer.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenOut {
    #[schemars(extend("enum" = ["admin", "app"]))]
    scope: &'static str,
    app_id: Option<String>,
    /// Svix's capability names.
    capabilities: Vec<&'static str>,
    /// Whether the token may change nothing but what its capabilities
    /// name besides `ManageEndpoint` (it lacks `ManageEndpoint`).
    read_only: bool,
    #[serde(serialize_with = "opt_ts")]
    expires_at: Option<Timestamp>,
}

pub async fn token(caller: Caller) -> Json<TokenOut> {
    let expires_at = caller.expires_at.and_then(|t| DateTime::<Utc>::from_timestamp(t, 0));
    let caps = caller.capabilities();
    let (scope, app_id) = match caller.scope {
        Scope::Admin => ("admin", None),
        Scope::App { app, .. } => ("app", Some(app)),
    };
    Json(TokenOut {
        scope,
        app_id,
        capabilities: caps.names(),
        read_only: !caps.contains(Capabilities::MANAGE_ENDPOINT),
        expires_at,
    })
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketOut {
    #[serde(serialize_with = "ts")]
    start: Timestamp,
    success: u64,
    failure: u64,
    p50_ms: Option<i64>,
    p90_ms: Option<i64>,
    p99_ms: Option<i64>,
}

impl From<SeriesBucket> for BucketOut {
    fn from(b: SeriesBucket) -> Self {
        BucketOut {
            start: b.start,
            success: b.success,
            failure: b.failure,
            p50_ms: b.p50_ms,
            p90_ms: b.p90_ms,
            p99_ms: b.p99_ms,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeriesOut {
    #[serde(serialize_with = "ts")]
    since: Timestamp,
    #[serde(serialize_with = "ts")]
    until: Timestamp,
    bucket_seconds: i64,
    data: Vec<BucketOut>,
}

/// The range and bucket width of a series request, validated. `since` is
/// aligned down to a multiple of the bucket, so buckets stay put between
/// refreshes.
#[derive(Debug, PartialEq, Eq)]
pub struct SeriesRange {
    pub since: Timestamp,
    pub until: Timestamp,
    pub bucket_secs: i64,
}

/// Chooses the smallest round bucket that keeps a range under 100 buckets.
fn auto_bucket(span_secs: i64) -> i64 {
    const ROUND: [i64; 10] = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400];
    ROUND.into_iter().find(|b| span_secs / b <= 100).unwrap_or(MAX_BUCKET_SECS)
}

pub fn series_range(q: &QueryParams, now: Timestamp) -> ApiResult<SeriesRange> {
    let until = q.datetime("until")?.unwrap_or(now);
    let since = q.datetime("since")?.unwrap_or(until - Duration::hours(24));
    if since >= until {
        return Err(ApiError::invalid(&["query", "since"], "must be before until"));
    }
    let span = (until - since).num_seconds().max(1);
    let bucket_secs = match q.raw("bucket") {
        None => auto_bucket(span),
        Some(raw) => {
            // Whole numbers of s, m, h or d only (the schema's pattern).
            let units = raw.strip_suffix(['s', 'm', 'h', 'd']).unwrap_or("");
            let whole = (1..=8).contains(&units.len()) && units.bytes().all(|b| b.is_ascii_digit());
            let parsed = crate::config::parse_duration(&raw)
                .ok()
                .filter(|_| whole)
                .ok_or_else(|| ApiError::invalid(&["query", "bucket"], "must be a duration like 60s, 5m, 1h or 1d"))?;
            let secs = parsed.as_secs() as i64;
            if !(MIN_BUCKET_SECS..=MAX_BUCKET_SECS).contains(&secs) || parsed.subsec_nanos() != 0 {
                return Err(ApiError::invalid(&["query", "bucket"], "must be whole seconds from 10s to 31d"));
            }
            secs
        }
    };
    let aligned = since.timestamp().div_euclid(bucket_secs) * bucket_secs;
    let since = DateTime::<Utc>::from_timestamp(aligned, 0)
        .ok_or_else(|| ApiError::invalid(&["query", "since"], "out of range"))?;
    let buckets = ((until - since).num_seconds() + bucket_secs - 1) / bucket_secs;
    if buckets > MAX_BUCKETS {
        return Err(ApiError::invalid(
            &["query", "bucket"],
            format!("the range needs {buckets} buckets of {bucket_secs}s; at most {MAX_BUCKETS}: use a wider bucket"),
        ));
    }
    Ok(SeriesRange { since, until, bucket_secs })
}

/// Deliveries, success and latency percentiles of one endpoint over time.
pub async fn series(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<SeriesOut>> {
    let range = series_range(&q, Utc::now())?;
    let (since, until, bucket_secs) = (range.since, range.until, range.bucket_secs);
    let data = state
        .store
        .read(move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            Ok::<_, ApiError>(tx.attempt_series(&ep.id, since, until, Duration::seconds(bucket_secs))?)
        })
        .await?;
    Ok(Json(SeriesOut { since, until, bucket_seconds: bucket_secs, data: data.into_iter().map(Into::into).collect() }))
}

/// Svix's `EndpointAttemptStats`: the endpoint's attempts in a window.
#[derive(Serialize, JsonSchema)]
pub struct AttemptStatsOut {
    success: u64,
    fail: u64,
    /// Hookline cancels no attempt.
    canceled: u64,
}

/// Counts the endpoint's attempts from `since` to `until`, both rounded out
/// to the hour as Svix does; by default everything still retained.
pub async fn attempt_stats(
    State(state): State<AppState>,
    ScopedApp(app): ScopedApp,
    Path((_, ep_key)): Path<(String, String)>,
    q: QueryParams,
) -> ApiResult<Json<AttemptStatsOut>> {
    let hour = Duration::hours(1);
    let until = q.datetime("until")?.unwrap_or_else(Utc::now);
    let until = align_to_hour(until).map(|t| if t < until { t + hour } else { t }).unwrap_or(until);
    let retention = Duration::from_std(state.settings.retention).unwrap_or(Duration::days(90));
    let since = q.datetime("since")?.unwrap_or(until - retention - hour);
    let since = align_to_hour(since).unwrap_or(since);
    // An empty window (both on one hour) counts nothing; a reversed one is a mistake.
    if since > until {
        return Err(ApiError::invalid(&["query", "since"], "must be at or before until"));
    }
    let (success, fail) = state
        .store
        .read(move |tx| {
            let ep = tx.endpoint(&app.id, &ep_key)?.ok_or(StoreError::NotFound)?;
            Ok::<_, ApiError>(tx.attempt_counts(&ep.id, since, until)?)
        })
        .await?;
    Ok(Json(AttemptStatsOut { success, fail, canceled: 0 }))
}

/// The start of the hour `t` is in.
fn align_to_hour(t: Timestamp) -> Option<Timestamp> {
    DateTime::from_timestamp(t.timestamp().div_euclid(3600) * 3600, 0)
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointHealthOut {
    endpoint_id: String,
    app_id: String,
    app_name: String,
    url: String,
    disabled: bool,
    #[serde(serialize_with = "opt_ts")]
    failing_since: Option<Timestamp>,
    #[serde(serialize_with = "ts")]
    updated_at: Timestamp,
}

impl From<EndpointHealth> for EndpointHealthOut {
    fn from(e: EndpointHealth) -> Self {
        EndpointHealthOut {
            endpoint_id: e.endpoint_id,
            app_id: e.app_id,
            app_name: e.app_name,
            url: e.url,
            disabled: e.disabled,
            failing_since: e.failing_since,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverviewOut {
    #[serde(serialize_with = "ts")]
    now: Timestamp,
    applications: u64,
    endpoints: u64,
    backlog: u64,
    due_now: u64,
    #[serde(serialize_with = "opt_ts")]
    oldest_due: Option<Timestamp>,
    /// Attempts of the last 24 hours.
    recent_success: u64,
    recent_failure: u64,
    failing_count: u64,
    disabled_count: u64,
    failing_endpoints: Vec<EndpointHealthOut>,
    /// Disabled in the last 7 days.
    recently_disabled_endpoints: Vec<EndpointHealthOut>,
}

/// The operator's view of delivery health across every application.
pub async fn overview(State(state): State<AppState>) -> ApiResult<Json<OverviewOut>> {
    let now = Utc::now();
    let window = OverviewWindow {
        now,
        attempts_since: now - Duration::hours(24),
        disabled_since: now - Duration::days(7),
        limit: 50,
    };
    let o = state.store.read(move |tx| Ok::<_, ApiError>(tx.delivery_overview(&window)?)).await?;
    Ok(Json(OverviewOut {
        now,
        applications: o.applications,
        endpoints: o.endpoints,
        backlog: o.backlog,
        due_now: o.due_now,
        oldest_due: o.oldest_due,
        recent_success: o.recent_success,
        recent_failure: o.recent_failure,
        failing_count: o.failing_count,
        disabled_count: o.disabled_count,
        failing_endpoints: o.failing.into_iter().map(Into::into).collect(),
        recently_disabled_endpoints: o.recently_disabled.into_iter().map(Into::into).collect(),
    }))
}
