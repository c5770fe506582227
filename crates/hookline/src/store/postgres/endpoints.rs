use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use postgres::Row;
use serde::{Deserialize, Serialize};

use super::sql::*;
use super::PgTx;
use crate::ids::IdKind;
use crate::store::model::{Endpoint, FanoutTarget, RetiredSecret, SealedSecret, Timestamp};
use crate::store::page::{ListQuery, Page};
use crate::store::{EndpointRepo, StoreError, StoreResult};

pub(super) const COLUMNS: &str =
    "id, app_id, uid, url, description, version, disabled, rate_limit, filter_types, channels, metadata, \
     headers, secret, retired_secrets, failing_since, created_at, updated_at";

/// How a retired secret is kept in its JSON column (still sealed).
#[derive(Serialize, Deserialize)]
struct StoredRetired {
    secret: String,
    expires_at: i64,
}

fn retired_to_json(list: &[RetiredSecret]) -> String {
    let stored: Vec<StoredRetired> = list
        .iter()
        .map(|r| StoredRetired { secret: B64.encode(&r.secret.0), expires_at: r.expires_at.timestamp_millis() })
        .collect();
    to_json(&stored)
}

fn retired_from_json(text: &str) -> StoreResult<Vec<RetiredSecret>> {
    let stored: Vec<StoredRetired> = from_json(text)?;
    Ok(stored
        .into_iter()
        .filter_map(|s| {
            Some(RetiredSecret {
                secret: SealedSecret(B64.decode(s.secret).ok()?),
                expires_at: chrono::DateTime::from_timestamp_millis(s.expires_at)?,
            })
        })
        .collect())
}

/// Decodes the endpoint columns starting at column `at` (for joins).
pub(super) fn row_at(r: &Row, at: usize) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: col(r, at)?,
        app_id: col(r, at + 1)?,
        uid: col(r, at + 2)?,
        url: col(r, at + 3)?,
        description: col(r, at + 4)?,
        version: col(r, at + 5)?,
        disabled: col(r, at + 6)?,
        rate_limit: col::<Option<i32>>(r, at + 7)?.map(|n| n as u32),
        filter_types: opt_from_json(col(r, at + 8)?)?,
        channels: opt_from_json(col(r, at + 9)?)?,
        metadata: from_json(&col::<String>(r, at + 10)?)?,
        headers: from_json(&col::<String>(r, at + 11)?)?,
        secret: SealedSecret(col(r, at + 12)?),
        retired_secrets: retired_from_json(&col::<String>(r, at + 13)?)?,
        failing_since: col::<Option<Timestamp>>(r, at + 14)?,
        created_at: col(r, at + 15)?,
        updated_at: col(r, at + 16)?,
    })
}

fn row(r: &Row) -> StoreResult<Endpoint> {
    row_at(r, 0)
}

/// A fan-out target from the columns `id, disabled, filter_types, channels`
/// starting at column `at`.
pub(super) fn fanout_target(r: &Row, at: usize) -> StoreResult<FanoutTarget> {
    Ok(FanoutTarget {
        id: col(r, at)?,
        disabled: col(r, at + 1)?,
        filter_types: opt_from_json(col(r, at + 2)?)?,
        channels: opt_from_json(col(r, at + 3)?)?,
    })
}

impl PgTx<'_, '_> {
    fn find_endpoint(&mut self, app_id: &str, key: &str, lock: &str) -> StoreResult<Option<Endpoint>> {
        let column = if IdKind::Endpoint.matches(key) { "id" } else { "uid" };
        self.query_opt(
            &format!("SELECT {COLUMNS} FROM endpoint WHERE app_id = $1 AND {column} = $2 {lock}"),
            &[&app_id, &key],
        )?
        .map(|r| row(&r))
        .transpose()
    }
}

