//! What a benchmark run measures with: the sizes of every scenario (full or
//! smoke), the servers it starts, and the one load-generator client.

use std::time::Duration;

use serde_json::{json, Value};

use crate::deployment::{Deployment, ServerSpec};
use crate::load::HttpClient;

/// Clients sending at once in every closed-loop load (as issue 12 asks).
pub const CONCURRENCY: usize = 64;
/// Most requests outstanding in an open-loop load; past that a request due
/// is not sent, and counted.
pub const OPEN_LOOP_MAX_IN_FLIGHT: usize = 2048;

pub struct Sizes {
    pub ingest_messages: usize,
    pub e2e_messages: usize,
    pub fan_out: usize,
    /// Payload sizes of the payload scenario, bytes of JSON text.
    pub payload_sizes: Vec<usize>,
    /// Payload bytes the payload scenario sends at each size (at least
    /// `ingest_messages / 10` messages, at most `ingest_messages`).
    pub payload_volume: usize,
    /// Offered rates of the latency scenario, messages a second.
    pub rates: Vec<u32>,
    pub rate_duration: Duration,
    pub backlog: usize,
    /// Requests sent to each ceiling (HTTP, receiver).
    pub ceiling_requests: usize,
    /// How long each group size of the store ceiling commits.
    pub store_ceiling_time: Duration,
    /// How long an idle server settles before its memory is read.
    pub idle_settle: Duration,
    /// A wait for deliveries fails after this long without one.
    pub stall: Duration,
}

impl Sizes {
    /// The sizes issue 12 names.
    pub fn full(backlog: Option<usize>) -> Sizes {
        Sizes {
            ingest_messages: 50_000,
            e2e_messages: 50_000,
            fan_out: 10,
            payload_sizes: vec![256, 16_384, 65_536],
            payload_volume: 256 << 20,
            rates: vec![1_000, 5_000],
            rate_duration: Duration::from_secs(20),
            backlog: backlog.unwrap_or(1_000_000),
            ceiling_requests: 50_000,
            store_ceiling_time: Duration::from_secs(3),
            idle_settle: Duration::from_secs(5),
            stall: Duration::from_secs(60),
        }
    }

    /// Every scenario at a size that takes a second or less: proves the
    /// benchmark works; the figures mean nothing.
    pub fn smoke(backlog: Option<usize>) -> Sizes {
        Sizes {
            ingest_messages: 300,
            e2e_messages: 100,
            fan_out: 10,
            payload_sizes: vec![256, 16_384],
            payload_volume: 1 << 20,
            rates: vec![50, 200],
            rate_duration: Duration::from_secs(1),
            backlog: backlog.unwrap_or(300),
            ceiling_requests: 500,
            store_ceiling_time: Duration::from_millis(200),
            idle_settle: Duration::from_millis(300),
            stall: Duration::from_secs(30),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "concurrency": CONCURRENCY,
            "ingest_messages": self.ingest_messages,
            "e2e_messages": self.e2e_messages,
            "fan_out": self.fan_out,
            "payload_sizes": self.payload_sizes,
            "payload_volume": self.payload_volume,
            "latency_rates": self.rates,
            "latency_seconds": self.rate_duration.as_secs_f64(),
            "open_loop_max_in_flight": OPEN_LOOP_MAX_IN_FLIGHT,
            "backlog": self.backlog,
            "ceiling_requests": self.ceiling_requests,
            "store_ceiling_seconds": self.store_ceiling_time.as_secs_f64(),
            "idle_settle_seconds": self.idle_settle.as_secs_f64(),
        })
    }
}

pub struct Bench {
    pub sizes: Sizes,
    pub servers: ServerSpec,
    pub client: HttpClient,
}

impl Bench {
    /// A fresh deployment: new store, new processes.
    pub async fn deploy(&self) -> crate::error::Result<Deployment> {
        Deployment::start(&self.servers).await
    }
}
