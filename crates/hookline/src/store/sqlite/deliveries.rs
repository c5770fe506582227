//! The API's side of deliveries: scheduling, recovery ranges, stats. The
//! dispatcher's side is `queue.rs`.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection};

use super::attempts::push_status_code_class;
use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::*;
use crate::store::{DeliveryRepo, MessageRange, StoreResult};

/// Status numbers as stored (`DeliveryStatus`), for SQL text.
pub(super) const SUCCESS: i64 = DeliveryStatus::Success as i64;
pub(super) const PENDING: i64 = DeliveryStatus::Pending as i64;
pub(super) const FAILED: i64 = DeliveryStatus::Failed as i64;
pub(super) const SENDING: i64 = DeliveryStatus::Sending as i64;

/// Makes an endpoint's queue entry due at `due_ms` at the latest. A no-op
/// (no write) when it is already due earlier, which is the common case
/// under load.
pub(super) fn enqueue(conn: &Connection, endpoint_id: &str, due_ms: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE endpoint_queue SET next_due = ?1 WHERE endpoint_id = ?2 AND (next_due IS NULL OR next_due > ?1)",
    )
    .and_then(|mut s| s.execute(params![due_ms, endpoint_id]))
    .map_err(backend)?;
    Ok(())
}

/// The earliest `next_attempt_at` of an endpoint's deliveries.
pub(super) fn earliest_due(conn: &Connection, endpoint_id: &str) -> StoreResult<Option<i64>> {
    conn.prepare_cached(
        "SELECT MIN(next_attempt_at) FROM delivery WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL",
    )
    .and_then(|mut s| s.query_row([endpoint_id], |r| r.get(0)))
    .map_err(backend)
}

impl DeliveryRepo for SqliteTx<'_> {
    fn schedule_delivery(
        &mut self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        at: Option<Timestamp>,
        manual: bool,
    ) -> StoreResult<()> {
        let now = chrono::Utc::now();
        let at = ms(&at.unwrap_or(now));
        self.conn
            .prepare_cached(&format!(
                // manual: 0 scheduled, 1 a one-shot resend of a finished
                // delivery, 2 a resend that keeps the pending retries.
                "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, updated_at)
                 VALUES (?, ?, ?, {PENDING}, 0, ?, ?, ?)
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                   manual = CASE WHEN excluded.manual = 0 THEN 0
                                 WHEN delivery.status IN ({PENDING}, {SENDING}) THEN 2 ELSE 1 END,
                   attempts = CASE WHEN excluded.manual = 1 AND delivery.status IN ({PENDING}, {SENDING})
                                   THEN delivery.attempts ELSE 0 END,
                   status = {PENDING}, claim_id = NULL, next_attempt_at = excluded.next_attempt_at,
                   updated_at = excluded.updated_at"
            ))
            .and_then(|mut s| s.execute(params![msg_id, endpoint_id, app_id, at, manual, ms(&now)]))
            .map_err(backend)?;
        enqueue(self.conn, endpoint_id, at)?;
        self.wake = true;
        Ok(())
    }

    fn deliveries_to_resend(
        &mut self,
        endpoint_id: &str,
        statuses: &[DeliveryStatus],
        range: &MessageRange<'_>,
        filter: &ResendFilter,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let (op, start, end) = range.ids();
        // One ordered index walk per status, merged by the compound SELECT.
        let mut branches = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        for status in statuses {
            let mut sql = format!(
                "SELECT msg_id FROM (SELECT d.msg_id FROM delivery d JOIN message m ON m.id = d.msg_id
                 WHERE d.endpoint_id = ? AND d.status = ? AND d.msg_id {op} ? AND d.msg_id < ? AND m.payload IS NOT NULL"
            );
            values.extend([
                endpoint_id.to_string().into(),
                (*status as i64).into(),
                start.clone().into(),
                end.clone().into(),
            ]);
            if let Some(class) = filter.status_code_class {
                sql.push_str(
                    " AND EXISTS (SELECT 1 FROM attempt a WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id",
                );
                push_status_code_class(&mut sql, "a.response_status_code", class, &mut values);
                sql.push(')');
            }
            super::messages::push_content_match(&mut sql, "m", &filter.content(), &mut values);
            sql.push_str(" ORDER BY d.msg_id LIMIT ?)");
            values.push((limit as i64).into());
            branches.push(sql);
        }
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{} ORDER BY msg_id LIMIT ?", branches.join(" UNION ALL "));
        values.push((limit as i64).into());
        let mut stmt = self.conn.prepare_cached(&sql).map_err(backend)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn messages_missing_delivery(
        &mut self,
        app_id: &str,
        endpoint_id: &str,
        event_types: Option<&[String]>,
        range: &MessageRange<'_>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let columns = qualified(super::messages::COLUMNS, "m");
        let (op, start, end) = range.ids();
        let mut sql = format!(
            "SELECT {columns} FROM message m
             WHERE m.app_id = ? AND m.id {op} ? AND m.id < ?
             AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ?)"
        );
        let mut values: Vec<SqlValue> =
            vec![app_id.to_string().into(), start.into(), end.into(), endpoint_id.to_string().into()];
        if let Some(types) = event_types {
            sql.push_str(&format!(" AND m.event_type IN ({})", vec!["?"; types.len()].join(",")));
            values.extend(types.iter().map(|t| t.clone().into()));
        }
        sql.push_str(" ORDER BY m.id LIMIT ?");
        values.push((limit as i64).into());
        let mut stmt = self.conn.prepare(&sql).map_err(backend)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), super::messages::row).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn requeue_endpoint(&mut self, endpoint_id: &str) -> StoreResult<()> {
        if let Some(due) = earliest_due(self.conn, endpoint_id)? {
            enqueue(self.conn, endpoint_id, due)?;
            self.wake = true;
        }
        Ok(())
    }

    fn delivery_stats(
        &mut self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> StoreResult<DeliveryStats> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT status, COUNT(*) FROM delivery WHERE endpoint_id = ? AND updated_at >= ? AND updated_at < ?
                 GROUP BY status",
            )
            .map_err(backend)?;
        let since = since.as_ref().map(ms).unwrap_or(i64::MIN);
        let until = until.as_ref().map(ms).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![endpoint_id, since, until], |r| Ok((status_at(r, 0)?, r.get::<_, i64>(1)?)))
            .map_err(backend)?;
        let mut stats = DeliveryStats::default();
        for row in rows {
            let (status, count) = row.map_err(backend)?;
            let count = count as u64;
            match status {
                DeliveryStatus::Success => stats.success = count,
                DeliveryStatus::Pending => stats.pending = count,
                DeliveryStatus::Failed => stats.failed = count,
                DeliveryStatus::Sending => stats.sending = count,
            }
        }
        Ok(stats)
    }
}
