//! Wires the parts together for `hookline serve`.

mod http;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState, Shared};
use crate::auth::TokenAuthority;
use crate::config::Settings;
use crate::dispatch::{supervise, sweep_forever, Dispatcher};
use crate::keys::{MainKey, SecretCipher};
use crate::store::postgres::PgStore;
use crate::store::sqlite::{DataDirLock, SqliteStore};
use crate::store::Store;

/// Opens the configured store (migrating it). Blocking I/O runs off the
/// async threads.
pub async fn open_store(settings: &Settings) -> Result<Store, String> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || open_store_blocking(&settings))
        .await
        .map_err(|e| format!("opening the store failed: {e}"))?
}

fn open_store_blocking(settings: &Settings) -> Result<Store, String> {
    match &settings.database_url {
        Some(url) => {
            if settings.main_key.is_none() {
                return Err("HOOKLINE_DATABASE_URL is set but HOOKLINE_MAIN_KEY is not: every node on one database \
                            must share the main key (base64 of 32 random bytes, e.g. `openssl rand -base64 32`), \
                            or their tokens and secrets would not work on each other"
                    .into());
            }
            PgStore::open(url).map(Store::Postgres).map_err(|e| e.to_string())
        }
        None => SqliteStore::open(&settings.data_dir).map(Store::Sqlite).map_err(|e| e.to_string()),
    }
}

/// Applies migrations and exits (`hookline migrate`).
pub fn migrate(settings: &Settings) -> Result<(), String> {
    match &settings.database_url {
        Some(url) => PgStore::migrate_only(url),
        None => SqliteStore::migrate_only(&settings.data_dir),
    }
    .map_err(|e| e.to_string())
}

pub fn load_main_key(settings: &Settings) -> Result<MainKey, String> {
    MainKey::load(settings.main_key.as_deref(), &settings.data_dir)
}

