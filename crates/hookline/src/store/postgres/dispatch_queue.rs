//! The dispatcher's side of the PostgreSQL store. The claim is the shared
//! one (`store::queue::claim`) over statements that let several nodes claim
//! at once: queue entries are taken `FOR UPDATE SKIP LOCKED` (one node per
//! endpoint at a time, so its token bucket holds for all of them), every
//! time comes from the database's clock, and each step is one statement for
//! all endpoints of the claim.

use std::collections::HashMap;

use super::sql::*;
use super::PgTx;
use crate::dispatch::policy::health::{self, HealthChange};
use crate::ids::IdKind;
use crate::store::model::*;
use crate::store::queue::*;
use crate::store::StoreResult;

/// The advisory lock whoever sweeps retention holds (one node at a time).
const SWEEP_LOCK: i64 = 0x6877_5f73_7765_6570; // "hw_sweep"
/// Queue repair (the safety net for entries left later than their work)
/// runs at most this often, with a retention sweep: with the default
/// retention the sweeps come a minute apart, so an entry left late is
/// repaired within one to two minutes.
const REPAIR_EVERY: chrono::Duration = chrono::Duration::seconds(30);

impl ClaimSource for PgTx<'_, '_> {
    fn due_endpoints(&mut self, limit: usize) -> StoreResult<(Timestamp, Vec<QueuedEndpoint>)> {
        let columns = qualified(super::endpoints::COLUMNS, "e");
        // The clock is read in the same statement: one round trip fewer
        // while the entries are held. With nothing due, one row of NULLs.
        let rows = self.query(
            &format!(
                "SELECT n.now, x.* FROM (SELECT clock_timestamp() AS now) n
                 LEFT JOIN LATERAL (
                   SELECT {columns}, a.rate_limit, q.next_slot
                   FROM endpoint_queue q JOIN endpoint e ON e.id = q.endpoint_id JOIN application a ON a.id = e.app_id
                   WHERE q.next_due <= n.now ORDER BY q.next_due LIMIT $1
                   FOR UPDATE OF q SKIP LOCKED
                 ) x ON TRUE"
            ),
            &[&(limit as i64)],
        )?;
        let Some(first) = rows.first() else {
            return Err(crate::store::StoreError::Backend("the claim's clock read no row".into()));
        };
        let now: Timestamp = col(first, 0)?;
        let mut due = Vec::with_capacity(rows.len());
        for r in &rows {
            if col::<Option<String>>(r, 1)?.is_none() {
                continue;
            }
            due.push(QueuedEndpoint {
                endpoint: super::endpoints::row_at(r, 1)?,
                app_rate_limit: col::<Option<i32>>(r, 18)?.map(|n| n as u32),
                next_slot: col(r, 19)?,
            });
        }
        Ok((now, due))
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
        let endpoints: Vec<&str> = wants.iter().map(|(id, _)| id.as_str()).collect();
        // At most the node's in-flight budget (hundreds): no overflow.
        let counts: Vec<i32> = wants.iter().map(|(_, n)| *n as i32).collect();
        let total: i64 = counts.iter().map(|n| i64::from(*n)).sum();
        let rows = self.query(
            &take_statement(),
            &[&endpoints, &counts, &now, &lease_until, &claim_id, &live_claims, &total, &released_leases],
        )?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedRow {
                    msg_id: col(r, 0)?,
                    endpoint_id: col(r, 1)?,
                    attempts: col::<i32>(r, 2)? as u32,
                    manual: col::<i16>(r, 3)? as i64,
                    event_type: col(r, 4)?,
                    payload: col(r, 5)?,
                })
            })
            .collect()
    }

    fn settle(&mut self, updates: &[QueueUpdate], excluding: &[String]) -> StoreResult<Option<Timestamp>> {
        let ids: Vec<&str> = updates.iter().map(|u| u.endpoint_id.as_str()).collect();
        let never: Vec<bool> = updates.iter().map(|u| u.look == Look::Never).collect();
        let not_before: Vec<Option<Timestamp>> = updates
            .iter()
            .map(|u| match u.look {
                Look::Never => None,
                Look::AtEarliestWork { not_before } => not_before,
            })
            .collect();
        let slots: Vec<Option<Timestamp>> = updates.iter().map(|u| u.next_slot).collect();
        // One statement (a round trip while the entries are held): each
        // entry's next look is `Look::at` of its earliest work, then the
        // earliest entry not excluded, among those just set and the rest.
        // The max is taken inside the subquery: an endpoint with no work
        // gets no row, hence NULL (GREATEST would skip that NULL and
        // return `not_before`, leaving an idle entry due for ever).
        let row = self.query_one(
            &format!(
                "WITH settled AS (
               SELECT u.endpoint_id, u.next_slot,
                 CASE WHEN u.never THEN NULL ELSE
                   (SELECT GREATEST(d.next_attempt_at, u.not_before) FROM delivery d
                    WHERE d.endpoint_id = u.endpoint_id AND d.next_attempt_at IS NOT NULL
                    ORDER BY d.next_attempt_at LIMIT 1) END AS next_due
               FROM unnest({ids}, {never}, {not_before}, {slots})
                 AS u(endpoint_id, never, not_before, next_slot)
             ), updated AS (
               UPDATE endpoint_queue q SET next_due = s.next_due, next_slot = COALESCE(s.next_slot, q.next_slot)
               FROM settled s WHERE q.endpoint_id = s.endpoint_id
               RETURNING q.endpoint_id, q.next_due
             )
             SELECT min(due) FROM (
               SELECT next_due AS due FROM updated WHERE NOT (endpoint_id = ANY({excluding}))
               UNION ALL
               (SELECT next_due FROM endpoint_queue
                WHERE next_due IS NOT NULL AND NOT (endpoint_id = ANY({excluding})) AND NOT (endpoint_id = ANY({ids}))
                ORDER BY next_due LIMIT 1)
             ) n",
                ids = opaque(1, "text[]"),
                never = opaque(2, "bool[]"),
                not_before = opaque(3, "timestamptz[]"),
                slots = opaque(4, "timestamptz[]"),
                excluding = opaque(5, "text[]"),
            ),
            &[&ids, &never, &not_before, &slots, &excluding],
        )?;
        col(&row, 0)
    }
}

