//! Operations: what the person who runs Hookline sees and does beside the
//! API. Metrics (`/metrics`), traces over OTLP, logging, readiness, and the
//! `backup`, `status` and `migrate --dry-run` commands.
//!
//! Direction of use: [`metrics`] and [`trace`] are leaves that every layer
//! may call from its hot path (they cost an atomic or a branch, and nothing
//! when tracing is off); the rest of `ops` uses the store through its public
//! interface, like the API does, and never holds SQL.

pub mod backup;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod sampler;
pub mod scrape;
pub mod status;
pub mod trace;
pub mod upgrade;
