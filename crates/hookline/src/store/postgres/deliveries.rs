//! The API's side of deliveries: scheduling, recovery ranges, stats. The
//! dispatcher's side is `dispatch_queue.rs`.

use super::attempts::push_status_code_class;
use super::sql::*;
use super::PgTx;
use crate::store::model::*;
use crate::store::{DeliveryRepo, MessageRange, StoreError, StoreResult};

/// Makes each endpoint's queue entry due at its time (`None`: now) at the
/// latest. A no-op that takes no lock when the entry is already due earlier,
/// the common case under load, so concurrent fan-outs to one endpoint do not
/// queue behind each other.
pub(super) fn enqueue(tx: &mut PgTx<'_, '_>, endpoint_ids: &[&str], due: &[Option<Timestamp>]) -> StoreResult<()> {
    tx.execute(
        &mark_due(
            "SELECT endpoint_id, COALESCE(due, now()) AS due
                   FROM unnest($1::text[], $2::timestamptz[]) AS t(endpoint_id, due)",
        ),
        &[&endpoint_ids, &due],
    )?;
    Ok(())
}

/// The statement of `enqueue`, for the `(endpoint_id, due)` rows of
/// `rows` (a query); also a step of the message writer's statement.
pub(super) fn mark_due(rows: &str) -> String {
    format!(
        "UPDATE endpoint_queue q SET next_due = u.due
         FROM (SELECT endpoint_id, MIN(due) AS due FROM ({rows}) r GROUP BY endpoint_id) u
         WHERE q.endpoint_id = u.endpoint_id AND (q.next_due IS NULL OR q.next_due > u.due)"
    )
}

/// `enqueue` once the writing transaction has committed, for the one race
/// `enqueue` cannot see: a claim that read the endpoint's deliveries before
/// that commit and is about to set the entry later. This always locks the
/// entry, so it waits for such a claim and then applies on top of it. The
/// same statement notifies `channel`, delivered when it commits: run on
/// its own, the whole is one round trip. Running it twice is harmless.
pub(super) fn enqueue_committed_and_notify(
    tx: &mut PgTx<'_, '_>,
    endpoint_ids: &[&str],
    due: &[Option<Timestamp>],
    channel: &str,
) -> StoreResult<()> {
    // LEAST ignores NULL: an entry with nothing due takes the new time. A
    // data-modifying CTE runs to its end whether or not it is read.
    tx.query_one(
        &format!(
            "WITH marked AS (
               UPDATE endpoint_queue q SET next_due = LEAST(q.next_due, u.due)
               FROM (SELECT endpoint_id, MIN(COALESCE(due, now())) AS due
                     FROM unnest({}, {}) AS t(endpoint_id, due) GROUP BY endpoint_id) u
               WHERE q.endpoint_id = u.endpoint_id
             )
             SELECT pg_notify($3, '')",
            opaque(1, "text[]"),
            opaque(2, "timestamptz[]")
        ),
        &[&endpoint_ids, &due, &channel],
    )?;
    Ok(())
}

/// The earliest `next_attempt_at` of an endpoint's deliveries.
pub(super) fn earliest_due(tx: &mut PgTx<'_, '_>, endpoint_id: &str) -> StoreResult<Option<Timestamp>> {
    Ok(tx
        .query_opt(
            "SELECT next_attempt_at FROM delivery WHERE endpoint_id = $1 AND next_attempt_at IS NOT NULL
             ORDER BY next_attempt_at LIMIT 1",
            &[&endpoint_id],
        )?
        .map(|r| r.get(0)))
}