/// The claim's statement: up to `$2[i]` due deliveries of endpoint `$1[i]`,
/// locked (`SKIP LOCKED`, so nodes claim side by side), leased to claim `$5`
/// until `$4`, with their messages; none held by a claim in `$6` unless its
/// lease is in `$8`.
fn take_statement() -> String {
    format!(
        "WITH picked AS (
               SELECT d.msg_id, d.endpoint_id
               FROM unnest($1::text[], $2::int[]) AS w(endpoint_id, n)
               CROSS JOIN LATERAL (
                 SELECT msg_id, endpoint_id FROM delivery
                 WHERE endpoint_id = w.endpoint_id AND next_attempt_at <= $3
                   AND (claim_id IS NULL OR NOT (claim_id = ANY($6::text[]))
                        OR claim_id || ' ' || msg_id || ' ' || endpoint_id = ANY($8::text[]))
                 ORDER BY next_attempt_at LIMIT w.n
                 FOR UPDATE SKIP LOCKED
               ) d
               -- Never more than the sum of the wants: a plan made for
               -- the values knows it updates a few rows and looks them up
               -- by key. A generic plan guesses a tenth of the table and
               -- hashes all of it, so it costs more and the server's auto
               -- mode keeps planning this statement for its values (the
               -- test below checks the plan it keeps).
               LIMIT $7
             ), claimed AS (
               UPDATE delivery d SET status = {SENDING}, next_attempt_at = $4, claim_id = $5, updated_at = $3
               FROM picked p WHERE d.msg_id = p.msg_id AND d.endpoint_id = p.endpoint_id
               RETURNING d.msg_id, d.endpoint_id, d.attempts, d.manual
             )
             SELECT c.msg_id, c.endpoint_id, c.attempts, c.manual, m.event_type, m.payload
             FROM claimed c JOIN message m ON m.id = c.msg_id"
    )
}

pub(super) fn claim(tx: &mut PgTx<'_, '_>, req: &ClaimRequest) -> StoreResult<Claimed> {
    crate::store::queue::claim(tx, req)
}

/// Records a batch of outcomes in a few statements; returns the endpoints
/// it disabled. Locks are taken in one order (applications, endpoints
/// whose health changes, deliveries, queue entries), the order a PATCH or
/// a deletion of an endpoint takes them in. (An application's deletion
/// announces its endpoints' deletion before it holds the application; with
/// a batch announcing at the same moment that can close a cycle, which
/// PostgreSQL breaks, and the loser runs again.)
pub(super) fn record_outcomes(
    tx: &mut PgTx<'_, '_>,
    outcomes: &[AttemptOutcome],
    disable_after: chrono::Duration,
) -> StoreResult<Recorded> {
    let mut recorded = Recorded::default();
    // The batch's applications are held against deletion before any row
    // is written (`app_locks`): deleting an endpoint waits for the batch,
    // then deletes its deliveries and attempts; the batch never waits for
    // a deletion while holding rows the deletion wants.
    let mut app_ids: Vec<&str> = outcomes.iter().map(|o| o.attempt.app_id.as_str()).collect();
    app_ids.sort_unstable();
    app_ids.dedup();
    let mut endpoint_ids: Vec<&str> = outcomes.iter().map(|o| o.attempt.endpoint_id.as_str()).collect();
    endpoint_ids.sort_unstable();
    endpoint_ids.dedup();
    // Read as of before any wait for a deletion: an endpoint deleted
    // meanwhile has no rows left for the statements below to write.
    let health_now = tx.query(
        &format!(
            "SELECT id, failing_since IS NOT NULL FROM endpoint WHERE id = ANY($1::text[]) AND {}",
            super::app_locks::held_shared_condition(2)
        ),
        &[&endpoint_ids, &app_ids],
    )?;
    super::app_locks::mark_held(tx, &app_ids);
    let changes = health::changes(outcomes);
    if changes.values().all(|c| *c == HealthChange::Recovered) {
        // The common case: only endpoints that were failing are written,
        // in one statement, in id order like everything else that locks
        // several (a plain `WHERE id = ANY` locks in the order its plan
        // reads the table). Usually there are none.
        let mut recovering: Vec<String> = Vec::new();
        for r in &health_now {
            let id: String = col(r, 0)?;
            if col::<bool>(r, 1)? && changes.contains_key(&id) {
                recovering.push(id);
            }
        }
        if !recovering.is_empty() {
            tx.execute(
                "UPDATE endpoint e SET failing_since = NULL
                 FROM (SELECT id FROM endpoint WHERE id = ANY($1::text[]) AND failing_since IS NOT NULL
                       ORDER BY id FOR NO KEY UPDATE) l
                 WHERE e.id = l.id",
                &[&recovering],
            )?;
        }
    } else {
        let now: Timestamp = tx.query_one("SELECT clock_timestamp()", &[])?.get(0);
        for (endpoint_id, change) in changes {
            if apply_health(tx, &endpoint_id, &change, now, disable_after)? {
                recorded.disabled.push(endpoint_id);
            }
        }
    }
    let a = |f: &dyn Fn(&Attempt) -> String| outcomes.iter().map(|o| f(&o.attempt)).collect::<Vec<String>>();
    let ids = a(&|a| a.id.clone());
    let msgs = a(&|a| a.msg_id.clone());
    let endpoints = a(&|a| a.endpoint_id.clone());
    let apps = a(&|a| a.app_id.clone());
    let urls = a(&|a| a.url.clone());
    let statuses: Vec<i16> = outcomes.iter().map(|o| o.attempt.status as i16).collect();
    let codes: Vec<i32> = outcomes.iter().map(|o| i32::from(o.attempt.response_status_code)).collect();
    let responses = a(&|a| a.response.clone());
    let durations: Vec<i64> = outcomes.iter().map(|o| o.attempt.response_duration_ms).collect();
    let triggers: Vec<i16> = outcomes.iter().map(|o| o.attempt.trigger as i16).collect();
    let errors: Vec<Option<String>> = outcomes.iter().map(|o| o.attempt.error.clone()).collect();
    let created: Vec<Timestamp> = outcomes.iter().map(|o| o.attempt.created_at).collect();
    // Each delivery moves on only if this claim still holds it.
    let claims: Vec<&str> = outcomes.iter().map(|o| o.claim_id.as_str()).collect();
    let (next_status, delays): (Vec<i16>, Vec<Option<f64>>) = outcomes
        .iter()
        .map(|o| match o.next {
            NextStep::Succeeded => (SUCCESS, None),
            NextStep::RetryIn(delay) => (PENDING, Some(delay.num_milliseconds() as f64 / 1000.0)),
            NextStep::GiveUp => (FAILED, None),
        })
        .unzip();
    // The database's clock, read by the statement itself.
    let retried = tx.query(
        "UPDATE delivery d SET status = u.status, attempts = d.attempts + 1,
           next_attempt_at = statement_timestamp() + make_interval(secs => u.delay), claim_id = NULL, manual = 0,
           updated_at = statement_timestamp()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int2[], $5::float8[])
           AS u(msg_id, endpoint_id, claim_id, status, delay)
         WHERE d.msg_id = u.msg_id AND d.endpoint_id = u.endpoint_id AND d.claim_id = u.claim_id
         RETURNING d.endpoint_id, d.next_attempt_at, d.msg_id, d.attempts",
        &[&msgs, &endpoints, &claims, &next_status, &delays],
    )?;
    // Outcomes that moved their delivery (their claim still held it), with
    // the delivery's attempt count.
    let mut by_delivery: HashMap<(String, String), i64> = HashMap::new();
    for r in &retried {
        by_delivery.insert((col(r, 2)?, col(r, 0)?), i64::from(col::<i32>(r, 3)?));
    }
    // Per outcome, its delivery's attempt count if it moved it.
    let moved: Vec<Option<i64>> = outcomes
        .iter()
        .map(|o| by_delivery.get(&(o.attempt.msg_id.clone(), o.attempt.endpoint_id.clone())).copied())
        .collect();
    let held: Vec<bool> = moved.iter().map(Option::is_some).collect();
    // Attempts whose delivery was deleted meanwhile (with its message or
    // endpoint) are dropped with it: nothing is owed any more. No foreign
    // key stands behind this check (its query per row cost more than the
    // insert itself). A delivery the statement above moved is held by this
    // transaction already; any other (its claim was lost) is looked up and
    // held (KEY SHARE) as the key's check would, since the retention sweep
    // could otherwise delete its message meanwhile. Locking a row this
    // transaction just updated would write it and the WAL once more.
    // Deleting a message waits for these locks (and deleting an endpoint
    // or an application for the batch), then deletes their attempts in a
    // statement of its own, which sees this one's.
    // An attempt already recorded is one whose transaction committed, then
    // ran again; nothing else inserts its (fresh, random) id, so a plain
    // check stands in for ON CONFLICT and its speculative insertion.
    tx.execute(
        "INSERT INTO attempt (id, msg_id, endpoint_id, app_id, url, status, response_status_code, response,
                              response_duration_ms, trigger_type, error, created_at)
         SELECT a.id, a.msg_id, a.endpoint_id, a.app_id, a.url, a.status, a.code, a.response, a.duration,
                a.trigger_type, a.error, a.created_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int2[], $7::int4[],
                     $8::text[], $9::int8[], $10::int2[], $11::text[], $12::timestamptz[], $13::bool[])
           AS a(id, msg_id, endpoint_id, app_id, url, status, code, response, duration, trigger_type, error,
                created_at, held)
         WHERE (a.held OR EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = a.msg_id AND d.endpoint_id = a.endpoint_id
                                  FOR KEY SHARE))
           AND NOT EXISTS (SELECT 1 FROM attempt x WHERE x.id = a.id)",
        &[
            &ids, &msgs, &endpoints, &apps, &urls, &statuses, &codes, &responses, &durations, &triggers, &errors,
            &created, &held,
        ],
    )?;
    let applied: Vec<(&AttemptOutcome, i64)> =
        outcomes.iter().zip(&moved).filter_map(|(o, n)| n.map(|n| (o, n))).collect();
    let mut due: Vec<(String, Timestamp)> = Vec::new();
    for r in &retried {
        if let Some(at) = col::<Option<Timestamp>>(r, 1)? {
            due.push((col(r, 0)?, at));
        }
    }
    if !due.is_empty() {
        due.sort();
        let ids: Vec<&str> = due.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<Option<Timestamp>> = due.iter().map(|(_, at)| Some(*at)).collect();
        super::deliveries::enqueue(tx, &ids, &times)?;
    }
    recorded.operational_events = crate::operational::attempts_recorded(tx, outcomes, &applied, &recorded.disabled)?;
    Ok(recorded)
}

