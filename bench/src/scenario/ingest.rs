//! Scenario 1, ingest: 1 KB messages from 64 clients, an `Idempotency-Key`
//! on each, one endpoint subscribed (its deliveries run meanwhile). An
//! answer is counted when it arrives, and Hookline answers 202 only after
//! the commit holding the message is on disk.

use crate::ceiling;
use crate::error::Result;
use crate::figure::Measured;
use crate::load::closed_loop;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::Behaviour;
use crate::stats::percentile;

use super::setup::{CpuMeter, Setup};

const NAME: &str = "ingest";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let setup = Setup::with(bench, vec![Behaviour::Answer]).await?;
    let cpu = CpuMeter::start(bench, &setup.deployment).await?;
    let load = closed_loop(&bench.client, bench.sizes.ingest_messages, CONCURRENCY, setup.messages(NAME)).await;
    load.ensure_all_answered()?;
    // Of the accepting and of the deliveries that ran meanwhile (not all of
    // them: some finish after the last answer).
    let cpu = cpu.per(bench, &setup.deployment, (load.answers.len(), "message"), NAME, "").await?;
    let mut latencies = load.latencies();
    let mut figures = vec![
        Measured::new(NAME, "messages/s", "msg/s", load.rate())
            .against(ceiling::http_rate())
            .against(ceiling::store_rows(CONCURRENCY)),
        Measured::millis(NAME, "p50 latency", percentile(&mut latencies, 50.0)).against(ceiling::http_latency("p50")),
        Measured::millis(NAME, "p99 latency", percentile(&mut latencies, 99.0)).against(ceiling::http_latency("p99")),
    ];
    figures.extend(cpu);
    Ok(figures)
}
