//! The references every figure is reported against, measured in the same
//! run with the same load generator:
//! - `http`: a minimal axum server (same runtime, allocator and JSON
//!   parsing as Hookline's message handler) answering 202, and the same
//!   server's hello-world `GET /` (to compare hosts with issue 12's);
//! - `receiver`: the loopback receivers themselves, loaded by 64 clients
//!   (deliveries a second) and by one (the latency of one unloaded hop, the
//!   least any accept→receive latency could be);
//! - `store`: durable commits per second of the store alone, at the group
//!   sizes the writer uses;
//! - the payload size, for disk per message.

pub mod http;
mod receiver;
pub mod store;

use crate::error::{Context, Result};
use crate::figure::{Key, Measured};
use crate::payload::PAYLOAD_BYTES;
use crate::plan::Bench;

pub const HTTP: &str = "ceiling: http";
pub const RECEIVER: &str = "ceiling: receiver";
pub const STORE: &str = "ceiling: store";
const PAYLOAD: &str = "reference";

const REQUESTS_PER_SECOND: &str = "requests/s";
const HELLO_REQUESTS_PER_SECOND: &str = "hello-world GETs/s";

fn latency_figure(percentile: &str) -> String {
    format!("{percentile} latency")
}

fn one_hop_figure(percentile: &str) -> String {
    format!("one hop, 1 client: {percentile} latency")
}

/// Requests a second the HTTP ceiling answers.
pub fn http_rate() -> Key {
    Key::new(HTTP, REQUESTS_PER_SECOND)
}

/// A latency percentile (`p50`, `p99`) of the HTTP ceiling under 64 clients.
pub fn http_latency(percentile: &str) -> Key {
    Key::new(HTTP, latency_figure(percentile))
}

/// Deliveries a second the receiver takes.
pub fn receiver_rate() -> Key {
    Key::new(RECEIVER, REQUESTS_PER_SECOND)
}

/// A latency percentile (`p50`, `p99`, `p99.9`) of one request to an unloaded receiver.
pub fn one_hop(percentile: &str) -> Key {
    Key::new(RECEIVER, one_hop_figure(percentile))
}

/// Rows a second committed `group` to a transaction.
pub fn store_rows(group: usize) -> Key {
    Key::new(STORE, store::rows_figure(group))
}

pub fn payload_size() -> Key {
    Key::new(PAYLOAD, "message payload")
}

pub async fn measure(bench: &Bench) -> Result<Vec<Measured>> {
    let mut figures = http::measure(bench).await.context("the HTTP ceiling")?;
    figures.extend(receiver::measure(bench).await.context("the receiver's ceiling")?);
    figures.extend(store::measure(bench).await.context("the store's ceiling")?);
    let payload = payload_size();
    figures.push(Measured::new(&payload.scenario, payload.figure, "B", PAYLOAD_BYTES as f64));
    Ok(figures)
}
