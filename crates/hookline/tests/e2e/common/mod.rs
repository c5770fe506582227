//! Shared harness for the end-to-end tests: runs the real `hookline` binary.
//!
//! ```ignore
//! let server = TestServer::start().await;                       // defaults
//! let server = TestServer::builder().env("HOOKLINE_RETRY_SCHEDULE", "1s").start().await;
//! let (status, app) = server.admin().post("/api/v1/app", &json!({"name": "a"})).await;
//! let token = server.token_for_app(app_id, false).await;        // portal token
//! let (status, body) = server.api(&token).get("/api/v1/app/..").await;
//! server.kill9().await; server.start_again().await;             // crash + restart
//! ```
//!
//! Each server gets a fresh temporary directory (its working directory, so no
//! stray `hookline.toml` is read, holding `data/` as `HOOKLINE_DATA_DIR`), a
//! free loopback port, its own random static admin token, and an environment
//! with every inherited `HOOKLINE_*` variable removed. Its stdout and stderr
//! go to `server.log` in the temporary directory, across restarts; when a test
//! panics while a `TestServer` is alive, the log's tail is printed. The child
//! process is killed when the `TestServer` is dropped.
//!
//! **Backends.** `HOOKLINE_TEST_BACKEND` (`sqlite`, the default, or
//! `postgres`) chooses the store of every server ([`backend`]). On
//! `postgres` each server gets a fresh database on the server at
//! `HOOKLINE_TEST_DATABASE_URL` (dropped with the server) and a random
//! `HOOKLINE_MAIN_KEY`; `scripts/test.sh` runs the whole binary on both.
//! A test whose subject exists on one backend only says so first:
//!
//! ```ignore
//! if skip_unless(Backend::Sqlite, "scans the SQLite files of the data directory") { return; }
//! assert_eq!(server.backend(), Backend::Postgres);               // or server.is_embedded()
//! ```
//!
//! **Several nodes on one database** (PostgreSQL only: the embedded store
//! refuses a second `serve` by design, and these helpers panic on it). Nodes
//! share the database, the main key and the admin token; each has its own
//! port, data directory and log:
//!
//! ```ignore
//! if skip_unless(Backend::Postgres, "three nodes share one database") { return; }
//! let nodes = TestServer::start_nodes(3, |b| b.env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")).await;
//! let fourth = TestServer::builder().shares_database_with(&nodes[0]).start().await;
//! ```
//!
//! **Stopping the database** under the servers: a private cluster ([`pg`]):
//!
//! ```ignore
//! let cluster = PgCluster::start().await;                        // initdb + start, free port
//! let url = cluster.create_database("hl").await;
//! let first = TestServer::builder().database_url(&url).start().await;   // random main key
//! let second = TestServer::builder().shares_database_with(&first).start().await;
//! cluster.stop_immediate().await;                                // pg_ctl -m immediate
//! cluster.start_again().await;                                   // same directory and port
//! ```
//!
//! Every module of the e2e test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

pub mod backend;
pub mod pg;
#[cfg(test)]
mod tests;

pub use backend::{skip_unless, Backend};
pub use pg::PgCluster;

use backend::{DatabaseChoice, ServerDatabase};

/// How long a fresh server may take to answer `GET /api/v1/health`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd server may take to exit before it is SIGKILLed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

const BIN: &str = env!("CARGO_BIN_EXE_hookline");

/// Configures a [`TestServer`] before it starts.
#[derive(Default)]
pub struct TestServerBuilder {
    env: BTreeMap<String, String>,
    admin_token: Option<String>,
    serve_args: Vec<String>,
    database: DatabaseChoice,
    main_key: Option<String>,
    without_main_key: bool,
}

impl TestServerBuilder {
    /// Sets an environment variable of the server (and of [`TestServer::cli`]).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Adds an argument after `serve` (e.g. `--event-catalog FILE`).
    pub fn serve_arg(mut self, arg: &str) -> Self {
        self.serve_args.push(arg.to_string());
        self
    }