/// Moves an endpoint's failing clock; true when this disabled it.
fn apply_health(
    tx: &mut PgTx<'_, '_>,
    endpoint_id: &str,
    change: &HealthChange,
    now: Timestamp,
    disable_after: chrono::Duration,
) -> StoreResult<bool> {
    let (since, gone) = match change {
        HealthChange::Recovered => {
            tx.execute(
                "UPDATE endpoint SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                &[&endpoint_id],
            )?;
            return Ok(false);
        }
        HealthChange::Failing { since, gone } => (since, *gone),
    };
    let state = tx.query_opt(
        "UPDATE endpoint SET failing_since = COALESCE(failing_since, $2) WHERE id = $1
         RETURNING failing_since, disabled",
        &[&endpoint_id, since],
    )?;
    let Some(state) = state else { return Ok(false) };
    let (failing_since, disabled): (Timestamp, bool) = (col(&state, 0)?, col(&state, 1)?);
    if disabled || !health::should_disable(failing_since, now, disable_after, gone) {
        return Ok(false);
    }
    let changed = tx.execute(
        "UPDATE endpoint SET disabled = TRUE, updated_at = $2 WHERE id = $1 AND NOT disabled",
        &[&endpoint_id, &now],
    )?;
    if changed > 0 {
        tracing::warn!(endpoint = %endpoint_id, gone, "endpoint disabled after failing");
    }
    Ok(changed > 0)
}

pub(super) fn extend_leases(tx: &mut PgTx<'_, '_>, leases: &[LeaseRef], lease: chrono::Duration) -> StoreResult<usize> {
    let msgs: Vec<&str> = leases.iter().map(|l| l.msg_id.as_str()).collect();
    let endpoints: Vec<&str> = leases.iter().map(|l| l.endpoint_id.as_str()).collect();
    let claims: Vec<&str> = leases.iter().map(|l| l.claim_id.as_str()).collect();
    let held = tx.execute(
        "UPDATE delivery d SET next_attempt_at = clock_timestamp() + make_interval(secs => $4)
         FROM unnest($1::text[], $2::text[], $3::text[]) AS l(msg_id, endpoint_id, claim_id)
         WHERE d.msg_id = l.msg_id AND d.endpoint_id = l.endpoint_id AND d.claim_id = l.claim_id",
        &[&msgs, &endpoints, &claims, &(lease.num_milliseconds() as f64 / 1000.0)],
    )?;
    Ok(held as usize)
}

