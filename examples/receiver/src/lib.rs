//! An example webhook receiver for Hookline, written to be copied. It works
//! with any Standard Webhooks or Svix sender too.
//!
//! It shows the four things every receiver has to get right:
//!
//! 1. **Verify first, over the raw body bytes.** The signature covers
//!    `{webhook-id}.{webhook-timestamp}.{body}` with the body exactly as sent;
//!    JSON that was parsed and serialized again would not match. A request
//!    that fails verification is answered 400 and goes no further.
//! 2. **Deduplicate by `webhook-id`.** Delivery is at least once, and every
//!    attempt of one message carries the same id.
//! 3. **Answer fast.** Hookline gives an attempt 15 seconds, then counts it
//!    as failed and retries it. The handler only queues the event; a
//!    background worker ([`run_worker`]) does the actual work.
//! 4. **Push back when overloaded.** When the queue is full the handler
//!    answers 503 and Hookline retries later, instead of the receiver
//!    buffering without bound.
//!
//! The binary (`src/main.rs`) reads `WEBHOOK_SECRET` and `PORT` and wires
//! [`app`] to [`run_worker`]. Everything else is in this library, so the
//! tests can run it in-process.
//!
//! # What it leaves out on purpose
//!
//! The accepted ids and the queue live in memory. A restart forgets which
//! ids were accepted, and an event that was acknowledged but not yet
//! handled when the process dies is lost: Hookline got its 2xx and will not
//! send it again. A production receiver instead inserts the event into its
//! database inside the handler, under a unique constraint on `webhook-id`,
//! and answers 2xx only after the commit. The constraint does the
//! deduplication, and the table is the queue the worker reads from.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use hookline_signature::{HeaderSource, Secret, Verifier};
use serde_json::Value;
use tokio::sync::mpsc;

/// How many accepted ids [`Config::new`] remembers. Size it above the
/// number of webhooks you receive in the window in which duplicates matter
/// to you; a duplicate of an id that was already forgotten is processed
/// again.
pub const DEFAULT_REMEMBERED_IDS: usize = 10_000;

/// How far `webhook-timestamp` may be from this machine's clock: 5 minutes,
/// as in the official Standard Webhooks libraries. It bounds how long a
/// captured request can be replayed. It does not limit Hookline's retries:
/// each attempt is signed afresh, with a new timestamp.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A verified event, as the handler passes it to the worker.
#[derive(Debug, Clone)]
pub struct Event {
    /// The `webhook-id` header: Hookline's message id, the same on every
    /// attempt of the message, hence the deduplication key.
    pub id: String,
    /// The payload's `webhook_event_type` field (empty if it has none).
    pub event_type: String,
    /// The body, parsed only after the signature matched.
    pub payload: Value,
}

/// What the receiver needs: how to verify, where to queue, how much to
/// remember.
#[derive(Debug)]
pub struct Config {
    /// Checks the signature and the timestamp of every request.
    pub verifier: Verifier,
    /// The sending half of the queue that [`run_worker`] drains. Its
    /// capacity bounds how many acknowledged events can wait in memory; when
    /// it is full, the handler answers 503.
    pub queue: mpsc::Sender<Event>,
    /// How many accepted ids to remember for deduplication.
    pub remembered_ids: usize,
}

impl Config {
    /// A verifier for `secret` with a 5-minute tolerance, and room for
    /// [`DEFAULT_REMEMBERED_IDS`] ids.
    pub fn new(secret: Secret, queue: mpsc::Sender<Event>) -> Config {
        Config { verifier: Verifier::new(secret).tolerance(TOLERANCE), queue, remembered_ids: DEFAULT_REMEMBERED_IDS }
    }
}

/// The receiver's routes: `POST /webhooks`.
///
/// Answers 204 when the event was queued, 200 for an id already accepted
/// (so Hookline stops retrying it), 400 when the request does not verify,
/// and 503 when the queue is full (so Hookline retries it later).
pub fn app(config: Config) -> Router {
    let state = Arc::new(Receiver {
        verifier: config.verifier,
        inbox: Inbox { queue: config.queue, accepted: Mutex::new(RecentIds::new(config.remembered_ids)) },
    });
    Router::new().route("/webhooks", post(receive)).with_state(state)
}

struct Receiver {
    verifier: Verifier,
    inbox: Inbox,
}

/// `POST /webhooks`. Takes the body as [`Bytes`], not as parsed JSON: the
/// signature is over the bytes as sent.
async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    let verified = match receiver.verifier.verify(&HttpHeaders(&headers), &body) {
        Ok(verified) => verified,
        // The reason ends up in Hookline's attempt log, where it tells the
        // endpoint's owner whether the secret is wrong or the clock is off.
        // It tells an attacker nothing the scheme does not already say.
        Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid webhook: {e}")).into_response(),
    };
    // Hookline only sends JSON, so a verified body that is not JSON means a
    // sender that is not speaking this contract; do not guess.
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let event_type = payload.get("webhook_event_type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let event = Event { id: verified.msg_id().to_owned(), event_type, payload };
    match receiver.inbox.admit(event) {
        Admission::Queued => StatusCode::NO_CONTENT.into_response(),
        // A 2xx, not an error: the event was received before, and an error
        // would only make Hookline send it again.
        Admission::Duplicate => (StatusCode::OK, "duplicate: already received").into_response(),
        Admission::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy, retry later").into_response(),
    }
}