    /// Sets the static admin token (by default a random one per server).
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_string());
        self
    }

    /// Runs the server on PostgreSQL at `url`, a database the test owns (e.g.
    /// from [`PgCluster::create_database`]), whatever `HOOKLINE_TEST_BACKEND`
    /// says. The main key is random unless [`main_key`](Self::main_key) sets
    /// it; further nodes take both with
    /// [`shares_database_with`](Self::shares_database_with).
    pub fn database_url(mut self, url: &str) -> Self {
        self.database = DatabaseChoice::Url(url.to_string());
        self
    }

    /// Sets `HOOKLINE_MAIN_KEY` (base64 of 32 bytes). On PostgreSQL the
    /// harness sets a random one otherwise; on the embedded store the server
    /// then uses this instead of its key file.
    pub fn main_key(mut self, key: &str) -> Self {
        self.main_key = Some(key.to_string());
        self
    }

    /// Starts the server with no `HOOKLINE_MAIN_KEY` even on PostgreSQL
    /// (which must then refuse to start: see [`try_start`](Self::try_start)).
    pub fn without_main_key(mut self) -> Self {
        self.without_main_key = true;
        self
    }

    /// Another node of `first`'s deployment: the same database, main key
    /// (unless [`main_key`](Self::main_key) sets another) and admin token
    /// (unless [`admin_token`](Self::admin_token) sets another); its own
    /// port, data directory and log. PostgreSQL only: panics when `first`
    /// runs on the embedded store, which refuses a second node by design.
    pub fn shares_database_with(mut self, first: &TestServer) -> Self {
        assert!(
            first.database.backend == Backend::Postgres,
            "shares_database_with: several nodes on one database need PostgreSQL, and this server runs on the \
             {} backend (the embedded store refuses a second node by design). Guard the test with \
             `if skip_unless(Backend::Postgres, \"…\") {{ return; }}`, or start the first node with \
             `database_url`.",
            first.database.backend
        );
        self.database = DatabaseChoice::SharedWith(first.database.clone());
        self.admin_token.get_or_insert_with(|| first.admin_token.clone());
        self
    }

    /// Starts the server and waits until it is healthy; panics with the
    /// server's log if it does not get there.
    pub async fn start(self) -> TestServer {
        self.try_start().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the server and waits until it is healthy, or says why it did
    /// not (with its log): for tests of a server that must refuse to start.
    pub async fn try_start(self) -> Result<TestServer, String> {
        let data_dir = tempfile::Builder::new().prefix("hookline-test-").tempdir().expect("create temp dir");
        let admin_token = self.admin_token.unwrap_or_else(|| format!("test-admin-{:016x}", random_u64()));
        let mut env = self.env;
        // A test that sets these through `env` chose its database itself.
        let mut choice = self.database;
        if let (DatabaseChoice::FromEnv, Some(url)) = (&choice, env.get("HOOKLINE_DATABASE_URL")) {
            choice = DatabaseChoice::Url(url.clone());
        }
        let main_key = self.main_key.or_else(|| env.get("HOOKLINE_MAIN_KEY").cloned());
        let mut database = choice.resolve(main_key);
        if self.without_main_key {
            database.main_key = None;
            env.remove("HOOKLINE_MAIN_KEY");
        }
        if let Some(url) = &database.url {
            env.insert("HOOKLINE_DATABASE_URL".into(), url.clone());
        }
        if let Some(key) = &database.main_key {
            env.insert("HOOKLINE_MAIN_KEY".into(), key.clone());
        }
        env.entry("HOOKLINE_LOG".into()).or_insert_with(|| "info".into());
        // Plain text in server.log.
        env.entry("NO_COLOR".into()).or_insert_with(|| "1".into());
        env.insert("HOOKLINE_DATA_DIR".into(), data_dir.path().join("data").display().to_string());
        env.insert("HOOKLINE_ADMIN_TOKEN".into(), admin_token.clone());
        let mut server = TestServer {
            child: None,
            port: 0,
            data_dir,
            env,
            admin_token,
            http: http_client(),
            serve_args: self.serve_args,
            database,
        };
        // The port was free when chosen, but another process may take it
        // before the server binds it: then try another one.
        for attempt in 1.. {
            server.set_port(free_port());
            let logged_before = server.log().len();
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) if attempt < 5 && port_taken(&server.log()[logged_before..], &e) => {
                    eprintln!("port {} was taken ({e}); trying another", server.port);
                }
                Err(e) => return Err(format!("{e}\n{}", server.log())),
            }
        }
        unreachable!()
    }
}

/// A running `hookline serve` child process with helpers to call it.
pub struct TestServer {
    child: Option<Child>,
    port: u16,
    data_dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    admin_token: String,
    http: reqwest::Client,
    serve_args: Vec<String>,
    /// Declared last: a database the harness created is dropped after the
    /// process is killed.
    database: ServerDatabase,
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// A server with default settings.
    pub async fn start() -> TestServer {
        TestServer::builder().start().await
    }

