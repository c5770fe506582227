use rusqlite::{params, OptionalExtension, Row};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::EventType;
use crate::store::page::{ListQuery, Page};
use crate::store::{EventTypeRepo, StoreError, StoreResult};

const COLUMNS: &str = "name, description, archived, deprecated, schemas, feature_flag, validate_payloads, created_at, \
                       updated_at, feature_flags, group_name";

fn row(r: &Row<'_>) -> rusqlite::Result<EventType> {
    Ok(EventType {
        name: r.get(0)?,
        description: r.get(1)?,
        archived: r.get(2)?,
        deprecated: r.get(3)?,
        schemas: opt_from_json(r.get(4)?)?,
        feature_flag: r.get(5)?,
        validate_payloads: r.get(6)?,
        created_at: from_ms(r.get(7)?),
        updated_at: from_ms(r.get(8)?),
        feature_flags: opt_from_json(r.get(9)?)?,
        group_name: r.get(10)?,
    })
}

impl EventTypeRepo for SqliteTx<'_> {
    fn insert_event_type(&mut self, e: &EventType) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!("INSERT INTO event_type ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
            .and_then(|mut s| {
                s.execute(params![
                    e.name,
                    e.description,
                    e.archived,
                    e.deprecated,
                    opt_json(&e.schemas),
                    e.feature_flag,
                    e.validate_payloads,
                    ms(&e.created_at),
                    ms(&e.updated_at),
                    opt_json(&e.feature_flags),
                    e.group_name
                ])
            })
            .map_err(conflict_as("an event type with this name"))?;
        Ok(())
    }

    fn event_type(&mut self, name: &str) -> StoreResult<Option<EventType>> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM event_type WHERE name = ?"))
            .and_then(|mut s| s.query_row([name], row).optional())
            .map_err(backend)
    }

    fn event_types_named(&mut self, names: &[String]) -> StoreResult<Vec<EventType>> {
        let mut found = Vec::new();
        for name in names {
            found.extend(self.event_type(name)?);
        }
        Ok(found)
    }

    fn list_event_types(&mut self, query: &ListQuery, include_archived: bool) -> StoreResult<Page<EventType>> {
        let filter = if include_archived { "1=1" } else { "archived = 0" };
        let base = format!("SELECT {COLUMNS} FROM event_type WHERE {filter}");
        paginate(self.conn, &base, vec![], "name", query, row, |e| e.name.clone())
    }

    fn update_event_type(&mut self, e: &EventType) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE event_type SET description = ?, archived = ?, deprecated = ?, schemas = ?, feature_flag = ?,
                 validate_payloads = ?, updated_at = ?, feature_flags = ?, group_name = ? WHERE name = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.description,
                    e.archived,
                    e.deprecated,
                    opt_json(&e.schemas),
                    e.feature_flag,
                    e.validate_payloads,
                    ms(&e.updated_at),
                    opt_json(&e.feature_flags),
                    e.group_name,
                    e.name
                ])
            })
            .map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_event_type(&mut self, name: &str) -> StoreResult<()> {
        let changed = self.conn.execute("DELETE FROM event_type WHERE name = ?", [name]).map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
