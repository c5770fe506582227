//! `hookline-example-receiver`: serves `POST /webhooks` on `PORT` (default
//! 3000), verifying with the secret in `WEBHOOK_SECRET`, and prints one line
//! per handled event.
//!
//! ```text
//! WEBHOOK_SECRET=whsec_… cargo run -p hookline-example-receiver
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;

use hookline_example_receiver::{app, run_worker, Config};
use hookline_signature::Secret;
use tokio::sync::mpsc;

/// Events acknowledged but not yet handled, at most. Beyond it the receiver
/// answers 503 and lets Hookline hold the backlog, which it stores durably.
const QUEUE_CAPACITY: usize = 1024;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookline-example-receiver: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let secret: Secret = std::env::var("WEBHOOK_SECRET")
        .map_err(|_| "set WEBHOOK_SECRET to the endpoint's signing secret (whsec_…)".to_string())?
        .parse()
        .map_err(|e| format!("WEBHOOK_SECRET: {e}"))?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };

    let (queue, events) = mpsc::channel(QUEUE_CAPACITY);
    let worker = tokio::spawn(run_worker(events, |h| println!("{} {}: {}", h.id, h.event_type, h.summary)));

    // All interfaces: Hookline usually runs on another machine.
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("listening on http://{addr}/webhooks");
    axum::serve(listener, app(Config::new(secret, queue)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;

    // The server, and with it the queue's sender, is gone: the worker
    // handles the events already acknowledged, then returns.
    worker.await.map_err(|e| e.to_string())
}
