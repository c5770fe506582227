//! The PostgreSQL side of a run: a fresh database per deployment, created
//! through the admin URL's server and dropped with the deployment; its
//! size; the server's durability settings; its backends' process ids.

use std::str::FromStr;
use std::time::Duration;

use crate::error::{causes, Context, Error, Result};
use crate::offload::blocking;

/// A PostgreSQL server the benchmark may create databases on.
#[derive(Clone)]
pub struct PgServer {
    admin_url: String,
}

impl PgServer {
    pub fn new(admin_url: &str) -> Result<PgServer> {
        url::Url::parse(admin_url).context(format!("--database-url {admin_url:?} is not a URL"))?;
        Ok(PgServer { admin_url: admin_url.to_string() })
    }

    /// Creates database `hl_bench_<random>`.
    pub async fn create_database(&self) -> Result<Database> {
        let name = format!("hl_bench_{:016x}", rand::random::<u64>());
        let (admin_url, statement) = (self.admin_url.clone(), format!("CREATE DATABASE {name}"));
        blocking(move || connect(&admin_url)?.batch_execute(&statement).context(&statement)).await??;
        let mut url = url::Url::parse(&self.admin_url).context("the database URL")?;
        url.set_path(&format!("/{name}"));
        Ok(Database { server: self.clone(), name, url: url.to_string() })
    }

    /// `synchronous_commit` and `fsync` as the server is configured, and its version.
    pub async fn durability(&self) -> Result<String> {
        let admin_url = self.admin_url.clone();
        blocking(move || -> Result<String> {
            let row = connect(&admin_url)?
                .query_one(
                    "SELECT current_setting('server_version'), current_setting('synchronous_commit'), \
                     current_setting('fsync')",
                    &[],
                )
                .context("reading the server's settings")?;
            let (version, commit, fsync): (String, String, String) = (row.get(0), row.get(1), row.get(2));
            Ok(format!(
                "PostgreSQL {version}: synchronous_commit={commit} (Hookline sets it on for every API write), \
                 fsync={fsync}"
            ))
        })
        .await?
    }

    /// Process ids of the server's background processes (checkpointer, WAL
    /// writer, …) and of its backends on `database`.
    pub async fn backend_pids(&self, database: &str) -> Result<Vec<u32>> {
        let (admin_url, database) = (self.admin_url.clone(), database.to_string());
        blocking(move || -> Result<Vec<u32>> {
            let rows = connect(&admin_url)?
                .query("SELECT pid FROM pg_stat_activity WHERE datname IS NULL OR datname = $1", &[&database])
                .context("pg_stat_activity")?;
            Ok(rows.iter().map(|row| row.get::<_, i32>(0) as u32).collect())
        })
        .await?
    }
}

/// A database of one deployment, dropped with it.
pub struct Database {
    server: PgServer,
    pub name: String,
    pub url: String,
}

impl Database {
    /// `pg_database_size`, in bytes.
    pub async fn size(&self) -> Result<u64> {
        let url = self.url.clone();
        blocking(move || -> Result<u64> {
            let row = connect(&url)?
                .query_one("SELECT pg_database_size(current_database())", &[])
                .context("pg_database_size")?;
            Ok(row.get::<_, i64>(0) as u64)
        })
        .await?
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // WITH (FORCE): whatever is still connected goes with it.
        let (admin_url, statement) =
            (self.server.admin_url.clone(), format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        let dropped =
            std::thread::spawn(move || connect(&admin_url)?.batch_execute(&statement).context(&statement)).join();
        if let Ok(Err(e)) = dropped {
            eprintln!("hookline-bench: {e}");
        }
    }
}

/// Connects to `url` (blocking: call it through [`blocking`]).
pub fn connect(url: &str) -> Result<postgres::Client> {
    let mut config = postgres::Config::from_str(url).context(format!("{url:?} is not a PostgreSQL URL"))?;
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls).map_err(|e| Error::new(format!("connecting to {url}: {}", causes(&e))))
}
