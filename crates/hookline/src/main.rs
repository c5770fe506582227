//! The `hookline` command: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline::auth::{Capabilities, Grant, Scope, TokenAuthority};
use hookline::config::{parse_duration, FlagValues, Settings, SETTINGS_HELP};
use hookline::{catalog, cli, server};

/// glibc's malloc spent a fifth of the request path's CPU in its own
/// bookkeeping (free-chunk consolidation); see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hookline", version, about = "Self-hosted webhook delivery, compatible with the Svix v1 API", after_help = SETTINGS_HELP)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Flags {
    /// API/portal address [env: HOOKLINE_LISTEN] [default: 127.0.0.1:8071]
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Embedded store and key file [env: HOOKLINE_DATA_DIR] [default: ./hookline-data]
    #[arg(long, global = true)]
    data_dir: Option<String>,
    /// postgres://… switches to PostgreSQL [env: HOOKLINE_DATABASE_URL]
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the delivery engine in one process
    Serve {
        /// Upsert this event catalog (JSON) before serving
        #[arg(long)]
        event_catalog: Option<PathBuf>,
    },
    /// Apply schema migrations and exit
    Migrate {
        /// Print the pending migrations without applying them
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the embedded store to FILE, consistently, while `serve` runs
    /// (not the main key: keep that apart; PostgreSQL: use pg_dump)
    Backup {
        /// The new file to write (never overwritten)
        file: PathBuf,
    },
    /// Backlog, due now, oldest due age, failing and disabled endpoints,
    /// last retention sweep (read from the store; works while `serve` runs)
    Status {
        /// One JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print an operator-console URL holding a short-lived admin token
    Console {
        /// How long the token is valid
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        expiry: std::time::Duration,
    },
    /// The event type catalog
    #[command(subcommand, name = "event-types")]
    EventTypes(EventTypesCommand),
    /// Copy another deployment into this one
    #[command(subcommand)]
    Import(ImportCommand),
    /// Verify one signed webhook; prints `valid` or `invalid: <reason>` (exit 0 / 1)
    Verify {
        /// Signing secret (whsec_…) or ed25519 public key (whpk_…)
        #[arg(long)]
        secret: String,
        /// The webhook-id header
        #[arg(long)]
        id: String,
        /// The webhook-timestamp header (unix seconds)
        #[arg(long)]
        timestamp: String,
        /// The webhook-signature header
        #[arg(long)]
        signature: String,
        /// Largest accepted clock difference
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        tolerance: std::time::Duration,
        /// Read the body from this file instead of standard input
        #[arg(long)]
        body_file: Option<PathBuf>,
    },
    /// A local receiver: verifies and prints every delivery POSTed to it
    Listen {
        /// Signing secret (whsec_…) or ed25519 public key (whpk_…)
        #[arg(long)]
        secret: String,
        /// Port on 127.0.0.1
        #[arg(long, default_value_t = 8072)]
        port: u16,
        /// Status to answer with (e.g. 500 to watch retries)
        #[arg(long, default_value_t = 204)]
        status: u16,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new API token: admin, or scoped to one application
    Create {
        /// Application id or uid to scope the token to
        #[arg(long)]
        app: Option<String>,
        /// The token may only read
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Copy a Svix deployment through its API: event types, applications, endpoints with their secrets
    ///
    /// Ids are kept; messages are not copied. Idempotent: run it again to
    /// copy what changed. The embedded store must not be in use by `serve`
    /// meanwhile; PostgreSQL may be. See docs/migrating-from-svix.md.
    Svix {
        /// The Svix API's base URL, e.g. https://api.eu.svix.com
        #[arg(long)]
        url: String,
        /// An organization-wide API token of the environment to copy (or
        /// HOOKLINE_IMPORT_TOKEN, which keeps it out of the process list)
        #[arg(long, env = "HOOKLINE_IMPORT_TOKEN", hide_env_values = true)]
        token: String,
    },
}

#[derive(Subcommand)]
enum EventTypesCommand {
    /// Upsert the event types of a catalog file (idempotent)
    Import { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The receiving-side tools need no settings and no store.
    match cli.command {
        Command::Verify { secret, id, timestamp, signature, tolerance, body_file } => {
            let (line, code) =
                cli::verify::run(cli::verify::VerifyArgs { secret, id, timestamp, signature, tolerance, body_file });
            if code == 2 {
                eprintln!("hookline verify: {line}");
            } else {
                println!("{line}");
            }
            return ExitCode::from(code);
        }
        Command::Listen { secret, port, status } => {
            let result =
                cli::parse_key(&secret).and_then(|key| runtime().block_on(cli::listen::run(key, port, status)));
            return match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("hookline listen: {e}");
                    ExitCode::from(2)
                }
            };
        }
        _ => {}
    }

    let flags =
        FlagValues { listen: cli.flags.listen, data_dir: cli.flags.data_dir, database_url: cli.flags.database_url };
    let settings = match Settings::load(flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::from(2);
        }
    };
    hookline::ops::logging::init(&settings);
    let result = match cli.command {
        Command::Serve { event_catalog } => runtime().block_on(server::serve(settings, event_catalog)),
        Command::Migrate { dry_run: true } => hookline::ops::upgrade::dry_run(&settings),
        Command::Migrate { dry_run: false } => server::migrate(&settings).map(|()| println!("migrations applied")),
        Command::Backup { file } => hookline::ops::backup::run(&settings, &file),
        Command::Status { json } => runtime().block_on(hookline::ops::status::run(&settings, json)),
        Command::Token(TokenCommand::Create { app, read_only }) => {
            runtime().block_on(create_token(settings, app, read_only))
        }
        Command::Console { expiry } => console_url(&settings, expiry),
        Command::EventTypes(EventTypesCommand::Import { file }) => runtime().block_on(import_catalog(settings, file)),
        Command::Import(ImportCommand::Svix { url, token }) => runtime().block_on(import_svix(settings, url, token)),
        Command::Verify { .. } | Command::Listen { .. } => unreachable!("handled above"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime starts")
}

async fn create_token(settings: Settings, app: Option<String>, read_only: bool) -> Result<(), String> {
    let key = server::load_main_key(&settings)?;
    let tokens = TokenAuthority::new(&key, None);
    let grant = match app {
        None => Grant { scope: Scope::Admin, expires_at: None, session_id: None, generation: 0 },
        Some(app) => {
            let store = server::open_store(&settings).await?;
            let lookup = app.clone();
            let (found, generation) = store
                .read(move |tx| {
                    let found = tx.application(&lookup)?.filter(|a| a.id != hookline::operational::APP_ID);
                    let Some(found) = found else { return Ok(None) };
                    let generation = tx.app_token_generation(&found.id)?;
                    Ok::<_, hookline::store::StoreError>(Some((found, generation)))
                })
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no application with id or uid {app:?}"))?;
            let caps = if read_only { Capabilities::read_only() } else { Capabilities::all() };
            Grant { scope: Scope::App { app: found.id, caps }, expires_at: None, session_id: None, generation }
        }
    };
    println!("{}", tokens.issue_grant(grant));
    Ok(())
}

/// An admin token that expires, signed with the main key like `token
/// create`, inside the portal URL's fragment.
fn console_url(settings: &Settings, expiry: std::time::Duration) -> Result<(), String> {
    let secs = expiry.as_secs() as i64;
    if !(60..=7 * 86400).contains(&secs) {
        return Err("--expiry must be from 1m to 7d".into());
    }
    let key = server::load_main_key(settings)?;
    let token = TokenAuthority::new(&key, None).issue(Scope::Admin, Some(chrono::Utc::now().timestamp() + secs));
    println!("{}", hookline::portal::portal_url(&settings.public_url, &token));
    Ok(())
}

async fn import_catalog(settings: Settings, file: PathBuf) -> Result<(), String> {
    let store = server::open_store(&settings).await?;
    let report = catalog::import_file(&store, &file).await?;
    println!("{} created, {} updated, {} unchanged", report.created, report.updated, report.unchanged);
    Ok(())
}

async fn import_svix(settings: Settings, url: String, token: String) -> Result<(), String> {
    let source = hookline::import::SvixSource { url, token };
    let report = hookline::import::svix(&settings, source, hookline::import::RetryPolicy::default()).await?;
    println!("{report}");
    Ok(())
}
