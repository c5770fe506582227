//! `hookline backup FILE`: a consistent online copy of the embedded store.
//!
//! The copy (`store/sqlite/backup.rs`) is written to a temporary file beside
//! `FILE`, made durable, then renamed into place: `FILE` either does not
//! exist or is a complete backup. It needs no lock of the data directory and
//! runs beside `serve`.
//!
//! The copy holds the database only. The main key (the data directory's
//! `main.key`, or `HOOKLINE_MAIN_KEY`) is deliberately not in it: endpoint
//! secrets in the copy are encrypted under that key, so a backup that leaks
//! alone reveals no secret. Keep the key, once, apart from the backups;
//! a restore needs both (see docs/operations.md).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Settings;
use crate::store::sqlite::SqliteStore;

/// Runs `hookline backup FILE`. Blocking.
pub fn run(settings: &Settings, dest: &Path) -> Result<(), String> {
    if settings.database_url.is_some() {
        return Err("`hookline backup` copies the embedded store; this deployment runs on PostgreSQL. Back that up \
                    with PostgreSQL's tools: `pg_dump -Fc` for a logical copy, or `pg_basebackup` with WAL \
                    archiving for point-in-time recovery (docs/operations.md, \"Backup and restore\")"
            .into());
    }
    if dest.exists() {
        return Err(format!("{} already exists; choose a new file (a backup never overwrites one)", dest.display()));
    }
    let temp = temp_path(dest);
    let started = Instant::now();
    let report = SqliteStore::backup(&settings.data_dir, &temp).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        e.to_string()
    });
    let report = report?;
    std::fs::rename(&temp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("{}: {e}", dest.display())
    })?;
    sync_dir(dest);
    println!(
        "backup of {} written to {} ({:.1} MiB, schema version {}) in {:.1}s",
        settings.data_dir.display(),
        dest.display(),
        report.bytes as f64 / (1024.0 * 1024.0),
        report.schema_version,
        started.elapsed().as_secs_f64()
    );
    let key = match &settings.main_key {
        Some(_) => "HOOKLINE_MAIN_KEY".to_string(),
        None => settings.data_dir.join("main.key").display().to_string(),
    };
    let fingerprint = report.key_fingerprint.map(|f| format!(" (fingerprint {f})")).unwrap_or_default();
    eprintln!(
        "note: the backup does not contain the main key. Endpoint secrets in it open only with the key it was \
         written with: {key}{fingerprint}. Keep a copy of that key apart from your backups; a restore needs both."
    );
    Ok(())
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "backup".into());
    dest.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Makes the rename durable (best effort: not every platform can).
fn sync_dir(file: &Path) {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}
