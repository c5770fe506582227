//! Durable state. One interface (`Tx`, the repository traits), one
//! implementation per backend; callers never see SQL.
//!
//! Work runs as closures over a transaction: `Store::write` for changes (all
//! of a closure commits, or none of it), `Store::read` for queries. The
//! embedded backend funnels writes through one writer thread that commits many
//! closures in one transaction (group commit); each closure still succeeds or
//! fails on its own.

pub mod model;
pub mod page;
mod repo;
pub mod sqlite;

pub use repo::*;

use std::fmt;

/// What a store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A unique constraint: the named thing already exists.
    Conflict(&'static str),
    NotFound,
    /// The backend failed (I/O, corruption, a bug); not the caller's fault.
    Backend(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(what) => write!(f, "{what} already exists"),
            StoreError::NotFound => write!(f, "not found"),
            StoreError::Backend(e) => write!(f, "store: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;

/// The store a process runs on.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
}

impl Store {
    /// Runs `f` in a transaction that is durable on disk when this returns
    /// `Ok`. An `Err` from `f` undoes everything `f` did.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.write(f).await,
        }
    }

    /// Runs `f` against a consistent snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
    {
        match self {
            Store::Sqlite(s) => s.read(f).await,
        }
    }
}
