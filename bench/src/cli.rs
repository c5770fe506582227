//! The command line: the benchmark (no subcommand), the ceiling server it
//! starts, and `load` (a load against a running Hookline).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "hookline-bench",
    about = "Hookline's benchmark: starts `hookline serve` on a temporary store, its own loopback receivers and \
             load generator, runs the scenarios, prints a table and writes JSON under target/bench/",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// The HTTP ceiling: a minimal axum server parsing message bodies like
    /// Hookline and answering 202 (the benchmark starts it itself)
    CeilingServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Sends messages to a running Hookline and prints the rates (for
    /// scripts that measure a server of their own, like scripts/sizing.sh)
    Load(LoadArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Args)]
pub struct RunArgs {
    /// The `hookline` binary to measure [default: the one next to this program]
    #[arg(long, value_name = "PATH")]
    pub hookline: Option<PathBuf>,
    /// Runs of everything; each figure is their median [default: 3, 1 with --smoke]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: Option<u32>,
    /// Scenarios to run, comma-separated [default: all]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME,…")]
    pub scenario: Vec<Scenario>,
    /// The store of the server under test
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// PostgreSQL admin URL to create a database per run on [default: $HOOKLINE_TEST_DATABASE_URL]
    #[arg(long, env = "HOOKLINE_BENCH_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// `hookline serve` processes sharing the database (PostgreSQL)
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub nodes: u32,
    /// Every scenario at tiny sizes: seconds long, figures meaningless
    #[arg(long)]
    pub smoke: bool,
    /// Pending deliveries of the backlog scenario [default: 1000000, 300 with --smoke]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub backlog: Option<u64>,
    /// Offered rates of the latency scenario, messages a second [default: 1000,5000; 50,200 with --smoke]
    #[arg(long, value_name = "N,…", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
    pub rates: Vec<u32>,
    /// Where the JSON goes [default: target/bench/<backend>-<nodes>node-<time>.json]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Where the temporary data directories go [default: the system's temporary directory]
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// A node's base URL; several share the load in turn
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8071")]
    pub url: Vec<String>,
    /// An admin token
    #[arg(long, env = "HOOKLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Messages to send
    #[arg(short = 'n', long, default_value_t = 20_000)]
    pub messages: usize,
    /// Clients sending at once
    #[arg(short = 'c', long, default_value_t = 64)]
    pub concurrency: usize,
    /// Also deliver every message to a loopback endpoint and time it (the
    /// server must allow 127.0.0.0/8 in HOOKLINE_ALLOWED_PRIVATE_CIDRS)
    #[arg(long)]
    pub deliver: bool,
}
