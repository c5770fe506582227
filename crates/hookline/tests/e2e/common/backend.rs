//! Which store a [`TestServer`](super::TestServer) runs on, and the
//! PostgreSQL databases the harness creates for it.
//!
//! `HOOKLINE_TEST_BACKEND` chooses: `sqlite` (the default) or `postgres`.
//! On `postgres` every server gets a fresh database `hl_<random>` on the
//! server at `HOOKLINE_TEST_DATABASE_URL` (an admin URL; `scripts/test.sh`
//! and `scripts/pg-test-cluster.sh` start one) and a random main key; nodes
//! started with `shares_database_with` share both, and the database is
//! dropped with the last of them.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

/// The store behind a test server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store in the server's data directory.
    Sqlite,
    /// PostgreSQL at `HOOKLINE_DATABASE_URL`.
    Postgres,
}

impl Backend {
    /// The backend of this run: `HOOKLINE_TEST_BACKEND`, `sqlite` when unset.
    pub fn current() -> Backend {
        match std::env::var("HOOKLINE_TEST_BACKEND").as_deref() {
            Err(_) | Ok("") | Ok("sqlite") => Backend::Sqlite,
            Ok("postgres") => Backend::Postgres,
            Ok(other) => panic!("HOOKLINE_TEST_BACKEND={other:?}: expected `sqlite` or `postgres`"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether the calling test must stop here because its subject exists only
/// on `backend` (printing why when it does): the guard of a test that scans
/// SQLite files, or of one that runs several nodes on one database.
///
/// ```ignore
/// if skip_unless(Backend::Sqlite, "scans the SQLite files of the data directory") {
///     return;
/// }
/// ```
pub fn skip_unless(backend: Backend, why: &str) -> bool {
    let current = Backend::current();
    if current == backend {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("this test").to_string();
    println!("{test}: skipped on the {current} backend, {backend} only: {why}");
    true
}

/// A random main key (base64 of 32 bytes), as `HOOKLINE_MAIN_KEY` takes it.
pub fn random_main_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// What a builder was told about the database.
#[derive(Default)]
pub(super) enum DatabaseChoice {
    /// Whatever `HOOKLINE_TEST_BACKEND` says.
    #[default]
    FromEnv,
    /// A database the test owns (e.g. on a [`PgCluster`](super::pg::PgCluster)).
    Url(String),
    /// The database of another server: a node of the same deployment.
    SharedWith(ServerDatabase),
}

/// The database of one running test server.
#[derive(Clone)]
pub(super) struct ServerDatabase {
    pub backend: Backend,
    /// `HOOKLINE_DATABASE_URL` (PostgreSQL only).
    pub url: Option<String>,
    /// `HOOKLINE_MAIN_KEY` (PostgreSQL only; the embedded store keeps its key file).
    pub main_key: Option<String>,
    /// The database the harness created, dropped with the last server using it.
    pub created: Option<Arc<CreatedDatabase>>,
}

impl DatabaseChoice {
    /// Creates the database if the harness owns it. `main_key` is the one
    /// the builder was given, if any.
    pub fn resolve(self, main_key: Option<String>) -> ServerDatabase {
        match self {
            DatabaseChoice::FromEnv => match Backend::current() {
                Backend::Sqlite => ServerDatabase { backend: Backend::Sqlite, url: None, main_key, created: None },
                Backend::Postgres => {
                    let created = CreatedDatabase::create();
                    ServerDatabase {
                        backend: Backend::Postgres,
                        url: Some(created.url.clone()),
                        main_key: Some(main_key.unwrap_or_else(random_main_key)),
                        created: Some(created),
                    }
                }
            },
            DatabaseChoice::Url(url) => ServerDatabase {
                backend: Backend::Postgres,
                url: Some(url),
                main_key: Some(main_key.unwrap_or_else(random_main_key)),
                created: None,
            },
            DatabaseChoice::SharedWith(mut other) => {
                if main_key.is_some() {
                    // A node with another key must be refused: let a test try.
                    other.main_key = main_key;
                }
                other
            }
        }
    }
}

/// A database `hl_<random>` created on the server at
/// `HOOKLINE_TEST_DATABASE_URL`, dropped (best effort) when the last server
/// using it is dropped.
pub(super) struct CreatedDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl CreatedDatabase {
    fn create() -> Arc<CreatedDatabase> {
        let admin_url =
            std::env::var("HOOKLINE_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()).unwrap_or_else(|| {
                panic!(
                    "HOOKLINE_TEST_BACKEND=postgres needs HOOKLINE_TEST_DATABASE_URL, the admin URL of a PostgreSQL \
                     server the tests may create databases on: run scripts/test.sh, or \
                     `eval \"$(scripts/pg-test-cluster.sh start)\"` first"
                )
            });
        let name = format!("hl_{:016x}", rand::random::<u64>());
        let url = database_url(&admin_url, &name);
        let statement = format!("CREATE DATABASE {name}");
        off_runtime(|| execute(&admin_url, &statement, Duration::from_secs(30)))
            .unwrap_or_else(|e| panic!("{statement} on {admin_url}: {e}"));
        Arc::new(CreatedDatabase { admin_url, name, url })
    }
}

impl Drop for CreatedDatabase {
    fn drop(&mut self) {
        // The servers are gone; WITH (FORCE) ends anything left connected
        // (e.g. a CLI child). Best effort: the cluster is thrown away anyway.
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = off_runtime(|| execute(&self.admin_url, &statement, Duration::from_secs(5)));
    }
}

/// `admin_url` with its database replaced by `name`.
pub(super) fn database_url(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).unwrap_or_else(|e| panic!("{admin_url:?} is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Connects to `url`, retrying until `deadline` (a server that is starting
/// refuses connections for a moment). Blocking: call it off the async
/// runtime ([`off_runtime`] or `spawn_blocking`).
pub fn connect(url: &str, deadline: Instant) -> Result<postgres::Client, postgres::Error> {
    let mut config = postgres::Config::from_str(url)?;
    config.connect_timeout(Duration::from_secs(5));
    loop {
        match config.connect(postgres::NoTls) {
            Ok(client) => return Ok(client),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e),
        }
    }
}

/// Runs one statement (outside a transaction, as CREATE DATABASE needs).
pub(super) fn execute(url: &str, statement: &str, within: Duration) -> Result<(), postgres::Error> {
    let mut client = connect(url, Instant::now() + within)?;
    client.batch_execute(statement)
}

/// Runs blocking code on a thread of its own and waits for it: the sync
/// `postgres` client starts a runtime of its own, which panics inside
/// tokio's, and a `Drop` may run inside tokio's.
pub(super) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_replaces_only_the_database() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "hl_1"),
            "postgres://postgres@127.0.0.1:5432/hl_1"
        );
        assert_eq!(
            database_url("postgres://u:p@localhost:1/admin?sslmode=disable", "hl_2"),
            "postgres://u:p@localhost:1/hl_2?sslmode=disable"
        );
    }

    /// Whether database `name` exists on the server at `admin_url`.
    fn database_exists(admin_url: &str, name: &str) -> bool {
        let mut client = connect(admin_url, Instant::now() + Duration::from_secs(30)).unwrap();
        let row = client.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).unwrap();
        row.get::<_, i64>(0) == 1
    }

