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
        let (recent_success, recent_failure) = if w.attempts_since >= w.now {
            (0, 0)
        } else {
            let recent = self.query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE status = {SUCCESS}), count(*) FILTER (WHERE status <> {SUCCESS})
                     FROM attempt WHERE id >= $1"
                ),
                // Ids sort by creation time: the key's index finds the recent ones.
                &[&IdKind::Attempt.floor_at(w.attempts_since.timestamp_millis())],
            )?;
            (col::<i64>(&recent, 0)?.max(0) as u64, col::<i64>(&recent, 1)?.max(0) as u64)
        };
        Ok(DeliveryOverview {
            applications: self.count(&format!("SELECT count(*) FROM application WHERE id <> '{OPS}'"))?,
            endpoints: self.count(&format!("SELECT count(*) FROM endpoint WHERE app_id <> '{OPS}'"))?,
            backlog: col::<i64>(&backlog, 0)?.max(0) as u64,
            due_now: col::<i64>(&backlog, 1)?.max(0) as u64,
            oldest_due: col::<Option<Timestamp>>(&backlog, 2)?,
            recent_success,
            recent_failure,
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

/// The advisory lock of whichever node counts the metrics' sample.
const SAMPLE_LOCK: i64 = 0x6877_5f73_616d_706c; // "hw_sampl"
/// Where the last sample is kept for the other nodes (versioned: nodes of
/// two versions during an upgrade must not take each other's samples for
/// no sample and count every time).
const SAMPLE_KEY: &str = "metrics_sample_v1";

/// The counts of the last sample, shared through `meta`.
#[derive(serde::Serialize, serde::Deserialize)]
struct Sample {
    taken_at: Timestamp,
    applications: u64,
    endpoints: u64,
    backlog: u64,
    due_now: u64,
    oldest_due: Option<Timestamp>,
    failing_count: u64,
    disabled_count: u64,
}

impl Sample {
    fn overview(self) -> DeliveryOverview {
        DeliveryOverview {
            applications: self.applications,
            endpoints: self.endpoints,
            backlog: self.backlog,
            due_now: self.due_now,
            oldest_due: self.oldest_due,
            failing_count: self.failing_count,
            disabled_count: self.disabled_count,
            ..Default::default()
        }
    }
}

fn last_sample(tx: &mut PgTx<'_, '_>) -> StoreResult<Option<Sample>> {
    let Some(row) = tx.query_opt("SELECT value FROM meta WHERE key = $1", &[&SAMPLE_KEY])? else {
        return Ok(None);
    };
    let value: String = col(&row, 0)?;
    match serde_json::from_str(&value) {
        Ok(sample) => Ok(Some(sample)),
        Err(e) => {
            tracing::warn!(error = %e, key = SAMPLE_KEY, "the stored metrics sample is unreadable; counting afresh");
            Ok(None)
        }
    }
}

/// `Store::sampled_overview`: the last sample if it is younger than
/// `max_age`; else a fresh count, kept for the other nodes, by whichever
/// node takes the sample's lock (the others keep the last sample meanwhile).
pub(super) fn sampled_overview(tx: &mut PgTx<'_, '_>, max_age: chrono::Duration) -> StoreResult<DeliveryOverview> {
    let now: Timestamp = tx.query_one("SELECT clock_timestamp()", &[])?.get(0);
    let last = last_sample(tx)?;
    if last.as_ref().is_some_and(|s| now - s.taken_at < max_age) {
        return Ok(last.map(Sample::overview).unwrap_or_default());
    }
    let counting: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SAMPLE_LOCK])?.get(0);
    // Read again once the lock is held: a node that counted while this
    // one read has committed its sample, fresh enough to keep.
    let last = if counting { last_sample(tx)? } else { last };
    match last {
        Some(last) if !counting || now - last.taken_at < max_age => return Ok(last.overview()),
        _ => {}
    }
    let o = tx.delivery_overview(&OverviewWindow::counts_only(now))?;
    let sample = Sample {
        taken_at: now,
        applications: o.applications,
        endpoints: o.endpoints,
        backlog: o.backlog,
        due_now: o.due_now,
        oldest_due: o.oldest_due,
        failing_count: o.failing_count,
        disabled_count: o.disabled_count,
    };
    let value = serde_json::to_string(&sample).map_err(|e| crate::store::StoreError::Backend(e.to_string()))?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&SAMPLE_KEY, &value],
    )?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{delivery, fixture, message};
    use crate::store::{Store, StoreError};

    async fn one_more_delivery(store: &Store, id: &'static str) {
        store
            .write(move |tx| {
                tx.insert_message(&message(id, "app_f"))?;
                tx.insert_deliveries(&[delivery(id, "ep_a")])?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }

    /// Counting the backlog reads every delivery not finished: the nodes of
    /// one database count it once an interval between them, and a node
    /// keeps the last count while another is counting.
    #[tokio::test]
    async fn the_nodes_share_one_backlog_count_an_interval() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 2).await;
        let interval = chrono::Duration::minutes(10);
        let stale = chrono::Duration::zero();
        let backlog = |max_age| {
            let store = store.clone();
            async move { store.sampled_overview(max_age).await.unwrap().backlog }
        };
        assert_eq!(backlog(interval).await, 2);
        one_more_delivery(&store, "msg_more_1").await;
        assert_eq!(backlog(interval).await, 2, "a count younger than the interval was taken again");
        assert_eq!(backlog(stale).await, 3, "an old count was kept");

        let (mut counting, _) =
            super::super::test_support::holding(&store, &format!("SELECT pg_advisory_xact_lock({SAMPLE_LOCK})")).await;
        one_more_delivery(&store, "msg_more_2").await;
        assert_eq!(backlog(stale).await, 3, "two nodes counted at once");
        tokio::task::spawn_blocking(move || counting.batch_execute("ROLLBACK").unwrap()).await.unwrap();
        assert_eq!(backlog(stale).await, 4);
    }
}
