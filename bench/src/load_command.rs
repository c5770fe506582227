//! `hookline-bench load`: messages sent to a Hookline someone else started,
//! accepted messages a second and latency printed; with `--deliver`, also
//! delivered to a loopback endpoint and timed end to end.

use crate::api::HooklineApi;
use crate::cli::LoadArgs;
use crate::error::{Context, Result};
use crate::load::{self, closed_loop};
use crate::receiver::{Behaviour, Receivers};
use crate::stats::{millis, percentile, rate};

pub async fn run(args: LoadArgs) -> Result<()> {
    let client = load::client();
    let urls: Vec<String> = args.url.iter().map(|url| url.trim_end_matches('/').to_string()).collect();
    let api = HooklineApi::new(&client, urls.clone(), &args.token);
    let app = api.create_app("hookline-bench load").await.context("creating an application")?;
    let receivers = if args.deliver {
        let receivers = Receivers::counting(vec![Behaviour::Answer])?;
        api.create_endpoint(&app, &receivers.url(0), None).await.context("creating an endpoint")?;
        Some(receivers)
    } else {
        None
    };
    let tag = format!("load-{:08x}", rand::random::<u32>());
    let load = closed_loop(&client, args.messages, args.concurrency, api.messages(&app, &tag)).await;
    let mut latencies = load.latencies();
    println!(
        "accepted {} messages (1 KB payloads) in {:.2} s at concurrency {} on {} node(s): {:.0} messages/s, {} failed",
        load.answers.len(),
        (load.finished - load.started).as_secs_f64(),
        args.concurrency,
        urls.len(),
        load.rate(),
        load.failures
    );
    println!(
        "latency p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        millis(percentile(&mut latencies, 50.0)),
        millis(percentile(&mut latencies, 90.0)),
        millis(percentile(&mut latencies, 99.0)),
        millis(percentile(&mut latencies, 100.0)),
    );
    load.ensure_all_answered()?;
    if let Some(receivers) = receivers {
        let expected = load.answers.len();
        receivers.wait_for(|_| true, expected, std::time::Duration::from_secs(60)).await?;
        let last = receivers.last_arrival().unwrap_or(load.finished);
        println!(
            "delivered {expected} in {:.2} s from the first send: {:.0} deliveries/s end to end",
            (last - load.started).as_secs_f64(),
            rate(expected, last - load.started)
        );
    }
    Ok(())
}
