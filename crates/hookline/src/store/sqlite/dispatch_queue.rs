//! The dispatcher's side of the embedded store: the shared claim over the
//! `endpoint_queue` table, outcomes, leases, start-up release and retention.
//! Everything here runs on the writer thread, which is what makes it correct:
//! nothing else writes between a read and the write that depends on it.

use rusqlite::{params, Connection, OptionalExtension};

use super::deliveries::{earliest_due, enqueue, FAILED, PENDING, SENDING, SUCCESS};
use super::sql::*;
use super::{backend, endpoints};
use crate::dispatch::policy::health::{self, HealthChange};
use crate::ids::IdKind;
use crate::store::model::*;
use crate::store::queue::*;
use crate::store::StoreResult;

pub(super) struct SqliteQueue<'c> {
    pub conn: &'c Connection,
}

impl ClaimSource for SqliteQueue<'_> {
    fn due_endpoints(&mut self, limit: usize) -> StoreResult<(Timestamp, Vec<QueuedEndpoint>)> {
        // The writer thread is the only clock that matters here, and the
        // claim reads it while it holds the write lock.
        let now = from_ms(ms(&chrono::Utc::now()));
        let columns = qualified(endpoints::COLUMNS, "e");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {columns}, a.rate_limit, q.next_slot
                 FROM endpoint_queue q JOIN endpoint e ON e.id = q.endpoint_id JOIN application a ON a.id = e.app_id
                 WHERE q.next_due <= ? ORDER BY q.next_due LIMIT ?"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![ms(&now), limit as i64], |r| {
                let next_slot: Option<i64> = r.get(18)?;
                Ok(QueuedEndpoint {
                    endpoint: endpoints::row(r)?,
                    app_rate_limit: r.get(17)?,
                    next_slot: next_slot.map(from_ms),
                })
            })
            .map_err(backend)?;
        Ok((now, rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?))
    }

    fn take(
        &mut self,
        wants: &[(String, usize)],
        now: Timestamp,
        lease_until: Timestamp,
        claim_id: &str,
        live_claims: &[String],
        released_leases: &[String],
    ) -> StoreResult<Vec<ClaimedRow>> {
        let mut due = self
            .conn
            .prepare_cached(
                "SELECT d.msg_id, d.attempts, d.manual, m.event_type, m.payload
                 FROM delivery d JOIN message m ON m.id = d.msg_id
                 WHERE d.endpoint_id = ? AND d.next_attempt_at <= ?
                   AND (d.claim_id IS NULL OR d.claim_id NOT IN (SELECT value FROM json_each(?))
                        OR d.claim_id || ' ' || d.msg_id || ' ' || d.endpoint_id IN (SELECT value FROM json_each(?)))
                 ORDER BY d.next_attempt_at LIMIT ?",
            )
            .map_err(backend)?;
        let (live, released) = (to_json(&live_claims), to_json(&released_leases));
        let mut mark = self
            .conn
            .prepare_cached(&format!(
                "UPDATE delivery SET status = {SENDING}, next_attempt_at = ?, claim_id = ?, updated_at = ?
                 WHERE msg_id = ? AND endpoint_id = ?"
            ))
            .map_err(backend)?;
        let mut taken = Vec::new();
        for (endpoint_id, n) in wants {
            let rows = due
                .query_map(params![endpoint_id, ms(&now), live, released, *n as i64], |r| {
                    Ok(ClaimedRow {
                        msg_id: r.get(0)?,
                        endpoint_id: endpoint_id.clone(),
                        attempts: r.get(1)?,
                        manual: r.get(2)?,
                        event_type: r.get(3)?,
                        payload: r.get(4)?,
                    })
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            for row in &rows {
                mark.execute(params![ms(&lease_until), claim_id, ms(&now), row.msg_id, endpoint_id])
                    .map_err(backend)?;
            }
            taken.extend(rows);
        }
        Ok(taken)
    }

    fn settle(&mut self, updates: &[QueueUpdate], excluding: &[String]) -> StoreResult<Option<Timestamp>> {
        let mut update = self
            .conn
            .prepare_cached(
                "UPDATE endpoint_queue SET next_due = ?, next_slot = COALESCE(?, next_slot) WHERE endpoint_id = ?",
            )
            .map_err(backend)?;
        for u in updates {
            let earliest_work = match u.look {
                Look::Never => None,
                Look::AtEarliestWork { .. } => earliest_due(self.conn, &u.endpoint_id)?.map(from_ms),
            };
            update
                .execute(params![
                    u.look.at(earliest_work).as_ref().map(ms),
                    // Rounded up: a slot stored early would crowd the one before.
                    u.next_slot.map(|t| ms(&(t + chrono::Duration::microseconds(999)))),
                    u.endpoint_id
                ])
                .map_err(backend)?;
        }
        let mut earliest = self
            .conn
            .prepare_cached(
                "SELECT endpoint_id, next_due FROM endpoint_queue WHERE next_due IS NOT NULL ORDER BY next_due LIMIT ?",
            )
            .map_err(backend)?;
        let rows = earliest
            .query_map([(excluding.len() + 1) as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(backend)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(backend)?;
        Ok(rows.into_iter().find(|(id, _)| !excluding.contains(id)).map(|(_, due)| from_ms(due)))
    }
}

/// Records a batch of outcomes; returns the endpoints it disabled.
pub(super) fn record_outcomes(
    conn: &Connection,
    outcomes: &[AttemptOutcome],
    disable_after: chrono::Duration,
) -> StoreResult<Recorded> {
    let now = chrono::Utc::now();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status, response_status_code, response,
             response_duration_ms, trigger_type, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(backend)?;
    let mut advance = conn
        .prepare_cached(
            "UPDATE delivery SET status = ?, attempts = attempts + 1, next_attempt_at = ?, claim_id = NULL,
             manual = 0, updated_at = ? WHERE msg_id = ? AND endpoint_id = ? AND claim_id = ?
             RETURNING attempts",
        )
        .map_err(backend)?;
    // Outcomes that moved their delivery (their claim still held it), with
    // the delivery's attempt count.
    let mut applied: Vec<(&AttemptOutcome, i64)> = Vec::new();
    for outcome in outcomes {
        let a = &outcome.attempt;
        let inserted = insert.execute(params![
            a.id,
            a.msg_id,
            a.endpoint_id,
            a.app_id,
            a.url,
            a.status as i64,
            a.response_status_code,
            a.response,
            a.response_duration_ms,
            a.trigger as i64,
            a.error,
            ms(&a.created_at),
        ]);
        match inserted.map_err(backend) {
            Ok(_) => {}
            // Its message or endpoint was deleted meanwhile: nothing is owed.
            Err(crate::store::StoreError::NotFound) => continue,
            Err(e) => return Err(e),
        }
        let (status, next) = match outcome.next {
            NextStep::Succeeded => (SUCCESS, None),
            NextStep::RetryIn(delay) => (PENDING, Some(ms(&(now + delay)))),
            NextStep::GiveUp => (FAILED, None),
        };
        let attempts: Option<i64> = advance
            .query_row(params![status, next, ms(&now), a.msg_id, a.endpoint_id, outcome.claim_id], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        if let Some(attempts) = attempts {
            applied.push((outcome, attempts));
            if let Some(due) = next {
                enqueue(conn, &a.endpoint_id, due)?;
            }
        }
    }
    let mut recorded = Recorded::default();
    for (endpoint_id, change) in health::changes(outcomes) {
        if apply_health(conn, &endpoint_id, &change, now, disable_after)? {
            recorded.disabled.push(endpoint_id);
        }
    }
    let mut tx = super::SqliteTx { conn, wake: false };
    recorded.operational_events =
        crate::operational::attempts_recorded(&mut tx, outcomes, &applied, &recorded.disabled)?;
    Ok(recorded)
}

/// Moves an endpoint's failing clock; true when this disabled it.
fn apply_health(
    conn: &Connection,
    endpoint_id: &str,
    change: &HealthChange,
    now: Timestamp,
    disable_after: chrono::Duration,
) -> StoreResult<bool> {
    let (since, gone) = match change {
        HealthChange::Recovered => {
            conn.prepare_cached("UPDATE endpoint SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL")
                .and_then(|mut s| s.execute([endpoint_id]))
                .map_err(backend)?;
            return Ok(false);
        }
        HealthChange::Failing { since, gone } => (since, *gone),
    };
    conn.prepare_cached("UPDATE endpoint SET failing_since = ? WHERE id = ? AND failing_since IS NULL")
        .and_then(|mut s| s.execute(params![ms(since), endpoint_id]))
        .map_err(backend)?;
    let state: Option<(Option<i64>, bool)> = conn
        .prepare_cached("SELECT failing_since, disabled FROM endpoint WHERE id = ?")
        .and_then(|mut s| s.query_row([endpoint_id], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(backend)?;
    let Some((Some(failing_since), false)) = state else {
        return Ok(false);
    };
    if !health::should_disable(from_ms(failing_since), now, disable_after, gone) {
        return Ok(false);
    }
    let changed = conn
        .execute(
            "UPDATE endpoint SET disabled = 1, updated_at = ? WHERE id = ? AND disabled = 0",
            params![ms(&now), endpoint_id],
        )
        .map_err(backend)?;
    if changed > 0 {
        tracing::warn!(endpoint = %endpoint_id, gone, "endpoint disabled after failing");
    }
    Ok(changed > 0)
}

pub(super) fn extend_leases(conn: &Connection, leases: &[LeaseRef], lease: chrono::Duration) -> StoreResult<usize> {
    let until = ms(&(chrono::Utc::now() + lease));
    let mut stmt = conn
        .prepare_cached("UPDATE delivery SET next_attempt_at = ? WHERE msg_id = ? AND endpoint_id = ? AND claim_id = ?")
        .map_err(backend)?;
    let mut held = 0;
    for l in leases {
        held += stmt.execute(params![until, l.msg_id, l.endpoint_id, l.claim_id]).map_err(backend)?;
    }
    Ok(held)
}

pub(super) fn release_all_claims(conn: &Connection) -> StoreResult<usize> {
    let now = ms(&chrono::Utc::now());
    let released = conn
        .execute(
            &format!(
                "UPDATE delivery SET status = {PENDING}, next_attempt_at = ?, claim_id = NULL WHERE status = {SENDING}"
            ),
            [now],
        )
        .map_err(backend)?;
    conn.execute_batch(
        "UPDATE endpoint_queue SET next_due = (SELECT MIN(d.next_attempt_at) FROM delivery d
           WHERE d.endpoint_id = endpoint_queue.endpoint_id AND d.next_attempt_at IS NOT NULL);",
    )
    .map_err(backend)?;
    Ok(released)
}

pub(super) fn purge_expired(conn: &Connection, retention: chrono::Duration, batch: usize) -> StoreResult<Purged> {
    let now_ms = ms(&chrono::Utc::now());
    let cutoff = now_ms - retention.num_milliseconds();
    let batch = batch as i64;
    let run = |sql: &str, bound: &dyn rusqlite::ToSql| -> StoreResult<usize> {
        conn.prepare_cached(sql).and_then(|mut s| s.execute(params![bound, batch])).map_err(backend)
    };
    let owed = |alias: &str, same_endpoint: bool| {
        let endpoint = if same_endpoint { format!(" AND d.endpoint_id = {alias}.endpoint_id") } else { String::new() };
        format!(
            "NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = {alias}.{}{endpoint} AND d.status IN ({PENDING}, {SENDING}))",
            if same_endpoint { "msg_id" } else { "id" }
        )
    };
    Ok(Purged {
        // Never under a delivery still owed: that would lose it.
        payloads: run(
            &format!(
                "UPDATE message SET payload = NULL WHERE rowid IN
                 (SELECT rowid FROM message WHERE payload IS NOT NULL AND payload_expires_at <= ? AND {} LIMIT ?)",
                owed("message", false)
            ),
            &now_ms,
        )?,
        // Attempts, and messages with their deliveries, go once past
        // retention, but never while a delivery of the message is owed.
        // Ids sort by creation time: the primary key finds the old ones.
        attempts: run(
            &format!(
                "DELETE FROM attempt WHERE rowid IN (SELECT rowid FROM attempt WHERE id < ? AND {} LIMIT ?)",
                owed("attempt", true)
            ),
            &IdKind::Attempt.floor_at(cutoff),
        )?,
        messages: run(
            &format!(
                "DELETE FROM message WHERE rowid IN (SELECT rowid FROM message WHERE id < ? AND {} LIMIT ?)",
                owed("message", false)
            ),
            &IdKind::Message.floor_at(cutoff),
        )?,
        idempotency_keys: run(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ? LIMIT ?)",
            &(now_ms - super::idempotency::IDEMPOTENCY_WINDOW_MS),
        )?,
    })
}
