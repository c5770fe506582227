//! Scenario 2, end to end: messages sent by 64 clients and delivered to 1
//! endpoint, then (fresh deployment) to 10 endpoints each. Deliveries a
//! second count from the first send to the last arrival.

use crate::ceiling;
use crate::error::{Context, Result};
use crate::figure::{Key, Measured};
use crate::load::closed_loop;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::Behaviour;
use crate::stats::{percentile, rate};

use super::setup::{accept_to_receive, CpuMeter, Setup};

const NAME: &str = "e2e";

/// A figure of the run with `endpoints` endpoints (what scenario 5 compares with).
pub fn key(endpoints: usize, figure: &str) -> Key {
    Key::new(NAME, label(endpoints, figure))
}

fn label(endpoints: usize, figure: &str) -> String {
    let plural = if endpoints == 1 { "" } else { "s" };
    format!("{endpoints} endpoint{plural}: {figure}")
}

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let mut figures = run_with(bench, 1).await.context("1 endpoint")?;
    figures.extend(run_with(bench, bench.sizes.fan_out).await.context("fan-out")?);
    Ok(figures)
}

async fn run_with(bench: &Bench, endpoints: usize) -> Result<Vec<Measured>> {
    let messages = bench.sizes.e2e_messages;
    let setup = Setup::with(bench, vec![Behaviour::Answer; endpoints]).await?;
    let cpu = CpuMeter::start(bench, &setup.deployment).await?;
    let load = closed_loop(&bench.client, messages, CONCURRENCY, setup.messages(NAME)).await;
    load.ensure_all_answered()?;
    let deliveries = messages * endpoints;
    setup.receivers.wait_for(|_| true, deliveries, bench.sizes.stall).await?;
    let last = setup.receivers.last_arrival().unwrap_or(load.finished);
    let mut latencies = accept_to_receive(&load, &setup.receivers.take_arrivals(), |_| true);
    let mut figures = vec![
        Measured::new(NAME, label(endpoints, "deliveries/s"), "del/s", rate(deliveries, last - load.started))
            .against(ceiling::receiver_rate()),
        Measured::new(NAME, label(endpoints, "accepted/s"), "msg/s", load.rate()).against(ceiling::http_rate()),
    ];
    for (p, rank) in [("p50", 50.0), ("p99", 99.0)] {
        let value = percentile(&mut latencies, rank);
        figures.push(
            Measured::millis(NAME, label(endpoints, &format!("{p} accept→receive")), value)
                .against(ceiling::one_hop(p)),
        );
    }
    figures.extend(cpu.per(bench, &setup.deployment, (deliveries, "delivery"), NAME, &label(endpoints, "")).await?);
    Ok(figures)
}
