//! The scenarios of issue 12, one module each. A scenario starts the
//! deployments it needs (a fresh store each), measures, and returns its
//! figures for one run.

mod backlog;
mod e2e;
mod idle;
mod ingest;
mod latency;
mod neighbour;
mod payload;
mod setup;

use crate::error::Result;
use crate::figure::Measured;
use crate::plan::Bench;

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Scenario {
    /// 1 KB messages, one endpoint, 64 clients, an Idempotency-Key each.
    Ingest,
    /// Messages delivered to 1 endpoint and to 10 (fan-out).
    E2e,
    /// Ingest at other payload sizes than 1 KB: how the figures grow.
    Payload,
    /// Fixed offered rates, open loop: accept→receive percentiles.
    Latency,
    /// A throttled endpoint's backlog built up, then drained.
    Backlog,
    /// 10 endpoints, one never answering: the other nine's latency.
    Neighbour,
    /// An idle server: memory, time to the first healthy answer.
    Idle,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Ingest,
        Scenario::E2e,
        Scenario::Payload,
        Scenario::Latency,
        Scenario::Backlog,
        Scenario::Neighbour,
        Scenario::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Ingest => "ingest",
            Scenario::E2e => "e2e",
            Scenario::Payload => "payload",
            Scenario::Latency => "latency",
            Scenario::Backlog => "backlog",
            Scenario::Neighbour => "neighbour",
            Scenario::Idle => "idle",
        }
    }

    pub async fn run(self, bench: &Bench) -> Result<Vec<Measured>> {
        match self {
            Scenario::Ingest => ingest::run(bench).await,
            Scenario::E2e => e2e::run(bench).await,
            Scenario::Payload => payload::run(bench).await,
            Scenario::Latency => latency::run(bench).await,
            Scenario::Backlog => backlog::run(bench).await,
            Scenario::Neighbour => neighbour::run(bench).await,
            Scenario::Idle => idle::run(bench).await,
        }
    }
}
