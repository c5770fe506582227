//! Small conversions shared by the SQLite repositories.

use chrono::{TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::backend;
use crate::store::model::{DeliveryStatus, Timestamp};
use crate::store::page::{Cursor, ListQuery, Order, Page};
use crate::store::{StoreError, StoreResult};

/// A delivery status column, decoded; an unknown number is a row error.
pub fn status_at(r: &Row<'_>, index: usize) -> rusqlite::Result<DeliveryStatus> {
    let n: i64 = r.get(index)?;
    DeliveryStatus::from_i64(n).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Integer,
            format!("unknown delivery status {n}").into(),
        )
    })
}

pub fn ms(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(v: i64) -> Timestamp {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

pub fn opt_from_ms(v: Option<i64>) -> Option<Timestamp> {
    v.map(from_ms)
}

pub fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("store values serialize")
}

pub fn opt_json<T: Serialize>(v: &Option<T>) -> Option<String> {
    v.as_ref().map(to_json)
}

/// Decodes a JSON column; a bad value is corruption, reported as a row error.
pub fn from_json<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

pub fn opt_from_json<T: DeserializeOwned>(text: Option<String>) -> rusqlite::Result<Option<T>> {
    text.map(|t| from_json(&t)).transpose()
}

/// `columns` ("a, b") qualified with a table alias ("m.a, m.b"), for joins.
pub fn qualified(columns: &str, alias: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

/// Maps a unique-constraint violation to `Conflict(what)`, and a row that
/// refers to one that is gone (a foreign key) to `NotFound`.
pub fn conflict_as(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match &e {
        rusqlite::Error::SqliteFailure(err, _) => match err.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                StoreError::Conflict(what)
            }
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::NotFound,
            _ => backend(e),
        },
        _ => backend(e),
    }
}

/// Runs a keyset-paginated listing: `base` is a SELECT with a WHERE clause
/// (use `1=1` for none) whose rows `map` decodes; `key_column` is unique and
/// is what iterators hold.
pub fn paginate<T>(
    conn: &Connection,
    base: &str,
    mut params: Vec<SqlValue>,
    key_column: &str,
    query: &ListQuery,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
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
        sql.push_str(&format!(" AND {key_column} {op} ?"));
        params.push(SqlValue::Text(k.clone()));
    }
    // The limit is bound, not written in: one cached statement serves every page size.
    sql.push_str(&format!(" ORDER BY {key_column} {} LIMIT ?", if sort_ascending { "ASC" } else { "DESC" }));
    params.push(SqlValue::Integer(query.limit as i64 + 1));
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| map(r))
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(backend)?;
    Ok(Page::from_rows(rows, query, key))
}
