//! A private PostgreSQL cluster for the tests that stop the database under
//! the servers: initialised in a temporary directory, started on a free
//! loopback port with durable commits, crashed with `pg_ctl -m immediate`,
//! started again on the same directory and port, stopped when dropped.
//!
//! ```ignore
//! let cluster = PgCluster::start().await;
//! let url = cluster.create_database("hl").await;
//! let node = TestServer::builder().database_url(&url).start().await;
//! cluster.stop_immediate().await;   // a crash: nothing is flushed or closed cleanly
//! cluster.start_again().await;      // crash recovery, then accepting connections
//! ```
//!
//! The programs come from `HOOKLINE_TEST_PG_BIN` (which `scripts/test.sh`
//! exports), else from the newest `/usr/lib/postgresql/*/bin`. PostgreSQL
//! refuses to run as root, so as root they run as the `postgres` user that
//! Debian's package creates.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{connect, database_url, off_runtime};

/// How long a start (including crash recovery) may take.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A PostgreSQL server of the test's own, in a temporary directory.
pub struct PgCluster {
    inner: Arc<Cluster>,
}

impl PgCluster {
    /// Initialises a cluster and starts it; panics (with the server's log)
    /// if it cannot.
    pub async fn start() -> PgCluster {
        let bin = PgCluster::bin_dir().unwrap_or_else(|| {
            panic!(
                "no PostgreSQL: set HOOKLINE_TEST_PG_BIN to its bin directory, or run scripts/test.sh or \
                 scripts/pg-test-cluster.sh start, which install Debian's postgresql package"
            )
        });
        let inner = tokio::task::spawn_blocking(move || Cluster::init_and_start(bin)).await.unwrap_or_else(rethrow);
        PgCluster { inner: Arc::new(inner) }
    }

    /// Where PostgreSQL's programs are: `HOOKLINE_TEST_PG_BIN`, else the
    /// newest `/usr/lib/postgresql/*/bin` holding `pg_ctl`.
    pub fn bin_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("HOOKLINE_TEST_PG_BIN").filter(|dir| !dir.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("pg_ctl").is_file().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin)
    }

    /// The server's port on 127.0.0.1 (the same across restarts).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`, the superuser's URL.
    pub fn admin_url(&self) -> String {
        self.inner.url("postgres")
    }

    /// Creates database `name` (letters, digits, `_`) and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database names here are plain identifiers: {name:?}"
        );
        let admin_url = self.admin_url();
        let statement = format!("CREATE DATABASE {name}");
        tokio::task::spawn_blocking(move || {
            let mut client = connect(&admin_url, Instant::now() + READY_TIMEOUT)
                .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
            client.batch_execute(&statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
        })
        .await
        .unwrap_or_else(rethrow);
        self.inner.url(name)
    }

    /// Whether the server runs (as far as this handle knows).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Crashes the server: `pg_ctl -m immediate stop` ends every process at
    /// once, without a checkpoint; the next start runs crash recovery.
    pub async fn stop_immediate(&self) {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.stop("immediate")).await.unwrap_or_else(rethrow);
    }

    /// A clean shutdown (`pg_ctl -m fast stop`).
    pub async fn stop_fast(&self) {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.stop("fast")).await.unwrap_or_else(rethrow);
    }

    /// Starts the stopped server again on the same directory and port, and
    /// waits until it accepts connections.
    pub async fn start_again(&self) {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            assert!(!inner.running.load(Ordering::SeqCst), "start_again while the cluster runs");
            inner.pg_ctl_start().unwrap_or_else(|e| panic!("{e}\n{}", inner.log_tail()));
            inner.wait_ready();
        })
        .await
        .unwrap_or_else(rethrow);
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.inner.log_path()).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.inner.running.load(Ordering::SeqCst) {
            // Immediate: nothing here is worth a checkpoint.
            off_runtime(|| self.inner.stop("immediate"));
        }
        if std::thread::panicking() {
            eprintln!("---- postgres log (tail) ----\n{}\n---- end of postgres log ----", self.inner.log_tail());
        }
    }
}

fn rethrow<T>(e: tokio::task::JoinError) -> T {
    match e.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(e) => panic!("{e}"),
    }
}

/// The blocking half of [`PgCluster`].
struct Cluster {
    bin: PathBuf,
    /// Holds `data/`, `sock/` and `postgres.log`; removed when dropped.
    dir: tempfile::TempDir,
    port: u16,
    running: AtomicBool,
}

