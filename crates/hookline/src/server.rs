//! Wires the parts together for `hookline serve`.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::api::{self, AppState, Shared};
use crate::auth::TokenAuthority;
use crate::config::Settings;
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

pub async fn serve(settings: Settings) -> Result<(), String> {
    let store = open_store(&settings)?;
    let main_key = load_main_key(&settings)?;
    let state = AppState::new(Shared {
        store,
        tokens: TokenAuthority::new(&main_key, settings.admin_token.clone()),
        cipher: SecretCipher::new(&main_key),
        settings: settings.clone(),
        new_work: Arc::new(Notify::new()),
    });
    let listener =
        TcpListener::bind(settings.listen).await.map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, data_dir = %settings.data_dir.display(), "hookline listening");
    axum::serve(listener, api::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
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
