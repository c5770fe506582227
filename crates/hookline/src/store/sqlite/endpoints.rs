use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::ids::IdKind;
use crate::store::model::{Endpoint, FanoutTarget, RetiredSecret, SealedSecret};
use crate::store::page::{ListQuery, Page};
use crate::store::{EndpointRepo, StoreError, StoreResult};

pub(super) const COLUMNS: &str =
    "id, app_id, uid, url, description, version, disabled, rate_limit, filter_types, channels, metadata, \
                       headers, secret, retired_secrets, failing_since, created_at, updated_at";

/// How a retired secret is kept in its JSON column (still encrypted).
#[derive(Serialize, Deserialize)]
struct StoredRetired {
    secret: String,
    expires_at: i64,
}

fn retired_to_json(list: &[RetiredSecret]) -> String {
    let stored: Vec<StoredRetired> =
        list.iter().map(|r| StoredRetired { secret: B64.encode(&r.secret.0), expires_at: ms(&r.expires_at) }).collect();
    to_json(&stored)
}

fn retired_from_json(text: &str) -> rusqlite::Result<Vec<RetiredSecret>> {
    let stored: Vec<StoredRetired> = from_json(text)?;
    Ok(stored
        .into_iter()
        .filter_map(|s| {
            Some(RetiredSecret { secret: SealedSecret(B64.decode(s.secret).ok()?), expires_at: from_ms(s.expires_at) })
        })
        .collect())
}

pub(super) fn row(r: &Row<'_>) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: r.get(0)?,
        app_id: r.get(1)?,
        uid: r.get(2)?,
        url: r.get(3)?,
        description: r.get(4)?,
        version: r.get(5)?,
        disabled: r.get(6)?,
        rate_limit: r.get(7)?,
        filter_types: opt_from_json(r.get(8)?)?,
        channels: opt_from_json(r.get(9)?)?,
        metadata: from_json(&r.get::<_, String>(10)?)?,
        headers: from_json(&r.get::<_, String>(11)?)?,
        secret: SealedSecret(r.get(12)?),
        retired_secrets: retired_from_json(&r.get::<_, String>(13)?)?,
        failing_since: opt_from_ms(r.get(14)?),
        created_at: from_ms(r.get(15)?),
        updated_at: from_ms(r.get(16)?),
    })
}

impl EndpointRepo for SqliteTx<'_> {
    fn insert_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO endpoint ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .and_then(|mut s| {
                s.execute(params![
                    e.id,
                    e.app_id,
                    e.uid,
                    e.url,
                    e.description,
                    e.version,
                    e.disabled,
                    e.rate_limit,
                    opt_json(&e.filter_types),
                    opt_json(&e.channels),
                    to_json(&e.metadata),
                    to_json(&e.headers),
                    e.secret.0,
                    retired_to_json(&e.retired_secrets),
                    e.failing_since.as_ref().map(ms),
                    ms(&e.created_at),
                    ms(&e.updated_at),
                ])
            })
            .map_err(conflict_as("an endpoint with this uid"))?;
        self.conn
            .prepare_cached("INSERT INTO endpoint_queue (endpoint_id) VALUES (?)")
            .and_then(|mut s| s.execute([&e.id]))
            .map_err(backend)?;
        Ok(())
    }

    fn endpoint_for_update(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        // The single writer holds every row for the whole transaction.
        self.endpoint(app_id, key)
    }

    fn endpoint(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        let column = if IdKind::Endpoint.matches(key) { "id" } else { "uid" };
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM endpoint WHERE app_id = ? AND {column} = ?"))
            .and_then(|mut s| s.query_row([app_id, key], row).optional())
            .map_err(backend)
    }

    fn list_endpoints(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Endpoint>> {
        let base = format!("SELECT {COLUMNS} FROM endpoint WHERE app_id = ?");
        paginate(self.conn, &base, vec![app_id.to_string().into()], "id", query, row, |e| e.id.clone())
    }

    fn fanout_targets(&mut self, app_id: &str) -> StoreResult<Vec<FanoutTarget>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, disabled, filter_types, channels FROM endpoint WHERE app_id = ? ORDER BY id")
            .map_err(backend)?;
        let rows = stmt
            .query_map([app_id], |r| {
                Ok(FanoutTarget {
                    id: r.get(0)?,
                    disabled: r.get(1)?,
                    filter_types: opt_from_json(r.get(2)?)?,
                    channels: opt_from_json(r.get(3)?)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn fanout_targets_of(&mut self, app_ids: &[String]) -> StoreResult<HashMap<String, Vec<FanoutTarget>>> {
        let mut by_app = HashMap::new();
        for app_id in app_ids {
            by_app.insert(app_id.clone(), self.fanout_targets(app_id)?);
        }
        Ok(by_app)
    }

    fn count_endpoints(&mut self, app_id: &str) -> StoreResult<usize> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM endpoint WHERE app_id = ?")
            .and_then(|mut s| s.query_row([app_id], |r| r.get::<_, i64>(0)))
            .map(|n| n as usize)
            .map_err(backend)
    }

    fn every_endpoint(&mut self) -> StoreResult<Vec<Endpoint>> {
        let mut stmt = self.conn.prepare(&format!("SELECT {COLUMNS} FROM endpoint ORDER BY id")).map_err(backend)?;
        let rows = stmt.query_map([], row).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    fn update_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE endpoint SET uid = ?, url = ?, description = ?, version = ?, disabled = ?, rate_limit = ?,
                 filter_types = ?, channels = ?, metadata = ?, headers = ?, secret = ?, retired_secrets = ?,
                 failing_since = ?, updated_at = ? WHERE id = ? AND app_id = ?",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.uid,
                    e.url,
                    e.description,
                    e.version,
                    e.disabled,
                    e.rate_limit,
                    opt_json(&e.filter_types),
                    opt_json(&e.channels),
                    to_json(&e.metadata),
                    to_json(&e.headers),
                    e.secret.0,
                    retired_to_json(&e.retired_secrets),
                    e.failing_since.as_ref().map(ms),
                    ms(&e.updated_at),
                    e.id,
                    e.app_id,
                ])
            })
            .map_err(conflict_as("an endpoint with this uid"))?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_endpoint(&mut self, app_id: &str, id: &str) -> StoreResult<()> {
        let changed =
            self.conn.execute("DELETE FROM endpoint WHERE app_id = ? AND id = ?", [app_id, id]).map_err(backend)?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
