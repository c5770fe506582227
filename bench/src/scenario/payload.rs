//! How ingest grows with the payload: scenario 1 (64 clients, an
//! `Idempotency-Key` each, one endpoint receiving meanwhile) at payload
//! sizes other than its 1 KB, each on a fresh store. The same volume of
//! payload bytes at every size, so a large size is not a longer run.

use crate::error::Result;
use crate::figure::Measured;
use crate::load::closed_loop;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::Behaviour;
use crate::stats::percentile;

use super::setup::Setup;

const NAME: &str = "payload";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let sizes = &bench.sizes;
    let mut figures = Vec::new();
    for &bytes in &sizes.payload_sizes {
        let messages = (sizes.payload_volume / bytes).clamp(sizes.ingest_messages / 10, sizes.ingest_messages);
        let setup = Setup::with(bench, vec![Behaviour::Answer]).await?;
        let load = closed_loop(&bench.client, messages, CONCURRENCY, setup.sized_messages(NAME, bytes)).await;
        load.ensure_all_answered()?;
        let mut latencies = load.latencies();
        let label = format!("{} B", bytes);
        figures.push(
            Measured::new(NAME, format!("{label}: messages/s"), "msg/s", load.rate())
                .against(crate::figure::Key::new("ingest", "messages/s")),
        );
        figures.push(Measured::new(
            NAME,
            format!("{label}: payload MiB/s"),
            "MiB/s",
            load.rate() * bytes as f64 / (1024.0 * 1024.0),
        ));
        figures.push(Measured::millis(NAME, format!("{label}: p99 latency"), percentile(&mut latencies, 99.0)));
    }
    Ok(figures)
}
