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
