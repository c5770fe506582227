//! `Idempotency-Key`: the first 2xx answer to a POST is replayed for the same
//! key, token and path, for 24 hours.
//!
//! Handlers that write commit through `AppState::commit`, which takes the key
//! inside the same transaction as the write and records the answer before it
//! commits: a concurrent request with the same key (on any node) waits for
//! that transaction, then replays its answer, and a crash can never separate
//! "created" from "answered". Message creation does the same in batches
//! (`message_writer`). A route that records nothing itself gets its 2xx
//! recorded after it returns, under the same claim: only reads may rely on
//! that, because their effect cannot run twice or before the key's check.
//!
//! A created message's record names the message instead of holding its
//! answer ([`message_reference`]): a replay renders the message as it is
//! now. A payload expunged or past its retention is therefore not kept for
//! another day in a copy, nor answered from it, and the record is about a hundred
//! bytes instead of the payload's size on the store's write path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::{ApiError, ApiResult};
use super::messages::MessageOut;
use super::AppState;
use crate::auth::Caller;
use crate::keys::Owner;
use crate::store::model::{IdempotentResponse, Message};
use crate::store::Tx;

const HEADER: &str = "idempotency-key";

/// How an opened record that names a message begins. An answer recorded
/// as such is JSON, which never starts with a NUL byte.
const MESSAGE_REFERENCE: &[u8] = b"\0message\0";

/// The record of a created message's answer: the message, and whether the
/// answer showed its payload (`with_content`).
pub fn message_reference(app_id: &str, msg_id: &str, with_content: bool) -> Vec<u8> {
    [MESSAGE_REFERENCE, &[u8::from(with_content)], app_id.as_bytes(), b"\0", msg_id.as_bytes()].concat()
}

/// A message named by an opened record.
struct MessageReference {
    app_id: String,
    msg_id: String,
    with_content: bool,
}

impl MessageReference {
    fn parse(opened: &[u8]) -> Option<MessageReference> {
        let (&with_content, names) = opened.strip_prefix(MESSAGE_REFERENCE)?.split_first()?;
        let (app_id, msg_id) = std::str::from_utf8(names).ok()?.split_once('\0')?;
        Some(MessageReference { app_id: app_id.into(), msg_id: msg_id.into(), with_content: with_content == 1 })
    }
}

/// The idempotency context of one request (empty without a key).
#[derive(Clone, Default)]
pub struct Idem(Option<Arc<IdemKey>>);

pub struct IdemKey {
    key: Vec<u8>,
    body_hash: Vec<u8>,
    /// Set once the handler recorded its answer in its own transaction.
    recorded: AtomicBool,
}

impl Idem {
    /// The stored key (a digest of token, path and header) and the digest
    /// of the request body, when the request carries a key.
    pub fn key(&self) -> Option<(&[u8], &[u8])> {
        self.0.as_ref().map(|k| (k.key.as_slice(), k.body_hash.as_slice()))
    }

