//! The portal's files, embedded in the binary at compile time.

use sha2::{Digest, Sha256};

/// One embedded file, served at `/portal/<path>`.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

impl Asset {
    /// A strong validator: the first 16 bytes of the body's SHA-256, quoted.
    pub fn etag(&self) -> String {
        let digest = Sha256::digest(self.body);
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    }

    pub fn compressible(&self) -> bool {
        !self.content_type.starts_with("image/png")
    }

    /// The portal's own files change with the binary under the same names,
    /// so browsers revalidate them (cheap 304s thanks to the ETag); a
    /// vendored library sits under a versioned path and never changes.
    pub fn cache_control(&self) -> &'static str {
        if self.path.starts_with("vendor/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }
    }
}

macro_rules! assets {
    ($($path:literal => $type:literal),* $(,)?) => {
        &[$(Asset { path: $path, content_type: $type, body: include_bytes!(concat!("web/", $path)) }),*]
    };
}

pub static ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "assets/portal.css" => "text/css; charset=utf-8",
    "assets/main.js" => "text/javascript; charset=utf-8",
    "assets/api.js" => "text/javascript; charset=utf-8",
    "assets/dom.js" => "text/javascript; charset=utf-8",
    "assets/endpoints.js" => "text/javascript; charset=utf-8",
    "assets/endpoint.js" => "text/javascript; charset=utf-8",
    "assets/catalog.js" => "text/javascript; charset=utf-8",
    "assets/messages.js" => "text/javascript; charset=utf-8",
    "assets/charts.js" => "text/javascript; charset=utf-8",
    "assets/console.js" => "text/javascript; charset=utf-8",
    "assets/favicon.svg" => "image/svg+xml",
    "vendor/uplot-1.6.32/uPlot.esm.js" => "text/javascript; charset=utf-8",
    "vendor/uplot-1.6.32/uPlot.min.css" => "text/css; charset=utf-8",
    "vendor/uplot-1.6.32/LICENSE" => "text/plain; charset=utf-8",
];
