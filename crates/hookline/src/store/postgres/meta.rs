use super::PgTx;
use crate::store::{MetaRepo, StoreResult};

impl MetaRepo for PgTx<'_, '_> {
    fn meta(&mut self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?.map(|r| r.get(0)))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn delete_meta(&mut self, key: &str) -> StoreResult<()> {
        self.execute("DELETE FROM meta WHERE key = $1", &[&key])?;
        Ok(())
    }
}
