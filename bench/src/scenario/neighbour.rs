//! Scenario 5, bad neighbour: scenario 2's fan-out, but one of the 10
//! endpoints never answers (each attempt ends at Hookline's attempt
//! timeout, 15 s by default). The healthy nine's latency, compared with
//! scenario 2's ten healthy endpoints.

use crate::ceiling;
use crate::error::Result;
use crate::figure::Measured;
use crate::load::closed_loop;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::Behaviour;
use crate::stats::{percentile, rate};

use super::e2e;
use super::setup::{accept_to_receive, Setup};

const NAME: &str = "neighbour";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let (endpoints, messages) = (bench.sizes.fan_out, bench.sizes.e2e_messages);
    let bad = endpoints - 1;
    let mut behaviours = vec![Behaviour::Answer; endpoints];
    behaviours[bad] = Behaviour::Hang;
    let setup = Setup::with(bench, behaviours).await?;
    let load = closed_loop(&bench.client, messages, CONCURRENCY, setup.messages(NAME)).await;
    load.ensure_all_answered()?;
    let healthy = |endpoint: usize| endpoint != bad;
    let deliveries = messages * (endpoints - 1);
    setup.receivers.wait_for(healthy, deliveries, bench.sizes.stall).await?;
    let last = setup.receivers.last_arrival().unwrap_or(load.finished);
    let mut latencies = accept_to_receive(&load, &setup.receivers.take_arrivals(), healthy);
    let label = |figure: &str| format!("healthy {}: {figure}", endpoints - 1);
    let mut figures = vec![Measured::new(NAME, label("deliveries/s"), "del/s", rate(deliveries, last - load.started))
        .against(e2e::key(endpoints, "deliveries/s"))];
    for (p, rank) in [("p50", 50.0), ("p99", 99.0)] {
        let figure = format!("{p} accept→receive");
        figures.push(
            Measured::millis(NAME, label(&figure), percentile(&mut latencies, rank))
                .against(e2e::key(endpoints, &figure))
                .against(ceiling::one_hop(p)),
        );
    }
    Ok(figures)
}
