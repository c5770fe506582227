//! `hookline-bench`: Hookline's benchmark (issue 12). It starts
//! `hookline serve` on a temporary store (or fresh PostgreSQL databases,
//! one or several nodes), its own loopback receivers and load generator,
//! runs the scenarios (ingest, end to end, latency under load, backlog, bad
//! neighbour, idle) with the ceilings they are compared with, and reports
//! the median of every figure over the runs: a table on stdout, JSON under
//! `target/bench/`.
//!
//! ```text
//! hookline-bench [--runs 3] [--scenario ingest,e2e,…] [--backend sqlite|postgres
//!                [--database-url URL] [--nodes N]] [--smoke] [--backlog N] [--rates N,…] [--out FILE]
//! hookline-bench load --url URL --token TOKEN [-n N] [-c C] [--deliver]
//! ```
//!
//! Layout: `suite` runs everything; `scenario/` one module per scenario;
//! `ceiling/` the references; `load` the load generator; `receiver` the
//! endpoints; `deployment` the server processes; `pg` the PostgreSQL side;
//! `report` the table and JSON; `stats` percentiles and medians.

mod api;
mod ceiling;
mod cli;
mod deployment;
mod error;
mod figure;
mod load;
mod load_command;
mod machine;
mod offload;
mod payload;
mod pg;
mod plan;
mod procfs;
mod receiver;
mod report;
mod scenario;
mod stats;
mod suite;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// Hookline's allocator, so that the HTTP ceiling allocates as it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::CeilingServer { listen }) => ceiling::http::serve(&listen).await,
        Some(Command::Load(args)) => load_command::run(args).await,
        None => suite::run(cli.run).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookline-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
