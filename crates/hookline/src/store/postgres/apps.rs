use std::collections::HashSet;

use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::ids::IdKind;
use crate::store::model::Application;
use crate::store::page::{ListQuery, Page};
use crate::store::{ApplicationRepo, StoreError, StoreResult};

const COLUMNS: &str = "id, uid, name, rate_limit, metadata, created_at, updated_at";

fn row(r: &Row) -> StoreResult<Application> {
    Ok(Application {
        id: col(r, 0)?,
        uid: col(r, 1)?,
        name: col(r, 2)?,
        rate_limit: col::<Option<i32>>(r, 3)?.map(|n| n as u32),
        metadata: from_json(&col::<String>(r, 4)?)?,
        created_at: col(r, 5)?,
        updated_at: col(r, 6)?,
    })
}

impl ApplicationRepo for PgTx<'_, '_> {
    fn insert_application(&mut self, a: &Application) -> StoreResult<()> {
        self.insert_new(
            "an application with this uid",
            1,
            &format!("INSERT INTO application ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"),
            &[
                &a.id,
                &a.uid,
                &a.name,
                &a.rate_limit.map(|n| n as i32),
                &to_json(&a.metadata),
                &a.created_at,
                &a.updated_at,
            ],
        )?;
        Ok(())
    }

    fn application(&mut self, key: &str) -> StoreResult<Option<Application>> {
        let column = if IdKind::Application.matches(key) { "id" } else { "uid" };
        self.query_opt(&format!("SELECT {COLUMNS} FROM application WHERE {column} = $1"), &[&key])?
            .map(|r| row(&r))
            .transpose()
    }

    fn application_for_update(&mut self, id: &str) -> StoreResult<Option<Application>> {
        self.query_opt(&format!("SELECT {COLUMNS} FROM application WHERE id = $1 FOR UPDATE"), &[&id])?
            .map(|r| row(&r))
            .transpose()
    }

    fn existing_application_ids(&mut self, ids: &[String]) -> StoreResult<HashSet<String>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        // It holds the applications against deletion too (`app_locks`),
        // for the writes that follow, which find them again in statements
        // of their own and see a deletion this one waited for. (The
        // message writer does this with its keys in one statement:
        // `check_applications_and_claim_keys`.)
        let found = self
            .query(
                &format!(
                    "SELECT id FROM application WHERE id = ANY({}) AND {}",
                    opaque(1, "text[]"),
                    super::app_locks::held_shared_condition(1)
                ),
                &[&ids],
            )?
            .iter()
            .map(|r| col(r, 0))
            .collect::<StoreResult<HashSet<String>>>()?;
        let held: Vec<&str> = ids.iter().map(String::as_str).collect();
        super::app_locks::mark_held(self, &held);
        Ok(found)
    }

    fn list_applications(&mut self, query: &ListQuery) -> StoreResult<Page<Application>> {
        // The operational webhooks' internal application is nobody's to list.
        let mut params = Params::default();
        let base = format!("SELECT {COLUMNS} FROM application WHERE id <> {}", params.add(crate::operational::APP_ID));
        paginate(self, &base, params, "id", query, row, |a| a.id.clone())
    }

    fn update_application(&mut self, a: &Application) -> StoreResult<()> {
        let changed = self.execute_unique(
            "an application with this uid",
            "UPDATE application SET uid = $1, name = $2, rate_limit = $3, metadata = $4, updated_at = $5 WHERE id = $6",
            &[&a.uid, &a.name, &a.rate_limit.map(|n| n as i32), &to_json(&a.metadata), &a.updated_at, &a.id],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_application(&mut self, id: &str) -> StoreResult<()> {
        // Messages, deliveries and attempts have no foreign key
        // (`app_locks`): the writers of the application are waited for,
        // and the statements below see what they wrote. Endpoints have
        // one: an endpoint being added is waited for by the row's
        // deletion, which takes it along. Deliveries and attempts go by
        // endpoint (every delivery of the application's messages is to one
        // of its endpoints).
        super::app_locks::hold_exclusively(self, id)?;
        let endpoints: Vec<String> = self
            .query("SELECT id FROM endpoint WHERE app_id = $1", &[&id])?
            .iter()
            .map(|r| col(r, 0))
            .collect::<StoreResult<_>>()?;
        if self.execute("DELETE FROM application WHERE id = $1", &[&id])? == 0 {
            return Err(StoreError::NotFound);
        }
        self.execute("DELETE FROM message WHERE app_id = $1", &[&id])?;
        self.execute("DELETE FROM delivery WHERE endpoint_id = ANY($1)", &[&endpoints])?;
        self.execute("DELETE FROM attempt WHERE endpoint_id = ANY($1)", &[&endpoints])?;
        Ok(())
    }
}
