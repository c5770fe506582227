//! The dispatcher's side of the store: claims, outcomes, manual scheduling
//! and retention.

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};

use super::attempts::{delivery_row, DELIVERY_COLUMNS};
use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::*;
use crate::store::{DeliveryRepo, StoreResult};

/// Endpoints looked at per claim; more wait for the next round.
const ENDPOINTS_PER_CLAIM: usize = 64;
const RATE_WINDOW_MS: i64 = 1000;

/// Puts an endpoint in the queue, due at `due_ms` at the latest.
pub(super) fn enqueue(conn: &Connection, endpoint_id: &str, due_ms: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO endpoint_queue (endpoint_id, next_due) VALUES (?, ?)
         ON CONFLICT (endpoint_id) DO UPDATE SET next_due = MIN(next_due, excluded.next_due)",
    )
    .and_then(|mut s| s.execute(params![endpoint_id, due_ms]))
    .map_err(backend)?;
    Ok(())
}

fn new_claim_id() -> String {
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts in the last second, as `(unix ms, count)` pairs.
type RateLog = Vec<(i64, u32)>;

impl SqliteTx<'_> {
    fn claim_for_endpoint(
        &mut self,
        req: &ClaimRequest,
        endpoint: &Endpoint,
        mut log: RateLog,
        budget: usize,
    ) -> StoreResult<Vec<DeliveryJob>> {
        let now = ms(&req.now);
        log.retain(|(t, _)| *t > now - RATE_WINDOW_MS);
        // The endpoint's own limit, else its application's, else the default.
        let app_rate: Option<u32> = match endpoint.rate_limit {
            Some(_) => None,
            None => self
                .conn
                .prepare_cached("SELECT rate_limit FROM application WHERE id = ?")
                .and_then(|mut s| s.query_row([&endpoint.app_id], |r| r.get(0)).optional())
                .map_err(backend)?
                .flatten(),
        };
        let rate = endpoint.rate_limit.or(app_rate).unwrap_or(req.default_rate_limit).max(1) as usize;
        let used: usize = log.iter().map(|(_, n)| *n as usize).sum();
        let in_flight = req.in_flight.get(&endpoint.id).copied().unwrap_or(0);
        let room = req.per_endpoint_cap.saturating_sub(in_flight);
        let take = rate.saturating_sub(used).min(room).min(budget);

        let mut jobs = Vec::new();
        if take > 0 {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT d.msg_id, d.attempts, d.manual, m.event_type, m.payload
                     FROM delivery d JOIN message m ON m.id = d.msg_id
                     WHERE d.endpoint_id = ? AND d.next_attempt_at <= ?
                     ORDER BY d.next_attempt_at LIMIT ?",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![endpoint.id, now, take as i64], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get::<_, i64>(2)?, r.get(3)?, r.get(4)?))
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<(String, u32, i64, String, Option<String>)>>>()
                .map_err(backend)?;
            let mut mark = self
                .conn
                .prepare_cached(
                    "UPDATE delivery SET status = 3, next_attempt_at = ?, claim_id = ?, updated_at = ?
                     WHERE msg_id = ? AND endpoint_id = ?",
                )
                .map_err(backend)?;
            for (msg_id, attempts, manual, event_type, payload) in rows {
                let claim_id = new_claim_id();
                mark.execute(params![ms(&req.lease_until), claim_id, now, msg_id, endpoint.id]).map_err(backend)?;
                jobs.push(DeliveryJob {
                    claim_id,
                    msg_id,
                    endpoint_id: endpoint.id.clone(),
                    app_id: endpoint.app_id.clone(),
                    event_type,
                    payload: payload.map(bytes::Bytes::from),
                    url: endpoint.url.clone(),
                    headers: endpoint.headers.clone(),
                    secret: endpoint.secret.clone(),
                    retired_secrets: endpoint.retired_secrets.clone(),
                    attempts,
                    manual: manual != 0,
                    one_shot: manual == 1,
                });
            }
        }
        if !jobs.is_empty() {
            log.push((now, jobs.len() as u32));
        }

        // When this endpoint is next due: its earliest row, but not before
        // the rate window has room again.
        let earliest: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MIN(next_attempt_at) FROM delivery WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL",
            )
            .and_then(|mut s| s.query_row([&endpoint.id], |r| r.get(0)))
            .map_err(backend)?;
        let exhausted = used + jobs.len() >= rate;
        match earliest {
            None => {
                self.conn
                    .execute("DELETE FROM endpoint_queue WHERE endpoint_id = ?", [&endpoint.id])
                    .map_err(backend)?;
            }
            Some(mut due) => {
                if exhausted {
                    let frees_at = log.first().map(|(t, _)| t + RATE_WINDOW_MS).unwrap_or(now);
                    due = due.max(frees_at);
                }
                self.conn
                    .prepare_cached("UPDATE endpoint_queue SET next_due = ?, rate_log = ? WHERE endpoint_id = ?")
                    .and_then(|mut s| s.execute(params![due, to_json(&log), endpoint.id]))
                    .map_err(backend)?;
            }
        }
        Ok(jobs)
    }

    fn endpoint_by_id(&mut self, id: &str) -> StoreResult<Option<Endpoint>> {
        self.conn
            .prepare_cached(&format!("SELECT {} FROM endpoint WHERE id = ?", super::endpoints::COLUMNS))
            .and_then(|mut s| s.query_row([id], super::endpoints::row).optional())
            .map_err(backend)
    }

    fn record_endpoint_health(&mut self, outcome: &AttemptOutcome) -> StoreResult<()> {
        let a = &outcome.attempt;
        let now = ms(&a.created_at);
        if outcome.failed_on_our_side {
            return Ok(());
        }
        if outcome.next == NextStep::Succeeded {
            self.conn
                .prepare_cached("UPDATE endpoint SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL")
                .and_then(|mut s| s.execute([&a.endpoint_id]))
                .map_err(backend)?;
            return Ok(());
        }
        self.conn
            .prepare_cached("UPDATE endpoint SET failing_since = COALESCE(failing_since, ?) WHERE id = ?")
            .and_then(|mut s| s.execute(params![now, a.endpoint_id]))
            .map_err(backend)?;
        let failing_since: Option<i64> = self
            .conn
            .prepare_cached("SELECT failing_since FROM endpoint WHERE id = ?")
            .and_then(|mut s| s.query_row([&a.endpoint_id], |r| r.get(0)).optional())
            .map_err(backend)?
            .flatten();
        let too_long = failing_since.is_some_and(|since| now - since >= outcome.disable_after.num_milliseconds());
        if outcome.disable_now || too_long {
            let changed = self
                .conn
                .execute(
                    "UPDATE endpoint SET disabled = 1, updated_at = ? WHERE id = ? AND disabled = 0",
                    params![now, a.endpoint_id],
                )
                .map_err(backend)?;
            if changed > 0 {
                tracing::warn!(endpoint = %a.endpoint_id, gone = outcome.disable_now, "endpoint disabled after failing");
            }
        }
        Ok(())
    }
}