    /// `n` nodes on one database (see
    /// [`shares_database_with`](TestServerBuilder::shares_database_with)),
    /// each built by `configure` and started one after the other, so the
    /// first has migrated the schema before the others start. PostgreSQL
    /// only: panics on the embedded store.
    pub async fn start_nodes(n: usize, configure: impl Fn(TestServerBuilder) -> TestServerBuilder) -> Vec<TestServer> {
        assert!(n >= 1, "start_nodes(0)");
        let first = configure(TestServer::builder()).start().await;
        let mut nodes = Vec::with_capacity(n);
        for _ in 1..n {
            let node = configure(TestServer::builder().shares_database_with(&first)).start().await;
            nodes.push(node);
        }
        nodes.insert(0, first);
        nodes
    }

    // ---- backend -----------------------------------------------------------

    /// The store this server runs on.
    pub fn backend(&self) -> Backend {
        self.database.backend
    }

    /// Whether this server runs on the embedded store (SQLite in its data
    /// directory).
    pub fn is_embedded(&self) -> bool {
        self.database.backend == Backend::Sqlite
    }

    /// Its `HOOKLINE_DATABASE_URL` (PostgreSQL only).
    pub fn database_url(&self) -> Option<&str> {
        self.database.url.as_deref()
    }

    /// The `HOOKLINE_MAIN_KEY` the harness gave it (PostgreSQL, or when set
    /// with [`TestServerBuilder::main_key`]).
    pub fn main_key(&self) -> Option<&str> {
        self.database.main_key.as_deref()
    }

