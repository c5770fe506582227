use std::collections::{HashMap, HashSet};

use rusqlite::{params, OptionalExtension};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::{IdempotentResponse, Timestamp};
use crate::store::{IdempotencyRepo, StoreResult};

/// Records older than this are ignored (and purged by the sweeper).
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 3600 * 1000;

impl IdempotencyRepo for SqliteTx<'_> {
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>> {
        self.conn
            .prepare_cached("SELECT body_hash, status, body FROM idempotency WHERE key = ? AND created_at > ?")
            .and_then(|mut s| {
                let not_before = ms(&chrono::Utc::now()) - IDEMPOTENCY_WINDOW_MS;
                s.query_row(params![key, not_before], |r| {
                    Ok(IdempotentResponse { body_hash: r.get(0)?, status: r.get(1)?, body: r.get(2)? })
                })
                .optional()
            })
            .map_err(backend)
    }

    fn idempotent_responses(&mut self, keys: &[Vec<u8>]) -> StoreResult<HashMap<Vec<u8>, IdempotentResponse>> {
        let mut found = HashMap::new();
        for key in keys {
            if let Some(r) = self.idempotent_response(key)? {
                found.insert(key.clone(), r);
            }
        }
        Ok(found)
    }

    fn claim_idempotency_keys(
        &mut self,
        claims: &[(Vec<u8>, IdempotentResponse)],
        now: Timestamp,
    ) -> StoreResult<HashSet<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO idempotency (key, body_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET
                   body_hash = excluded.body_hash, status = excluded.status, body = excluded.body, created_at = ?5
                 WHERE idempotency.created_at <= ?6",
            )
            .map_err(backend)?;
        let expired = ms(&now) - IDEMPOTENCY_WINDOW_MS;
        let mut claimed = HashSet::new();
        for (key, answer) in claims {
            let taken = stmt
                .execute(params![key, answer.body_hash, answer.status, answer.body, ms(&now), expired])
                .map_err(backend)?;
            if taken > 0 {
                claimed.insert(key.clone());
            }
        }
        Ok(claimed)
    }

    fn fill_idempotent_responses(&mut self, answers: &[(Vec<u8>, IdempotentResponse)]) -> StoreResult<()> {
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE idempotency SET body_hash = ?, status = ?, body = ? WHERE key = ?")
            .map_err(backend)?;
        for (key, r) in answers {
            stmt.execute(params![r.body_hash, r.status, r.body, key]).map_err(backend)?;
        }
        Ok(())
    }

    fn release_idempotency_keys(&mut self, keys: &[Vec<u8>]) -> StoreResult<()> {
        let mut stmt = self.conn.prepare_cached("DELETE FROM idempotency WHERE key = ?").map_err(backend)?;
        for key in keys {
            stmt.execute([key]).map_err(backend)?;
        }
        Ok(())
    }
}
