use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::store::model::{Integration, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{IntegrationRepo, StoreError, StoreResult};

const COLUMNS: &str = "id, app_id, name, feature_flags, key_version, created_at, updated_at";

fn row(r: &Row) -> StoreResult<Integration> {
    Ok(Integration {
        id: col(r, 0)?,
        app_id: col(r, 1)?,
        name: col(r, 2)?,
        feature_flags: opt_from_json(col(r, 3)?)?,
        key_version: col(r, 4)?,
        created_at: col(r, 5)?,
        updated_at: col(r, 6)?,
    })
}

impl IntegrationRepo for PgTx<'_, '_> {
    fn insert_integration(&mut self, i: &Integration) -> StoreResult<()> {
        self.insert_new(
            "an integration with this id",
            1,
            &format!("INSERT INTO integration ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"),
            &[&i.id, &i.app_id, &i.name, &opt_json(&i.feature_flags), &i.key_version, &i.created_at, &i.updated_at],
        )?;
        Ok(())
    }

    fn integration(&mut self, app_id: &str, id: &str) -> StoreResult<Option<Integration>> {
        self.query_opt(&format!("SELECT {COLUMNS} FROM integration WHERE app_id = $1 AND id = $2"), &[&app_id, &id])?
            .map(|r| row(&r))
            .transpose()
    }

    fn list_integrations(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Integration>> {
        let mut params = Params::default();
        let base = format!("SELECT {COLUMNS} FROM integration WHERE app_id = {}", params.add(app_id.to_string()));
        paginate(self, &base, params, "id", query, row, |i| i.id.clone())
    }

    fn update_integration(&mut self, i: &Integration) -> StoreResult<()> {
        let changed = self.execute(
            "UPDATE integration SET name = $1, feature_flags = $2, updated_at = $3 WHERE app_id = $4 AND id = $5",
            &[&i.name, &opt_json(&i.feature_flags), &i.updated_at, &i.app_id, &i.id],
        )?;
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
        self.query_opt(
            &format!(
                "UPDATE integration SET key_version = key_version + 1, updated_at = $1
                 WHERE app_id = $2 AND id = $3 AND ($4::BIGINT IS NULL OR key_version = $4) RETURNING {COLUMNS}"
            ),
            &[&now, &app_id, &id, &from],
        )?
        .map(|r| row(&r))
        .transpose()
    }

    fn delete_integration(&mut self, app_id: &str, id: &str) -> StoreResult<()> {
        let changed = self.execute("DELETE FROM integration WHERE app_id = $1 AND id = $2", &[&app_id, &id])?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
