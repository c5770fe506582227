use super::PgTx;
use crate::store::model::Timestamp;
use crate::store::{AppTokenFacts, StoreResult, TokenRepo};

impl TokenRepo for PgTx<'_, '_> {
    fn expire_app_tokens(
        &mut self,
        app_id: &str,
        session_ids: Option<&[String]>,
        issued_before: i64,
        effective_at: Timestamp,
    ) -> StoreResult<()> {
        let every = [String::new()];
        let sessions: Vec<String> = session_ids.unwrap_or(&every).to_vec();
        self.execute(
            "INSERT INTO token_expiry (app_id, session_id, issued_before, effective_at)
             SELECT $1, sid, $3, $4 FROM unnest($2::text[]) AS sid ORDER BY sid
             ON CONFLICT (app_id, session_id, issued_before)
             DO UPDATE SET effective_at = LEAST(token_expiry.effective_at, excluded.effective_at)",
            &[&app_id, &sessions, &issued_before, &effective_at],
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
        let (app_id, sid, issued_at) = match app {
            Some(a) => (a.app_id, a.session_id.unwrap_or(""), a.issued_at),
            None => ("", "", 0),
        };
        let row = self.query_opt(
            "SELECT EXISTS (SELECT 1 FROM revoked_token WHERE digest = $1)
                 OR EXISTS (SELECT 1 FROM token_expiry WHERE app_id = $2 AND session_id IN ('', $3)
                            AND issued_before > $4 AND effective_at <= $5)",
            &[&digest, &app_id, &sid, &issued_at, &now],
        )?;
        Ok(row.map(|r| r.get::<_, bool>(0)).unwrap_or(false))
    }

    fn purge_revoked_tokens(&mut self, now: Timestamp) -> StoreResult<usize> {
        Ok(self.execute("DELETE FROM revoked_token WHERE expires_at < $1", &[&now])? as usize)
    }
}
