//! Scenario 3, latency under load: messages offered at a fixed rate, open
//! loop (each sent at its time, whether or not earlier ones were
//! answered), to one endpoint; accept→receive percentiles at each rate.

use crate::ceiling;
use crate::error::{Context, Result};
use crate::figure::Measured;
use crate::load::open_loop;
use crate::plan::{Bench, OPEN_LOOP_MAX_IN_FLIGHT};
use crate::receiver::Behaviour;
use crate::stats::percentile;

use super::setup::{accept_to_receive, send_to_receive, Setup};

const NAME: &str = "latency";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let mut figures = Vec::new();
    for &rate in &bench.sizes.rates {
        figures.extend(run_at(bench, rate).await.context(format!("{rate} messages/s"))?);
    }
    Ok(figures)
}

async fn run_at(bench: &Bench, rate: u32) -> Result<Vec<Measured>> {
    let setup = Setup::with(bench, vec![Behaviour::Answer]).await?;
    let load =
        open_loop(&bench.client, rate, bench.sizes.rate_duration, OPEN_LOOP_MAX_IN_FLIGHT, setup.messages(NAME)).await;
    load.ensure_all_answered()?;
    setup.receivers.wait_for(|_| true, load.answers.len(), bench.sizes.stall).await?;
    let arrivals = setup.receivers.take_arrivals();
    let mut latencies = accept_to_receive(&load, &arrivals, |_| true);
    let mut trips = send_to_receive(&load, &arrivals, |_| true);
    let label = |figure: &str| format!("{rate}/s offered: {figure}");
    let mut figures = vec![Measured::new(NAME, label("accepted/s"), "msg/s", load.rate())];
    for (p, rank) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
        figures.push(
            Measured::millis(NAME, label(&format!("{p} accept→receive")), percentile(&mut latencies, rank))
                .against(ceiling::one_hop(p)),
        );
    }
    // Deliveries now often leave before the answer does (accept→receive
    // is then zero): the whole trip says what a sender waits.
    for (p, rank) in [("p50", 50.0), ("p99", 99.0)] {
        figures.push(Measured::millis(NAME, label(&format!("{p} send→receive")), percentile(&mut trips, rank)));
    }
    // Sends the server could not take in time (more than the cap in flight).
    figures.push(Measured::new(NAME, label("not sent, too many in flight"), "msg", load.dropped as f64));
    Ok(figures)
}