    /// Says the handler recorded (or replayed) the answer itself.
    pub fn mark_recorded(&self) {
        if let Some(k) = &self.0 {
            k.recorded.store(true, Ordering::Release);
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Idem {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(parts.extensions.get::<Idem>().cloned().unwrap_or_default())
    }
}

pub async fn apply(state: AppState, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw_key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let raw_key = match raw_key.to_str() {
        // Visible ASCII, as openapi.json declares it.
        Ok(k) if !k.is_empty() && k.len() <= 256 && k.bytes().all(|b| (0x21..=0x7e).contains(&b)) => k.to_string(),
        _ => {
            return ApiError::invalid(&["header", HEADER], "must be 1 to 256 visible ASCII characters").into_response();
        }
    };
    let token_digest = req.extensions().get::<Caller>().map(|c| c.token_digest).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(token_digest);
    hasher.update([0]);
    hasher.update(req.uri().path().trim_end_matches('/').as_bytes());
    hasher.update([0]);
    hasher.update(raw_key.as_bytes());
    let key = hasher.finalize().to_vec();

    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let body_hash = Sha256::digest(&bytes).to_vec();

    // No lookup here: the handler's own transaction looks the key up (and
    // replays) atomically with its write, so a fresh key costs no extra read.
    let idem = Arc::new(IdemKey { key, body_hash, recorded: AtomicBool::new(false) });
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(Idem(Some(idem.clone())));
    let response = next.run(req).await;
    if idem.recorded.load(Ordering::Acquire) || !response.status().is_success() {
        return response;
    }
    record_after(&state, &idem, response).await
}

/// Stores the answer of a route that wrote nothing itself.
async fn record_after(state: &AppState, idem: &IdemKey, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal("could not buffer a response").into_response();
    };
    let record = IdempotentResponse {
        body_hash: idem.body_hash.clone(),
        status: parts.status.as_u16(),
        body: state.cipher.seal(&bytes, Owner::IdempotencyRecord(&idem.key)),
    };
    let key = idem.key.clone();
    let stored = state
        .store
        .write(move |tx| {
            if let Some(previous) = take_key(tx, &key)? {
                return Ok::<_, ApiError>(Some(previous));
            }
            tx.fill_idempotent_responses(&[(key.clone(), record.clone())])?;
            Ok(None)
        })
        .await;
    match stored {
        // A concurrent twin got there first: answer what it answered.
        Ok(Some(previous)) => replay(state, &idem.key, previous, &idem.body_hash).await.into_response(),
        Ok(None) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => e.into_response(),
    }
}

/// Takes `key` for the current transaction, to be filled with its answer
/// before it commits (undoing the transaction gives it back); or returns
/// the answer already recorded for it. Taking a key another transaction
/// holds waits for that transaction to end, so a concurrent request never
/// runs its write against the first one's half-done effects.
fn take_key(tx: &mut dyn Tx, key: &[u8]) -> ApiResult<Option<IdempotentResponse>> {
    let claim = [(key.to_vec(), IdempotentResponse::pending())];
    if !tx.claim_idempotency_keys(&claim, crate::store::model::now())?.is_empty() {
        return Ok(None);
    }
    match tx.idempotent_response(key)? {
        Some(previous) => Ok(Some(previous)),
        // Held by a transaction that had not ended when this one looked
        // (only possible if the claim did not wait, which no backend does).
        None => Err(ApiError::conflict("a request with this idempotency key is still in progress")),
    }
}

/// The recorded answer, opened: stored answers are sealed, because some
/// carry a signing secret or a token. A record naming a message answers
/// the message as it is now (deleted since: 404, and the key stays taken,
/// since the message was created once).
pub(super) async fn replay(
    state: &AppState,
    key: &[u8],
    previous: IdempotentResponse,
    body_hash: &[u8],
) -> ApiResult<Response> {
    if previous.body_hash != body_hash {
        return Err(ApiError::invalid(
            &["header", HEADER],
            "this idempotency key was already used with a different request body",
        ));
    }
    let opened = state.cipher.open(&previous.body, Owner::IdempotencyRecord(key)).map_err(ApiError::internal)?;
    let body = match MessageReference::parse(&opened) {
        None => opened.to_vec(),
        Some(named) => {
            let (app_id, msg_id) = (named.app_id, named.msg_id);
            let msg = state
                .store
                .read(move |tx| Ok::<_, ApiError>(tx.message(&app_id, &msg_id)?))
                .await?
                .ok_or_else(|| {
                    let gone = "the message this idempotency key created has been deleted since (with its application, or by retention)";
                    ApiError::new(StatusCode::NOT_FOUND, "not_found", gone)
                })?;
            serde_json::to_vec(&MessageOut::new(msg, named.with_content)).map_err(ApiError::internal)?
        }
    };
    let status = StatusCode::from_u16(previous.status).unwrap_or(StatusCode::OK);
    let mut response = answer(status, body);
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// A JSON answer, or an empty one (a 204 has no body, so no content type).
fn answer(status: StatusCode, body: Vec<u8>) -> Response {
    if body.is_empty() {
        return status.into_response();
    }
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

enum Outcome {
    Fresh(StatusCode, Vec<u8>),
    Replay(IdempotentResponse),
}

impl AppState {
    /// Runs a write whose JSON result answers the request with `status`,
    /// recording the answer for the request's idempotency key (if any) in
    /// the same transaction.
    pub async fn commit<T, F>(&self, idem: Idem, status: StatusCode, mut f: F) -> ApiResult<Response>
    where
        T: Serialize + Send + 'static,
        F: FnMut(&mut dyn Tx) -> ApiResult<T> + Send + 'static,
    {
        self.commit_with_status(idem, move |tx| f(tx).map(|v| (status, v))).await
    }

    /// `commit` for writes whose status depends on what the transaction found.
    /// `f` may run more than once (see `Store::write`).
    pub async fn commit_with_status<T, F>(&self, idem: Idem, mut f: F) -> ApiResult<Response>
    where
        T: Serialize + Send + 'static,
        F: FnMut(&mut dyn Tx) -> ApiResult<(StatusCode, T)> + Send + 'static,
    {
        self.commit_recording(idem, move |tx| {
            let (status, value) = f(tx)?;
            let body = serde_json::to_vec(&value).map_err(ApiError::internal)?;
            Ok((status, body, None))
        })
        .await
    }

    /// `commit` for a write that answers 204 No Content.
    pub async fn commit_no_content<F>(&self, idem: Idem, mut f: F) -> ApiResult<Response>
    where
        F: FnMut(&mut dyn Tx) -> ApiResult<()> + Send + 'static,
    {
        self.commit_recording(idem, move |tx| f(tx).map(|()| (StatusCode::NO_CONTENT, Vec::new(), None))).await
    }

    /// `commit` for a write that creates a message and answers it (with
    /// its payload): its record names the message, as message creation's do.
    pub async fn commit_message<F>(&self, idem: Idem, mut f: F) -> ApiResult<Response>
    where
        F: FnMut(&mut dyn Tx) -> ApiResult<Message> + Send + 'static,
    {
        self.commit_recording(idem, move |tx| {
            let msg = f(tx)?;
            let named = message_reference(&msg.app_id, &msg.id, true);
            let body = serde_json::to_vec(&MessageOut::new(msg, true)).map_err(ApiError::internal)?;
            Ok((StatusCode::ACCEPTED, body, Some(named)))
        })
        .await
    }

    /// Runs a write answering with a status and a body, and records, for
    /// the request's idempotency key, the status and the body, or what `f`
    /// gives to record instead (a message's reference).
    async fn commit_recording<F>(&self, idem: Idem, mut f: F) -> ApiResult<Response>
    where
        F: FnMut(&mut dyn Tx) -> ApiResult<(StatusCode, Vec<u8>, Option<Vec<u8>>)> + Send + 'static,
    {
        let key = idem.0.clone();
        let cipher = self.cipher.clone();
        let outcome = self
            .store
            .write(move |tx| {
                if let Some(k) = &key {
                    if let Some(previous) = take_key(tx, &k.key)? {
                        return Ok::<_, ApiError>(Outcome::Replay(previous));
                    }
                }
                let (status, body, recorded) = f(tx)?;
                if let Some(k) = &key {
                    let record = IdempotentResponse {
                        body_hash: k.body_hash.clone(),
                        status: status.as_u16(),
                        body: cipher.seal(recorded.as_deref().unwrap_or(&body), Owner::IdempotencyRecord(&k.key)),
                    };
                    tx.fill_idempotent_responses(&[(k.key.clone(), record)])?;
                }
                Ok(Outcome::Fresh(status, body))
            })
            .await?;
        if let Some(k) = &idem.0 {
            k.recorded.store(true, Ordering::Release);
        }
        match outcome {
            Outcome::Fresh(status, body) => Ok(answer(status, body)),
            Outcome::Replay(previous) => {
                let k = idem.0.as_ref().expect("a replay needs an idempotency key");
                replay(self, &k.key, previous, &k.body_hash).await
            }
        }
    }
}
