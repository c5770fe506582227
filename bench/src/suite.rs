//! The benchmark: every run measures the ceilings, then each scenario on
//! fresh deployments; the medians over runs are printed as a table and
//! written as JSON with the machine and settings.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::ceiling::{self, store::sqlite_durability};
use crate::cli::{Backend, RunArgs};
use crate::deployment::{ServerSpec, StoreSpec, DEFAULT_RATE_LIMIT};
use crate::error::{ensure, Context, Error, Result};
use crate::load;
use crate::machine::Machine;
use crate::pg::PgServer;
use crate::plan::{Bench, Sizes};
use crate::report::Results;
use crate::scenario::Scenario;

pub async fn run(args: RunArgs) -> Result<()> {
    let this = std::env::current_exe().context("finding this program")?;
    let bin_dir = this.parent().unwrap_or(Path::new(".")).to_path_buf();
    let hookline = args.hookline.unwrap_or_else(|| bin_dir.join("hookline"));
    ensure(hookline.is_file(), || {
        format!(
            "no hookline binary at {}: build it (cargo build --release -p hookline) or pass --hookline PATH",
            hookline.display()
        )
    })?;
    let nodes = args.nodes as usize;
    let store = match args.backend {
        Backend::Sqlite => {
            ensure(nodes == 1, || "--nodes needs --backend postgres: an embedded store has one process".into())?;
            StoreSpec::Sqlite
        }
        Backend::Postgres => {
            let url = args
                .database_url
                .or_else(|| std::env::var("HOOKLINE_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()))
                .ok_or_else(|| {
                    Error::new(
                        "--backend postgres needs --database-url (an admin URL to create databases through), or \
                         HOOKLINE_TEST_DATABASE_URL: eval \"$(scripts/pg-test-cluster.sh start)\" starts a server",
                    )
                })?;
            StoreSpec::Postgres(PgServer::new(&url)?)
        }
    };
    let backlog = args.backlog.map(|n| n as usize);
    let mut sizes = if args.smoke { Sizes::smoke(backlog) } else { Sizes::full(backlog) };
    if !args.rates.is_empty() {
        sizes.rates = args.rates;
    }
    let work_dir = args.work_dir.unwrap_or_else(std::env::temp_dir);
    let runs = args.runs.unwrap_or(if args.smoke { 1 } else { 3 });
    let scenarios = if args.scenario.is_empty() { Scenario::ALL.to_vec() } else { args.scenario };
    let backend = match args.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let out = args.out.unwrap_or_else(|| default_out(&bin_dir, backend, nodes, args.smoke));

    let durability = match &store {
        StoreSpec::Sqlite => sqlite_durability(&work_dir).await?,
        StoreSpec::Postgres(server) => server.durability().await?,
    };
    let machine = Machine::describe(&work_dir, &hookline);
    let node_word = if nodes == 1 { "node" } else { "nodes" };
    println!(
        "hookline-bench: {} ({}), {backend}, {nodes} {node_word}, {runs} run(s), each figure the median{}",
        hookline.display(),
        machine.hookline_version,
        if args.smoke { "; SMOKE: tiny sizes, the figures mean nothing" } else { "" }
    );
    println!("machine: {}; commit {}", machine.summary(), machine.git_commit);
    println!("durability: {durability}");
    println!(
        "server under test: HOOKLINE_DEFAULT_RATE_LIMIT={DEFAULT_RATE_LIMIT} (raised: the default 1000 deliveries/s per \
         endpoint would cap every end-to-end figure), attempt timeout 15 s (the default)"
    );
    if nodes > 1 {
        println!("memory and CPU figures: the sum over the {nodes} nodes (peaks: the sum of each node's peak)");
    }
    if machine.file_system.starts_with("tmpfs") {
        println!("WARNING: the data directories are on tmpfs, where fsync costs nothing: pass --work-dir on a disk");
    }

    let bench = Bench {
        sizes,
        servers: ServerSpec { hookline: hookline.clone(), store, nodes, work_dir },
        client: load::client(),
    };
    let report = Report {
        out,
        machine: machine.to_json(),
        settings: json!({
            "hookline": hookline.display().to_string(),
            "backend": backend,
            "nodes": nodes,
            "runs": runs,
            "smoke": args.smoke,
            "scenarios": scenarios.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "durability": durability,
            "default_rate_limit": DEFAULT_RATE_LIMIT,
            "sizes": bench.sizes.to_json(),
        }),
    };
    let started = Instant::now();
    let mut results = Results::default();
    for run in 1..=runs {
        let part_started = Instant::now();
        for figure in ceiling::measure(&bench).await.context(format!("run {run}: ceilings"))? {
            results.add(figure);
        }
        eprintln!("run {run}/{runs}: ceilings {:.1} s", part_started.elapsed().as_secs_f64());
        for &scenario in &scenarios {
            let part_started = Instant::now();
            let figures = scenario.run(&bench).await.context(format!("run {run}: scenario {}", scenario.name()))?;
            eprintln!("run {run}/{runs}: {} {:.1} s", scenario.name(), part_started.elapsed().as_secs_f64());
            for figure in figures {
                eprintln!("    {figure}");
                results.add(figure);
            }
            // A run cut off later (a timeout, a failure) keeps what it measured.
            if let Err(e) = report.write(&results, started.elapsed(), false) {
                eprintln!("hookline-bench: could not write the interim report: {e}");
            }
        }
    }
    let elapsed = started.elapsed();
    println!();
    print!("{}", results.table());
    println!(
        "ratio = value / ceiling: for a rate, the share of the ceiling reached; for a latency or a size, how many \
         times the floor"
    );
    println!();
    report.write(&results, elapsed, true)?;
    println!(
        "{} in {:.1} s; JSON in {}",
        if args.smoke { "smoke run" } else { "benchmark" },
        elapsed.as_secs_f64(),
        report.out.display()
    );
    Ok(())
}

/// The JSON file, rewritten after every scenario.
struct Report {
    out: PathBuf,
    machine: Value,
    settings: Value,
}

impl Report {
    fn write(&self, results: &Results, elapsed: Duration, complete: bool) -> Result<()> {
        let report = json!({
            "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "complete": complete,
            "seconds": elapsed.as_secs_f64(),
            "machine": self.machine,
            "settings": self.settings,
            "figures": results.to_json(),
        });
        if let Some(dir) = self.out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).context(dir.display())?;
        }
        let text = serde_json::to_string_pretty(&report).context("the JSON report")?;
        // Written beside and renamed, so a reader never sees half a file.
        let partial = self.out.with_extension("json.partial");
        std::fs::write(&partial, text + "\n").context(partial.display())?;
        std::fs::rename(&partial, &self.out).context(self.out.display())
    }
}

/// `target/bench/[smoke-]<backend>-<N>node-<UTC time>.json`, beside the
/// profile directory this program was built in.
fn default_out(bin_dir: &Path, backend: &str, nodes: usize, smoke: bool) -> PathBuf {
    let target = bin_dir.parent().unwrap_or(Path::new("target"));
    let time = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let smoke = if smoke { "smoke-" } else { "" };
    target.join("bench").join(format!("{smoke}{backend}-{nodes}node-{time}.json"))
}
