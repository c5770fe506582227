//! Nothing lost: the real process is SIGKILLed at random moments under
//! concurrent load and restarted; every message that was answered 2xx is
//! delivered at least once, and duplicates carry the same webhook id.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::receiver::Receiver;
use rand::Rng;
use serde_json::json;

const KILLS: usize = 4;
const SENDERS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_message_is_delivered_across_sigkills() {
    let rx = Receiver::start().await;
    let mut server = TestServer::builder()
        .env("HOOKLINE_ALLOWED_PRIVATE_CIDRS", "127.0.0.0/8")
        .env("HOOKLINE_RETRY_SCHEDULE", "200ms,500ms,1s,1s,2s,2s,2s")
        .start()
        .await;
    let (_, app) = server.admin().post("/api/v1/app", &json!({"name": "crash"})).await;
    let app = app["id"].as_str().unwrap().to_string();
    for path in ["/a", "/b"] {
        let (status, _) =
            server.admin().post(&format!("/api/v1/app/{app}/endpoint"), &json!({"url": rx.url(path)})).await;
        assert_eq!(status, 201);
    }

    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url(&format!("/api/v1/app/{app}/msg"));
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (accepted, stop, url) = (accepted.clone(), stop.clone(), url.clone());
        let token = server.admin_token().to_string();
        senders.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let res = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"eventType": "load.test", "payload": {"sender": s, "i": i}}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(id) = body["id"].as_str() {
                            accepted.lock().unwrap().insert(id.to_string());
                        }
                    }
                    // Refused or reset while the server is down: not accepted.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    for kill in 0..KILLS {
        let wait = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let before = accepted.lock().unwrap().len();
        server.kill9().await;
        println!("kill {kill}: SIGKILL after {wait} ms, {before} messages accepted so far");
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.start_again().await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 100, "the load barely ran: {} accepted", accepted.len());

    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut missing_a, mut missing_b);
    loop {
        let got = rx.received();
        let ids =
            |path: &str| got.iter().filter(|r| r.path == path).map(|r| r.id().to_string()).collect::<BTreeSet<_>>();
        let (a, b) = (ids("/a"), ids("/b"));
        missing_a = accepted.difference(&a).count();
        missing_b = accepted.difference(&b).count();
        if missing_a == 0 && missing_b == 0 {
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = rx.received();
    let mut per_delivery: HashMap<(String, String), usize> = HashMap::new();
    for r in &got {
        *per_delivery.entry((r.path.clone(), r.id().to_string())).or_default() += 1;
    }
    let duplicates: usize = per_delivery.values().map(|n| n - 1).sum();
    println!(
        "accepted {} messages ({} deliveries owed), received {} requests for {} distinct deliveries, {} duplicates, missing {}+{}",
        accepted.len(),
        accepted.len() * 2,
        got.len(),
        per_delivery.len(),
        duplicates,
        missing_a,
        missing_b
    );
    assert_eq!((missing_a, missing_b), (0, 0), "accepted messages were lost");
}
