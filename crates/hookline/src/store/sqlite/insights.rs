//! Read-only aggregates for the portal: an endpoint's attempts as a time
//! series, and the operator's delivery-health overview. Plain SQL over the
//! existing tables; nothing here writes.

use rusqlite::{params, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::ids::IdKind;
use crate::store::model::{DeliveryOverview, DeliveryStatus, EndpointHealth, SeriesBucket, Timestamp};
use crate::store::series::SeriesBuilder;
use crate::store::{InsightRepo, OverviewWindow, StoreResult};

const HEALTH_COLUMNS: &str = "e.id, e.app_id, a.name, e.url, e.disabled, e.failing_since, e.updated_at";

fn health_row(r: &Row<'_>) -> rusqlite::Result<EndpointHealth> {
    Ok(EndpointHealth {
        endpoint_id: r.get(0)?,
        app_id: r.get(1)?,
        app_name: r.get(2)?,
        url: r.get(3)?,
        disabled: r.get(4)?,
        failing_since: opt_from_ms(r.get(5)?),
        updated_at: from_ms(r.get(6)?),
    })
}

impl SqliteTx<'_> {
    fn count(&self, sql: &str, params: impl rusqlite::Params) -> StoreResult<u64> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params, |r| r.get::<_, i64>(0)))
            .map_err(backend)
            .map(|n| n.max(0) as u64)
    }

    fn health_list(
        &self,
        filter: &str,
        order: &str,
        value: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<EndpointHealth>> {
        let sql = format!(
            "SELECT {HEALTH_COLUMNS} FROM endpoint e JOIN application a ON a.id = e.app_id
             WHERE {filter} ORDER BY {order} LIMIT ?"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(backend)?;
        let params = value.into_iter().chain([limit as i64]);
        let rows = stmt.query_map(rusqlite::params_from_iter(params), health_row).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }
}

impl InsightRepo for SqliteTx<'_> {
    fn attempt_series(
        &mut self,
        endpoint_id: &str,
        since: Timestamp,
        until: Timestamp,
        bucket: chrono::Duration,
    ) -> StoreResult<Vec<SeriesBucket>> {
        let width = bucket.num_milliseconds().max(1);
        let since_ms = ms(&since);
        let mut series = SeriesBuilder::new(since, until, bucket);
        // Attempt ids sort by creation time: the (endpoint_id, id) index
        // serves the range. Rows come grouped by bucket, fastest first.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT (created_at - ?1) / ?2 AS b, status, response_status_code, response_duration_ms
                 FROM attempt WHERE endpoint_id = ?3 AND id >= ?4 AND id < ?5
                 ORDER BY b, response_duration_ms",
            )
            .map_err(backend)?;
        let lo = IdKind::Attempt.floor_at(since_ms);
        let hi = IdKind::Attempt.floor_at(ms(&until));
        let mut rows = stmt.query(params![since_ms, width, endpoint_id, lo, hi]).map_err(backend)?;
        while let Some(r) = rows.next().map_err(backend)? {
            let index: i64 = r.get(0).map_err(backend)?;
            let status: i64 = r.get(1).map_err(backend)?;
            let code: i64 = r.get(2).map_err(backend)?;
            let duration: i64 = r.get(3).map_err(backend)?;
            series.add(index, status == DeliveryStatus::Success as i64, (code > 0).then_some(duration));
        }
        Ok(series.finish())
    }

    fn attempt_counts(&mut self, endpoint_id: &str, since: Timestamp, until: Timestamp) -> StoreResult<(u64, u64)> {
        let (lo, hi) = (IdKind::Attempt.floor_at(ms(&since)), IdKind::Attempt.floor_at(ms(&until)));
        self.conn
            .prepare_cached(&format!(
                "SELECT COALESCE(SUM(status = {SUCCESS}), 0), COALESCE(SUM(status <> {SUCCESS}), 0)
                 FROM attempt WHERE endpoint_id = ? AND id >= ? AND id < ?",
                SUCCESS = DeliveryStatus::Success as i64
            ))
            .and_then(|mut s| {
                s.query_row(params![endpoint_id, lo, hi], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
                })
            })
            .map_err(backend)
    }

    // The operational webhooks' internal application is not one of the
    // platform's: it is left out of the counts and lists (its work is
    // still in the backlog and attempt figures).
    fn delivery_overview(&mut self, w: &OverviewWindow) -> StoreResult<DeliveryOverview> {
        const OPS: &str = crate::operational::APP_ID;
        let (now, limit) = (w.now, w.limit);
        let (backlog, due_now, oldest_due) = self
            .conn
            .prepare_cached(
                "SELECT count(*), coalesce(sum(next_attempt_at <= ?1), 0),
                        min(CASE WHEN next_attempt_at <= ?1 THEN next_attempt_at END)
                 FROM delivery WHERE next_attempt_at IS NOT NULL",
            )
            .and_then(|mut s| {
                s.query_row([ms(&now)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Option<i64>>(2)?)))
            })
            .map_err(backend)?;
        let (recent_success, recent_failure) = self
            .conn
            .prepare_cached(
                "SELECT coalesce(sum(status = ?2), 0), coalesce(sum(status <> ?2), 0)
                 FROM attempt WHERE id >= ?1",
            )
            .and_then(|mut s| {
                // Ids sort by creation time: the key's index finds the recent ones.
                let since = IdKind::Attempt.floor_at(ms(&w.attempts_since));
                s.query_row(params![since, DeliveryStatus::Success as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
            })
            .map_err(backend)?;
        Ok(DeliveryOverview {
            applications: self.count(&format!("SELECT count(*) FROM application WHERE id <> '{OPS}'"), [])?,
            endpoints: self.count(&format!("SELECT count(*) FROM endpoint WHERE app_id <> '{OPS}'"), [])?,
            backlog: backlog.max(0) as u64,
            due_now: due_now.max(0) as u64,
            oldest_due: opt_from_ms(oldest_due),
            recent_success: recent_success.max(0) as u64,
            recent_failure: recent_failure.max(0) as u64,
            failing_count: self
                .count(&format!("SELECT count(*) FROM endpoint WHERE failing_since IS NOT NULL AND disabled = 0 AND app_id <> '{OPS}'"), [])?,
            disabled_count: self.count(&format!("SELECT count(*) FROM endpoint WHERE disabled = 1 AND app_id <> '{OPS}'"), [])?,
            failing: self.health_list(
                &format!("e.failing_since IS NOT NULL AND e.disabled = 0 AND e.app_id <> '{OPS}'"),
                "e.failing_since, e.id",
                None,
                limit,
            )?,
            recently_disabled: self.health_list(
                &format!("e.disabled = 1 AND e.updated_at >= ? AND e.app_id <> '{OPS}'"),
                "e.updated_at DESC, e.id",
                Some(ms(&w.disabled_since)),
                limit,
            )?,
        })
    }
}
