//! The message writer's reads, two statements where the operations they
//! are made of take four: a batch is five round trips (BEGIN, these two,
//! the messages with their deliveries, COMMIT) instead of seven.

use std::collections::HashSet;

use super::idempotency::IDEMPOTENCY_WINDOW;
use super::sql::*;
use super::PgTx;
use crate::store::model::{EventType, Timestamp};
use crate::store::{KeyClaim, MessageBatchRepo, StoreResult, TargetsByApp};

impl MessageBatchRepo for PgTx<'_, '_> {
    fn check_applications_and_claim_keys(
        &mut self,
        app_ids: &[String],
        claims: &[KeyClaim<'_>],
        now: Timestamp,
    ) -> StoreResult<(HashSet<String>, HashSet<Vec<u8>>)> {
        if app_ids.is_empty() {
            return Ok((HashSet::new(), HashSet::new()));
        }
        // Keys are taken in key order, so two batches that share keys wait
        // on each other in one order rather than deadlock; the ORDER BY
        // keeps that order whatever the plan does with the check. Claims
        // that share a key keep their order (a stable sort), so the first
        // whose application exists is the one `DISTINCT ON` keeps.
        let mut sorted: Vec<&KeyClaim<'_>> = claims.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(b.key));
        let claim_apps: Vec<&str> = sorted.iter().map(|c| c.app_id).collect();
        let keys: Vec<&[u8]> = sorted.iter().map(|c| c.key).collect();
        let hashes: Vec<&[u8]> = sorted.iter().map(|c| c.answer.body_hash.as_slice()).collect();
        let statuses: Vec<i32> = sorted.iter().map(|c| i32::from(c.answer.status)).collect();
        let bodies: Vec<&[u8]> = sorted.iter().map(|c| c.answer.body.as_slice()).collect();
        let expired = now - IDEMPOTENCY_WINDOW;
        // `apps` is read twice, so it is materialized, and the main query
        // reads it first: the applications are held (`app_locks`) before
        // any key is taken, as when these were two statements. A key
        // another transaction holds makes the insert wait for it; then it
        // is answered (not taken) or given back (taken).
        let rows = self.query(
            &format!(
                "WITH apps AS (
                   SELECT id FROM application WHERE id = ANY({ids}) AND {held}
                 ), taken AS (
                   INSERT INTO idempotency (key, body_hash, status, body, created_at)
                   SELECT DISTINCT ON (c.key) c.key, c.body_hash, c.status, c.body, $7
                   FROM unnest({claim_apps}, {keys}, {hashes}, {statuses}, {bodies}) WITH ORDINALITY
                     AS c(app_id, key, body_hash, status, body, n)
                   WHERE c.app_id IN (SELECT id FROM apps)
                   ORDER BY c.key, c.n
                   ON CONFLICT (key) DO UPDATE SET
                     body_hash = excluded.body_hash, status = excluded.status, body = excluded.body, created_at = $7
                   WHERE idempotency.created_at <= $8
                   RETURNING key
                 )
                 SELECT id, NULL::bytea FROM apps
                 UNION ALL
                 SELECT NULL, key FROM taken",
                ids = opaque(1, "text[]"),
                held = super::app_locks::held_shared_condition(1),
                claim_apps = opaque(2, "text[]"),
                keys = opaque(3, "bytea[]"),
                hashes = opaque(4, "bytea[]"),
                statuses = opaque(5, "int4[]"),
                bodies = opaque(6, "bytea[]"),
            ),
            &[&app_ids, &claim_apps, &keys, &hashes, &statuses, &bodies, &now, &expired],
        )?;
        let held: Vec<&str> = app_ids.iter().map(String::as_str).collect();
        super::app_locks::mark_held(self, &held);
        let (mut apps, mut taken) = (HashSet::new(), HashSet::new());
        for r in &rows {
            match (col::<Option<String>>(r, 0)?, col::<Option<Vec<u8>>>(r, 1)?) {
                (Some(app), _) => apps.insert(app),
                (None, Some(key)) => taken.insert(key),
                (None, None) => false,
            };
        }
        Ok((apps, taken))
    }

    fn event_types_and_fanout_targets(
        &mut self,
        names: &[String],
        app_ids: &[String],
    ) -> StoreResult<(Vec<EventType>, TargetsByApp)> {
        let mut by_app: TargetsByApp = app_ids.iter().map(|a| (a.clone(), Vec::new())).collect();
        if names.is_empty() && app_ids.is_empty() {
            return Ok((Vec::new(), by_app));
        }
        // As in `fanout_targets_of`: the applications are held first
        // (usually already, by the batch's first statement), so that the
        // endpoints read stay until the fan-out commits.
        let held: Vec<&str> = app_ids.iter().map(String::as_str).collect();
        super::app_locks::hold_shared(self, &held)?;
        // One result of two kinds: an event type's columns, or (app_id not
        // NULL) a fan-out target's. The fan-out's part is planned for its
        // values, as `fanout_targets_of` explains.
        let rows = self.query(
            &format!(
                "SELECT {event_type}, NULL::text, NULL::text, NULL::bool, NULL::text, NULL::text
                 FROM event_type WHERE name = ANY({names})
                 UNION ALL
                 (SELECT NULL::text, NULL::text, NULL::bool, NULL::bool, NULL::text, NULL::text, NULL::bool,
                         NULL::timestamptz, NULL::timestamptz, NULL::text, NULL::text,
                         app_id, id, disabled, filter_types, channels
                  FROM endpoint WHERE app_id = ANY($2) ORDER BY app_id, id)",
                event_type = super::event_types::COLUMNS,
                names = opaque(1, "text[]"),
            ),
            &[&names, &app_ids],
        )?;
        let mut types = Vec::new();
        for r in &rows {
            match col::<Option<String>>(r, TARGET_AT)? {
                None => types.push(super::event_types::row(r)?),
                Some(app) => by_app.entry(app).or_default().push(super::endpoints::fanout_target(r, TARGET_AT + 1)?),
            }
        }
        Ok((types, by_app))
    }
}

/// Where a fan-out target's columns start in `event_types_and_fanout_targets`
/// (after the event type's eleven).
const TARGET_AT: usize = 11;
