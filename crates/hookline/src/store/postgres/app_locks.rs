//! Applications held against deletion while their messages, deliveries
//! and attempts are written: advisory locks, in place of the foreign keys
//! those tables do not have on PostgreSQL (a key's check was a query and a
//! row lock per inserted row).
//!
//! Everything that writes those rows (a message batch, a fan-out, a
//! resend, an outcome batch) holds its applications shared until it ends;
//! deleting an endpoint or an application holds that application
//! exclusively first. So a deletion waits for the writers already running
//! and then, in statements of its own, deletes what they wrote; a writer
//! that comes later waits for the deletion.
//!
//! A statement that waited for a lock still reads from the snapshot it
//! started with. So a read that must see a deletion it waited for comes in
//! a later statement than the lock (`hold_shared`). Where reading what was
//! there before the wait is harmless, the lock is a condition of the read
//! itself, one round trip fewer (`held_shared_condition`): the message
//! writer's check of its applications (its inserts find them again) and
//! an outcome batch's read of its endpoints' health (a deleted endpoint
//! has no rows left to write).
//!
//! These were row locks on the endpoints (`FOR KEY SHARE`) and on the
//! application (the messages' foreign key) before. A row lock is a write to
//! the row and to the WAL, and a row locked by several transactions at once
//! becomes a multixact that each of them updates: every batch of every node
//! writing to one application did that to the same rows. An advisory lock
//! lives in the lock manager only, and its queue is fair: a deletion that
//! waits holds back the writers that come after it, where a stream of
//! overlapping row lockers could hold it off for ever.
//!
//! Locks are keyed by `hashtext` of the application id in a class of their
//! own (two-key form: no clash with the single-key locks of the sweep,
//! sampler and migrations). Applications that share a key only wait for
//! each other's deletions.

use super::PgTx;
use crate::store::StoreResult;

/// The first key of every application's lock ("hlap").
const CLASS: i32 = 0x686c_6170;

/// Holds the applications of the `text[]` parameter `$param` shared, in
/// key order (so that transactions holding several never wait for each
/// other in a cycle); always true. As a condition of a statement it is an
/// InitPlan, run once before the statement reads anything; what the
/// statement reads is still from before any wait.
pub(super) fn held_shared_condition(param: usize) -> String {
    format!(
        "(SELECT count(pg_advisory_xact_lock_shared({CLASS}, k))
          FROM (SELECT DISTINCT hashtext(a) AS k FROM unnest({}) AS a ORDER BY k) keys) >= 0",
        super::sql::opaque(param, "text[]")
    )
}

/// Holds `app_ids` against deletion until the transaction ends; those it
/// already holds cost nothing. A statement of its own: those after it see
/// any deletion it waited for.
pub(super) fn hold_shared(tx: &mut PgTx<'_, '_>, app_ids: &[&str]) -> StoreResult<()> {
    let mut new: Vec<&str> = app_ids.iter().copied().filter(|a| !holds(tx, a)).collect();
    new.sort_unstable();
    new.dedup();
    if new.is_empty() {
        return Ok(());
    }
    tx.execute(&format!("SELECT {}", held_shared_condition(1)), &[&new])?;
    mark_held(tx, &new);
    Ok(())
}

/// Records that a statement with `held_shared_condition` held `app_ids`.
pub(super) fn mark_held(tx: &mut PgTx<'_, '_>, app_ids: &[&str]) {
    for a in app_ids {
        if !holds(tx, a) {
            tx.held_apps.push(a.to_string());
        }
    }
}

/// Whether this transaction already holds `app_id`.
fn holds(tx: &PgTx<'_, '_>, app_id: &str) -> bool {
    tx.held_apps.iter().any(|h| h == app_id)
}

/// Waits until no transaction holds `app_id`, then keeps every new one
/// waiting until this one ends.
pub(super) fn hold_exclusively(tx: &mut PgTx<'_, '_>, app_id: &str) -> StoreResult<()> {
    tx.execute("SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", &[&CLASS, &app_id])?;
    Ok(())
}

/// The statement that holds `app_id` as a deletion does, for tests that
/// stand in for one.
#[cfg(test)]
pub(super) fn exclusive_sql(app_id: &str) -> String {
    format!("SELECT pg_advisory_xact_lock({CLASS}, hashtext('{app_id}'))")
}

/// The statement that holds `app_id` as a writer does, for tests.
#[cfg(test)]
pub(super) fn shared_sql(app_id: &str) -> String {
    format!("SELECT pg_advisory_xact_lock_shared({CLASS}, hashtext('{app_id}'))")
}