impl DeliveryRepo for PgTx<'_, '_> {
    fn schedule_delivery(
        &mut self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        at: Option<Timestamp>,
        manual: bool,
    ) -> StoreResult<()> {
        let manual = manual as i16;
        // No foreign keys (`app_locks`): the application is held against
        // the endpoint's deletion, and the message as a key's check would
        // hold it, since the retention sweep skips the messages it finds
        // held and could not see this delivery before it commits.
        super::app_locks::hold_shared(self, &[app_id])?;
        let scheduled = self.execute(
            &format!(
                // manual: 0 scheduled, 1 a one-shot resend of a finished
                // delivery, 2 a resend that keeps the pending retries.
                "WITH messages AS (SELECT id FROM message WHERE id = $1 AND app_id = $3
                                   AND EXISTS (SELECT 1 FROM endpoint WHERE id = $2 AND app_id = $3)
                                   FOR KEY SHARE)
                 INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, updated_at)
                 SELECT $1, $2, $3, {PENDING}, 0, COALESCE($4::timestamptz, now()), $5::int2, now() FROM messages
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                   manual = CASE WHEN excluded.manual = 0 THEN 0
                                 WHEN delivery.status IN ({PENDING}, {SENDING}) THEN 2 ELSE 1 END,
                   attempts = CASE WHEN excluded.manual = 1 AND delivery.status IN ({PENDING}, {SENDING})
                                   THEN delivery.attempts ELSE 0 END,
                   status = {PENDING}, claim_id = NULL, next_attempt_at = excluded.next_attempt_at,
                   updated_at = excluded.updated_at"
            ),
            &[&msg_id, &endpoint_id, &app_id, &at, &manual],
        )?;
        if scheduled == 0 {
            return Err(StoreError::NotFound);
        }
        enqueue(self, &[endpoint_id], &[at])?;
        self.touch(endpoint_id, at);
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
        // One ordered index walk per status, merged by the UNION ALL; one
        // statement, so one snapshot even under READ COMMITTED.
        let mut params = Params::default();
        let mut branches = Vec::new();
        for status in statuses {
            let mut sql = format!(
                "(SELECT d.msg_id FROM delivery d JOIN message m ON m.id = d.msg_id
                 WHERE d.endpoint_id = {} AND d.status = {} AND d.msg_id {op} {} AND d.msg_id < {}
                 AND m.payload IS NOT NULL",
                params.add(endpoint_id.to_string()),
                params.add(*status as i16),
                params.add(start.clone()),
                params.add(end.clone()),
            );
            if let Some(class) = filter.status_code_class {
                sql.push_str(
                    " AND EXISTS (SELECT 1 FROM attempt a WHERE a.msg_id = d.msg_id AND a.endpoint_id = d.endpoint_id",
                );
                push_status_code_class(&mut sql, "a.response_status_code", class, &mut params);
                sql.push(')');
            }
            super::messages::push_content_match(&mut sql, "m", &filter.content(), &mut params);
            sql.push_str(&format!(" ORDER BY d.msg_id LIMIT {})", params.add(limit as i64)));
            branches.push(sql);
        }
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT msg_id FROM ({}) merged ORDER BY msg_id LIMIT {}",
            branches.join(" UNION ALL "),
            params.add(limit as i64)
        );
        let rows = self.query(&sql, &params.refs())?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
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
        let types: Option<Vec<String>> = event_types.map(<[String]>::to_vec);
        let (op, start, end) = range.ids();
        let rows = self.query(
            &format!(
                "SELECT {columns} FROM message m
                 WHERE m.app_id = $1 AND m.id {op} $2 AND m.id < $3
                 AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = $4)
                 AND ($5::text[] IS NULL OR m.event_type = ANY($5))
                 ORDER BY m.id LIMIT $6"
            ),
            &[&app_id, &start, &end, &endpoint_id, &types, &(limit as i64)],
        )?;
        rows.iter().map(super::messages::row).collect()
    }

    fn requeue_endpoint(&mut self, endpoint_id: &str) -> StoreResult<()> {
        if let Some(due) = earliest_due(self, endpoint_id)? {
            enqueue(self, &[endpoint_id], &[Some(due)])?;
            self.touch(endpoint_id, Some(due));
        }
        Ok(())
    }

    fn delivery_stats(
        &mut self,
        endpoint_id: &str,
        since: Option<Timestamp>,
        until: Option<Timestamp>,
    ) -> StoreResult<DeliveryStats> {
        let rows = self.query(
            "SELECT status, COUNT(*) FROM delivery WHERE endpoint_id = $1
             AND ($2::timestamptz IS NULL OR updated_at >= $2) AND ($3::timestamptz IS NULL OR updated_at < $3)
             GROUP BY status",
            &[&endpoint_id, &since, &until],
        )?;
        let mut stats = DeliveryStats::default();
        for r in &rows {
            let count = col::<i64>(r, 1)? as u64;
            match status(r, 0)? {
                DeliveryStatus::Success => stats.success = count,
                DeliveryStatus::Pending => stats.pending = count,
                DeliveryStatus::Failed => stats.failed = count,
                DeliveryStatus::Sending => stats.sending = count,
            }
        }
        Ok(stats)
    }
}
