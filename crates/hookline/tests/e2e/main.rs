//! End-to-end tests: each module drives the real `hookline` binary through
//! the harness in `common` (one test binary, so the harness and its
//! dependencies are compiled and linked once).

mod common;
mod receiver;

mod api_errors;
mod api_filters;
mod api_fuzz;
mod api_idempotency;
mod api_isolation;
mod api_pagination;
mod api_parity;
mod api_resources;
mod api_upsert;
mod crash;
mod delivery;
mod fixtures;
mod hostile_clients;
mod hostile_endpoints;
mod import_svix;
mod multinode;
mod openapi;
mod openapi_client;
mod operational_webhooks;
mod operations;
mod portal_api;
mod portal_browser;
mod receiving_tools;
mod reliability;
mod schemathesis;
mod sdk_compat;
