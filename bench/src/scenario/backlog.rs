//! Scenario 4, backlog: one endpoint throttled to 1 delivery a second (a
//! disabled endpoint would get no deliveries queued at all) while N
//! messages are accepted, so N deliveries wait; then its limit is lifted
//! and the backlog drains. Peak memory in each phase (each node's `VmHWM`,
//! reset at the phase's start), the drain rate, and the store's growth per
//! message while every delivery is pending.

use std::time::Instant;

use crate::ceiling;
use crate::error::Result;
use crate::figure::Measured;
use crate::load::closed_loop;
use crate::plan::{Bench, CONCURRENCY};
use crate::receiver::{Behaviour, Receivers};
use crate::stats::rate;

use super::setup::Setup;

const NAME: &str = "backlog";

pub async fn run(bench: &Bench) -> Result<Vec<Measured>> {
    let messages = bench.sizes.backlog;
    // A million arrivals are counted, not kept.
    let setup = Setup::new(bench, Receivers::counting(vec![Behaviour::Answer])?, Some(1)).await?;
    let deployment = &setup.deployment;
    let disk_before = deployment.disk_bytes().await?;

    deployment.reset_peak_rss()?;
    let load = closed_loop(&bench.client, messages, CONCURRENCY, setup.messages(NAME)).await;
    load.ensure_all_answered()?;
    let pending_peak = deployment.peak_rss()?;
    let pending_rss = deployment.rss()?;
    let disk = deployment.disk_bytes().await?.saturating_sub(disk_before);

    deployment.reset_peak_rss()?;
    let delivered_while_throttled = setup.receivers.answered(|_| true);
    let lifted = Instant::now();
    setup.api.set_rate_limit(&setup.app, &setup.endpoints[0], None).await?;
    setup.receivers.wait_for(|_| true, messages, bench.sizes.stall).await?;
    let drained = setup.receivers.last_arrival().unwrap_or(lifted);
    let draining_peak = deployment.peak_rss()?;

    Ok(vec![
        Measured::new(NAME, "messages/s while building", "msg/s", load.rate()).against(ceiling::http_rate()),
        Measured::mebibytes(NAME, "peak RSS while pending", pending_peak),
        Measured::mebibytes(NAME, "RSS with all pending", pending_rss),
        Measured::mebibytes(NAME, "peak RSS while draining", draining_peak),
        Measured::new(
            NAME,
            "drain rate",
            "del/s",
            rate(messages.saturating_sub(delivered_while_throttled), drained.saturating_duration_since(lifted)),
        )
        .against(ceiling::receiver_rate()),
        Measured::new(NAME, "disk per message (pending)", "B", disk as f64 / messages as f64)
            .against(ceiling::payload_size()),
    ])
}