impl DeliveryRepo for SqliteTx<'_> {
    fn claim_deliveries(&mut self, req: &ClaimRequest) -> StoreResult<Claimed> {
        let now = ms(&req.now);
        let in_flight = |id: &str| req.in_flight.get(id).copied().unwrap_or(0);
        // Enough candidates to reach past every endpoint that is busy on
        // this node, however early their work falls due.
        let mut candidates: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT endpoint_id, rate_log FROM endpoint_queue WHERE next_due <= ? ORDER BY next_due LIMIT ?",
                )
                .map_err(backend)?;
            let limit = (ENDPOINTS_PER_CLAIM + req.in_flight.len()) as i64;
            let rows = stmt.query_map(params![now, limit], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?
        };
        // Endpoints with nothing in flight go first (stable: then by due time).
        candidates.sort_by_key(|(id, _)| in_flight(id));
        let mut jobs = Vec::new();
        let mut waiting: Vec<String> = Vec::new();
        for (endpoint_id, log) in candidates {
            if jobs.len() >= req.budget {
                break;
            }
            let busy = in_flight(&endpoint_id);
            if busy >= req.per_endpoint_cap || (busy > 0 && req.total_in_flight + jobs.len() >= req.busy_slot_limit) {
                waiting.push(endpoint_id);
                continue;
            }
            let endpoint = match self.endpoint_by_id(&endpoint_id)? {
                Some(ep) if !ep.disabled => ep,
                // Disabled: its deliveries wait, out of the queue, until re-enabled.
                _ => {
                    self.conn
                        .execute("DELETE FROM endpoint_queue WHERE endpoint_id = ?", [&endpoint_id])
                        .map_err(backend)?;
                    continue;
                }
            };
            let log: RateLog = serde_json::from_str(&log).unwrap_or_default();
            let budget = req.budget - jobs.len();
            jobs.extend(self.claim_for_endpoint(req, &endpoint, log, budget)?);
        }
        // The next time to look, ignoring endpoints that wait for a free slot
        // (a freed slot wakes the dispatcher), so it never spins on them.
        let next_due = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT endpoint_id, next_due FROM endpoint_queue ORDER BY next_due LIMIT ?")
                .map_err(backend)?;
            let rows = stmt
                .query_map([(waiting.len() + 1) as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            rows.into_iter().find(|(id, _)| !waiting.contains(id)).map(|(_, due)| from_ms(due))
        };
        Ok(Claimed { jobs, next_due, waiting_for_slots: !waiting.is_empty() })
    }

    fn finish_delivery(&mut self, outcome: &AttemptOutcome) -> StoreResult<()> {
        let a = &outcome.attempt;
        self.conn
            .prepare_cached(
                "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status, response_status_code, response,
                 response_duration_ms, trigger_type, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| {
                s.execute(params![
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
                ])
            })
            .map_err(backend)?;
        let (status, next) = match outcome.next {
            NextStep::Succeeded => (DeliveryStatus::Success, None),
            NextStep::RetryAt(t) => (DeliveryStatus::Pending, Some(ms(&t))),
            NextStep::GiveUp => (DeliveryStatus::Failed, None),
        };
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE delivery SET status = ?, attempts = attempts + 1, next_attempt_at = ?, claim_id = NULL,
                 manual = 0, updated_at = ? WHERE msg_id = ? AND endpoint_id = ? AND claim_id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![status as i64, next, ms(&a.created_at), a.msg_id, a.endpoint_id, outcome.claim_id])
            })
            .map_err(backend)?;
        if changed > 0 {
            if let Some(due) = next {
                enqueue(self.conn, &a.endpoint_id, due)?;
            }
        }
        self.record_endpoint_health(outcome)
    }

    fn extend_leases(&mut self, leases: &[LeaseRef], until: Timestamp) -> StoreResult<usize> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "UPDATE delivery SET next_attempt_at = ? WHERE msg_id = ? AND endpoint_id = ? AND claim_id = ?",
            )
            .map_err(backend)?;
        let mut held = 0;
        for lease in leases {
            held +=
                stmt.execute(params![ms(&until), lease.msg_id, lease.endpoint_id, lease.claim_id]).map_err(backend)?;
        }
        Ok(held)
    }

    fn release_all_claims(&mut self, now: Timestamp) -> StoreResult<usize> {
        let released = self
            .conn
            .execute(
                "UPDATE delivery SET status = 1, next_attempt_at = ?, claim_id = NULL WHERE status = 3",
                [ms(&now)],
            )
            .map_err(backend)?;
        self.conn
            .execute_batch(
                "INSERT INTO endpoint_queue (endpoint_id, next_due)
                 SELECT endpoint_id, MIN(next_attempt_at) FROM delivery WHERE next_attempt_at IS NOT NULL
                 GROUP BY endpoint_id
                 ON CONFLICT (endpoint_id) DO UPDATE SET next_due = MIN(next_due, excluded.next_due);",
            )
            .map_err(backend)?;
        Ok(released)
    }

    fn schedule_delivery(
        &mut self,
        app_id: &str,
        msg_id: &str,
        endpoint_id: &str,
        at: Timestamp,
        manual: bool,
    ) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                // manual: 0 scheduled, 1 a one-shot resend of a finished
                // delivery, 2 a resend that keeps the pending retries.
                "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, manual, updated_at)
                 VALUES (?, ?, ?, 1, 0, ?, ?, ?)
                 ON CONFLICT (msg_id, endpoint_id) DO UPDATE SET
                   manual = CASE WHEN excluded.manual = 0 THEN 0 WHEN delivery.status IN (1, 3) THEN 2 ELSE 1 END,
                   attempts = CASE WHEN excluded.manual = 1 AND delivery.status IN (1, 3) THEN delivery.attempts ELSE 0 END,
                   status = 1, claim_id = NULL, next_attempt_at = excluded.next_attempt_at,
                   updated_at = excluded.updated_at",
            )
            .and_then(|mut s| s.execute(params![msg_id, endpoint_id, app_id, ms(&at), manual, ms(&at)]))
            .map_err(backend)?;
        enqueue(self.conn, endpoint_id, ms(&at))
    }

    fn failed_deliveries(
        &mut self,
        endpoint_id: &str,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let columns = qualified(DELIVERY_COLUMNS, "d");
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {columns} FROM delivery d JOIN message m ON m.id = d.msg_id
                 WHERE d.endpoint_id = ? AND d.status = 2 AND m.created_at >= ? AND m.created_at < ?
                 ORDER BY d.msg_id LIMIT ?"
            ))
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![endpoint_id, ms(&since), ms(&until), limit as i64], delivery_row)
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn messages_missing_delivery(
        &mut self,
        app_id: &str,
        endpoint_id: &str,
        event_types: Option<&[String]>,
        since: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let columns = qualified(super::messages::COLUMNS, "m");
        let mut sql = format!(
            "SELECT {columns} FROM message m
             WHERE m.app_id = ? AND m.created_at >= ? AND m.created_at < ?
             AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = m.id AND d.endpoint_id = ?)"
        );
        let mut values: Vec<rusqlite::types::Value> =
            vec![app_id.to_string().into(), ms(&since).into(), ms(&until).into(), endpoint_id.to_string().into()];
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
        let earliest: Option<i64> = self
            .conn
            .query_row(
                "SELECT MIN(next_attempt_at) FROM delivery WHERE endpoint_id = ? AND next_attempt_at IS NOT NULL",
                [endpoint_id],
                |r| r.get(0),
            )
            .map_err(backend)?;
        match earliest {
            Some(due) => enqueue(self.conn, endpoint_id, due),
            None => Ok(()),
        }
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
            .query_map(params![endpoint_id, since, until], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(backend)?;
        let mut stats = DeliveryStats::default();
        for row in rows {
            let (status, count) = row.map_err(backend)?;
            let count = count as u64;
            match DeliveryStatus::from_i64(status) {
                DeliveryStatus::Success => stats.success = count,
                DeliveryStatus::Pending => stats.pending = count,
                DeliveryStatus::Failed => stats.failed = count,
                DeliveryStatus::Sending => stats.sending = count,
            }
        }
        Ok(stats)
    }

    fn purge_expired(&mut self, now: Timestamp, retention: chrono::Duration, batch: usize) -> StoreResult<Purged> {
        let now_ms = ms(&now);
        let cutoff = now_ms - retention.num_milliseconds();
        let batch = batch as i64;
        let run = |sql: &str, bound: i64| -> StoreResult<usize> {
            self.conn.prepare_cached(sql).and_then(|mut s| s.execute(params![bound, batch])).map_err(backend)
        };
        Ok(Purged {
            payloads: run(
                // Never under a delivery still owed: that would lose it.
                "UPDATE message SET payload = NULL WHERE rowid IN
                 (SELECT rowid FROM message WHERE payload IS NOT NULL AND payload_expires_at <= ?
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id AND d.status IN (1, 3))
                  LIMIT ?)",
                now_ms,
            )?,
            // Attempts, and messages with their deliveries, go once past
            // retention, but never while a delivery of the message is owed.
            attempts: run(
                "DELETE FROM attempt WHERE rowid IN (SELECT rowid FROM attempt WHERE created_at < ?
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = attempt.msg_id
                                  AND d.endpoint_id = attempt.endpoint_id AND d.status IN (1, 3))
                  LIMIT ?)",
                cutoff,
            )?,
            messages: run(
                "DELETE FROM message WHERE rowid IN (SELECT rowid FROM message WHERE created_at < ?
                  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = message.id AND d.status IN (1, 3))
                  LIMIT ?)",
                cutoff,
            )?,
            idempotency_keys: run(
                "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE created_at < ? LIMIT ?)",
                now_ms - super::idempotency::IDEMPOTENCY_WINDOW_MS,
            )?,
        })
    }
}
