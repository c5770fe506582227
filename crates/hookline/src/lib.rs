//! Hookline: a self-hosted webhook delivery service, compatible with the Svix
//! v1 API. See ARCHITECTURE.md at the repository root for the map.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod endpoint_key;
pub mod ids;
pub mod import;
pub mod keys;
pub mod operational;
pub mod ops;
pub mod portal;
pub mod server;
pub mod store;
pub mod tasks;
