//! `hookline backup`: a consistent copy of the embedded store while `serve`
//! runs, through SQLite's online backup API.
//!
//! The copy is made in one step, inside one read transaction of its own
//! connection: it is the database exactly as of that transaction's start
//! (every commit before it, none after), whatever the writer does meanwhile.
//! In WAL mode a reader never blocks the writer, so the API goes on
//! committing during the copy; the only cost to `serve` is that the WAL
//! cannot be checkpointed past the copy's snapshot until it ends (the WAL
//! file grows for that long). No lock of the data directory is needed.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OptionalExtension};

use super::{backend, open_connection, schema, Role};
use crate::store::StoreError;

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub bytes: u64,
    pub schema_version: usize,
    /// The fingerprint of the main key the copy was written with (`None`
    /// for a store that never started a server).
    pub key_fingerprint: Option<String>,
}

/// Copies the database at `source` into `dest` (a new file).
pub fn copy(source: &Path, dest: &Path) -> Result<BackupReport, StoreError> {
    let src = open_connection(source, Role::Reader)?;
    let mut dst = Connection::open(dest).map_err(|e| StoreError::Backend(format!("{}: {e}", dest.display())))?;
    {
        let backup = Backup::new(&src, &mut dst).map_err(backend)?;
        // -1: every page in one step, so one snapshot. Busy means the
        // source could not start its read transaction (rare in WAL mode):
        // try again shortly.
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(backend)? {
                StepResult::Done => break,
                StepResult::More => continue,
                StepResult::Busy | StepResult::Locked if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err(StoreError::Backend("the store stayed locked; the backup gave up".into())),
            }
        }
    }
    // A standalone file: no WAL beside it, durable before it is renamed.
    dst.execute_batch("PRAGMA journal_mode = DELETE").map_err(backend)?;
    let state = schema::state(&dst)?;
    let key_fingerprint = dst
        .query_row("SELECT value FROM meta WHERE key = 'main_key_fingerprint'", [], |r| r.get::<_, String>(0))
        .optional()
        .or_else(|e| match e {
            // A store older than the `meta` table.
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => Ok(None),
            other => Err(other),
        })
        .map_err(backend)?;
    drop(dst);
    let file = std::fs::File::open(dest).map_err(|e| StoreError::Backend(format!("{}: {e}", dest.display())))?;
    file.sync_all().map_err(|e| StoreError::Backend(format!("{}: {e}", dest.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport { bytes, schema_version: state.current, key_fingerprint })
}
