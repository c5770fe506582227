use rusqlite::{params, OptionalExtension};

use super::{backend, SqliteTx};
use crate::store::{MetaRepo, StoreResult};

impl MetaRepo for SqliteTx<'_> {
    fn meta(&mut self, key: &str) -> StoreResult<Option<String>> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(backend)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut s| s.execute(params![key, value]))
            .map_err(backend)?;
        Ok(())
    }

    fn delete_meta(&mut self, key: &str) -> StoreResult<()> {
        self.conn.execute("DELETE FROM meta WHERE key = ?", [key]).map_err(backend)?;
        Ok(())
    }
}