impl EndpointRepo for PgTx<'_, '_> {
    fn insert_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        self.insert_new(
            "an endpoint with this uid",
            1,
            &format!(
                "INSERT INTO endpoint ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                &e.id,
                &e.app_id,
                &e.uid,
                &e.url,
                &e.description,
                &e.version,
                &e.disabled,
                &e.rate_limit.map(|n| n as i32),
                &opt_json(&e.filter_types),
                &opt_json(&e.channels),
                &to_json(&e.metadata),
                &to_json(&e.headers),
                &e.secret.0,
                &retired_to_json(&e.retired_secrets),
                &e.failing_since,
                &e.created_at,
                &e.updated_at,
            ],
        )?;
        self.execute("INSERT INTO endpoint_queue (endpoint_id) VALUES ($1)", &[&e.id])?;
        Ok(())
    }

    fn endpoint(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        self.find_endpoint(app_id, key, "")
    }

    fn endpoint_for_update(&mut self, app_id: &str, key: &str) -> StoreResult<Option<Endpoint>> {
        self.find_endpoint(app_id, key, "FOR UPDATE")
    }

    fn list_endpoints(&mut self, app_id: &str, query: &ListQuery) -> StoreResult<Page<Endpoint>> {
        let mut params = Params::default();
        let base = format!("SELECT {COLUMNS} FROM endpoint WHERE app_id = {}", params.add(app_id.to_string()));
        paginate(self, &base, params, "id", query, row, |e| e.id.clone())
    }

    fn fanout_targets(&mut self, app_id: &str) -> StoreResult<Vec<FanoutTarget>> {
        let rows = self.query(
            "SELECT id, disabled, filter_types, channels FROM endpoint WHERE app_id = $1 ORDER BY id",
            &[&app_id],
        )?;
        rows.iter().map(|r| fanout_target(r, 0)).collect()
    }

    fn fanout_targets_of(&mut self, app_ids: &[String]) -> StoreResult<HashMap<String, Vec<FanoutTarget>>> {
        let mut by_app: HashMap<String, Vec<FanoutTarget>> = app_ids.iter().map(|a| (a.clone(), Vec::new())).collect();
        if app_ids.is_empty() {
            return Ok(by_app);
        }
        // Held first, so that the endpoints read (in a later statement, as
        // of after any deletion this waited for) stay until the fan-out
        // commits: its deliveries to them are then never refused.
        let held: Vec<&str> = app_ids.iter().map(String::as_str).collect();
        super::app_locks::hold_shared(self, &held)?;
        // Planned for its values (not `opaque`): an application's share
        // of the endpoints, which its statistics know, decides between
        // looking them up and reading the table.
        let rows = self.query(
            "SELECT app_id, id, disabled, filter_types, channels FROM endpoint WHERE app_id = ANY($1) ORDER BY app_id, id",
            &[&app_ids],
        )?;
        for r in &rows {
            by_app.entry(col(r, 0)?).or_default().push(fanout_target(r, 1)?);
        }
        Ok(by_app)
    }

    fn count_endpoints(&mut self, app_id: &str) -> StoreResult<usize> {
        let n: i64 = col(&self.query_one("SELECT COUNT(*) FROM endpoint WHERE app_id = $1", &[&app_id])?, 0)?;
        Ok(n as usize)
    }

    fn every_endpoint(&mut self) -> StoreResult<Vec<Endpoint>> {
        let rows = self.query(&format!("SELECT {COLUMNS} FROM endpoint ORDER BY id FOR UPDATE"), &[])?;
        rows.iter().map(row).collect()
    }

    fn update_endpoint(&mut self, e: &Endpoint) -> StoreResult<()> {
        let changed = self.execute_unique(
            "an endpoint with this uid",
            "UPDATE endpoint SET uid = $1, url = $2, description = $3, version = $4, disabled = $5, rate_limit = $6,
             filter_types = $7, channels = $8, metadata = $9, headers = $10, secret = $11, retired_secrets = $12,
             failing_since = $13, updated_at = $14 WHERE id = $15 AND app_id = $16",
            &[
                &e.uid,
                &e.url,
                &e.description,
                &e.version,
                &e.disabled,
                &e.rate_limit.map(|n| n as i32),
                &opt_json(&e.filter_types),
                &opt_json(&e.channels),
                &to_json(&e.metadata),
                &to_json(&e.headers),
                &e.secret.0,
                &retired_to_json(&e.retired_secrets),
                &e.failing_since,
                &e.updated_at,
                &e.id,
                &e.app_id,
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    fn delete_endpoint(&mut self, app_id: &str, id: &str) -> StoreResult<()> {
        // Deliveries and attempts have no foreign key (`app_locks`): the
        // fan-outs, resends and outcome batches of the application are
        // waited for, and the statements below see what they wrote.
        super::app_locks::hold_exclusively(self, app_id)?;
        if self.execute("DELETE FROM endpoint WHERE app_id = $1 AND id = $2", &[&app_id, &id])? == 0 {
            return Err(StoreError::NotFound);
        }
        self.execute("DELETE FROM delivery WHERE endpoint_id = $1", &[&id])?;
        self.execute("DELETE FROM attempt WHERE endpoint_id = $1", &[&id])?;
        Ok(())
    }
}
