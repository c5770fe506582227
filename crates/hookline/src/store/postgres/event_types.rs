use postgres::Row;

use super::sql::*;
use super::PgTx;
use crate::store::model::EventType;
use crate::store::page::{ListQuery, Page};
use crate::store::{EventTypeRepo, StoreError, StoreResult};

pub(super) const COLUMNS: &str =
    "name, description, archived, deprecated, schemas, feature_flag, validate_payloads, created_at, \
                       updated_at, feature_flags, group_name";

pub(super) fn row(r: &Row) -> StoreResult<EventType> {
    Ok(EventType {
        name: col(r, 0)?,
        description: col(r, 1)?,
        archived: col(r, 2)?,
        deprecated: col(r, 3)?,
        schemas: opt_from_json(col(r, 4)?)?,
        feature_flag: col(r, 5)?,
        validate_payloads: col(r, 6)?,
        created_at: col(r, 7)?,
        updated_at: col(r, 8)?,
        feature_flags: opt_from_json(col(r, 9)?)?,
        group_name: col(r, 10)?,
    })
}

impl EventTypeRepo for PgTx<'_, '_> {
    fn insert_event_type(&mut self, e: &EventType) -> StoreResult<()> {
        self.insert_new(
            "an event type with this name",
            1,
            &format!(
                "INSERT INTO event_type ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
            ),
            &[
                &e.name,
                &e.description,
                &e.archived,
                &e.deprecated,
                &opt_json(&e.schemas),
                &e.feature_flag,
                &e.validate_payloads,
                &e.created_at,
                &e.updated_at,
                &opt_json(&e.feature_flags),
                &e.group_name,
            ],
        )?;
        Ok(())
    }

    fn event_type(&mut self, name: &str) -> StoreResult<Option<EventType>> {
        self.query_opt(&format!("SELECT {COLUMNS} FROM event_type WHERE name = $1"), &[&name])?
            .map(|r| row(&r))
            .transpose()
    }

    fn event_types_named(&mut self, names: &[String]) -> StoreResult<Vec<EventType>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        self.query(&format!("SELECT {COLUMNS} FROM event_type WHERE name = ANY({})", opaque(1, "text[]")), &[&names])?
            .iter()
            .map(row)
            .collect()
    }

    fn list_event_types(&mut self, query: &ListQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let filter = if include_archived { "TRUE" } else { "NOT archived" };
        let base = format!("SELECT {COLUMNS} FROM event_type WHERE {filter}");
        paginate(self, &base, Params::default(), "name", query, row, |e| e.name.clone())
    }

    fn update_event_type(&mut self, e: &EventType) -> StoreResult<()> {
        let changed = self.execute(
            "UPDATE event_type SET description = $1, archived = $2, deprecated = $3, schemas = $4, feature_flag = $5,
             validate_payloads = $6, updated_at = $7, feature_flags = $9, group_name = $10 WHERE name = $8",
            &[
                &e.description,
                &e.archived,
                &e.deprecated,
                &opt_json(&e.schemas),
                &e.feature_flag,
                &e.validate_payloads,
                &e.updated_at,
                &e.name,
                &opt_json(&e.feature_flags),
                &e.group_name,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_event_type(&mut self, name: &str) -> StoreResult<()> {
        if self.execute("DELETE FROM event_type WHERE name = $1", &[&name])? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
