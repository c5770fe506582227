//! The few Hookline API calls a scenario sets itself up with (an
//! application, endpoints, a rate limit), and the message requests the load
//! generator sends: the Svix v1 routes, with an admin token.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde_json::{json, Value};

use crate::error::{Context, Error, Result};
use crate::load::{exchange, HttpClient, MakeRequest};
use crate::payload::{message_requests, sized_message_requests};

pub struct HooklineApi {
    client: HttpClient,
    /// Every node's `http://host:port`; setup goes to the first.
    nodes: Vec<String>,
    token: String,
}

impl HooklineApi {
    pub fn new(client: &HttpClient, nodes: Vec<String>, token: &str) -> HooklineApi {
        HooklineApi { client: client.clone(), nodes, token: token.to_string() }
    }

    /// Creates an application; returns its id.
    pub async fn create_app(&self, name: &str) -> Result<String> {
        let app = self.call(Method::POST, "/app", json!({ "name": name })).await?;
        id_of(&app)
    }

    /// Creates an endpoint receiving every event type; `rate_limit` None
    /// leaves it at the server's default. Returns its id.
    pub async fn create_endpoint(&self, app: &str, url: &str, rate_limit: Option<u32>) -> Result<String> {
        let endpoint = self
            .call(Method::POST, &format!("/app/{app}/endpoint"), json!({ "url": url, "rateLimit": rate_limit }))
            .await?;
        id_of(&endpoint)
    }

    /// Sets an endpoint's rate limit (None: back to the server's default).
    pub async fn set_rate_limit(&self, app: &str, endpoint: &str, rate_limit: Option<u32>) -> Result<()> {
        self.call(Method::PATCH, &format!("/app/{app}/endpoint/{endpoint}"), json!({ "rateLimit": rate_limit }))
            .await?;
        Ok(())
    }

    /// The requests that create messages of `app` (see [`message_requests`]).
    pub fn messages(&self, app: &str, tag: &str) -> MakeRequest {
        message_requests(&self.nodes, &self.token, app, tag)
    }

    /// [`messages`](Self::messages) with payloads of `bytes`.
    pub fn sized_messages(&self, app: &str, tag: &str, bytes: usize) -> MakeRequest {
        sized_message_requests(&self.nodes, &self.token, app, tag, bytes)
    }

    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/api/v1{path}", self.nodes[0]);
        let what = format!("{method} {url}");
        let request = Request::builder()
            .method(method)
            .uri(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::new(Bytes::from(body.to_string())))
            .context(&what)?;
        let (status, bytes) = exchange(&self.client, request).await.context(&what)?;
        if !status.is_success() {
            return Err(Error::new(format!("{what} answered {status}: {}", String::from_utf8_lossy(&bytes))));
        }
        serde_json::from_slice(&bytes).context(format!("{what}: the answer is not JSON"))
    }
}

fn id_of(created: &Value) -> Result<String> {
    created["id"].as_str().map(str::to_string).ok_or_else(|| Error::new(format!("no `id` in {created}")))
}
