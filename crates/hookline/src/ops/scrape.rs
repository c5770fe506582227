//! `GET /metrics`: the Prometheus scrape.
//!
//! It sits beside the API, not in the route table: it is not part of the
//! Svix API nor of `openapi.json`, it answers Prometheus text rather than
//! JSON, it lives at the conventional root path, and its access rule is its
//! own (API tokens do not open it):
//!
//! - `HOOKLINE_METRICS_TOKEN` unset: only connections from a loopback
//!   address are answered (403 otherwise). Behind a reverse proxy on the
//!   same host every request comes from loopback: set a token there, or
//!   keep `/metrics` out of what the proxy forwards.
//! - set: `Authorization: Bearer <token>` is required from anywhere (401
//!   otherwise), compared in constant time.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::api::error::ApiError;

/// The OpenMetrics text format, which Prometheus negotiates and scrapes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Access {
    token: Option<Arc<str>>,
}

/// The `/metrics` route, with its access rule.
pub fn router(token: Option<String>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(Access { token: token.map(Arc::from) })
}

async fn scrape(State(access): State<Access>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| *addr);
    if let Err(refused) = check(&access, peer, req.headers()) {
        return refused.into_response();
    }
    let text = tokio::task::spawn_blocking(|| super::metrics::get().render()).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, CONTENT_TYPE), (header::CACHE_CONTROL, "no-store")], text).into_response()
}

fn check(access: &Access, peer: Option<SocketAddr>, headers: &HeaderMap) -> Result<(), ApiError> {
    match &access.token {
        Some(token) => {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if bool::from(presented.as_bytes().ct_eq(token.as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "authentication_failed",
                    "/metrics needs the bearer token set in HOOKLINE_METRICS_TOKEN",
                ))
            }
        }
        None if peer.is_some_and(|p| p.ip().is_loopback() || is_mapped_loopback(p)) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient_access",
            "/metrics answers loopback connections only; set HOOKLINE_METRICS_TOKEN to scrape from elsewhere",
        )),
    }
}

fn is_mapped_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        std::net::IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_only_without_a_token_and_the_token_everywhere_with_one() {
        let open = Access { token: None };
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(check(&open, Some(local), &headers(None)).is_ok());
        assert!(check(&open, Some(mapped), &headers(None)).is_ok());
        assert_eq!(check(&open, Some(remote), &headers(None)).unwrap_err().status, StatusCode::FORBIDDEN);
        assert!(check(&open, None, &headers(None)).is_err());

        let locked = Access { token: Some(Arc::from("s3cret")) };
        assert!(check(&locked, Some(remote), &headers(Some("Bearer s3cret"))).is_ok());
        for wrong in [None, Some("Bearer nope"), Some("s3cret"), Some("Bearer s3cret2")] {
            let err = check(&locked, Some(local), &headers(wrong)).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        }
    }
}
