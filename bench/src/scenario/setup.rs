//! What the delivery scenarios share: a deployment with one application and
//! an endpoint per receiver, accept→receive latencies, CPU per delivery.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::api::HooklineApi;
use crate::deployment::{Deployment, StoreSpec};
use crate::error::Result;
use crate::figure::Measured;
use crate::load::{Load, MakeRequest};
use crate::plan::Bench;
use crate::procfs;
use crate::receiver::{Arrival, Behaviour, Receivers};

/// A fresh deployment whose one application has an endpoint per receiver.
pub struct Setup {
    // Dropped first: the servers stop before their receivers do.
    pub deployment: Deployment,
    pub receivers: Receivers,
    pub api: HooklineApi,
    pub app: String,
    pub endpoints: Vec<String>,
}

impl Setup {
    /// An endpoint per receiver endpoint, each with `rate_limit` (None: the
    /// deployment's raised default).
    pub async fn new(bench: &Bench, receivers: Receivers, rate_limit: Option<u32>) -> Result<Setup> {
        let deployment = bench.deploy().await?;
        let api = deployment.api(&bench.client);
        let app = api.create_app("hookline-bench").await?;
        let mut endpoints = Vec::new();
        for i in 0..receivers.endpoint_count() {
            endpoints.push(api.create_endpoint(&app, &receivers.url(i), rate_limit).await?);
        }
        Ok(Setup { deployment, receivers, api, app, endpoints })
    }

    /// Endpoints that answer or hang as `behaviours` say, every arrival kept.
    pub async fn with(bench: &Bench, behaviours: Vec<Behaviour>) -> Result<Setup> {
        Setup::new(bench, Receivers::start(behaviours)?, None).await
    }

    /// The requests creating this application's messages.
    pub fn messages(&self, tag: &str) -> MakeRequest {
        self.api.messages(&self.app, &format!("{tag}-{:08x}", rand::random::<u32>()))
    }

    /// [`messages`](Self::messages) with payloads of `bytes`.
    pub fn sized_messages(&self, tag: &str, bytes: usize) -> MakeRequest {
        self.api.sized_messages(&self.app, &format!("{tag}-{:08x}", rand::random::<u32>()), bytes)
    }
}

/// For each first arrival of a message at an endpoint `endpoints` selects,
/// the time from its 2xx answer to its arrival (zero when the delivery beat
/// the answer back to the client).
pub fn accept_to_receive(load: &Load, arrivals: &[Arrival], endpoints: impl Fn(usize) -> bool) -> Vec<Duration> {
    since(load, arrivals, endpoints, |a| a.at)
}

/// As [`accept_to_receive`], from the moment the request was sent: the
/// whole trip, which stays meaningful when deliveries beat the answers.
pub fn send_to_receive(load: &Load, arrivals: &[Arrival], endpoints: impl Fn(usize) -> bool) -> Vec<Duration> {
    since(load, arrivals, endpoints, |a| a.at - a.latency)
}

fn since(
    load: &Load,
    arrivals: &[Arrival],
    endpoints: impl Fn(usize) -> bool,
    from: impl Fn(&crate::load::Answer) -> std::time::Instant,
) -> Vec<Duration> {
    let accepted: HashMap<&str, _> = load.answers.iter().filter_map(|a| Some((a.id.as_deref()?, from(a)))).collect();
    let mut seen = HashSet::new();
    arrivals
        .iter()
        .filter(|a| endpoints(a.endpoint) && seen.insert((a.endpoint, a.id.as_str())))
        .filter_map(|a| Some(a.at.saturating_duration_since(*accepted.get(a.id.as_str())?)))
        .collect()
}

/// CPU time spent by the Hookline nodes (and, when it runs on this machine,
/// by PostgreSQL) between [`start`](CpuMeter::start) and [`per`](CpuMeter::per),
/// and by this process (its load generator and receivers) on the same cores.
pub struct CpuMeter {
    hookline: f64,
    bench: f64,
    /// PostgreSQL's processes and their CPU seconds at the start.
    postgres: HashMap<u32, f64>,
}

impl CpuMeter {
    pub async fn start(bench: &Bench, deployment: &Deployment) -> Result<CpuMeter> {
        Ok(CpuMeter {
            hookline: deployment.cpu_seconds()?,
            bench: procfs::cpu_seconds(std::process::id())?,
            postgres: postgres_cpu(bench, deployment).await?,
        })
    }

    /// Microseconds of CPU per unit of work (`count` of `unit`: "delivery",
    /// "message") since the start: Hookline's, PostgreSQL's when its
    /// processes are on this machine (those alive at the end; one that
    /// started meanwhile counts whole), and the benchmark's own, which
    /// shares the cores: what a rate costs the machine, not only Hookline.
    pub async fn per(
        &self,
        bench: &Bench,
        deployment: &Deployment,
        (count, unit): (usize, &str),
        scenario: &str,
        label: &str,
    ) -> Result<Vec<Measured>> {
        let per = |seconds: f64| seconds * 1e6 / count.max(1) as f64;
        let hookline = deployment.cpu_seconds()? - self.hookline;
        let own = procfs::cpu_seconds(std::process::id())? - self.bench;
        let mut figures = vec![
            Measured::new(scenario, format!("{label}hookline CPU per {unit}"), "µs", per(hookline)),
            Measured::new(scenario, format!("{label}benchmark CPU per {unit} (clients, receivers)"), "µs", per(own)),
        ];
        let postgres = postgres_cpu(bench, deployment).await?;
        if !postgres.is_empty() {
            let used: f64 = postgres.iter().map(|(pid, now)| now - self.postgres.get(pid).unwrap_or(&0.0)).sum();
            figures.push(Measured::new(scenario, format!("{label}postgres CPU per {unit}"), "µs", per(used)));
        }
        Ok(figures)
    }
}

/// CPU seconds of each PostgreSQL process working for the deployment's
/// database (its backends, and the server's background processes) that this
/// machine's /proc shows: none on the embedded store, or when the server
/// runs elsewhere.
async fn postgres_cpu(bench: &Bench, deployment: &Deployment) -> Result<HashMap<u32, f64>> {
    let (StoreSpec::Postgres(server), Some(database)) = (&bench.servers.store, deployment.database()) else {
        return Ok(HashMap::new());
    };
    let pids = server.backend_pids(&database.name).await?;
    Ok(pids.into_iter().filter_map(|pid| Some((pid, procfs::cpu_seconds(pid).ok()?))).collect())
}
