use std::collections::{HashMap, HashSet};

use super::PgTx;
use crate::store::model::{IdempotentResponse, Timestamp};
use crate::store::{IdempotencyRepo, StoreResult};

/// Records older than this are ignored (and purged by the sweeper).
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

impl IdempotencyRepo for PgTx<'_, '_> {
    fn idempotent_response(&mut self, key: &[u8]) -> StoreResult<Option<IdempotentResponse>> {
        let not_before = chrono::Utc::now() - IDEMPOTENCY_WINDOW;
        Ok(self
            .query_opt(
                "SELECT body_hash, status, body FROM idempotency WHERE key = $1 AND created_at > $2",
                &[&key, &not_before],
            )?
            .map(|r| IdempotentResponse { body_hash: r.get(0), status: r.get::<_, i32>(1) as u16, body: r.get(2) }))
    }

    fn idempotent_responses(&mut self, keys: &[Vec<u8>]) -> StoreResult<HashMap<Vec<u8>, IdempotentResponse>> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let not_before = chrono::Utc::now() - IDEMPOTENCY_WINDOW;
        let rows = self.query(
            "SELECT key, body_hash, status, body FROM idempotency WHERE key = ANY($1) AND created_at > $2",
            &[&keys, &not_before],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let answer =
                    IdempotentResponse { body_hash: r.get(1), status: r.get::<_, i32>(2) as u16, body: r.get(3) };
                (r.get::<_, Vec<u8>>(0), answer)
            })
            .collect())
    }

    fn claim_idempotency_keys(
        &mut self,
        claims: &[(Vec<u8>, IdempotentResponse)],
        now: Timestamp,
    ) -> StoreResult<HashSet<Vec<u8>>> {
        if claims.is_empty() {
            return Ok(HashSet::new());
        }
        // A key inserted by a transaction still open makes this statement
        // wait for it; then it is either answered (not taken) or released.
        // Sorted, so two batches sharing keys wait on each other in one order
        // rather than deadlock.
        let mut sorted: Vec<&(Vec<u8>, IdempotentResponse)> = claims.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let keys: Vec<&[u8]> = sorted.iter().map(|(k, _)| k.as_slice()).collect();
        let hashes: Vec<&[u8]> = sorted.iter().map(|(_, r)| r.body_hash.as_slice()).collect();
        let statuses: Vec<i32> = sorted.iter().map(|(_, r)| i32::from(r.status)).collect();
        let bodies: Vec<&[u8]> = sorted.iter().map(|(_, r)| r.body.as_slice()).collect();
        let expired = now - IDEMPOTENCY_WINDOW;
        let rows = self.query(
            "INSERT INTO idempotency (key, body_hash, status, body, created_at)
             SELECT key, body_hash, status, body, $5
             FROM unnest($1::bytea[], $2::bytea[], $3::int4[], $4::bytea[]) AS a(key, body_hash, status, body)
             ON CONFLICT (key) DO UPDATE SET
               body_hash = excluded.body_hash, status = excluded.status, body = excluded.body, created_at = $5
             WHERE idempotency.created_at <= $6
             RETURNING key",
            &[&keys, &hashes, &statuses, &bodies, &now, &expired],
        )?;
        Ok(rows.iter().map(|r| r.get::<_, Vec<u8>>(0)).collect())
    }

    fn fill_idempotent_responses(&mut self, answers: &[(Vec<u8>, IdempotentResponse)]) -> StoreResult<()> {
        if answers.is_empty() {
            return Ok(());
        }
        let keys: Vec<&[u8]> = answers.iter().map(|(k, _)| k.as_slice()).collect();
        let hashes: Vec<&[u8]> = answers.iter().map(|(_, r)| r.body_hash.as_slice()).collect();
        let statuses: Vec<i32> = answers.iter().map(|(_, r)| i32::from(r.status)).collect();
        let bodies: Vec<&[u8]> = answers.iter().map(|(_, r)| r.body.as_slice()).collect();
        self.execute(
            "UPDATE idempotency i SET body_hash = a.body_hash, status = a.status, body = a.body
             FROM unnest($1::bytea[], $2::bytea[], $3::int4[], $4::bytea[]) AS a(key, body_hash, status, body)
             WHERE i.key = a.key",
            &[&keys, &hashes, &statuses, &bodies],
        )?;
        Ok(())
    }

    fn release_idempotency_keys(&mut self, keys: &[Vec<u8>]) -> StoreResult<()> {
        if !keys.is_empty() {
            self.execute("DELETE FROM idempotency WHERE key = ANY($1)", &[&keys])?;
        }
        Ok(())
    }
}