/// Lets the verifier read axum's headers. [`HeaderMap::get`] already
/// matches names case-insensitively, as [`HeaderSource`] requires.
struct HttpHeaders<'a>(&'a HeaderMap);

impl HeaderSource for HttpHeaders<'_> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.get(name).and_then(|v| v.to_str().ok()).map(Cow::Borrowed)
    }
}

/// The queue to the worker and the ids already accepted.
///
/// [`hookline_signature::ReplayGuard`] is not used here. It forgets an id as
/// soon as the request's timestamp leaves the 5-minute window, but Hookline
/// may retry a message hours later (with a fresh timestamp, so it verifies),
/// and it records the id during verification, before we know whether the
/// queue has room. The set below also stops replays of a captured request,
/// as long as it holds more ids than arrive in 5 minutes.
struct Inbox {
    queue: mpsc::Sender<Event>,
    accepted: Mutex<RecentIds>,
}

enum Admission {
    Queued,
    Duplicate,
    Busy,
}

impl Inbox {
    /// Queues `event` unless its id was accepted before or the queue is full.
    ///
    /// The check, the enqueue and the recording of the id happen under one
    /// lock, so of two concurrent arrivals of one id exactly one is queued.
    /// `try_send` never waits, so holding a blocking mutex across it is fine.
    fn admit(&self, event: Event) -> Admission {
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        if accepted.contains(&event.id) {
            return Admission::Duplicate;
        }
        let id = event.id.clone();
        match self.queue.try_send(event) {
            Ok(()) => {
                accepted.insert(id);
                Admission::Queued
            }
            // Full, or the worker has stopped. The id is not recorded, so
            // Hookline's retry of this message is queued like a first arrival.
            Err(_) => Admission::Busy,
        }
    }
}

/// The last `capacity` ids inserted; the oldest is forgotten first.
///
/// A production receiver uses a unique constraint on `webhook-id` in its
/// database instead: it survives restarts, is shared by every instance
/// behind a load balancer, and never forgets.
struct RecentIds {
    capacity: usize,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentIds {
    fn new(capacity: usize) -> RecentIds {
        RecentIds { capacity, ids: HashSet::new(), order: VecDeque::new() }
    }

    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: String) {
        if self.capacity == 0 || !self.ids.insert(id.clone()) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.ids.remove(&oldest);
            }
        }
    }
}

/// What the worker did with one event; [`run_worker`] reports it for logs
/// (the binary prints it) and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The event's `webhook-id`.
    pub id: String,
    /// The event's type.
    pub event_type: String,
    /// One line saying what was done.
    pub summary: String,
}

/// Handles queued events one at a time until every sender of the queue is
/// dropped (the server has shut down), then returns. Reports each event to
/// `report`.
///
/// The work happens after Hookline got its 2xx, so a failure here is not
/// retried by Hookline. Real business logic that can fail needs its own
/// retry, or a table of failed events to look at.
pub async fn run_worker(mut queue: mpsc::Receiver<Event>, mut report: impl FnMut(Handled)) {
    while let Some(event) = queue.recv().await {
        let summary = handle(&event);
        report(Handled { id: event.id, event_type: event.event_type, summary });
    }
}

/// The business logic: one arm per event type the endpoint subscribes to.
///
/// Payloads are read field by field, leniently: the catalog may gain
/// optional fields, and an event type this code does not know yet (an
/// endpoint without `filterTypes` receives every type) is acknowledged and
/// ignored rather than failed, since a retry would not make it known.
pub fn handle(event: &Event) -> String {
    let text = |field: &str| event.payload.get(field).and_then(Value::as_str).unwrap_or("-");
    match event.event_type.as_str() {
        "sync.complete" => {
            let records = event.payload.get("num_records_synced").and_then(Value::as_u64).unwrap_or(0);
            let (run, connection) = (text("run_id"), text("connection_id"));
            match text("result") {
                "ERROR" => {
                    format!("sync {run} of {connection} failed after {records} records: {}", text("error_message"))
                }
                result => format!("sync {run} of {connection}: {result}, {records} {} synced", text("synced_object")),
            }
        }
        "connection.created" => format!(
            "connection {} created for customer {} ({})",
            text("connection_id"),
            text("customer_id"),
            text("provider_name")
        ),
        other => format!("ignored event type {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_the_oldest_first() {
        let mut ids = RecentIds::new(2);
        ids.insert("a".into());
        ids.insert("b".into());
        ids.insert("a".into()); // already held: does not count twice
        assert!(ids.contains("a") && ids.contains("b"));
        ids.insert("c".into());
        assert!(!ids.contains("a"));
        assert!(ids.contains("b") && ids.contains("c"));
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let mut ids = RecentIds::new(0);
        ids.insert("a".into());
        assert!(!ids.contains("a"));
    }

    #[test]
    fn unknown_event_types_are_ignored() {
        let event = Event { id: "msg_1".into(), event_type: "sync.paused".into(), payload: Value::Null };
        assert_eq!(handle(&event), "ignored event type \"sync.paused\"");
    }
}