/// One batch of the retention sweep, by whichever node holds the sweep lock
/// (`None` for the others).
pub(super) fn purge_expired(
    tx: &mut PgTx<'_, '_>,
    retention: chrono::Duration,
    batch: usize,
) -> StoreResult<Option<Purged>> {
    let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])?.get(0);
    if !mine {
        return Ok(None);
    }
    let now: Timestamp = tx.query_one("SELECT clock_timestamp()", &[])?.get(0);
    let cutoff = now - retention;
    let batch = batch as i64;
    let owed = |alias: &str, same_endpoint: bool| {
        let endpoint = if same_endpoint { format!(" AND d.endpoint_id = {alias}.endpoint_id") } else { String::new() };
        let id = if same_endpoint { "msg_id" } else { "id" };
        format!(
            "NOT EXISTS (SELECT 1 FROM delivery d WHERE d.msg_id = {alias}.{id}{endpoint} AND d.status IN ({PENDING}, {SENDING}))"
        )
    };
    let idempotency_cutoff = now - super::idempotency::IDEMPOTENCY_WINDOW;
    let unowed = owed("message", false);
    // Never under a delivery still owed: that would lose it.
    let expired = unowed_messages(
        tx,
        &format!("SELECT id FROM message WHERE payload IS NOT NULL AND payload_expires_at <= $1 AND {unowed} LIMIT $2"),
        &[&now, &batch],
        &unowed,
    )?;
    let old = unowed_messages(
        tx,
        &format!("SELECT id FROM message WHERE id < $1 AND {unowed} LIMIT $2"),
        &[&IdKind::Message.floor_at(cutoff.timestamp_millis()), &batch],
        &unowed,
    )?;
    Ok(Some(Purged {
        payloads: if expired.is_empty() {
            0
        } else {
            tx.execute("UPDATE message SET payload = NULL WHERE id = ANY($1)", &[&expired])? as usize
        },
        attempts: tx.execute(
            &format!(
                "DELETE FROM attempt WHERE id IN (SELECT id FROM attempt WHERE id < $1 AND {} LIMIT $2)",
                owed("attempt", true)
            ),
            &[&IdKind::Attempt.floor_at(cutoff.timestamp_millis()), &batch],
        )? as usize,
        messages: {
            // Their deliveries (all finished), then their attempts younger
            // than the retention (retries, resends), go with them as a
            // cascade would take them (uncounted). The delivery deletion
            // waits for outcomes holding them; the attempts' statement,
            // after it, sees what those outcomes wrote.
            if !old.is_empty() {
                tx.execute("DELETE FROM message WHERE id = ANY($1)", &[&old])?;
                tx.execute("DELETE FROM delivery WHERE msg_id = ANY($1)", &[&old])?;
                tx.execute("DELETE FROM attempt WHERE msg_id = ANY($1)", &[&old])?;
            }
            old.len()
        },
        // The age is checked again on the row deleted: a key taken again
        // (a new answer, `created_at` now) after the pick read it is the
        // new request's. The pick alone would delete it, since a row
        // changed meanwhile is checked against the pick's result as read.
        idempotency_keys: tx.execute(
            "DELETE FROM idempotency
             WHERE key IN (SELECT key FROM idempotency WHERE created_at < $1 LIMIT $2) AND created_at < $1",
            &[&idempotency_cutoff, &batch],
        )? as usize,
    }))
}

/// The messages `pick` (a query of message ids) finds, held for the
/// sweep's transaction, that no delivery is owed for (`unowed`, on
/// `message`). A message someone holds (a resend scheduling a delivery of
/// it) is skipped and left for a later sweep. The rest are checked again
/// in a statement of its own, whose snapshot begins once they are held: a
/// resend that committed after the pick's snapshot and before its lock
/// made a delivery owed that the pick could not see.
fn unowed_messages(
    tx: &mut PgTx<'_, '_>,
    pick: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    unowed: &str,
) -> StoreResult<Vec<String>> {
    let picked: Vec<String> = tx
        .query(&format!("{pick} FOR UPDATE SKIP LOCKED"), params)?
        .iter()
        .map(|r| col(r, 0))
        .collect::<StoreResult<_>>()?;
    if picked.is_empty() {
        return Ok(picked);
    }
    tx.query(&format!("SELECT id FROM message WHERE id = ANY($1) AND {unowed}"), &[&picked])?
        .iter()
        .map(|r| col(r, 0))
        .collect()
}