impl Cluster {
    fn init_and_start(bin: PathBuf) -> Cluster {
        let dir = tempfile::Builder::new().prefix("hookline-pgcluster-").tempdir().expect("create temp dir");
        std::fs::create_dir(dir.path().join("sock")).expect("create socket dir");
        let mut cluster = Cluster { bin, dir, port: 0, running: AtomicBool::new(false) };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown postgres: {status}; PostgreSQL refuses to run as root");
        }
        let out = cluster
            .program("initdb")
            .arg("-D")
            .arg(cluster.data_dir())
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A chosen port may be taken before the server binds it: then try another.
        for attempt in 1.. {
            cluster.port = super::free_port();
            let logged_before = cluster.log_len();
            match cluster.pg_ctl_start() {
                Ok(()) => break,
                Err(e) if attempt < 5 && cluster.log_since(logged_before).contains("Address already in use") => {
                    eprintln!("port {} was taken ({e}); trying another", cluster.port);
                }
                Err(e) => panic!("{e}\n{}", cluster.log_tail()),
            }
        }
        cluster.wait_ready();
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn url(&self, database: &str) -> String {
        database_url(&format!("postgres://postgres@127.0.0.1:{}/postgres", self.port), database)
    }

    /// One of PostgreSQL's programs, as the cluster's owner, in its directory.
    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut cmd = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        };
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// `pg_ctl start`, waiting until the postmaster reports itself ready.
    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c synchronous_commit=on \
             -c fsync=on -c max_connections=200",
            self.port,
            self.dir.path().join("sock").display()
        );
        let out = self
            .program("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path())
            .args(["-w", "-t", &READY_TIMEOUT.as_secs().to_string(), "start", "-o", &options])
            .output()
            .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start on port {} failed ({}): {}",
                self.port,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        self.running.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until a client gets a connection over TCP (after crash recovery).
    fn wait_ready(&self) {
        let url = self.url("postgres");
        let mut client = connect(&url, Instant::now() + READY_TIMEOUT)
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} did not accept connections: {e}\n{}", self.log_tail()));
        client.batch_execute("SELECT 1").unwrap_or_else(|e| panic!("SELECT 1 on {url}: {e}"));
    }

    fn stop(&self, mode: &str) {
        let out = self
            .program("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", &READY_TIMEOUT.as_secs().to_string(), "stop"])
            .output()
            .expect("run pg_ctl stop");
        assert!(out.status.success(), "pg_ctl -m {mode} stop failed: {}", String::from_utf8_lossy(&out.stderr));
        self.running.store(false, Ordering::SeqCst);
    }

    fn log_len(&self) -> usize {
        std::fs::metadata(self.log_path()).map(|m| m.len() as usize).unwrap_or(0)
    }

    fn log_since(&self, offset: usize) -> String {
        let log = std::fs::read(self.log_path()).unwrap_or_default();
        String::from_utf8_lossy(log.get(offset..).unwrap_or_default()).into_owned()
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Whether this process runs as root (then PostgreSQL runs as `postgres`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{skip_unless, Backend};

    /// The harness itself: start, create a database, write, crash, start
    /// again on the same port, and find the committed row.
    #[tokio::test]
    async fn a_cluster_survives_an_immediate_stop_and_starts_again() {
        if PgCluster::bin_dir().is_none() && skip_unless(Backend::Postgres, "no PostgreSQL installed to test with") {
            return;
        }
        let started = Instant::now();
        let cluster = PgCluster::start().await;
        println!("initdb + start: {:?}", started.elapsed());
        assert!(cluster.is_running());
        let url = cluster.create_database("hl_selftest").await;
        assert_eq!(url, format!("postgres://postgres@127.0.0.1:{}/hl_selftest", cluster.port()));

        let write_url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = connect(&write_url, Instant::now() + READY_TIMEOUT).unwrap();
            let settings = client
                .query_one("SELECT current_setting('synchronous_commit'), current_setting('fsync')", &[])
                .unwrap();
            assert_eq!((settings.get::<_, String>(0), settings.get::<_, String>(1)), ("on".into(), "on".into()));
            client.batch_execute("CREATE TABLE t (n int); INSERT INTO t VALUES (42)").unwrap();
        })
        .await
        .unwrap();

        let port = cluster.port();
        let stopped = Instant::now();
        cluster.stop_immediate().await;
        println!("stop -m immediate: {:?}", stopped.elapsed());
        assert!(!cluster.is_running());
        let refused = tokio::task::spawn_blocking({
            let url = url.clone();
            move || connect(&url, Instant::now()).is_err()
        });
        assert!(refused.await.unwrap(), "a stopped cluster accepted a connection");

        let restarted = Instant::now();
        cluster.start_again().await;
        println!("start again (crash recovery): {:?}", restarted.elapsed());
        assert_eq!(cluster.port(), port);
        let n = tokio::task::spawn_blocking(move || {
            let mut client = connect(&url, Instant::now() + READY_TIMEOUT).unwrap();
            client.query_one("SELECT n FROM t", &[]).unwrap().get::<_, i32>(0)
        });
        assert_eq!(n.await.unwrap(), 42, "the committed row survived the crash");
        assert!(cluster.log().contains("not properly shut down"), "the restart ran crash recovery");

        let data_dir = cluster.inner.data_dir();
        drop(cluster);
        assert!(!data_dir.exists(), "the cluster's directory is removed with it");
    }
}
