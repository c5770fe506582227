//! The real `hookline serve`, as `crates/hookline/tests/e2e/common` starts
//! it: a fresh temporary directory (its working directory, holding `data/`),
//! a free loopback port, a random static admin token, no inherited
//! `HOOKLINE_*` variable, and its log in `server.log`; killed on drop (with
//! the log's tail printed when the test is failing).
//!
//! Deliveries may reach loopback (the test's receiver) and are attempted once
//! (no retries), so the receiver sees exact counts.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How long a fresh server may take to answer `GET /api/v1/health`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

pub struct HooklineServer {
    child: Child,
    dir: tempfile::TempDir,
    pub base_url: String,
    pub admin_token: String,
}

impl HooklineServer {
    pub async fn start() -> HooklineServer {
        let binary = hookline_binary();
        let dir = tempfile::Builder::new().prefix("hookline-sdk-rust-").tempdir().expect("create a temp dir");
        let admin_token = format!("test-admin-{:016x}", random_u64());
        // The port was free when chosen, but another process may take it
        // before the server binds it: then try another one.
        for attempt in 1.. {
            let port = free_port();
            let base_url = format!("http://127.0.0.1:{port}");
            let log_before = log(dir.path()).len();
            let mut child = spawn(&binary, dir.path(), port, &admin_token);
            match wait_healthy(&mut child, &base_url, &admin_token).await {
                Ok(()) => return HooklineServer { child, dir, base_url, admin_token },
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let new_log = log(dir.path())[log_before..].to_string();
                    let taken = new_log.contains("Address already in use") || e.contains("another process");
                    if attempt < 5 && taken {
                        eprintln!("port {port} was taken; trying another");
                        continue;
                    }
                    panic!("{e}\n{new_log}");
                }
            }
        }
        unreachable!()
    }
}

/// Waits until the server answers health, then makes sure it is ours: it
/// accepts our admin token and our child is still running (another test's
/// server may have taken the port first).
async fn wait_healthy(child: &mut Child, base_url: &str, admin_token: &str) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let sdk = crate::flow::client(base_url, admin_token);
    loop {
        if let Some(status) = child.try_wait().expect("poll the server") {
            return Err(format!("hookline serve exited with {status} before answering"));
        }
        match sdk.health().get().await {
            Ok(()) => {
                let ours = sdk.application().list(None).await.is_ok();
                if !ours || child.try_wait().expect("poll the server").is_some() {
                    return Err("another process answered on the port".to_string());
                }
                return Ok(());
            }
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => return Err(format!("hookline did not answer within {START_TIMEOUT:?}: {e}")),
        }
    }
}

impl Drop for HooklineServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = log(self.dir.path());
            let tail = &log[log.len().saturating_sub(8000)..];
            eprintln!("---- hookline server log (tail) ----\n{tail}\n---- end of server log ----");
        }
    }
}

fn spawn(binary: &Path, dir: &Path, port: u16, admin_token: &str) -> Child {
    let log = OpenOptions::new().create(true).append(true).open(dir.join("server.log")).expect("open the server log");
    let mut cmd = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HOOKLINE_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("serve")
        .current_dir(dir)
        .env("HOOKLINE_LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKLINE_DATA_DIR", dir.join("data"))
        .env("HOOKLINE_ADMIN_TOKEN", admin_token)
        .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_RETRY_SCHEDULE", "")
        .env("HOOKLINE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log handle"))
        .stderr(log);
    cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()))
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// The server binary of this workspace and profile, beside the test's own
/// `deps/` directory. `cargo test --workspace` has built it before running
/// any test (the server's end-to-end tests need it), so it is used as is;
/// when it is missing or older than the server's sources (this crate's tests
/// run alone), `cargo build -p hookline` brings it up to date first.
fn hookline_binary() -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = test_exe.parent().and_then(Path::parent).expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("hookline{}", std::env::consts::EXE_SUFFIX));
    if !is_fresh(&binary) {
        build_hookline();
    }
    assert!(binary.is_file(), "{} is missing after cargo build -p hookline", binary.display());
    binary
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether `binary` exists and is newer than every source file it is built from.
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else { return false };
    let root = workspace_root();
    let sources = ["crates/hookline", "crates/hookline-signature"].map(|c| root.join(c));
    let newest = sources.iter().filter_map(|dir| newest_mtime(dir)).max();
    newest.is_some_and(|newest| newest <= built)
}

/// The newest modification time under `dir` (skipping `tests/`, which the
/// binary is not built from).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(meta) = entry.metadata() else { continue };
        let time = if meta.is_dir() {
            if path.file_name().is_some_and(|n| n == "tests" || n == "node_modules") {
                continue;
            }
            newest_mtime(&path)
        } else {
            meta.modified().ok()
        };
        newest = newest.max(time);
    }
    newest
}

fn build_hookline() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "-p", "hookline", "--bin", "hookline"]).current_dir(workspace_root());
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {cargo}: {e}"));
    assert!(status.success(), "cargo build -p hookline failed ({status})");
}

/// A port that is free now on 127.0.0.1, below Linux's ephemeral range.
fn free_port() -> u16 {
    for _ in 0..100 {
        let port = 20_000 + (random_u64() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind an ephemeral port").port()
}

pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}