    // ---- addresses and paths ---------------------------------------------

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with /: {path:?}");
        format!("{}{}", self.base_url(), path)
    }

    /// The server's `HOOKLINE_DATA_DIR`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.path().join("data")
    }

    /// The file the server's stderr (its log) goes to, across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("server.log")
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The plain HTTP client (no token), for requests the helpers do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    // ---- API clients -----------------------------------------------------

    /// Calls with the admin token.
    pub fn admin(&self) -> Api<'_> {
        self.api(&self.admin_token)
    }

    /// Calls with `token` as the bearer token.
    pub fn api(&self, token: &str) -> Api<'_> {
        Api { server: self, token: Some(token.to_string()) }
    }

    /// Calls without any `Authorization` header.
    pub fn anonymous(&self) -> Api<'_> {
        Api { server: self, token: None }
    }

    /// A portal token for one application, from `POST /auth/app-portal-access`.
    pub async fn token_for_app(&self, app_id: &str, read_only: bool) -> String {
        let (status, body) = self
            .admin()
            .post(&format!("/api/v1/auth/app-portal-access/{app_id}"), &json!({"readOnly": read_only}))
            .await;
        assert_eq!(status, 200, "app-portal-access for {app_id}: {body}");
        body["token"].as_str().unwrap_or_else(|| panic!("no token in {body}")).to_string()
    }

    /// Creates an application (`uid` optional) and returns its JSON.
    pub async fn create_app(&self, name: &str, uid: Option<&str>) -> Value {
        let mut input = json!({ "name": name });
        if let Some(uid) = uid {
            input["uid"] = json!(uid);
        }
        let (status, body) = self.admin().post("/api/v1/app", &input).await;
        assert_eq!(status, 201, "create app {name}: {body}");
        body
    }

    // ---- other subcommands -----------------------------------------------

    /// Runs `hookline ARGS…` with the server's environment and data directory
    /// (e.g. `["token", "create", "--app", id]`) and waits for it.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("hookline {args:?} did not finish within 60 s"))
            .unwrap_or_else(|e| panic!("cannot run hookline {args:?}: {e}"))
    }

    /// [`cli`](Self::cli) that must succeed; returns its trimmed stdout.
    pub async fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args).await;
        assert!(
            out.status.success(),
            "hookline {args:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("CLI prints UTF-8").trim().to_string()
    }

    /// Runs SQL on the server's store from outside the server: `sqlite` on
    /// the embedded store's file (as another connection, which a running
    /// server's WAL mode allows), `postgres` on its database.
    pub fn run_sql(&self, sqlite: &str, postgres: &str) {
        match self.database_url() {
            None => {
                let conn = rusqlite::Connection::open(self.data_dir().join("hookline.db")).unwrap();
                conn.execute_batch(sqlite).unwrap();
            }
            Some(url) => backend::off_runtime(|| {
                let mut client = backend::connect(url, Instant::now() + Duration::from_secs(10)).unwrap();
                client.batch_execute(postgres).unwrap();
            }),
        }
    }

    /// The one number a query answers, read straight from the server's
    /// database (a query per backend).
    pub fn sql_number(&self, sqlite: &str, postgres: &str) -> i64 {
        match self.database_url() {
            None => {
                let conn = rusqlite::Connection::open(self.data_dir().join("hookline.db")).unwrap();
                conn.query_row(sqlite, [], |row| row.get(0)).unwrap()
            }
            Some(url) => backend::off_runtime(|| {
                let mut client = backend::connect(url, Instant::now() + Duration::from_secs(10)).unwrap();
                client.query_one(postgres, &[]).unwrap().get(0)
            }),
        }
    }

    // ---- process control -------------------------------------------------

    /// The process id of the running server, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => child.try_wait().expect("poll child").is_none(),
            None => false,
        }
    }

    /// Graceful restart: SIGTERM, then start again on the same data directory
    /// and port. Panics unless the old process exits cleanly within 10 s.
    pub async fn restart(&mut self) {
        let graceful = self.stop().await;
        assert!(graceful, "hookline did not exit cleanly on SIGTERM:\n{}", tail(&self.log_path(), 4000));
        self.start_again().await;
    }

    /// Sends SIGTERM and waits for the process to exit (SIGKILL after 10 s).
    /// Returns whether it exited successfully on its own.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("poll child") {
                return status.success();
            }
            if Instant::now() > deadline {
                eprintln!("hookline did not exit within {STOP_TIMEOUT:?} of SIGTERM; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process (again) on the same data directory, port and
    /// environment, and waits until it is healthy.
    pub async fn start_again(&mut self) {
        if let Err(e) = self.spawn_and_wait().await {
            panic!("{e}\n{}", self.log());
        }
    }

    /// Spawns `hookline serve` and waits for health; on failure the child is
    /// gone and the error says why.
    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "start_again while the server is running; stop or kill9 it first");
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open server log");
        let mut cmd = self.command();
        cmd.arg("serve")
            .args(&self.serve_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        self.child = Some(child);
        // Pooled connections to a previous process are dead.
        self.http = http_client();
        let result = self.wait_healthy().await;
        if result.is_err() {
            self.kill9().await;
        }
        result
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let url = self.url("/api/v1/health");
        loop {
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait().expect("poll child") {
                    self.child = None;
                    return Err(format!("hookline serve exited with {status} before answering"));
                }
            }
            match self.http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().as_u16() == 204 => return self.check_identity().await,
                Ok(r) => return Err(format!("GET /api/v1/health answered {}, not 204", r.status())),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => return Err(format!("hookline did not answer within {START_TIMEOUT:?}: {e}")),
            }
        }
    }

    /// Whoever answered health on our port must also accept our own admin
    /// token: another test's server that took the port first would not.
    async fn check_identity(&mut self) -> Result<(), String> {
        let r = self
            .http
            .get(self.url("/api/v1/app?limit=1"))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .map_err(|e| format!("GET /api/v1/app after health: {e}"))?;
        if r.status().as_u16() != 200 {
            return Err(format!("the server on port {} refused our admin token ({})", self.port, r.status()));
        }
        match self.child.as_mut().map(|c| c.try_wait().expect("poll child")) {
            Some(None) => Ok(()),
            _ => Err("hookline serve exited while another process answered on its port".to_string()),
        }
    }

    fn set_port(&mut self, port: u16) {
        self.port = port;
        self.env.insert("HOOKLINE_LISTEN".into(), format!("127.0.0.1:{port}"));
    }

    /// The binary with this server's environment, in its working directory.
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HOOKLINE_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(&self.env).current_dir(self.data_dir.path());
        cmd
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = tail(&self.log_path(), 8000);
            eprintln!("---- hookline server log (tail) ----\n{log}\n---- end of server log ----");
        }
    }
}

fn tail(path: &Path, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    match text.char_indices().rev().nth(max) {
        Some((i, _)) => format!("…{}", &text[i..]),
        None => text,
    }
}

/// Idle pooled connections are dropped well before the server closes them
/// (it closes a connection idle for 60 s), so a request never goes out on a
/// connection the server is closing at that moment.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
        .expect("build HTTP client")
}