/// The safety net of the queue: an entry later than its endpoint's earliest
/// work (a claim that read before a concurrent fan-out committed, then a
/// node that died before re-marking it) is brought forward. Rare, and
/// bounded by `REPAIR_EVERY`, and run by whichever node holds the sweep.
pub(super) fn repair_queue(tx: &mut PgTx<'_, '_>) -> StoreResult<()> {
    let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK])?.get(0);
    if !mine {
        return Ok(());
    }
    let now: Timestamp = tx.query_one("SELECT clock_timestamp()", &[])?.get(0);
    let last: Option<String> =
        tx.query_opt("SELECT value FROM meta WHERE key = 'queue_repaired_at'", &[])?.map(|r| r.get(0));
    let due_again = last
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .is_none_or(|t| now - t.with_timezone(&chrono::Utc) >= REPAIR_EVERY);
    if !due_again {
        return Ok(());
    }
    tx.execute(
        "UPDATE endpoint_queue q SET next_due = e.due
         FROM (SELECT q2.endpoint_id,
                      (SELECT d.next_attempt_at FROM delivery d
                       WHERE d.endpoint_id = q2.endpoint_id AND d.next_attempt_at IS NOT NULL
                       ORDER BY d.next_attempt_at LIMIT 1) AS due
               FROM endpoint_queue q2) e
         WHERE q.endpoint_id = e.endpoint_id AND e.due IS NOT NULL AND (q.next_due IS NULL OR q.next_due > e.due)",
        &[],
    )?;
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('queue_repaired_at', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&now.to_rfc3339()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{assert_claims_by_key, explained, holding, session};
    use super::*;
    use crate::store::queue::NextStep;
    use crate::store::tests::{
        app, claim, delivered_to_ep_a, delivery, endpoint, fixture, outcome, request, DAYS, LONG,
    };
    use crate::store::{Store, StoreError};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A claim takes a few dozen rows and must look them up by key however
    /// many are pending. Planned for a tenth of the table (what the planner
    /// guesses for a `LIMIT` it cannot see), it hashed all of `delivery`
    /// instead: 28 ms a claim at 40 000 pending.
    #[tokio::test]
    async fn a_claim_reads_its_rows_by_key_however_many_are_pending() {
        let Store::Postgres(pg) = super::super::test_support::test_store().await else {
            unreachable!("test_store is a PostgreSQL store")
        };
        let store = Store::Postgres(pg.clone());
        store
            .write(|tx| {
                tx.insert_application(&app("app_f"))?;
                tx.insert_endpoint(&endpoint("ep_a", "app_f", None))?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        pg.dispatcher_op(|tx| {
            tx.execute(
                "INSERT INTO message (id, app_id, event_type, payload, payload_expires_at, created_at)
                 SELECT 'msg_' || lpad(g::text, 6, '0'), 'app_f', 't', '{}', now() + interval '1 day', now()
                 FROM generate_series(1, 40000) g",
                &[],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO delivery (msg_id, endpoint_id, app_id, status, attempts, next_attempt_at, updated_at)
                     SELECT 'msg_' || lpad(g::text, 6, '0'), 'ep_a', 'app_f', {PENDING}, 0,
                            now() - interval '1 minute', now()
                     FROM generate_series(1, 40000) g"
                ),
                &[],
            )?;
            tx.execute("ANALYZE delivery", &[])?;
            tx.execute("ANALYZE message", &[])?;
            Ok(())
        })
        .await
        .unwrap();

        let plan = pg
            .dispatcher_op(|tx| {
                let now = chrono::Utc::now();
                let rows = tx.query(
                    &format!("EXPLAIN {}", take_statement()),
                    &[
                        &vec!["ep_a"],
                        &vec![64i32],
                        &now,
                        &(now + chrono::Duration::seconds(60)),
                        &"claim_1",
                        &Vec::<String>::new(),
                        &64i64,
                        &Vec::<String>::new(),
                    ],
                )?;
                Ok(explained(&rows))
            })
            .await
            .unwrap();
        assert_claims_by_key(&plan, "the claim");

        // EXPLAIN plans for the values given. The dispatcher's sessions run
        // the claim as a prepared statement, which after five runs may keep
        // a generic plan, made without the values: that one must read by
        // key too (it hashed the table when planned for a tenth of it).
        let mut s = session(&store).await;
        let kept = tokio::task::spawn_blocking(move || {
            s.batch_execute(&format!(
                "PREPARE probe(text[], int[], timestamptz, timestamptz, text, text[], bigint, text[]) AS {}",
                take_statement()
            ))
            .unwrap();
            let run = "probe('{ep_a}', '{64}', now(), now() + interval '1 minute', 'claim_1', '{}', 64, '{}')";
            s.batch_execute("BEGIN").unwrap();
            for _ in 0..6 {
                s.execute(&format!("EXECUTE {run}"), &[]).unwrap();
            }
            let plan = s.query(&format!("EXPLAIN EXECUTE {run}"), &[]).unwrap();
            s.batch_execute("ROLLBACK").unwrap();
            explained(&plan)
        })
        .await
        .unwrap();
        assert_claims_by_key(&kept, "the kept claim");
    }

    /// The sessions of this test's database running a statement `LIKE` one
    /// of `running` that wait for one of `holders` (backend pids).
    fn blocked_by(watch: &mut postgres::Client, holders: &[i32], running: &[String]) -> Vec<i32> {
        watch
            .query(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND pg_blocking_pids(pid) && $1::int4[]
                   AND query LIKE ANY($2::text[])",
                &[&holders, &running],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Waits until a session running a statement `LIKE` one of `running`
    /// waits for one of `holders` (backend pids), or `done` turns true;
    /// returns the waiting sessions.
    async fn until_blocked_or(
        store: &Store,
        holders: &[i32],
        running: &[&str],
        done: impl Fn() -> bool + Send + 'static,
    ) -> Vec<i32> {
        let mut watch = session(store).await;
        let holders = holders.to_vec();
        let running: Vec<String> = running.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let waiting = blocked_by(&mut watch, &holders, &running);
                if !waiting.is_empty() || done() {
                    return waiting;
                }
                assert!(std::time::Instant::now() < deadline, "nothing waited for sessions {holders:?}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
        .await
        .unwrap()
    }

    /// Waits until a session running a statement `LIKE` one of `running`
    /// waits for one of `holders` (backend pids); returns the waiting ones.
    async fn until_blocked_by(store: &Store, holders: &[i32], running: &[&str]) -> Vec<i32> {
        until_blocked_or(store, holders, running, || false).await
    }

    /// What a deletion came to beside a write kept open.
    struct Raced {
        /// The deletion waited for the writer (rather than finishing first).
        waited: bool,
        written: StoreResult<()>,
        deleted: StoreResult<()>,
    }

    /// Runs `write`, which writes the `meta` key `gate` where it is to be
    /// kept open (another session holds that key), and `delete` beside it
    /// until the deletion waits for the writer or finishes; then lets the
    /// writer go on, and returns what both came to.
    async fn delete_beside_open_write(
        store: &Store,
        gate: &'static str,
        write: impl FnMut(&mut dyn crate::store::Tx) -> StoreResult<()> + Send + 'static,
        delete: impl FnMut(&mut dyn crate::store::Tx) -> StoreResult<()> + Send + 'static,
    ) -> Raced {
        let (mut holder, holder_pid) =
            holding(store, &format!("INSERT INTO meta (key, value) VALUES ('{gate}', 'held')")).await;
        let writer = tokio::spawn({
            let store = store.clone();
            async move { store.write(write).await }
        });
        let writer_pids = until_blocked_by(store, &[holder_pid], &["INSERT INTO meta%"]).await;
        let finished = Arc::new(AtomicBool::new(false));
        let deletion = tokio::spawn({
            let (store, finished) = (store.clone(), finished.clone());
            async move {
                let deleted = store.write(delete).await;
                finished.store(true, Ordering::SeqCst);
                deleted
            }
        });
        let waiting = until_blocked_or(store, &writer_pids, &["%pg_advisory_xact_lock(%"], move || {
            finished.load(Ordering::SeqCst)
        })
        .await;
        tokio::task::spawn_blocking(move || holder.batch_execute("ROLLBACK").unwrap()).await.unwrap();
        Raced { waited: !waiting.is_empty(), written: writer.await.unwrap(), deleted: deletion.await.unwrap() }
    }

    /// The count a query of the store's database gives.
    async fn count(store: &Store, query: &'static str) -> i64 {
        let mut check = session(store).await;
        tokio::task::spawn_blocking(move || check.query_one(query, &[]).unwrap().get(0)).await.unwrap()
    }

    /// A deletion holds its application (`app_locks`), then deletes the
    /// endpoint and its deliveries. An outcome batch must hold the
    /// application before it writes anything: one that locked a failing
    /// endpoint's row (its health update) or its deliveries and then waited
    /// would deadlock with a deletion that holds the application and wants
    /// those rows, and PostgreSQL would break it after `deadlock_timeout`.
    #[tokio::test]
    async fn an_outcome_batch_holds_nothing_while_it_waits_for_a_deletion() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None), ("ep_b", None)], 1).await;
        let jobs = claim(&store, request(LONG)).await.unwrap().jobs;
        assert_eq!(jobs.len(), 2);
        // A deletion in the application, holding it.
        let (mut deleter, deleter_pid) = holding(&store, &super::super::app_locks::exclusive_sql("app_f")).await;
        // ep_a answered, ep_b failed: ep_b's health is written.
        let outcomes = jobs
            .iter()
            .map(|job| match job.endpoint_id.as_str() {
                "ep_a" => outcome(job, 200, NextStep::Succeeded),
                _ => outcome(job, 500, NextStep::RetryIn(chrono::Duration::minutes(1))),
            })
            .collect();
        let recording = tokio::spawn({
            let store = store.clone();
            async move { store.record_outcomes(outcomes, DAYS).await }
        });
        until_blocked_by(&store, &[deleter_pid], &["%"]).await;

        let deleter_goes_on = tokio::task::spawn_blocking(move || {
            let mut locked = 0;
            for rows in ["SELECT 1 FROM endpoint", "SELECT 1 FROM delivery", "SELECT 1 FROM endpoint_queue"] {
                match deleter.query(&format!("{rows} FOR UPDATE NOWAIT"), &[]) {
                    Ok(rows) => locked += rows.len(),
                    Err(e) => {
                        deleter.batch_execute("ROLLBACK").unwrap();
                        return Err(e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string()));
                    }
                }
            }
            deleter.batch_execute("ROLLBACK").unwrap();
            Ok(locked)
        })
        .await
        .unwrap();
        assert_eq!(deleter_goes_on, Ok(6), "the outcome batch held rows while waiting for the deletion");
        recording.await.unwrap().unwrap();
        let Store::Postgres(pg) = &store else { unreachable!() };
        let failing: Option<chrono::DateTime<chrono::Utc>> = pg
            .dispatcher_op(|tx| Ok(tx.query_one("SELECT failing_since FROM endpoint WHERE id = 'ep_b'", &[])?.get(0)))
            .await
            .unwrap();
        assert!(failing.is_some(), "the batch recorded ep_b's failure once it went on");
    }

    /// An outcome whose claim was lost moves no delivery, so nothing but
    /// its own check holds the delivery: the retention sweep deleting the
    /// message meanwhile must not leave its attempt behind (attempts have
    /// no foreign key on PostgreSQL).
    #[tokio::test]
    async fn an_attempt_recorded_while_its_message_is_purged_goes_with_it() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None), ("ep_b", None)], 1).await;
        let jobs = claim(&store, request(LONG)).await.unwrap().jobs;
        assert_eq!(jobs.len(), 2);
        // ep_a's claim was taken over; ep_b's retry makes the batch move
        // ep_b's queue entry last, which another session holds: so the
        // batch cannot commit before the sweep has run.
        let outcomes = jobs
            .iter()
            .map(|job| match job.endpoint_id.as_str() {
                "ep_a" => {
                    AttemptOutcome { claim_id: "claim_taken_over".into(), ..outcome(job, 200, NextStep::Succeeded) }
                }
                // Due before its lease runs out: the entry moves.
                _ => outcome(job, 500, NextStep::RetryIn(chrono::Duration::seconds(1))),
            })
            .collect();
        let (mut queue, queue_pid) =
            holding(&store, "SELECT 1 FROM endpoint_queue WHERE endpoint_id = 'ep_b' FOR UPDATE").await;
        // The sweep, between deleting ep_a's message (and its delivery) and
        // deleting its attempts.
        let (mut sweep, sweep_pid) =
            holding(&store, "DELETE FROM message WHERE id = 'msg_0_0'; DELETE FROM delivery WHERE msg_id = 'msg_0_0'")
                .await;
        let recording = tokio::spawn({
            let store = store.clone();
            async move { store.record_outcomes(outcomes, DAYS).await }
        });
        // Its attempt insert waits for the sweep, or (had it not held the
        // delivery) its queue update waits for the other session.
        until_blocked_by(&store, &[sweep_pid, queue_pid], &["INSERT INTO attempt%", "%q.next_due > u.due%"]).await;
        tokio::task::spawn_blocking(move || {
            sweep.batch_execute("DELETE FROM attempt WHERE msg_id = 'msg_0_0'; COMMIT").unwrap();
            queue.batch_execute("ROLLBACK").unwrap();
        })
        .await
        .unwrap();
        recording.await.unwrap().unwrap();
        let mut check = session(&store).await;
        let left: Vec<String> = tokio::task::spawn_blocking(move || {
            check.query("SELECT msg_id FROM attempt ORDER BY msg_id", &[]).unwrap().iter().map(|r| r.get(0)).collect()
        })
        .await
        .unwrap();
        assert_eq!(left, ["msg_1_0"], "an attempt outlived its message");
    }

    /// Deliveries have no foreign key on PostgreSQL: a fan-out must hold
    /// its application itself (`app_locks`), or an endpoint deleted before
    /// the fan-out commits would leave a delivery behind that no one owes
    /// (and that the dispatcher would claim for ever).
    #[tokio::test]
    async fn a_delivery_written_while_its_endpoint_is_deleted_goes_with_it() {
        let store = super::super::test_support::test_store().await;
        // A delivery already due: the fan-out leaves the queue entry alone
        // (it takes no lock on it), as under load.
        fixture(&store, &[("ep_a", None)], 1).await;
        let fan_out = |tx: &mut dyn crate::store::Tx| {
            let msg = crate::store::tests::message("msg_fan", "app_f");
            tx.insert_message(&msg)?;
            tx.insert_deliveries(&[delivery(&msg.id, "ep_a")])?;
            tx.set_meta("fan_out_gate", "written")
        };
        let raced =
            delete_beside_open_write(&store, "fan_out_gate", fan_out, |tx| tx.delete_endpoint("app_f", "ep_a")).await;
        assert!(raced.waited, "the deletion did not wait for the writer");
        raced.written.unwrap();
        raced.deleted.unwrap();
        let left = count(&store, "SELECT count(*) FROM delivery WHERE endpoint_id = 'ep_a'").await;
        assert_eq!(left, 0, "a delivery outlived its endpoint");
    }

    /// The sweep's snapshot cannot see a delivery that a resend commits
    /// while the sweep runs: a message the resend holds (as
    /// `schedule_delivery` holds it) is left for a later sweep, which sees
    /// the delivery owed, instead of being deleted under it.
    #[tokio::test]
    async fn a_message_being_resent_is_not_purged_under_the_resend() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 0).await;
        let msg_id = delivered_to_ep_a(&store, chrono::Utc::now() - chrono::Duration::days(3)).await;

        // A resend of it, kept open after it scheduled the delivery.
        let (mut holder, holder_pid) =
            holding(&store, "INSERT INTO meta (key, value) VALUES ('resend_gate', 'held')").await;
        let resend = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write(move |tx| {
                        tx.schedule_delivery("app_f", &msg_id, "ep_a", None, true)?;
                        tx.set_meta("resend_gate", "resent")
                    })
                    .await
            }
        });
        until_blocked_by(&store, &[holder_pid], &["INSERT INTO meta%"]).await;
        let retention = chrono::Duration::days(1);
        let swept = tokio::time::timeout(std::time::Duration::from_secs(60), store.purge_expired(retention, 100))
            .await
            .expect("the sweep waited for the resend");
        assert_eq!(swept.unwrap().unwrap().messages, 0, "the sweep deleted a message being resent");
        tokio::task::spawn_blocking(move || holder.batch_execute("ROLLBACK").unwrap()).await.unwrap();
        resend.await.unwrap().unwrap();
        let swept = store.purge_expired(retention, 100).await.unwrap().unwrap();
        assert_eq!(swept.messages, 0, "a message with a delivery owed was purged");
        let resent = claim(&store, request(LONG)).await.unwrap().jobs;
        assert_eq!(resent.len(), 1, "the resend is delivered");
    }

    /// A key whose answer is past the window, taken again by a request
    /// still open while the sweep picks it, is the new request's: the
    /// sweep waits for it and then leaves it, so that request's retry
    /// replays its answer instead of making a second message.
    #[tokio::test]
    async fn the_sweep_leaves_a_key_taken_again_while_it_picked_it() {
        let store = super::super::test_support::test_store().await;
        let answer = IdempotentResponse { body_hash: vec![1], status: 202, body: b"old".to_vec() };
        let expired = now() - super::super::idempotency::IDEMPOTENCY_WINDOW - chrono::Duration::hours(1);
        store
            .write(move |tx| tx.claim_idempotency_keys(&[(b"key_s".to_vec(), answer.clone())], expired).map(|_| ()))
            .await
            .unwrap();
        let (mut holder, holder_pid) = holding(
            &store,
            "UPDATE idempotency SET body = 'new'::bytea, created_at = now() WHERE key = 'key_s'::bytea",
        )
        .await;
        let sweep = tokio::spawn({
            let store = store.clone();
            async move { store.purge_expired(chrono::Duration::days(1), 100).await }
        });
        until_blocked_by(&store, &[holder_pid], &["DELETE FROM idempotency%"]).await;
        tokio::task::spawn_blocking(move || holder.batch_execute("COMMIT").unwrap()).await.unwrap();
        let swept = sweep.await.unwrap().unwrap().unwrap();
        assert_eq!(swept.idempotency_keys, 0, "the sweep deleted a key taken again");
        let kept = store.read(|tx| tx.idempotent_response(b"key_s")).await.unwrap();
        assert_eq!(kept.map(|a| a.body), Some(b"new".to_vec()), "the new answer is kept");
    }

    /// The message writer's statement marks the queue entries of the
    /// deliveries it wrote due by itself, not only through the publisher
    /// after the commit (not running here), and marks none for a message it
    /// refused.
    #[tokio::test]
    async fn a_batch_marks_the_queue_entries_of_its_deliveries_and_only_those() {
        let store = Store::Postgres(super::super::test_support::unstarted_test_store().await);
        fixture(&store, &[("ep_a", None), ("ep_b", None)], 0).await;
        let due = "SELECT count(*) FROM endpoint_queue WHERE next_due IS NOT NULL";
        assert_eq!(count(&store, due).await, 0);
        store
            .write(|tx| {
                tx.insert_message(&crate::store::tests::message("msg_old", "app_f"))?;
                let fresh = crate::store::tests::message("msg_new", "app_f");
                let mut taken = crate::store::tests::message("msg_taken", "app_f");
                taken.event_id = Some("msg_old".into());
                let fanout = [delivery("msg_new", "ep_a"), delivery("msg_taken", "ep_b")];
                assert_eq!(tx.insert_messages_with_fanout(&[&fresh, &taken], &fanout)?, [true, false]);
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        assert_eq!(count(&store, due).await, 1, "one entry came due");
        let ep_a = "SELECT count(*) FROM endpoint_queue WHERE endpoint_id = 'ep_a' AND next_due IS NOT NULL";
        assert_eq!(count(&store, ep_a).await, 1, "ep_a's entry came due");
        assert_eq!(count(&store, "SELECT count(*) FROM delivery").await, 1, "only msg_new was fanned out");
    }

    /// A fan-out reads its application's endpoints, then writes deliveries
    /// to them. An endpoint deleted in between must wait for the fan-out
    /// (and then delete its delivery), not make the fan-out fail: the
    /// messages of a whole batch were refused when it did.
    #[tokio::test]
    async fn an_endpoint_deleted_while_a_fan_out_writes_to_it_does_not_fail_the_fan_out() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 0).await;
        let raced = delete_beside_open_write(
            &store,
            "fan_out_gate",
            |tx| {
                let targets = tx.fanout_targets_of(&["app_f".to_string()])?;
                // Kept open between reading the endpoints and writing to
                // them.
                tx.set_meta("fan_out_gate", "read")?;
                let msg = crate::store::tests::message("msg_fan", "app_f");
                let to: Vec<_> = targets["app_f"].iter().map(|t| delivery(&msg.id, &t.id)).collect();
                // As the message writer writes them.
                let inserted = tx.insert_messages_with_fanout(&[&msg], &to)?;
                assert_eq!(inserted, [true]);
                Ok(())
            },
            |tx| tx.delete_endpoint("app_f", "ep_a"),
        )
        .await;
        assert!(raced.waited, "the deletion did not wait for the writer");
        raced.written.expect("the fan-out was refused");
        raced.deleted.unwrap();
        let left = count(&store, "SELECT count(*) FROM delivery WHERE endpoint_id = 'ep_a'").await;
        assert_eq!(left, 0, "a delivery outlived its endpoint");
    }

    /// A deletion waits for the writers of its application; those that
    /// come after it wait for the deletion. With row locks a stream of
    /// overlapping fan-outs could keep a deletion waiting for ever.
    #[tokio::test]
    async fn a_waiting_deletion_holds_back_the_writers_that_come_after_it() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None), ("ep_b", None)], 0).await;
        // A writer of the application, kept open.
        let (mut writer, writer_pid) = holding(&store, &super::super::app_locks::shared_sql("app_f")).await;
        let deletion = tokio::spawn({
            let store = store.clone();
            async move { store.write(|tx| tx.delete_endpoint("app_f", "ep_a")).await }
        });
        let deletion_pids = until_blocked_by(&store, &[writer_pid], &["%pg_advisory_xact_lock(%"]).await;
        let finished = Arc::new(AtomicBool::new(false));
        let fan_out = tokio::spawn({
            let (store, finished) = (store.clone(), finished.clone());
            async move {
                let written = store
                    .write(|tx| {
                        let msg = crate::store::tests::message("msg_late", "app_f");
                        tx.insert_message(&msg)?;
                        tx.insert_deliveries(&[delivery(&msg.id, "ep_b")])
                    })
                    .await;
                finished.store(true, Ordering::SeqCst);
                written
            }
        });
        let held_back = until_blocked_or(&store, &deletion_pids, &["%pg_advisory_xact_lock_shared(%"], move || {
            finished.load(Ordering::SeqCst)
        })
        .await;
        assert!(!held_back.is_empty(), "a writer that came after the deletion went ahead of it");
        tokio::task::spawn_blocking(move || writer.batch_execute("ROLLBACK").unwrap()).await.unwrap();
        deletion.await.unwrap().unwrap();
        fan_out.await.unwrap().unwrap();
    }

    /// Messages have no foreign key to their application on PostgreSQL: a
    /// message written while its application is deleted must be waited
    /// for and deleted with it, not left behind.
    #[tokio::test]
    async fn a_message_written_while_its_application_is_deleted_goes_with_it() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 0).await;
        let ingest = |tx: &mut dyn crate::store::Tx| {
            let msg = crate::store::tests::message("msg_new", "app_f");
            assert_eq!(tx.insert_messages_with_fanout(&[&msg], &[])?, [true]);
            tx.set_meta("ingest_gate", "written")
        };
        let raced = delete_beside_open_write(&store, "ingest_gate", ingest, |tx| tx.delete_application("app_f")).await;
        assert!(raced.waited, "the deletion did not wait for the writer");
        raced.written.unwrap();
        raced.deleted.unwrap();
        let left = count(&store, "SELECT count(*) FROM message WHERE app_id = 'app_f'").await;
        assert_eq!(left, 0, "a message outlived its application");
    }

    /// The message writer's first statement (`check_applications_and_claim_keys`)
    /// holds the applications it finds, before it takes a key: the holds
    /// that follow in its transaction count on it and take nothing
    /// themselves.
    #[tokio::test]
    async fn the_message_writers_first_read_holds_its_applications() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 0).await;
        let read = |tx: &mut dyn crate::store::Tx| {
            let answer = IdempotentResponse { body_hash: vec![1], status: 202, body: vec![2] };
            let claim = crate::store::KeyClaim { app_id: "app_f", key: b"key_f", answer: &answer };
            let (found, taken) = tx.check_applications_and_claim_keys(&["app_f".to_string()], &[claim], now())?;
            assert!(found.contains("app_f") && taken.contains(b"key_f".as_slice()));
            tx.set_meta("read_gate", "read")
        };
        let raced = delete_beside_open_write(&store, "read_gate", read, |tx| tx.delete_application("app_f")).await;
        assert!(raced.waited, "the deletion did not wait for the writer that read its application");
        raced.written.unwrap();
        raced.deleted.unwrap();
    }

    /// A key another transaction has just inserted makes the writer's first
    /// statement wait for that transaction, holding its application (taken
    /// before any key), and then take the key if it was given back, or
    /// leave it (its answer is replayed) if it was kept.
    #[tokio::test]
    async fn the_first_statement_waits_for_a_key_in_flight_holding_its_application() {
        let store = super::super::test_support::test_store().await;
        fixture(&store, &[("ep_a", None)], 0).await;
        for outcome in ["ROLLBACK", "COMMIT"] {
            let key = format!("key_{outcome}");
            let (mut holder, holder_pid) = holding(
                &store,
                &format!(
                    "INSERT INTO idempotency (key, body_hash, status, body, created_at)
                     VALUES ('{key}'::bytea, ''::bytea, 202, ''::bytea, now())"
                ),
            )
            .await;
            let writer = tokio::spawn({
                let (store, key) = (store.clone(), key.clone());
                async move {
                    store
                        .write(move |tx| {
                            let answer = IdempotentResponse { body_hash: vec![1], status: 202, body: vec![2] };
                            let claim =
                                crate::store::KeyClaim { app_id: "app_f", key: key.as_bytes(), answer: &answer };
                            tx.check_applications_and_claim_keys(&["app_f".to_string()], &[claim], now())
                        })
                        .await
                }
            });
            let waiting = until_blocked_by(&store, &[holder_pid], &["WITH apps AS%"]).await;
            let mut watch = session(&store).await;
            let held: i64 = tokio::task::spawn_blocking(move || {
                watch
                    .query_one(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = ANY($1)",
                        &[&waiting],
                    )
                    .unwrap()
                    .get(0)
            })
            .await
            .unwrap();
            assert_eq!(held, 1, "{outcome}: the writer waits for the key without holding its application");
            tokio::task::spawn_blocking(move || holder.batch_execute(outcome).unwrap()).await.unwrap();
            let (apps, taken) = writer.await.unwrap().unwrap();
            assert!(apps.contains("app_f"), "{outcome}");
            assert_eq!(taken.contains(key.as_bytes()), outcome == "ROLLBACK", "{outcome}: {taken:?}");
        }
    }
}
