//! Wires the parts together for `hookline serve`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::api::{self, AppState, Shared};
use crate::auth::TokenAuthority;
use crate::config::Settings;
use crate::dispatch::{spawn_sweeper, Dispatcher};
use crate::keys::{MainKey, SecretCipher};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// Opens the configured store (migrating it).
pub fn open_store(settings: &Settings) -> Result<Store, String> {
    if let Some(url) = &settings.database_url {
        let scheme = url.split(':').next().unwrap_or("");
        return Err(format!(
            "HOOKLINE_DATABASE_URL ({scheme}://…) is set, but this build supports only the embedded store; unset it"
        ));
    }
    SqliteStore::open(&settings.data_dir).map(Store::Sqlite).map_err(|e| e.to_string())
}

pub fn load_main_key(settings: &Settings) -> Result<MainKey, String> {
    MainKey::load(settings.main_key.as_deref(), &settings.data_dir)
}

pub async fn serve(settings: Settings, event_catalog: Option<PathBuf>) -> Result<(), String> {
    let store = open_store(&settings)?;
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
    // Claims held by a previous run of this process are void: nothing else
    // can be using the embedded store's file.
    let released = store.write(|tx| tx.release_all_claims(Utc::now())).await.map_err(|e| e.to_string())?;
    if released > 0 {
        tracing::info!(released, "released deliveries claimed by the previous run");
    }
    let new_work = Arc::new(Notify::new());
    let (stop, stopped) = watch::channel(false);
    let dispatcher = Dispatcher::new(store.clone(), cipher.clone(), &settings)?;
    let drain = settings.attempt_timeout + Duration::from_secs(2);
    let dispatch_task = tokio::spawn(dispatcher.run(new_work.clone(), stopped.clone(), drain));
    let sweeper = spawn_sweeper(store.clone(), settings.retention, stopped);

    let portal = crate::portal::router(&settings);
    let state = AppState::new(Shared {
        store,
        tokens: TokenAuthority::new(&main_key, settings.admin_token.clone()),
        cipher,
        settings: settings.clone(),
        new_work,
    });
    let listener =
        TcpListener::bind(settings.listen).await.map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, data_dir = %settings.data_dir.display(), "hookline listening");
    tracing::info!(url = %format!("{}/portal/", settings.public_url), "portal (open it with `hookline console`)");
    let served =
        axum::serve(listener, api::router(state).merge(portal)).with_graceful_shutdown(shutdown_signal()).await;
    // Stop taking work, let attempts in flight finish (bounded), then exit.
    let _ = stop.send(true);
    let _ = dispatch_task.await;
    let _ = sweeper.await;
    served.map_err(|e| format!("server error: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
