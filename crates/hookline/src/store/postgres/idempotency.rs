use super::PgTx;
use crate::store::model::{IdempotentResponse, Timestamp};
use crate::store::{IdempotencyRepo, StoreResult};

/// Records older than this are ignored (and purged by the sweeper).
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl IdempotencyRepo for PgTx<'_, '_> {
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>> {
        // Held until this transaction ends: a concurrent request with the
        // same key (on any node) waits here, then finds this one's answer
        // instead of creating a second message.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(key);
        let lock = i64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"));
        self.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])?;
        let not_before = chrono::Utc::now() - IDEMPOTENCY_WINDOW;
        Ok(self
            .query_opt(
                "SELECT body_hash, status, body FROM idempotency WHERE key = $1 AND created_at > $2",
                &[&key, &not_before],
            )?
            .map(|r| IdempotentResponse { body_hash: r.get(0), status: r.get::<_, i32>(1) as u16, body: r.get(2) }))
    }

    fn save_idempotent_response(&mut self, key: &[u8], r: &IdempotentResponse, now: Timestamp) -> StoreResult<()> {
        self.execute(
            "INSERT INTO idempotency (key, body_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
               body = excluded.body, created_at = excluded.created_at",
            &[&key, &r.body_hash, &(r.status as i32), &r.body, &now],
        )?;
        Ok(())
    }
}
