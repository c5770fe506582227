//! The official Svix Rust SDK (the `svix` crate, pinned in Cargo.toml),
//! unchanged but for `server_url`, against the real `hookline` binary: the
//! same parity scenarios as the Python and JavaScript scripts
//! (`crates/hookline/tests/e2e/compat/`), one output line per check, then
//! `N passed, M failed`. Every answer goes through the SDK's own models, so
//! a missing required field or a wrong type fails the check that made it.

mod api_flow;
mod delivery_flow;
mod flow;
mod receiver;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// How many checks the flows run: a check that vanished fails the test too.
const CHECKS: usize = 35;

/// A set of strings (or of anything `Ord` built from the items).
pub fn set<T: Ord, const N: usize>(items: [impl Into<T>; N]) -> BTreeSet<T> {
    items.into_iter().map(Into::into).collect()
}

/// A string map from pairs.
pub fn map<const N: usize>(pairs: [(&str, &str); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_rust_sdk_works_against_hookline() {
    let started = Instant::now();
    let server = server::HooklineServer::start().await;
    let receiver = receiver::Receiver::start().await;
    let run = format!("{:08x}", server::random_u64() as u32);
    println!("svix Rust SDK against {}", server.base_url);
    let mut report = flow::Report::default();
    api_flow::run(&server.base_url, &server.admin_token, &run, &mut report).await;
    delivery_flow::run(&server.base_url, &server.admin_token, &run, &receiver, &mut report).await;
    let summary = format!("{} passed, {} failed", report.passed, report.failed);
    println!("{summary}");
    println!("the Rust SDK checks ran in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(summary, format!("{CHECKS} passed, 0 failed"), "see the FAIL lines above");
}
