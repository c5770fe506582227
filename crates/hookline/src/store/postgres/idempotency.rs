use super::PgTx;
use crate::store::model::{IdempotentResponse, Timestamp};
use crate::store::{IdempotencyRepo, StoreResult};

/// Records older than this are ignored (and purged by the sweeper).
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl IdempotencyRepo for PgTx<'_, '_> {
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>> {
        // No lock here (the common case, a fresh key, costs one read): a
        // concurrent request with the same key is caught when the answer is
        // saved, and its transaction runs again and finds this one's answer.
        let not_before = chrono::Utc::now() - IDEMPOTENCY_WINDOW;
        Ok(self
            .query_opt(
                "SELECT body_hash, status, body FROM idempotency WHERE key = $1 AND created_at > $2",
                &[&key, &not_before],
            )?
            .map(|r| IdempotentResponse { body_hash: r.get(0), status: r.get::<_, i32>(1) as u16, body: r.get(2) }))
    }

    fn save_idempotent_response(&mut self, key: &[u8], r: &IdempotentResponse, now: Timestamp) -> StoreResult<()> {
        // Replaces only a record past the window. A fresh one means another
        // request with this key committed first (this INSERT waited for it):
        // this transaction is undone and run again, and replays that answer.
        let expired = now - IDEMPOTENCY_WINDOW;
        let saved = self.execute(
            "INSERT INTO idempotency (key, body_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (key) DO UPDATE SET body_hash = excluded.body_hash, status = excluded.status,
               body = excluded.body, created_at = excluded.created_at
             WHERE idempotency.created_at <= $6",
            &[&key, &r.body_hash, &(r.status as i32), &r.body, &now, &expired],
        )?;
        if saved == 0 {
            return Err(self.lost_race("a concurrent request with this idempotency key answered first"));
        }
        Ok(())
    }
}
