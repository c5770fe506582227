//! One `serve` per data directory.
//!
//! The embedded store releases every claim at start-up, which is right only
//! if no other process is dispatching from the same files. `serve` therefore
//! holds an exclusive lock on `hookline.lock` for as long as it runs; the OS
//! drops the lock when the process dies, however it dies. `import svix`
//! takes it too: a bulk copy runs with the store to itself. Commands that do
//! not dispatch (`token create`, `event-types import`, `backup`, `status`)
//! take no lock and rely on SQLite's own locking.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "hookline.lock";

/// Held while `serve` (or an import) runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it: a `serve` (or an import) is running.
    InUse { dir: PathBuf, holder: Option<String> },
    /// The directory or the lock file could not be used.
    Io(String),
}

impl LockError {
    /// ` (process N)` when the holder wrote its process id.
    pub fn holder_note(&self) -> String {
        match self {
            LockError::InUse { holder: Some(pid), .. } => format!(" (process {pid})"),
            _ => String::new(),
        }
    }
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::InUse { dir, .. } => write!(
                f,
                "the data directory {} is in use by another hookline process{} (a serve, or an import); \
                 stop it, or give this one another HOOKLINE_DATA_DIR",
                dir.display(),
                self.holder_note()
            ),
            LockError::Io(e) => f.write_str(e),
        }
    }
}

impl From<LockError> for String {
    fn from(e: LockError) -> String {
        e.to_string()
    }
}

impl DataDirLock {
    /// Takes the lock, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, LockError> {
        std::fs::create_dir_all(dir).map_err(|e| LockError::Io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LockError::Io(format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = Some(holder.trim().to_string()).filter(|pid| !pid.is_empty());
                return Err(LockError::InUse { dir: dir.to_path_buf(), holder });
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(format!("cannot lock {}: {e}", path.display()))),
        }
        // Who holds it, for the message a second `serve` prints.
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let refused = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(refused.contains(&dir.path().display().to_string()), "{refused}");
        assert!(refused.contains(&format!("process {}", std::process::id())), "{refused}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
