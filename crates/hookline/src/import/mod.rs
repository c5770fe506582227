//! `hookline import svix`: copies a running Svix deployment (hosted or
//! open-source; or another Hookline, which serves the same API) into this
//! Hookline's store, through the source's public API only.
//!
//! Copied: event types (schemas, archived state), applications (uid,
//! metadata, rate limit), endpoints (URL, uid, description, version,
//! disabled, filters, channels, rate limit, metadata), each endpoint's
//! signing secret (so receivers keep verifying) and its headers except the
//! sensitive ones, whose values Svix never shows. Not copied: messages,
//! attempts, operational-webhook endpoints, and retired secrets still in a
//! rotation's grace period (the API shows only the current one).
//!
//! Ids are kept where they are valid Hookline ids (Svix's always are), so
//! ids stored by the platform keep resolving; others get new ids,
//! remembered for the next run. Each application is written with its
//! endpoints in one transaction, so memory stays bounded by one
//! application, and an interrupted import resumes by running it again.
//!
//! The embedded store is copied into with `serve` stopped: the import holds
//! the data-dir lock (see `store/sqlite/lock.rs`). On PostgreSQL it runs
//! beside serving nodes.

mod client;
mod report;
mod svix;
mod upsert;

use std::sync::Arc;

pub use client::{RetryPolicy, SourceError, SvixClient};
pub use report::{Outcome, Report, Tally};

use crate::config::Settings;
use crate::keys::SecretCipher;
use crate::store::sqlite::{DataDirLock, LockError};
use svix::{SourceApp, SvixApp, SvixEventType};

/// Where to copy from.
pub struct SvixSource {
    /// The API's base URL, e.g. `https://api.eu.svix.com`.
    pub url: String,
    /// An API token of the environment to copy (organization-wide).
    pub token: String,
}

/// Copies `source` into the store `settings` name; the report says what
/// was created, updated, left alone or skipped, and why.
pub async fn svix(settings: &Settings, source: SvixSource, retry: RetryPolicy) -> Result<Report, String> {
    let client = SvixClient::new(&source.url, &source.token, retry)?;
    // A refused token or a wrong URL is said before the target is touched.
    client.check_access().await.map_err(|e| e.to_string())?;
    let _lock = match settings.database_url {
        None => Some(DataDirLock::acquire(&settings.data_dir).map_err(explain_lock)?),
        Some(_) => None,
    };
    let store = crate::server::open_store(settings).await?;
    let main_key = crate::server::load_main_key(settings)?;
    let cipher = SecretCipher::new(&main_key);
    // Secrets are sealed under this key: a store bound to another is refused.
    crate::keys::bind_store(&store, &main_key, &cipher).await?;
    tracing::info!(source = %client.base(), "import started");

    let mut report = Report { source: client.base().to_string(), ..Report::default() };
    let mut pages =
        client.pages::<SvixEventType>(&["event-type"], &[("include_archived", "true"), ("with_content", "true")]);
    while let Some(page) = pages.next_page().await.map_err(|e| e.to_string())? {
        let page = Arc::new(page);
        let done = store
            .write(move |tx| upsert::import_event_types(tx, &page, crate::store::model::now()))
            .await
            .map_err(|e| format!("writing event types: {e}"))?;
        report.merge(done);
    }

    let mut apps = client.pages::<SvixApp>(&["app"], &[]);
    let mut seen = 0usize;
    while let Some(page) = apps.next_page().await.map_err(|e| e.to_string())? {
        for app in page {
            if app.id == crate::operational::APP_ID {
                continue;
            }
            let endpoints = match client.endpoints_of(&app.id).await {
                Ok(endpoints) => endpoints,
                // Deleted in the source since it was listed.
                Err(SourceError::NotFound(_)) => continue,
                Err(e) => return Err(e.to_string()),
            };
            let (app_id, cipher) = (app.id.clone(), cipher.clone());
            let source = Arc::new(SourceApp { app, endpoints });
            let done = store
                .write(move |tx| upsert::import_app(tx, &source, &cipher, crate::store::model::now()))
                .await
                .map_err(|e| format!("writing application {app_id}: {e}"))?;
            report.merge(done);
            seen += 1;
        }
        tracing::info!(applications = seen, "import progress");
    }
    Ok(report)
}

/// The embedded store is in use: most likely by `serve`.
fn explain_lock(e: LockError) -> String {
    match e {
        LockError::InUse { ref dir, .. } => format!(
            "the embedded store in {} is in use by a running hookline{}: stop `hookline serve` during the import \
             and start it again afterwards (on PostgreSQL the import runs beside serving nodes)",
            dir.display(),
            e.holder_note()
        ),
        LockError::Io(e) => e,
    }
}
