//! The `hookline` command: a thin layer over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline::auth::{Scope, TokenAuthority};
use hookline::config::{FlagValues, Settings, SETTINGS_HELP};
use hookline::server;

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
    /// Run the API, the dispatcher and the portal in one process
    Serve,
    /// Apply schema migrations and exit
    Migrate,
    /// API tokens
    #[command(subcommand)]
    Token(TokenCommand),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags =
        FlagValues { listen: cli.flags.listen, data_dir: cli.flags.data_dir, database_url: cli.flags.database_url };
    let settings = match Settings::load(flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hookline: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);
    let result = match cli.command {
        Command::Serve => runtime().block_on(server::serve(settings)),
        Command::Migrate => hookline::store::sqlite::SqliteStore::migrate_only(&settings.data_dir)
            .map(|()| println!("migrations applied"))
            .map_err(|e| e.to_string()),
        Command::Token(TokenCommand::Create { app, read_only }) => {
            runtime().block_on(create_token(settings, app, read_only))
        }
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
    let scope = match app {
        None => Scope::Admin,
        Some(app) => {
            let store = server::open_store(&settings)?;
            let lookup = app.clone();
            let found = store
                .read(move |tx| tx.application(&lookup))
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no application with id or uid {app:?}"))?;
            Scope::App { app: found.id, read_only }
        }
    };
    println!("{}", tokens.issue(scope, None));
    Ok(())
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
