use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::{Integration, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{IntegrationRepo, StoreError, StoreResult};

const COLUMNS: &str = "id, app_id, name, feature_flags, key_version, created_at, updated_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Integration> {
    Ok(Integration {
        id: r.get(0)?,
        app_id: r.get(1)?,
        name: r.get(2)?,
        feature_flags: opt_from_json(r.get(3)?)?,
        key_version: r.get(4)?,
        created_at: from_ms(r.get(5)?),
        updated_at: from_ms(r.get(6)?),
    })
}

impl IntegrationRepo for SqliteTx<'_> {
    fn insert_integration(&mut self, i: &Integration) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!("INSERT INTO integration ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    i.id,
                    i.app_id,
                    i.name,
                    opt_json(&i.feature_flags),
                    i.key_version,
                    ms(&i.created_at),
                    ms(&i.updated_at)
                ])
            })
            .map_err(conflict_as("an integration with this id"))?;
        Ok(())
    }

    fn integration(&mut self, app_id: &str, id: &str) -> StoreResult<Option<Integration>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM integration WHERE app_id = ? AND id = ?"))
            .and_then(|mut s| s.query_row([app_id, id], row).optional())
            .map_err(backend)
    }

    fn list_integrations(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Integration>> {
        let base = format!("SELECT {COLUMNS} FROM integration WHERE app_id = ?");
        paginate(self.conn, &base, vec![app_id.to_string().into()], "id", query, row, |i| i.id.clone())
    }

    fn update_integration(&mut self, i: &Integration) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE integration SET name = ?, feature_flags = ?, updated_at = ? WHERE app_id = ? AND id = ?",
            )
            .and_then(|mut s| s.execute(params![i.name, opt_json(&i.feature_flags), ms(&i.updated_at), i.app_id, i.id]))
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn rotate_integration_key(
        &mut self,
        app_id: &str,
        id: &str,
        from: Option<i64>,
        now: Timestamp,
    ) -> StoreResult<Option<Integration>> {
        self.conn
            .prepare_cached(&format!(
                "UPDATE integration SET key_version = key_version + 1, updated_at = ?
                 WHERE app_id = ? AND id = ? AND (?4 IS NULL OR key_version = ?4) RETURNING {COLUMNS}"
            ))
            .and_then(|mut s| s.query_row(params![ms(&now), app_id, id, from], row).optional())
            .map_err(backend)
    }

    fn delete_integration(&mut self, app_id: &str, id: &str) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached("DELETE FROM integration WHERE app_id = ? AND id = ?")
            .and_then(|mut s| s.execute([app_id, id]))
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
