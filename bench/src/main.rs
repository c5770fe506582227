//! `hookline-load`: sends N messages at concurrency C to a running Hookline
//! and prints accepted messages per second and latency percentiles. With
//! `--deliver` it also runs a loopback receiver behind one endpoint and
//! reports how long the deliveries took (the server must allow 127.0.0.0/8).
//!
//! Usage: hookline-load --url http://127.0.0.1:8071 [--url …] --token T [-n 20000] [-c 64] [--deliver] [--no-idempotency-key]
//!
//! Several `--url`s (nodes sharing one database) share the load round-robin.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Options {
    urls: Vec<String>,
    token: String,
    messages: usize,
    concurrency: usize,
    deliver: bool,
    idempotency_keys: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        urls: Vec::new(),
        token: std::env::var("HOOKLINE_ADMIN_TOKEN").unwrap_or_default(),
        messages: 20_000,
        concurrency: 64,
        deliver: false,
        idempotency_keys: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => o.urls.push(value()?.trim_end_matches('/').to_string()),
            "--token" => o.token = value()?,
            "-n" | "--messages" => o.messages = value()?.parse().map_err(|_| "-n takes a number")?,
            "-c" | "--concurrency" => o.concurrency = value()?.parse().map_err(|_| "-c takes a number")?,
            "--deliver" => o.deliver = true,
            "--no-idempotency-key" => o.idempotency_keys = false,
            "-h" | "--help" => {
                println!("hookline-load --url URL --token TOKEN [-n N] [-c C] [--deliver] [--no-idempotency-key]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if o.token.is_empty() {
        return Err("--token (or HOOKLINE_ADMIN_TOKEN) is required".into());
    }
    if o.urls.is_empty() {
        o.urls.push("http://127.0.0.1:8071".into());
    }
    Ok(o)
}

#[tokio::main]
async fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("hookline-load: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(o).await {
        eprintln!("hookline-load: {e}");
        std::process::exit(1);
    }
}

async fn run(o: Options) -> Result<(), String> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(o.concurrency).build().map_err(|e| e.to_string())?;
    let api = |path: &str| format!("{}/api/v1{path}", o.urls[0]);
    let app: Value = post(&client, &api("/app"), &o.token, &json!({"name": "load test"}), None).await?;
    let app_id = app["id"].as_str().ok_or("no app id")?.to_string();

    let delivered = Arc::new(AtomicUsize::new(0));
    if o.deliver {
        let counter = delivered.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let receiver = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        });
        tokio::spawn(async move { axum::serve(listener, receiver).await });
        let endpoint = json!({"url": format!("http://{addr}/hook"), "rateLimit": 100_000});
        post(&client, &api(&format!("/app/{app_id}/endpoint")), &o.token, &endpoint, None).await?;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..o.concurrency {
        let (client, next, token) = (client.clone(), next.clone(), o.token.clone());
        let node = &o.urls[worker % o.urls.len()];
        let url = format!("{node}/api/v1/app/{app_id}/msg");
        let (total, keys) = (o.messages, o.idempotency_keys);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = json!({"eventType": "sync.complete", "payload": {"run_id": i, "result": "SUCCESS", "num_records_synced": 1234}});
                let key = keys.then(|| format!("load-{i}"));
                let t = Instant::now();
                match post(&client, &url, &token, &body, key.as_deref()).await {
                    Ok(_) => latencies.push(t.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.map_err(|e| e.to_string())?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "accepted {} messages in {:.2} s at concurrency {} on {} node(s): {:.0} messages/s (durable commits), {} errors",
        latencies.len(),
        elapsed.as_secs_f64(),
        o.concurrency,
        o.urls.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        errors
    );
    println!(
        "latency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );

    if o.deliver {
        let deadline = Instant::now() + Duration::from_secs(600);
        while delivered.load(Ordering::Relaxed) < latencies.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let total = started.elapsed();
        let n = delivered.load(Ordering::Relaxed);
        println!(
            "delivered {n} of {} in {:.2} s from the first send: {:.0} deliveries/s end to end",
            latencies.len(),
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64()
        );
        if n < latencies.len() {
            return Err(format!("only {n} of {} messages were delivered", latencies.len()));
        }
    }
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    key: Option<&str>,
) -> Result<Value, String> {
    let mut req = client.post(url).bearer_auth(token).json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let value: Value = res.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url} answered {status}: {value}"));
    }
    Ok(value)
}
