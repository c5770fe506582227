//! A local HTTP receiver for deliveries: records every request; answers 410
//! on `/gone`, 500 on `/fail`, and 200 with `{"receivedOn": path}` elsewhere
//! (the same as the Python and JavaScript scripts' receivers).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    addr: SocketAddr,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("the receiver's address");
        let app = axum::Router::new().fallback(record).with_state(received.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { received, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests received on `path` so far, in order.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }
}

async fn record(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let path = uri.path().to_string();
    received.lock().unwrap().push(Received { path: path.clone(), headers, body });
    let status = match path.as_str() {
        "/gone" => StatusCode::GONE,
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    };
    (status, [("content-type", "application/json")], serde_json::json!({"receivedOn": path}).to_string())
}
