use super::PgTx;
use crate::store::model::Timestamp;
use crate::store::{AppTokenFacts, StoreResult, TokenRepo};

impl TokenRepo for PgTx<'_, '_> {
    fn app_token_generation(&mut self, app_id: &str) -> StoreResult<i64> {
        let row = self.query_opt("SELECT generation FROM app_token_generation WHERE app_id = $1", &[&app_id])?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0))
    }

    fn expire_app_tokens(
        &mut self,
        app_id: &str,
        session_ids: Option<&[String]>,
        effective_at: Timestamp,
    ) -> StoreResult<()> {
        let generation: i64 = self
            .query_opt(
                "INSERT INTO app_token_generation (app_id, generation) VALUES ($1, 1)
                 ON CONFLICT (app_id) DO UPDATE SET generation = app_token_generation.generation + 1
                 RETURNING generation",
                &[&app_id],
            )?
            .map(|r| r.get(0))
            .unwrap_or(1);
        let mut sessions: Vec<String> = session_ids.map(<[String]>::to_vec).unwrap_or_else(|| vec![String::new()]);
        sessions.sort();
        sessions.dedup();
        self.execute(
            "INSERT INTO token_expiry (app_id, session_id, generation, effective_at)
             SELECT $1, sid, $3, $4 FROM unnest($2::text[]) AS sid ON CONFLICT DO NOTHING",
            &[&app_id, &sessions, &generation, &effective_at],
        )?;
        Ok(())
    }

    fn revoke_token(&mut self, digest: &[u8], expires_at: Option<Timestamp>) -> StoreResult<()> {
        self.execute(
            "INSERT INTO revoked_token (digest, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&digest, &expires_at],
        )?;
        Ok(())
    }

    fn token_revoked(&mut self, digest: &[u8], app: Option<&AppTokenFacts<'_>>, now: Timestamp) -> StoreResult<bool> {
        let (app_id, sid, generation) = match app {
            Some(a) => (a.app_id, a.session_id.unwrap_or(""), a.generation),
            None => ("", "", 0i64),
        };
        // An integration's key must also name the integration's current key
        // version ('' and 0 name none for other tokens).
        let (integration, version) = app.and_then(|a| a.integration_key).unwrap_or(("", 0));
        let row = self.query_opt(
            "SELECT EXISTS (SELECT 1 FROM revoked_token WHERE digest = $1)
                 OR EXISTS (SELECT 1 FROM token_expiry WHERE app_id = $2 AND session_id IN ('', $3)
                            AND generation > $4 AND effective_at <= $5)
                 OR ($6 <> '' AND NOT EXISTS (SELECT 1 FROM integration
                                             WHERE id = $6 AND app_id = $2 AND key_version = $7))",
            &[&digest, &app_id, &sid, &generation, &now, &integration, &version],
        )?;
        Ok(row.map(|r| r.get::<_, bool>(0)).unwrap_or(false))
    }

    fn purge_revoked_tokens(&mut self, now: Timestamp) -> StoreResult<usize> {
        Ok(self.execute("DELETE FROM revoked_token WHERE expires_at < $1", &[&now])? as usize)
    }
}
