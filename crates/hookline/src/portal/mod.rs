//! The management portal: a static single-page app embedded in the binary,
//! served at `/portal/`. It talks to the public API only, with the token it
//! reads from the URL fragment, and keeps that token in page memory (no
//! cookies, no storage), so it works in a third-party iframe.
//!
//! Assets are plain ES modules and CSS (no bundler): `web/` is the source and
//! the shipped file at once. Every answer carries a strict CSP whose
//! `frame-ancestors` is `HOOKLINE_PORTAL_FRAME_ANCESTORS`; compressible assets
//! are gzipped once, on first request, and served to clients that accept it.

mod assets;

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    LOCATION, REFERRER_POLICY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::Settings;
pub use assets::{Asset, ASSETS};

/// `<public>/portal/#token=<token>`: the URL Hookline hands out. The base is
/// the configured public URL, never a request's `Host` header (which the
/// caller controls). The token travels in the fragment, which browsers never
/// send, so it reaches no server or proxy log.
pub fn portal_url(public_url: &str, token: &str) -> String {
    format!("{}/portal/#token={token}", public_url.trim_end_matches('/'))
}

/// The portal's Content-Security-Policy: only its own scripts, styles and
/// API; images may also come over https (the embedder's `icon`).
pub fn content_security_policy(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
         font-src 'self' https: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors {frame_ancestors}"
    )
}

struct Portal {
    csp: HeaderValue,
    etags: Vec<HeaderValue>,
    gzipped: Vec<OnceLock<Option<Vec<u8>>>>,
}

/// Routes for `/portal`, `/portal/` and `/portal/assets/…`.
pub fn router<S: Clone + Send + Sync + 'static>(settings: &Settings) -> Router<S> {
    let csp = content_security_policy(&settings.portal_frame_ancestors);
    let portal = Arc::new(Portal {
        csp: HeaderValue::from_str(&csp).expect("frame ancestors are validated as header-safe"),
        etags: ASSETS.iter().map(|a| HeaderValue::from_str(&a.etag()).expect("hex etag is a header value")).collect(),
        gzipped: ASSETS.iter().map(|_| OnceLock::new()).collect(),
    });
    Router::new()
        .route("/portal", get(redirect_to_slash))
        .route("/portal/", get(index))
        .route("/portal/{*path}", get(asset))
        .with_state(portal)
}

/// `/portal` → `/portal/` so relative asset URLs resolve; the query (theme
/// parameters) is kept and browsers keep the fragment (the token).
async fn redirect_to_slash(uri: Uri) -> Response {
    let location = match uri.query() {
        Some(q) => format!("/portal/?{q}"),
        None => "/portal/".to_string(),
    };
    (StatusCode::PERMANENT_REDIRECT, [(LOCATION, location)]).into_response()
}

async fn index(State(portal): State<Arc<Portal>>, headers: HeaderMap) -> Response {
    serve(&portal, "index.html", &headers)
}

async fn asset(State(portal): State<Arc<Portal>>, Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&portal, &path, &headers)
}

fn serve(portal: &Portal, path: &str, request: &HeaderMap) -> Response {
    let Some((index, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        let mut response = (StatusCode::NOT_FOUND, "Not found\n").into_response();
        security_headers(response.headers_mut(), &portal.csp);
        return response;
    };
    let etag = portal.etags[index].clone();
    let not_modified = request.get(IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let accepts_gzip = request
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.split(';').next().unwrap_or("").trim() == "gzip"));
    let gzipped = if accepts_gzip && asset.compressible() {
        portal.gzipped[index].get_or_init(|| gzip(asset.body)).as_deref()
    } else {
        None
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match gzipped {
            Some(body) => ([(CONTENT_ENCODING, "gzip")], body.to_vec()).into_response(),
            None => asset.body.into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(asset.cache_control()));
    h.insert(ETAG, etag);
    h.insert(VARY, HeaderValue::from_static("accept-encoding"));
    security_headers(h, &portal.csp);
    response
}

fn security_headers(h: &mut HeaderMap, csp: &HeaderValue) {
    h.insert(CONTENT_SECURITY_POLICY, csp.clone());
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// `None` when compression does not pay.
fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 3), flate2::Compression::best());
    encoder.write_all(body).ok()?;
    let out = encoder.finish().ok()?;
    (out.len() + 64 < body.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_url_uses_the_public_base_and_the_fragment() {
        assert_eq!(portal_url("https://hooks.example.com/", "hk_x"), "https://hooks.example.com/portal/#token=hk_x");
        assert_eq!(portal_url("http://127.0.0.1:8071", "t"), "http://127.0.0.1:8071/portal/#token=t");
    }

    #[test]
    fn csp_allows_only_own_scripts_and_the_configured_embedders() {
        let csp = content_security_policy("https://app.example.com");
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("connect-src 'self';"));
        assert!(csp.ends_with("frame-ancestors https://app.example.com"));
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn every_asset_is_found_and_gzip_shrinks_text() {
        assert!(ASSETS.iter().any(|a| a.path == "index.html"));
        let js = ASSETS.iter().find(|a| a.path.ends_with("uPlot.esm.js")).expect("uPlot is vendored");
        assert!(gzip(js.body).is_some_and(|g| g.len() < js.body.len() / 2));
    }
}
