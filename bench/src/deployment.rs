//! The server under test: `hookline serve` processes on a store of their
//! own (a temporary data directory, or a fresh PostgreSQL database shared by
//! every node with one `HOOKLINE_MAIN_KEY`), each on a free loopback port,
//! started and polled until `/api/v1/health` answers, killed when dropped.
//! Also what the processes cost: memory, CPU, disk.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tempfile::TempDir;

use crate::api::HooklineApi;
use crate::error::{ensure, Context, Error, Result};
use crate::load::HttpClient;
use crate::pg::{Database, PgServer};
use crate::procfs;

/// Deliveries a second per endpoint without a rate limit of its own. The
/// server's default (1000/s) would cap every end-to-end figure.
pub const DEFAULT_RATE_LIMIT: u32 = 1_000_000;
/// How long a node may take to answer its first health check.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// What to start.
pub struct ServerSpec {
    pub hookline: PathBuf,
    pub store: StoreSpec,
    pub nodes: usize,
    /// Where data directories go.
    pub work_dir: PathBuf,
}

pub enum StoreSpec {
    Sqlite,
    Postgres(PgServer),
}

pub struct Deployment {
    // Dropped in this order: processes, then their database and directory.
    nodes: Vec<Node>,
    database: Option<Database>,
    dir: TempDir,
    token: String,
}

struct Node {
    child: Child,
    base: String,
    data_dir: PathBuf,
    log: PathBuf,
    /// From spawning the process to its first healthy answer.
    ready_after: Duration,
}

impl Deployment {
    pub async fn start(spec: &ServerSpec) -> Result<Deployment> {
        let dir = tempfile::Builder::new()
            .prefix("hookline-bench-")
            .tempdir_in(&spec.work_dir)
            .context(format!("creating a directory in {}", spec.work_dir.display()))?;
        let database = match &spec.store {
            StoreSpec::Sqlite => None,
            StoreSpec::Postgres(server) => Some(server.create_database().await?),
        };
        let token = format!("bench_{:032x}", rand::random::<u128>());
        let main_key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let mut deployment = Deployment { nodes: Vec::new(), database, dir, token };
        for index in 0..spec.nodes {
            let node = deployment.spawn(spec, index, &main_key)?;
            deployment.nodes.push(node);
            let node = deployment.nodes.last_mut().expect("just pushed");
            node.ready_after = wait_healthy(node).await?;
        }
        Ok(deployment)
    }

    fn spawn(&self, spec: &ServerSpec, index: usize, main_key: &str) -> Result<Node> {
        let node_dir = self.dir.path().join(format!("node{index}"));
        let data_dir = node_dir.join("data");
        std::fs::create_dir_all(&data_dir).context(data_dir.display())?;
        let port = free_port()?;
        let log = node_dir.join("hookline.log");
        let log_file = File::create(&log).context(log.display())?;
        let mut command = Command::new(&spec.hookline);
        command
            .arg("serve")
            // No hookline.toml of the caller's working directory applies.
            .current_dir(&node_dir)
            .env("HOOKLINE_DATA_DIR", &data_dir)
            .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKLINE_ADMIN_TOKEN", &self.token)
            .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
            .env("HOOKLINE_LOG", "warn")
            .env("HOOKLINE_DEFAULT_RATE_LIMIT", DEFAULT_RATE_LIMIT.to_string())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context(log.display())?)
            .stderr(log_file);
        if let Some(database) = &self.database {
            command.env("HOOKLINE_DATABASE_URL", &database.url).env("HOOKLINE_MAIN_KEY", main_key);
        }
        let child = command.spawn().context(format!("starting {}", spec.hookline.display()))?;
        Ok(Node { child, base: format!("http://127.0.0.1:{port}"), data_dir, log, ready_after: Duration::ZERO })
    }

    /// The API, through the nodes in turn.
    pub fn api(&self, client: &HttpClient) -> HooklineApi {
        HooklineApi::new(client, self.nodes.iter().map(|n| n.base.clone()).collect(), &self.token)
    }

    /// The slowest node's time from start to its first healthy answer.
    pub fn start_time(&self) -> Duration {
        self.nodes.iter().map(|n| n.ready_after).max().unwrap_or_default()
    }

    fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.nodes.iter().map(|n| n.child.id())
    }

    /// Resident memory of every node, summed, in bytes.
    pub fn rss(&self) -> Result<u64> {
        self.pids().map(procfs::rss).sum()
    }

    /// Starts a new peak-memory phase on every node.
    pub fn reset_peak_rss(&self) -> Result<()> {
        self.pids().try_for_each(procfs::reset_peak)
    }

    /// The peak resident memory of each node since the last reset, summed.
    pub fn peak_rss(&self) -> Result<u64> {
        self.pids().map(procfs::peak_rss).sum()
    }

    /// CPU seconds used by every node so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        self.pids().map(procfs::cpu_seconds).sum()
    }

    /// The PostgreSQL database of this deployment, if it runs on one.
    pub fn database(&self) -> Option<&Database> {
        self.database.as_ref()
    }

    /// The store's size: the data directory, or the PostgreSQL database.
    pub async fn disk_bytes(&self) -> Result<u64> {
        match &self.database {
            Some(database) => database.size().await,
            None => self.nodes.iter().map(|n| procfs::dir_bytes(&n.data_dir)).sum(),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/api/v1/health` until it answers 2xx; fails with the node's log
/// if it exits or does not answer within [`START_TIMEOUT`].
async fn wait_healthy(node: &mut Node) -> Result<Duration> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url: hyper::Uri = format!("{}/api/v1/health", node.base).parse().context("the health URL")?;
    let spawned = Instant::now();
    loop {
        if let Ok(response) = client.get(url.clone()).await {
            let healthy = response.status().is_success();
            let _ = response.into_body().collect().await;
            if healthy {
                return Ok(spawned.elapsed());
            }
        }
        if let Some(status) = node.child.try_wait().context("checking on hookline")? {
            return Err(Error::new(format!("hookline serve exited ({status}):\n{}", log_tail(&node.log))));
        }
        ensure(spawned.elapsed() < START_TIMEOUT, || {
            format!("{url} did not answer within {} s:\n{}", START_TIMEOUT.as_secs(), log_tail(&node.log))
        })?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
