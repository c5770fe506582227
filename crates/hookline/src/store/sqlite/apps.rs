use std::collections::HashSet;

use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::ids::IdKind;
use crate::store::model::Application;
use crate::store::page::{ListQuery, Page};
use crate::store::{ApplicationRepo, StoreError, StoreResult};

const COLUMNS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: r.get(0)?,
        uid: r.get(1)?,
        name: r.get(2)?,
        rate_limit: r.get(3)?,
        metadata: from_json(&r.get::<_, String>(4)?)?,
        created_at: from_ms(r.get(5)?),
        updated_at: from_ms(r.get(6)?),
    })
}

impl ApplicationRepo for SqliteTx<'_> {
    fn insert_application(&mut self, a: &Application) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!("INSERT INTO application ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    a.id,
                    a.uid,
                    a.name,
                    a.rate_limit,
                    to_json(&a.metadata),
                    ms(&a.created_at),
                    ms(&a.updated_at)
                ])
            })
            .map_err(conflict_as("an application with this uid"))?;
        Ok(())
    }

    fn application(&mut self, key: &str) -> StoreResult<Option<Application>> {
        let column = if IdKind::Application.matches(key) { "id" } else { "uid" };
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM application WHERE {column} = ?"))
            .and_then(|mut s| s.query_row([key], row).optional())
            .map_err(backend)
    }

    fn application_for_update(&mut self, id: &str) -> StoreResult<Option<Application>> {
        // The single writer holds every row for the whole transaction.
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM application WHERE id = ?"))
            .and_then(|mut s| s.query_row([id], row).optional())
            .map_err(backend)
    }

    fn existing_application_ids(&mut self, ids: &[String]) -> StoreResult<HashSet<String>> {
        // By primary key, one at a time: on the writer thread each is a
        // B-tree descent, cheaper than building an array to join.
        let mut stmt = self.conn.prepare_cached("SELECT 1 FROM application WHERE id = ?").map_err(backend)?;
        let mut found = HashSet::new();
        for id in ids {
            if stmt.exists([id]).map_err(backend)? {
                found.insert(id.clone());
            }
        }
        Ok(found)
    }

    fn list_applications(&mut self, query: &ListQuery) -> StoreResult<Page<Application>> {
        // The operational webhooks' internal application is nobody's to list.
        let base = format!("SELECT {COLUMNS} FROM application WHERE id <> ?");
        let params = vec![crate::operational::APP_ID.to_string().into()];
        paginate(self.conn, &base, params, "id", query, row, |a| a.id.clone())
    }

    fn update_application(&mut self, a: &Application) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE application SET uid = ?, name = ?, rate_limit = ?, metadata = ?, updated_at = ? WHERE id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![a.uid, a.name, a.rate_limit, to_json(&a.metadata), ms(&a.updated_at), a.id])
            })
            .map_err(conflict_as("an application with this uid"))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_application(&mut self, id: &str) -> StoreResult<()> {
        let changed = self.conn.execute("DELETE FROM application WHERE id = ?", [id]).map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
