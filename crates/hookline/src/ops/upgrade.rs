//! `hookline migrate --dry-run`: which migrations `migrate` (or the next
//! `serve`) would apply, read without changing anything.

use crate::config::Settings;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::SchemaState;

/// Prints the schema version and the pending migrations; fails (with what
/// to do) on a schema newer than this binary knows. Blocking.
pub fn dry_run(settings: &Settings) -> Result<(), String> {
    let (state, fresh) = match &settings.database_url {
        Some(url) => (PgStore::schema_state(url).map_err(|e| e.to_string())?, false),
        None => match SqliteStore::schema_state(&settings.data_dir).map_err(|e| e.to_string())? {
            Some(state) => (state, false),
            None => (SchemaState::new(0, &[]), true),
        },
    };
    if fresh {
        println!(
            "no embedded store in {} yet: `hookline migrate` or `serve` creates it at the current schema",
            settings.data_dir.display()
        );
        return Ok(());
    }
    print!("{}", report(&state));
    state.refuse_newer().map_err(|e| e.to_string())
}

fn report(state: &SchemaState) -> String {
    let mut out = format!("schema version {}; this hookline knows {}\n", state.current, state.known);
    if state.pending.is_empty() {
        if state.current <= state.known {
            out.push_str("nothing to migrate\n");
        }
        return out;
    }
    out.push_str(&format!("{} pending migration(s), applied in order by `hookline migrate`:\n", state.pending.len()));
    for (version, sql) in &state.pending {
        out.push_str(&format!("  {version}: {}\n", summary(sql)));
    }
    out
}

/// The statements of a migration, one short phrase each: `CREATE TABLE
/// meta; INSERT INTO meta; DELETE FROM idempotency`. A migration without a
/// statement (one that only marks a change older releases cannot read) is
/// its comment.
fn summary(sql: &str) -> String {
    let code: String = sql.lines().map(|line| line.split("--").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
    let phrases: Vec<String> = code
        .split(';')
        .map(|stmt| stmt.split_whitespace().collect::<Vec<_>>())
        .filter(|words| !words.is_empty())
        .map(|words| {
            // The verb and its object: up to the first name after a keyword.
            let keywords = [
                "CREATE", "TABLE", "INDEX", "UNIQUE", "INSERT", "INTO", "DELETE", "FROM", "DROP", "ALTER", "UPDATE",
                "IF", "NOT", "EXISTS", "RENAME", "TO", "ADD", "COLUMN", "ON",
            ];
            let mut taken = Vec::new();
            for word in &words {
                taken.push(*word);
                if !keywords.contains(&word.to_ascii_uppercase().as_str()) {
                    break;
                }
            }
            taken.join(" ")
        })
        .collect::<Vec<String>>();
    if phrases.is_empty() {
        let said: Vec<&str> = sql.lines().filter_map(|line| line.trim().strip_prefix("--")).map(str::trim).collect();
        return format!("no statement ({})", said.join(" "));
    }
    phrases.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_migration_is_summarised_by_its_statements() {
        let sql = "\nCREATE TABLE meta (\n  key TEXT -- the key; really\n);\nINSERT INTO meta (key) SELECT 1;\n\
                   CREATE INDEX meta_key ON meta (key);\nALTER TABLE a RENAME TO b;\n";
        assert_eq!(summary(sql), "CREATE TABLE meta; INSERT INTO meta; CREATE INDEX meta_key; ALTER TABLE a");
    }

    #[test]
    fn a_migration_without_a_statement_is_summarised_by_its_comment() {
        assert_eq!(summary("\n-- records name their message\n"), "no statement (records name their message)");
    }

    #[test]
    fn the_report_lists_pending_migrations_and_flags_a_newer_schema() {
        let state = SchemaState::new(1, &["CREATE TABLE a (x INT)", "DROP TABLE a", "CREATE TABLE b (y INT)"]);
        let text = report(&state);
        assert!(text.contains("schema version 1; this hookline knows 3"), "{text}");
        assert!(text.contains("  2: DROP TABLE a\n  3: CREATE TABLE b\n"), "{text}");
        let newer = SchemaState { current: 5, known: 3, pending: Vec::new() };
        let err = newer.refuse_newer().unwrap_err().to_string();
        assert!(err.contains("newer") && err.contains("restore the backup"), "{err}");
    }
}