    #[test]
    fn a_created_database_lives_until_its_last_server_is_dropped() {
        if std::env::var_os("HOOKLINE_TEST_DATABASE_URL").is_none()
            && skip_unless(Backend::Postgres, "no HOOKLINE_TEST_DATABASE_URL to create databases on")
        {
            return;
        }
        let first = CreatedDatabase::create();
        let (admin_url, name) = (first.admin_url.clone(), first.name.clone());
        assert!(name.starts_with("hl_"), "{name}");
        assert_eq!(first.url, database_url(&admin_url, &name));
        let mut client = connect(&first.url, Instant::now() + Duration::from_secs(30)).unwrap();
        client.batch_execute("CREATE TABLE t (n int)").unwrap();

        let second = first.clone();
        drop(first);
        assert!(database_exists(&admin_url, &name), "dropped while a node still used it");
        // A connection left open does not keep it: DROP … WITH (FORCE).
        drop(second);
        assert!(!database_exists(&admin_url, &name), "{name} outlived its last server");
        assert!(client.batch_execute("SELECT 1").is_err(), "the open connection was ended");
    }

    #[test]
    fn a_random_main_key_is_base64_of_32_bytes() {
        let key = random_main_key();
        let bytes = base64::engine::general_purpose::STANDARD.decode(&key).unwrap();
        assert_eq!(bytes.len(), 32);
        assert_ne!(key, random_main_key());
    }
}
