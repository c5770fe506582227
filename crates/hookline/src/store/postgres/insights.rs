//! Read-only aggregates for the portal: an endpoint's attempts as a time
//! series, and the operator's delivery-health overview.

use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::ids::IdKind;
use crate::store::model::{DeliveryOverview, EndpointHealth, SeriesBucket, Timestamp};
use crate::store::series::SeriesBuilder;
use crate::store::{InsightRepo, OverviewWindow, StoreResult};

const HEALTH_COLUMNS: &str = "e.id, e.app_id, a.name, e.url, e.disabled, e.failing_since, e.updated_at";

fn health_row(r: &Row) -> StoreResult<EndpointHealth> {
    Ok(EndpointHealth {
        endpoint_id: col(r, 0)?,
        app_id: col(r, 1)?,
        app_name: col(r, 2)?,
        url: col(r, 3)?,
        disabled: col(r, 4)?,
        failing_since: col::<Option<Timestamp>>(r, 5)?,
        updated_at: col(r, 6)?,
    })
}

impl PgTx<'_, '_> {
    fn count(&mut self, sql: &str) -> StoreResult<u64> {
        let n: i64 = col(&self.query_one(sql, &[])?, 0)?;
        Ok(n.max(0) as u64)
    }

    fn health_list(
        &mut self,
        filter: &str,
        order: &str,
        since: Option<Timestamp>,
        limit: usize,
    ) -> StoreResult<Vec<EndpointHealth>> {
        let sql = format!(
            "SELECT {HEALTH_COLUMNS} FROM endpoint e JOIN application a ON a.id = e.app_id
             WHERE {filter} AND ($1::timestamptz IS NULL OR e.updated_at >= $1) ORDER BY {order} LIMIT {limit}"
        );
        self.query(&sql, &[&since])?.iter().map(health_row).collect()
    }
}

impl InsightRepo for PgTx<'_, '_> {
    fn attempt_series(
        &mut self,
        endpoint_id: &str,
        since: Timestamp,
        until: Timestamp,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<SeriesBucket>> {
        let width_ms = bucket.num_milliseconds().max(1);
        let mut series = SeriesBuilder::new(since, until, bucket);
        // Attempt ids sort by creation time: the (endpoint_id, id) index
        // serves the range. Rows come grouped by bucket, fastest first.
        let lo = IdKind::Attempt.floor_at(since.timestamp_millis());
        let hi = IdKind::Attempt.floor_at(until.timestamp_millis());
        let rows = self.query(
            &format!(
                "SELECT floor(extract(epoch FROM created_at - $1)::float8 * 1000.0 / $2::float8)::bigint AS b,
                        status = {SUCCESS}, response_status_code > 0, response_duration_ms
                 FROM attempt WHERE endpoint_id = $3 AND id >= $4 AND id < $5
                 ORDER BY b, response_duration_ms"
            ),
            &[&since, &(width_ms as f64), &endpoint_id, &lo, &hi],
        )?;
        for r in &rows {
            let answered: bool = col(r, 2)?;
            series.add(col(r, 0)?, col(r, 1)?, answered.then_some(col(r, 3)?));
        }
        Ok(series.finish())
    }

    fn attempt_counts(&mut self, endpoint_id: &str, since: Timestamp, until: Timestamp) -> StoreResult<(u64, u64)> {
        let lo = IdKind::Attempt.floor_at(since.timestamp_millis());
        let hi = IdKind::Attempt.floor_at(until.timestamp_millis());
        let row = self.query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE status = {SUCCESS}), count(*) FILTER (WHERE status <> {SUCCESS})
                 FROM attempt WHERE endpoint_id = $1 AND id >= $2 AND id < $3"
            ),
            &[&endpoint_id, &lo, &hi],
        )?;
        Ok((col::<i64>(&row, 0)? as u64, col::<i64>(&row, 1)? as u64))
    }

    // The operational webhooks' internal application is not one of the
    // platform's: it is left out of the counts and lists (its work is
    // still in the backlog and attempt figures).
    fn delivery_overview(&mut self, w: &OverviewWindow) -> StoreResult<DeliveryOverview> {
        const OPS: &str = crate::operational::APP_ID;
        let backlog = self.query_one(
            "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= $1),
                    min(next_attempt_at) FILTER (WHERE next_attempt_at <= $1)
             FROM delivery WHERE next_attempt_at IS NOT NULL",
            &[&w.now],
        )?;
        let recent = self.query_one(
            &format!(
                "SELECT count(*) FILTER (WHERE status = {SUCCESS}), count(*) FILTER (WHERE status <> {SUCCESS})
                 FROM attempt WHERE id >= $1"
            ),
            // Ids sort by creation time: the key's index finds the recent ones.
            &[&IdKind::Attempt.floor_at(w.attempts_since.timestamp_millis())],
        )?;
        Ok(DeliveryOverview {
            applications: self.count(&format!("SELECT count(*) FROM application WHERE id <> '{OPS}'"))?,
            endpoints: self.count(&format!("SELECT count(*) FROM endpoint WHERE app_id <> '{OPS}'"))?,
            backlog: col::<i64>(&backlog, 0)?.max(0) as u64,
            due_now: col::<i64>(&backlog, 1)?.max(0) as u64,
            oldest_due: col::<Option<Timestamp>>(&backlog, 2)?,
            recent_success: col::<i64>(&recent, 0)?.max(0) as u64,
            recent_failure: col::<i64>(&recent, 1)?.max(0) as u64,
            failing_count: self.count(&format!(
                "SELECT count(*) FROM endpoint WHERE failing_since IS NOT NULL AND NOT disabled AND app_id <> '{OPS}'"
            ))?,
            disabled_count: self
                .count(&format!("SELECT count(*) FROM endpoint WHERE disabled AND app_id <> '{OPS}'"))?,
            failing: self.health_list(
                &format!("e.failing_since IS NOT NULL AND NOT e.disabled AND e.app_id <> '{OPS}'"),
                "e.failing_since, e.id",
                None,
                w.limit,
            )?,
            recently_disabled: self.health_list(
                &format!("e.disabled AND e.app_id <> '{OPS}'"),
                "e.updated_at DESC, e.id",
                Some(w.disabled_since),
                w.limit,
            )?,
        })
    }
}
