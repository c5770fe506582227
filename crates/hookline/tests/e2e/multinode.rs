//! Several nodes on one PostgreSQL database: load spread over all of them,
//! one killed, the database itself crashed, and the promises that must hold
//! across nodes (rate limits, idempotency keys, tokens and their revocation).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{skip_unless, Backend, PgCluster, TestServer, TestServerBuilder};
use crate::fixtures::assert_no_second_holds_more_than;
use crate::receiver::Receiver;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);

fn loopback(b: TestServerBuilder) -> TestServerBuilder {
    // A short lease, so a dead node's work is taken again within seconds.
    b.env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_CLAIM_LEASE", "3s")
        .env("HOOKLINE_RETRY_SCHEDULE", "200ms,500ms,1s,1s,2s,2s,2s,5s,5s,5s")
}

/// An app with endpoints at `paths` of `rx`; returns the app id.
async fn app_with_endpoints(node: &TestServer, rx: &Receiver, paths: &[&str], extra: Value) -> String {
    let (status, app) = node.admin().post("/api/v1/app", &json!({"name": "multinode"})).await;
    assert_eq!(status, 201, "{app}");
    let app = app["id"].as_str().unwrap().to_string();
    for path in paths {
        let mut body = json!({"url": rx.url(path)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, ep) = node.admin().post(&format!("/api/v1/app/{app}/endpoint"), &body).await;
        assert_eq!(status, 201, "{ep}");
    }
    app
}

/// Senders posting messages round-robin to `urls` until `stop`; every id
/// answered 202 goes into `accepted`. Other answers must be JSON errors.
fn spawn_senders(
    urls: Vec<String>,
    token: String,
    app: String,
    accepted: Arc<Mutex<BTreeSet<String>>>,
    refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..urls.len() * 2)
        .map(|s| {
            let (urls, token, app, accepted, refused, stop) =
                (urls.clone(), token.clone(), app.clone(), accepted.clone(), refused.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let url = format!("{}/api/v1/app/{app}/msg", urls[(s + i) % urls.len()]);
                    let body = json!({"eventType": "load.test", "payload": {"sender": s, "i": i}});
                    match client.post(&url).bearer_auth(&token).json(&body).send().await {
                        Ok(r) if r.status() == 202 => {
                            let v: Value = r.json().await.unwrap_or_default();
                            accepted.lock().unwrap().insert(v["id"].as_str().unwrap_or_default().to_string());
                        }
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let v: Value = r.json().await.unwrap_or_else(|e| panic!("{status} without JSON: {e}"));
                            assert!(v["code"].is_string(), "{status}: {v}");
                            assert!(status >= 500, "a message was refused: {status} {v}");
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        // The node is gone (killed): not accepted.
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect()
}

/// Waits until every accepted id reached every path of `rx`.
async fn wait_all_delivered(rx: &Receiver, accepted: &BTreeSet<String>, paths: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = rx.received();
        let missing: Vec<(String, usize)> = paths
            .iter()
            .map(|p| {
                let ids: BTreeSet<String> = got.iter().filter(|r| r.path == *p).map(|r| r.id().to_string()).collect();
                (p.to_string(), accepted.difference(&ids).count())
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "accepted messages were lost: {missing:?} of {}", accepted.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing() {
    if skip_unless(Backend::Postgres, "three nodes share one database") {
        return;
    }
    let rx = Receiver::start().await;
    let mut nodes = TestServer::start_nodes(3, loopback).await;
    let app = app_with_endpoints(&nodes[0], &rx, &["/a", "/b"], json!({})).await;
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let (refused, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let urls = nodes.iter().map(|n| n.base_url()).collect();
    let senders =
        spawn_senders(urls, nodes[0].admin_token().to_string(), app, accepted.clone(), refused.clone(), stop.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = accepted.lock().unwrap().len();
    nodes[1].kill9().await;
    println!("killed node 2 after {before} messages were accepted");
    // The survivors keep accepting: wait for 50 more (however loaded the
    // machine is), then stop sending.
    let deadline = Instant::now() + Duration::from_secs(60);
    while accepted.lock().unwrap().len() <= before + 50 {
        let now = accepted.lock().unwrap().len();
        assert!(Instant::now() < deadline, "the surviving nodes stopped accepting: {now} after {before}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    wait_all_delivered(&rx, &accepted, &["/a", "/b"]).await;
    let got = rx.received();
    let mut per_delivery: HashMap<(String, String), usize> = HashMap::new();
    for r in &got {
        *per_delivery.entry((r.path.clone(), r.id().to_string())).or_default() += 1;
    }
    let duplicates: usize = per_delivery.values().map(|n| n - 1).sum();
    println!("accepted {}, {} requests received, {duplicates} duplicates, 0 missing", accepted.len(), got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_three_nodes() {
    if skip_unless(Backend::Postgres, "three nodes share one database") {
        return;
    }
    let rx = Receiver::start().await;
    let nodes = TestServer::start_nodes(3, loopback).await;
    let app = app_with_endpoints(&nodes[0], &rx, &["/limited"], json!({"throttleRate": 10})).await;
    // Sent round-robin: every node has work for the endpoint and claims it.
    for i in 0..60 {
        let node = &nodes[i % 3];
        let (status, body) = node
            .admin()
            .post(&format!("/api/v1/app/{app}/msg"), &json!({"eventType": "rate", "payload": {"i": i}}))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let got = rx.wait_for("/limited", 60, WAIT).await;
    let span = got.last().unwrap().at - got[0].at;
    println!("60 deliveries at 10/s over three nodes: first to last {span:?}");
    // Starts 100 ms apart for all nodes together: the 60th cannot start
    // before 5.9 s.
    assert!(span >= Duration::from_millis(5600), "60 deliveries took only {span:?}: the nodes added up their limits");
    // Three nodes, each opening its own connection to the receiver when
    // it first delivers, and each claim committing late now and then on
    // a loaded machine: two late arrivals are tolerated. Nodes that added
    // up their limits would put about 30 in a second.
    assert_no_second_holds_more_than(&got, 10 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_to_two_nodes_creates_one_message() {
    if skip_unless(Backend::Postgres, "two nodes share one database") {
        return;
    }
    let nodes = TestServer::start_nodes(2, |b| b).await;
    let (_, app) = nodes[0].admin().post("/api/v1/app", &json!({"name": "idem"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    for key in 0..10 {
        let body = json!({"eventType": "idem.test", "payload": {"key": key}});
        let path = format!("/api/v1/app/{app}/msg");
        let key = format!("shared-{key}");
        let (first, second) = (nodes[0].admin(), nodes[1].admin());
        let (a, b) =
            tokio::join!(first.post_idempotent(&path, &key, &body), second.post_idempotent(&path, &key, &body));
        assert_eq!((a.status, b.status), (202, 202), "{:?} / {:?}", a.body, b.body);
        assert_eq!(a.body["id"], b.body["id"], "two nodes created two messages for one key");
    }
    let (_, list) = nodes[1].admin().get(&format!("/api/v1/app/{app}/msg?limit=50")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn a_token_minted_on_one_node_works_on_another() {
    if skip_unless(Backend::Postgres, "three nodes share one database") {
        return;
    }
    let nodes = TestServer::start_nodes(3, |b| b).await;
    let (_, app) = nodes[0].admin().post("/api/v1/app", &json!({"name": "tokens", "uid": "tokens"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    let token = nodes[0].token_for_app(&app, false).await;
    let (status, body) = nodes[2].api(&token).get(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, 200, "{body}");
    let cli_token = nodes[1].cli_ok(&["token", "create", "--app", "tokens"]).await;
    let (status, body) = nodes[2].api(&cli_token).get("/api/v1/app/tokens").await;
    assert_eq!(status, 200, "{body}");
    // And a secret sealed on one node opens on another.
    let (status, ep) =
        nodes[0].admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": "https://example.com/h"})).await;
    assert_eq!(status, 201, "{ep}");
    let secret_path = format!("/api/v1/app/{app}/endpoint/{}/secret", ep["id"].as_str().unwrap());
    let (_, a) = nodes[0].admin().get(&secret_path).await;
    let (_, b) = nodes[2].admin().get(&secret_path).await;
    assert_eq!(a["key"], b["key"]);
    // Revocation holds on every node at once: logout on one, expire-all on
    // another, and the third refuses both tokens on the next request.
    let (status, body) = nodes[1].api(&cli_token).post("/api/v1/auth/logout", &json!({})).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = nodes[2].api(&cli_token).get("/api/v1/app/tokens").await;
    assert_eq!(status, 401, "a logged-out token still works on another node");
    let (status, body) = nodes[0].admin().post(&format!("/api/v1/auth/app/{app}/expire-all"), &json!({})).await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = nodes[2].api(&token).get(&format!("/api/v1/app/{app}")).await;
    assert_eq!(status, 401, "an expired-all token still works on another node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashing_postgres_mid_run_loses_nothing_accepted() {
    if skip_unless(Backend::Postgres, "runs its own PostgreSQL to crash it") {
        return;
    }
    let cluster = PgCluster::start().await;
    let url = cluster.create_database("hl_crash").await;
    let rx = Receiver::start().await;
    let first = loopback(TestServer::builder().database_url(&url)).start().await;
    let second = loopback(TestServer::builder().shares_database_with(&first)).start().await;
    let app = app_with_endpoints(&first, &rx, &["/a"], json!({})).await;
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let (refused, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
    let urls = vec![first.base_url(), second.base_url()];
    let senders =
        spawn_senders(urls, first.admin_token().to_string(), app, accepted.clone(), refused.clone(), stop.clone());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.stop_immediate().await;
    let during = accepted.lock().unwrap().len();
    // While it is down the nodes answer 503 with a JSON body (checked by the
    // senders), and nothing is accepted.
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused.load(Ordering::Relaxed) < 10 {
        assert!(Instant::now() < deadline, "no 503 while the database was down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let accepted_while_down = accepted.lock().unwrap().len() - during;
    assert!(accepted_while_down <= 64, "{accepted_while_down} messages accepted with the database down");
    cluster.start_again().await;
    // The nodes reconnect by themselves and accept again.
    let resumed = Instant::now() + Duration::from_secs(30);
    let after_restart = accepted.lock().unwrap().len();
    while accepted.lock().unwrap().len() < after_restart + 50 {
        assert!(Instant::now() < resumed, "the nodes did not accept again after the database came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    println!(
        "accepted {} (of which {accepted_while_down} while the database was going down), {} refused with 503",
        accepted.len(),
        refused.load(Ordering::Relaxed)
    );
    wait_all_delivered(&rx, &accepted, &["/a"]).await;
}
