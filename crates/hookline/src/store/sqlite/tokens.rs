use rusqlite::{params, OptionalExtension};

use super::sql::*;
use super::{backend, SqliteTx};
use crate::store::model::Timestamp;
use crate::store::{AppTokenFacts, StoreResult, TokenRepo};

impl TokenRepo for SqliteTx<'_> {
    fn app_token_generation(&mut self, app_id: &str) -> StoreResult<i64> {
        self.conn
            .prepare_cached("SELECT generation FROM app_token_generation WHERE app_id = ?")
            .and_then(|mut s| s.query_row([app_id], |r| r.get(0)).optional())
            .map(Option::unwrap_or_default)
            .map_err(backend)
    }

    fn expire_app_tokens(
        &mut self,
        app_id: &str,
        session_ids: Option<&[String]>,
        effective_at: Timestamp,
    ) -> StoreResult<()> {
        let generation: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO app_token_generation (app_id, generation) VALUES (?, 1)
                 ON CONFLICT (app_id) DO UPDATE SET generation = generation + 1 RETURNING generation",
            )
            .and_then(|mut s| s.query_row([app_id], |r| r.get(0)))
            .map_err(backend)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO token_expiry (app_id, session_id, generation, effective_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT DO NOTHING",
            )
            .map_err(backend)?;
        let every = [String::new()];
        for sid in session_ids.unwrap_or(&every) {
            stmt.execute(params![app_id, sid, generation, ms(&effective_at)]).map_err(backend)?;
        }
        Ok(())
    }

    fn revoke_token(&mut self, digest: &[u8], expires_at: Option<Timestamp>) -> StoreResult<()> {
        self.conn
            .prepare_cached("INSERT INTO revoked_token (digest, expires_at) VALUES (?, ?) ON CONFLICT DO NOTHING")
            .and_then(|mut s| s.execute(params![digest, expires_at.as_ref().map(ms)]))
            .map_err(backend)?;
        Ok(())
    }

    fn token_revoked(&mut self, digest: &[u8], app: Option<&AppTokenFacts<'_>>, now: Timestamp) -> StoreResult<bool> {
        let (app_id, sid, generation) = match app {
            Some(a) => (a.app_id, a.session_id.unwrap_or(""), a.generation),
            None => ("", "", 0),
        };
        // An integration's key must also name the integration's current key
        // version ('' and 0 name none for other tokens).
        let (integration, version) = app.and_then(|a| a.integration_key).unwrap_or(("", 0));
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM revoked_token WHERE digest = ?1)
                     OR EXISTS (SELECT 1 FROM token_expiry WHERE app_id = ?2 AND session_id IN ('', ?3)
                                AND generation > ?4 AND effective_at <= ?5)
                     OR (?6 <> '' AND NOT EXISTS (SELECT 1 FROM integration
                                                 WHERE id = ?6 AND app_id = ?2 AND key_version = ?7))",
            )
            .and_then(|mut s| {
                s.query_row(params![digest, app_id, sid, generation, ms(&now), integration, version], |r| r.get(0))
            })
            .map_err(backend)
    }

    fn purge_revoked_tokens(&mut self, now: Timestamp) -> StoreResult<usize> {
        self.conn
            .prepare_cached("DELETE FROM revoked_token WHERE expires_at < ?")
            .and_then(|mut s| s.execute([ms(&now)]))
            .map_err(backend)
    }
}
