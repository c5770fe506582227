//! The receivers' own ceiling: the load generator POSTs deliveries (1 KB
//! payload, `webhook-id`) straight to one endpoint, from 64 clients (how
//! many it takes a second) and then from one (how long one hop takes).

use crate::error::Result;
use crate::figure::Measured;
use crate::load::closed_loop;
use crate::payload::delivery_requests;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::{Behaviour, Receivers};
use crate::stats::percentile;

use super::{one_hop_figure, RECEIVER, REQUESTS_PER_SECOND};

pub async fn measure(bench: &Bench) -> Result<Vec<Measured>> {
    let receivers = Receivers::start(vec![Behaviour::Answer])?;
    let requests = delivery_requests(&receivers.url(0));
    let loaded = closed_loop(&bench.client, bench.sizes.ceiling_requests, CONCURRENCY, requests.clone()).await;
    loaded.ensure_all_answered()?;
    let one_client = closed_loop(&bench.client, bench.sizes.ceiling_requests / 10, 1, requests).await;
    one_client.ensure_all_answered()?;
    let mut latencies = one_client.latencies();
    let mut figures = vec![Measured::new(RECEIVER, REQUESTS_PER_SECOND, "req/s", loaded.rate())];
    for (p, rank) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
        figures.push(Measured::millis(RECEIVER, one_hop_figure(p), percentile(&mut latencies, rank)));
    }
    Ok(figures)
}