pub async fn serve(settings: Settings, event_catalog: Option<PathBuf>) -> Result<(), String> {
    if let Some(endpoint) = &settings.otlp_endpoint {
        crate::ops::trace::init(endpoint)?;
    }
    // Before anything touches the store: a second `serve` on the same files
    // would release this one's claims and dispatch beside it.
    let _lock = match settings.database_url {
        None => Some(DataDirLock::acquire(&settings.data_dir)?),
        Some(_) => None,
    };
    let store = open_store(&settings).await?;
    let store_description = match &store {
        Store::Postgres(pg) => {
            pg.start();
            Some(pg.describe().to_string())
        }
        Store::Sqlite(_) => None,
    };
    if let Some(path) = &event_catalog {
        let report = crate::catalog::import_file(&store, path).await?;
        tracing::info!(
            created = report.created,
            updated = report.updated,
            unchanged = report.unchanged,
            "event catalog imported"
        );
    }
    if settings.admin_token.is_none() {
        tracing::info!("no HOOKLINE_ADMIN_TOKEN set; create an admin token with `hookline token create`");
    }
    let main_key = load_main_key(&settings)?;
    let cipher = SecretCipher::new(&main_key);
    crate::keys::bind_store(&store, &main_key, &cipher).await?;
    store
        .write(crate::operational::ensure_app)
        .await
        .map_err(|e| format!("creating the operational webhooks' application: {e}"))?;
    // Claims held by a previous run of this process are void: the data-dir
    // lock proves nothing else is using the embedded store's files. (On a
    // shared database, other nodes' claims are live leases: never this.)
    if store.is_embedded() {
        let released = store.release_all_claims().await.map_err(|e| e.to_string())?;
        if released > 0 {
            tracing::info!(released, "released deliveries claimed by the previous run");
        }
    }

    // Claiming stops first; lease renewal and the sweeper run until the
    // attempts in flight have been recorded.
    let (stop_claiming, claiming_stopped) = watch::channel(false);
    let (stop_background, background_stopped) = watch::channel(false);
    let dispatcher = Dispatcher::new(store.clone(), cipher.clone(), &settings)?;
    let claim_loop = tokio::spawn(supervise("dispatcher", claiming_stopped.clone(), {
        let (dispatcher, stopped) = (dispatcher.clone(), claiming_stopped.clone());
        move || dispatcher.clone().run(stopped.clone())
    }));
    let recorder = tokio::spawn(supervise("outcome recorder", background_stopped.clone(), {
        let (dispatcher, stopped) = (dispatcher.clone(), background_stopped.clone());
        move || dispatcher.clone().record_outcomes(stopped.clone())
    }));
    let renewals = tokio::spawn(supervise("lease renewal", background_stopped.clone(), {
        let (dispatcher, stopped) = (dispatcher.clone(), background_stopped.clone());
        move || dispatcher.clone().renew_leases(stopped.clone())
    }));
    let sweeper = tokio::spawn(supervise("retention sweeper", background_stopped.clone(), {
        let (store, retention, stopped) = (store.clone(), settings.retention, background_stopped.clone());
        move || sweep_forever(store.clone(), retention, stopped.clone())
    }));
    let task_wake = Arc::new(tokio::sync::Notify::new());
    let task_runner = tokio::spawn(supervise("background tasks", background_stopped.clone(), {
        let (store, wake, stopped) = (store.clone(), task_wake.clone(), background_stopped.clone());
        move || crate::tasks::run_forever(store.clone(), wake.clone(), stopped.clone())
    }));
    let sampler = tokio::spawn(supervise("metrics sampler", background_stopped.clone(), {
        let (store, dispatcher, stopped) = (store.clone(), dispatcher.clone(), background_stopped);
        move || {
            let dispatcher = dispatcher.clone();
            crate::ops::sampler::sample_forever(store.clone(), move || dispatcher.in_flight_count(), stopped.clone())
        }
    }));

    let portal = crate::portal::router(&settings);
    let messages = api::MessageWriter::start(store.clone(), cipher.clone());
    let state = AppState::new(Shared {
        messages,
        store,
        tokens: TokenAuthority::new(&main_key, settings.admin_token.as_deref().map(String::from)),
        cipher,
        settings: settings.clone(),
        dispatcher_heartbeat: dispatcher.heartbeat(),
        task_wake,
    });
    let listener =
        TcpListener::bind(settings.listen).await.map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let where_data = match &store_description {
        Some(db) => db.clone(),
        None => settings.data_dir.display().to_string(),
    };
    // Registered before the server says it listens: a SIGTERM that comes
    // right after must stop it gracefully, not kill it.
    let signalled = shutdown_signal();
    tracing::info!(address = %local, store = %where_data, "hookline listening");
    tracing::info!(url = %format!("{}/portal/", settings.public_url), "portal (open it with `hookline console`)");
    // On SIGTERM claiming stops at once; requests in progress and attempts
    // in flight then finish side by side (each bounded) before the exit.
    tokio::spawn(async move {
        signalled.await;
        let _ = stop_claiming.send(true);
    });
    let mut stopping = claiming_stopped;
    let stop_serving = async move {
        let _ = stopping.wait_for(|stopped| *stopped).await;
    };
    let metrics = crate::ops::scrape::router(settings.metrics_token.as_deref().map(String::from));
    http::serve(listener, api::router(state).merge(portal).merge(metrics), stop_serving, Duration::from_secs(10)).await;
    let _ = claim_loop.await;
    dispatcher.stop_claiming().await;
    dispatcher.drain(settings.attempt_timeout + Duration::from_secs(2)).await;
    let _ = stop_background.send(true);
    let _ = recorder.await;
    let _ = renewals.await;
    let _ = sweeper.await;
    let _ = task_runner.await;
    let _ = sampler.await;
    let _ = tokio::task::spawn_blocking(crate::ops::trace::shutdown).await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C. The SIGTERM handler is installed when
/// this is called, not when the future is first polled.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
    }
}
