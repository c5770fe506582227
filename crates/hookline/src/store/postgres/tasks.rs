use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::store::model::{BackgroundTask, ResendFilter, TaskKind, TaskStatus, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{StoreError, StoreResult, TaskFilter, TaskRepo};

const COLUMNS: &str = "id, kind, status, app_id, endpoint_id, range_start, range_end, cursor, scheduled, error, \
                       created_at, updated_at, filter";

fn row(r: &Row) -> StoreResult<BackgroundTask> {
    let kind: String = col(r, 1)?;
    let status: String = col(r, 2)?;
    Ok(BackgroundTask {
        id: col(r, 0)?,
        kind: TaskKind::parse(&kind).ok_or_else(|| StoreError::Backend(format!("unknown task kind {kind:?}")))?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown task status {status:?}")))?,
        app_id: col(r, 3)?,
        endpoint_id: col(r, 4)?,
        since: col(r, 5)?,
        until: col(r, 6)?,
        cursor: col(r, 7)?,
        scheduled: col::<i64>(r, 8)? as u64,
        error: col(r, 9)?,
        filter: ResendFilter::decode(col::<Option<String>>(r, 12)?.as_deref())
            .ok_or_else(|| StoreError::Backend("a background task's filter is not one".into()))?,
        created_at: col(r, 10)?,
        updated_at: col(r, 11)?,
    })
}

impl TaskRepo for PgTx<'_, '_> {
    fn insert_task(&mut self, t: &BackgroundTask) -> StoreResult<()> {
        self.insert_new(
            "a background task with this id",
            1,
            &format!(
                "INSERT INTO background_task ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &t.id,
                &t.kind.as_str(),
                &t.status.as_str(),
                &t.app_id,
                &t.endpoint_id,
                &t.since,
                &t.until,
                &t.cursor,
                &(t.scheduled as i64),
                &t.error,
                &t.created_at,
                &t.updated_at,
                &t.filter.encode(),
            ],
        )?;
        Ok(())
    }

    fn task(&mut self, id: &str) -> StoreResult<Option<BackgroundTask>> {
        self.query_opt(&format!("SELECT {COLUMNS} FROM background_task WHERE id = $1"), &[&id])?
            .map(|r| row(&r))
            .transpose()
    }

    fn list_tasks(&mut self, filter: &TaskFilter, query: &ListQuery) -> StoreResult<Page<BackgroundTask>> {
        let mut params = Params::default();
        let mut base = format!("SELECT {COLUMNS} FROM background_task WHERE TRUE");
        if let Some(app_id) = &filter.app_id {
            base.push_str(&format!(" AND app_id = {}", params.add(app_id.clone())));
        }
        if let Some(status) = filter.status {
            base.push_str(&format!(" AND status = {}", params.add(status.as_str())));
        }
        if let Some(kind) = filter.kind {
            base.push_str(&format!(" AND kind = {}", params.add(kind.as_str())));
        }
        paginate(self, &base, params, "id", query, row, |t| t.id.clone())
    }

    // The row lock keeps the step to one node; SKIP LOCKED lets the others
    // step other tasks meanwhile.
    fn next_running_task(&mut self) -> StoreResult<Option<BackgroundTask>> {
        self.query_opt(
            &format!(
                "SELECT {COLUMNS} FROM background_task WHERE status = 'running' ORDER BY updated_at, id LIMIT 1
                 FOR UPDATE SKIP LOCKED"
            ),
            &[],
        )?
        .map(|r| row(&r))
        .transpose()
    }

    fn update_task(&mut self, t: &BackgroundTask) -> StoreResult<()> {
        let changed = self.execute(
            "UPDATE background_task SET status = $1, cursor = $2, scheduled = $3, error = $4, updated_at = $5
             WHERE id = $6",
            &[&t.status.as_str(), &t.cursor, &(t.scheduled as i64), &t.error, &t.updated_at, &t.id],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn defer_next_running_task(&mut self, now: Timestamp) -> StoreResult<()> {
        self.execute(
            "UPDATE background_task SET updated_at = $1 WHERE id = (SELECT id FROM background_task
             WHERE status = 'running' ORDER BY updated_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)",
            &[&now],
        )?;
        Ok(())
    }

    fn purge_ended_tasks(&mut self, before: Timestamp) -> StoreResult<usize> {
        Ok(self.execute("DELETE FROM background_task WHERE status <> 'running' AND updated_at < $1", &[&before])?
            as usize)
    }
}
