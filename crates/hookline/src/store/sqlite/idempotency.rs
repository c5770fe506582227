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

    fn save_idempotent_response(&mut self, key: &[u8], r: &IdempotentResponse, now: Timestamp) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO idempotency (key, body_hash, status, body, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .and_then(|mut s| s.execute(params![key, r.body_hash, r.status, r.body, ms(&now)]))
            .map_err(conflict_as("a response for this idempotency key"))?;
        Ok(())
    }
}