/// A port that is free now on 127.0.0.1, chosen below Linux's ephemeral
/// range (32768+) so that outgoing connections are unlikely to take it.
fn free_port() -> u16 {
    for _ in 0..100 {
        let port = 20_000 + (random_u64() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

/// Whether a failed start means another process got the port first.
fn port_taken(new_log: &str, error: &str) -> bool {
    new_log.contains("Address already in use") || error.contains("on its port") || error.contains("refused our")
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// Calls the server with one token (or none).
pub struct Api<'a> {
    server: &'a TestServer,
    token: Option<String>,
}

/// A full answer, for tests that look at headers.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON; `Null` when empty, a JSON string holding the raw
    /// text when the body is not JSON.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Api<'_> {
    /// A request builder with the token set, for anything unusual (raw
    /// bodies, extra headers). Send it with [`send`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.server.http.request(method, self.server.url(path));
        if let Some(token) = &self.token {
            rb = rb.bearer_auth(token);
        }
        rb
    }

    /// `method path` with an optional JSON body: (status, body).
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut rb = self.request(method, path);
        if let Some(body) = body {
            rb = rb.json(body);
        }
        let r = send(rb).await;
        (r.status, r.body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// POST with an `Idempotency-Key`, answering headers too.
    pub async fn post_idempotent(&self, path: &str, key: &str, body: &Value) -> Resp {
        send(self.request(Method::POST, path).header("idempotency-key", key).json(body)).await
    }
}

/// Sends a request and decodes the answer (see [`Resp::body`]).
pub async fn send(rb: RequestBuilder) -> Resp {
    let response = rb.send().await.unwrap_or_else(|e| panic!("request failed: {e:?}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_else(|e| panic!("reading the body of a {status} failed: {e:?}"));
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Resp { status, headers, body }
}

/// Asserts a Svix-shaped error: the expected status and a JSON object body
/// with a string `code` and a `detail`. Returns the body.
#[track_caller]
pub fn assert_error(status: u16, body: &Value, expected: u16) -> Value {
    assert_eq!(status, expected, "expected {expected}, got {status}: {body}");
    assert_error_shape(status, body);
    body.clone()
}

/// Asserts that a non-2xx body is `{"code": "...", "detail": ...}`; a 422's
/// `detail` must be a non-empty list of `{loc, msg, type}`.
#[track_caller]
pub fn assert_error_shape(status: u16, body: &Value) {
    assert!(!(200..300).contains(&status), "{status} is not an error: {body}");
    assert_ne!(status, 500, "internal error: {body}");
    let obj = body.as_object().unwrap_or_else(|| panic!("{status} body is not a JSON object: {body}"));
    assert!(obj.get("code").is_some_and(Value::is_string), "{status} body has no string code: {body}");
    let detail = obj.get("detail").unwrap_or_else(|| panic!("{status} body has no detail: {body}"));
    if status == 422 {
        let items = detail.as_array().unwrap_or_else(|| panic!("422 detail is not a list: {body}"));
        assert!(!items.is_empty(), "422 detail is empty: {body}");
        for item in items {
            assert!(item["loc"].is_array(), "422 item without loc list: {body}");
            assert!(item["msg"].is_string(), "422 item without msg: {body}");
            assert!(item["type"].is_string(), "422 item without type: {body}");
        }
    } else {
        assert!(detail.is_string(), "{status} detail is not a string: {body}");
    }
}

/// Asserts a 422 whose `detail` names `field` in some `loc` (e.g. `"url"`
/// for `["body", "url"]`, `"limit"` for `["query", "limit"]`).
#[track_caller]
pub fn assert_invalid_field(status: u16, body: &Value, field: &str) {
    assert_error(status, body, 422);
    let named = body["detail"].as_array().into_iter().flatten().any(|item| {
        item["loc"].as_array().is_some_and(|loc| loc.iter().any(|segment| segment.as_str() == Some(field)))
    });
    assert!(named, "422 does not name {field:?} in any loc: {body}");
}

/// The `data` array of a list answer, after checking the list's shape.
#[track_caller]
pub fn list_data(body: &Value) -> &Vec<Value> {
    assert_list_shape(body);
    body["data"].as_array().expect("data is a list")
}

/// Asserts `{data: [...], iterator, prevIterator, done: bool}`, with
/// `iterator` null exactly when `data` is empty.
#[track_caller]
pub fn assert_list_shape(body: &Value) {
    let obj = body.as_object().unwrap_or_else(|| panic!("list answer is not an object: {body}"));
    let data = obj.get("data").and_then(Value::as_array).unwrap_or_else(|| panic!("no data list: {body}"));
    assert!(obj.get("done").is_some_and(Value::is_boolean), "no boolean done: {body}");
    let iterator = obj.get("iterator").unwrap_or_else(|| panic!("no iterator key: {body}"));
    assert!(obj.contains_key("prevIterator"), "no prevIterator key: {body}");
    if data.is_empty() {
        assert!(iterator.is_null(), "empty list with a non-null iterator: {body}");
    } else {
        assert!(iterator.is_string(), "non-empty list without an iterator: {body}");
    }
}

/// The string field `name` of `v`, or a panic naming it.
#[track_caller]
pub fn str_of<'v>(v: &'v Value, name: &str) -> &'v str {
    v[name].as_str().unwrap_or_else(|| panic!("no string {name:?} in {v}"))
}
