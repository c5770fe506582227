use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::{BackgroundTask, ResendFilter, TaskKind, TaskStatus, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{StoreError, StoreResult, TaskFilter, TaskRepo};

const COLUMNS: &str = "id, kind, status, app_id, endpoint_id, range_start, range_end, cursor, scheduled, error, \
                       created_at, updated_at, filter";

fn row(r: &Row<'_>) -> rusqlite::Result<BackgroundTask> {
    let text = |i: usize| r.get::<_, String>(i);
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, format!("unknown {what}").into())
    };
    Ok(BackgroundTask {
        id: r.get(0)?,
        kind: TaskKind::parse(&text(1)?).ok_or_else(|| bad(1, "task kind"))?,
        status: TaskStatus::parse(&text(2)?).ok_or_else(|| bad(2, "task status"))?,
        app_id: r.get(3)?,
        endpoint_id: r.get(4)?,
        since: from_ms(r.get(5)?),
        until: from_ms(r.get(6)?),
        cursor: r.get(7)?,
        scheduled: r.get::<_, i64>(8)? as u64,
        error: r.get(9)?,
        filter: ResendFilter::decode(r.get::<_, Option<String>>(12)?.as_deref()).ok_or_else(|| bad(12, "filter"))?,
        created_at: from_ms(r.get(10)?),
        updated_at: from_ms(r.get(11)?),
    })
}

impl TaskRepo for SqliteTx<'_> {
    fn insert_task(&mut self, t: &BackgroundTask) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO background_task ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    t.id,
                    t.kind.as_str(),
                    t.status.as_str(),
                    t.app_id,
                    t.endpoint_id,
                    ms(&t.since),
                    ms(&t.until),
                    t.cursor,
                    t.scheduled as i64,
                    t.error,
                    ms(&t.created_at),
                    ms(&t.updated_at),
                    t.filter.encode()
                ])
            })
            .map_err(conflict_as("a background task with this id"))?;
        Ok(())
    }

    fn task(&mut self, id: &str) -> StoreResult<Option<BackgroundTask>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM background_task WHERE id = ?"))
            .and_then(|mut s| s.query_row([id], row).optional())
            .map_err(backend)
    }

    fn list_tasks(&mut self, filter: &TaskFilter, query: &ListQuery) -> StoreResult<Page<BackgroundTask>> {
        let mut base = format!("SELECT {COLUMNS} FROM background_task WHERE 1=1");
        let mut values: Vec<SqlValue> = Vec::new();
        if let Some(app_id) = &filter.app_id {
            base.push_str(" AND app_id = ?");
            values.push(SqlValue::Text(app_id.clone()));
        }
        if let Some(status) = filter.status {
            base.push_str(" AND status = ?");
            values.push(SqlValue::Text(status.as_str().into()));
        }
        if let Some(kind) = filter.kind {
            base.push_str(" AND kind = ?");
            values.push(SqlValue::Text(kind.as_str().into()));
        }
        paginate(self.conn, &base, values, "id", query, row, |t| t.id.clone())
    }

    // One process owns the embedded store and its writes are serial: the
    // oldest running task is free to step.
    fn next_running_task(&mut self) -> StoreResult<Option<BackgroundTask>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM background_task WHERE status = 'running' ORDER BY updated_at, id LIMIT 1"
            ))
            .and_then(|mut s| s.query_row([], row).optional())
            .map_err(backend)
    }

    fn update_task(&mut self, t: &BackgroundTask) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE background_task SET status = ?, cursor = ?, scheduled = ?, error = ?, updated_at = ? WHERE id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![t.status.as_str(), t.cursor, t.scheduled as i64, t.error, ms(&t.updated_at), t.id])
            })
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn defer_next_running_task(&mut self, now: Timestamp) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "UPDATE background_task SET updated_at = ? WHERE id = (SELECT id FROM background_task
                 WHERE status = 'running' ORDER BY updated_at, id LIMIT 1)",
            )
            .and_then(|mut s| s.execute([ms(&now)]))
            .map_err(backend)?;
        Ok(())
    }

    fn purge_ended_tasks(&mut self, before: Timestamp) -> StoreResult<usize> {
        self.conn
            .prepare_cached("DELETE FROM background_task WHERE status <> 'running' AND updated_at < ?")
            .and_then(|mut s| s.execute([ms(&before)]))
            .map_err(backend)
    }
}
