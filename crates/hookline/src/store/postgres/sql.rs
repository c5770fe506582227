//! Small conversions shared by the PostgreSQL repositories.

use postgres::types::ToSql;
use postgres::Row;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::PgTx;
use crate::store::model::DeliveryStatus;
use crate::store::page::{Cursor, ListQuery, Order, Page};
use crate::store::{StoreError, StoreResult};

/// Status numbers as stored (`DeliveryStatus`), for SQL text.
pub const SUCCESS: i16 = DeliveryStatus::Success as i16;
pub const PENDING: i16 = DeliveryStatus::Pending as i16;
pub const FAILED: i16 = DeliveryStatus::Failed as i16;
pub const SENDING: i16 = DeliveryStatus::Sending as i16;

pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store values serialize")
}

pub fn opt_json<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(to_json)
}

/// Decodes a JSON column; a bad value is corruption.
pub fn from_json<T: DeserializeOwned>(text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(format!("a stored JSON column is corrupt: {e}")))
}

pub fn opt_from_json<T: DeserializeOwned>(text: Option<String>) -> StoreResult<Option<T>> {
    text.map(|t| from_json(&t)).transpose()
}

/// A column by index; a type mismatch is a bug or corruption.
pub fn col<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize) -> StoreResult<T> {
    row.try_get(index).map_err(|e| StoreError::Backend(format!("reading column {index}: {e}")))
}

pub fn status(row: &Row, index: usize) -> StoreResult<DeliveryStatus> {
    let n: i16 = col(row, index)?;
    DeliveryStatus::from_i64(n as i64).ok_or_else(|| StoreError::Backend(format!("unknown delivery status {n}")))
}

/// `columns` ("a, b") qualified with a table alias ("m.a, m.b"), for joins.
pub fn qualified(columns: &str, alias: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Parameter `$n` of type `ty`, known to the planner only when the
/// statement runs (an InitPlan), in every plan alike.
///
/// The server's `auto` plan cache mode plans a prepared statement for its
/// values until a plan made once (generic) costs no more than those. A
/// plan for the values sees an array's length, a generic one guesses ten
/// elements, so a statement that looks up a few keys by array stays dearer
/// generic and is planned again on every run: in a 13 s ingest run,
/// planning the four that use this took 1.4 s, a ninth of PostgreSQL's
/// CPU. Hidden from both, the array costs the same either way, so the
/// plan made on the sixth run is kept, and it looks the keys up just the
/// same. Only for statements whose best plan does not depend on the
/// values: lookups by a unique key.
pub fn opaque(n: usize, ty: &str) -> String {
    // The cast outside keeps `= ANY(…)` an array comparison rather than
    // a comparison with a subquery's rows.
    format!("(SELECT ${n}::{ty})::{ty}")
}

/// A statement's parameters, numbered as they are added.
#[derive(Default)]
pub struct Params {
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value; returns its placeholder (`$n`).
    pub fn add(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(v));
        format!("${}", self.values.len())
    }

    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// Runs a keyset-paginated listing: `base` is a SELECT with a WHERE clause
/// (use `TRUE` for none) whose rows `map` decodes; `key_column` is unique
/// and is what iterators hold.
pub fn paginate<T>(
    tx: &mut PgTx<'_, '_>,
    base: &str,
    mut params: Params,
    key_column: &str,
    query: &ListQuery,
    map: impl Fn(&Row) -> StoreResult<T>,
    key: impl Fn(&T) -> String,
) -> StoreResult<Page<T>> {
    let ascending = query.order == Order::Ascending;
    // Travelling backwards flips both the comparison and the sort.
    let (compare, sort_ascending) = match &query.cursor {
        None => (None, ascending),
        Some(Cursor::After(k)) => (Some((if ascending { ">" } else { "<" }, k)), ascending),
        Some(Cursor::Before(k)) => (Some((if ascending { "<" } else { ">" }, k)), !ascending),
    };
    let mut sql = base.to_string();
    if let Some((op, k)) = compare {
        let p = params.add(k.clone());
        sql.push_str(&format!(" AND {key_column} {op} {p}"));
    }
    sql.push_str(&format!(
        " ORDER BY {key_column} {} LIMIT {}",
        if sort_ascending { "ASC" } else { "DESC" },
        query.limit + 1
    ));
    let rows = tx.query(&sql, &params.refs())?;
    let rows = rows.iter().map(map).collect::<StoreResult<Vec<T>>>()?;
    Ok(Page::from_rows(rows, query, key))
}

#[cfg(test)]
mod tests {
    use crate::store::model::{now, IdempotentResponse};
    use crate::store::queue::{ClaimSource, Look, QueueUpdate};
    use crate::store::tests::{app, endpoint};
    use crate::store::{EventTypeRepo, KeyClaim, MessageBatchRepo, Store};

    /// The lookups by array that run for every message batch and every
    /// claim (and an import's event types) keep the plan made on their
    /// sixth run; a plain `= ANY($1)` beside them is planned again on
    /// every run, which is what `opaque` avoids. (The batch's event types
    /// are read with its fan-out targets, in a statement planned for its
    /// values on purpose: see `fanout_targets_of`.) (`generic_plans` is
    /// there since PostgreSQL 14.)
    #[tokio::test]
    async fn lookups_by_array_are_planned_once_not_on_every_run() {
        let pg = super::super::test_support::unstarted_test_store().await;
        Store::Postgres(pg.clone())
            .write(|tx| {
                tx.insert_application(&app("app_p"))?;
                tx.insert_endpoint(&endpoint("ep_p", "app_p", None))
            })
            .await
            .unwrap();
        let plans = pg
            .dispatcher_op(|tx| {
                let apps = vec!["app_p".to_string()];
                for _ in 0..8 {
                    let answer = IdempotentResponse { body_hash: vec![1], status: 202, body: vec![2] };
                    let claim = KeyClaim { app_id: "app_p", key: b"key_p", answer: &answer };
                    tx.check_applications_and_claim_keys(&apps, &[claim], now())?;
                    tx.event_types_named(&["t".to_string()])?;
                    super::super::deliveries::enqueue_committed_and_notify(tx, &["ep_p"], &[None], "hl_test")?;
                    let look = Look::AtEarliestWork { not_before: None };
                    tx.settle(&[QueueUpdate { endpoint_id: "ep_p".into(), look, next_slot: None }], &[])?;
                    tx.query("SELECT id FROM application WHERE id = ANY($1)", &[&apps])?;
                }
                let rows = tx.query(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
                     WHERE generic_plans + custom_plans = 8",
                    &[],
                )?;
                Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))).collect::<Vec<_>>())
            })
            .await
            .unwrap();
        let generic = |needle: &str| {
            let found: Vec<i64> = plans.iter().filter(|(s, _)| s.contains(needle)).map(|(_, g)| *g).collect();
            assert_eq!(found.len(), 1, "one statement run 8 times contains {needle:?}: {plans:#?}");
            found[0]
        };
        for needle in [
            "FROM application WHERE id = ANY((SELECT",
            "FROM event_type WHERE name = ANY(",
            "SET next_due = LEAST(q.next_due, u.due)",
            "WITH settled AS",
        ] {
            assert!(generic(needle) >= 3, "{needle:?} is planned on every run: {plans:#?}");
        }
        assert_eq!(generic("FROM application WHERE id = ANY($1)"), 0, "the plain lookup: {plans:#?}");
    }
}
