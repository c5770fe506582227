//! The receiver as Hookline sees it: signed requests over HTTP on a loopback
//! port, answered by the real router, handled by the real worker.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookline_example_receiver::{app, run_worker, Config, Event, Handled};
use hookline_signature::Secret;
use tokio::sync::mpsc;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const SYNC_COMPLETE: &str = r#"{"webhook_event_type":"sync.complete","run_id":"run_2Nq8hVgk4Fs1","connection_id":"conn_salesforce_acme","customer_id":"cus_acme","provider_name":"salesforce","result":"SUCCESS","num_records_synced":1842,"error_message":null,"synced_object":"contacts","started_at":"2026-11-28T09:00:00Z","finished_at":"2026-11-28T09:02:13Z"}"#;

/// A receiver on a loopback port whose worker starts only when the test
/// says so, so that a test can fill the queue.
struct Harness {
    url: String,
    client: reqwest::Client,
    events: Option<mpsc::Receiver<Event>>,
    handled: mpsc::UnboundedReceiver<Handled>,
    handled_tx: mpsc::UnboundedSender<Handled>,
}

impl Harness {
    async fn start(queue_capacity: usize) -> Harness {
        let (queue, events) = mpsc::channel(queue_capacity);
        let (handled_tx, handled) = mpsc::unbounded_channel();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks", listener.local_addr().unwrap());
        let router = app(Config::new(SECRET.parse().unwrap(), queue));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        // No proxy: a proxy set in the environment must not see loopback traffic.
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Harness { url, client, events: Some(events), handled, handled_tx }
    }

    /// A receiver whose worker runs from the start.
    async fn running() -> Harness {
        let mut h = Harness::start(16).await;
        h.start_worker();
        h
    }

    fn start_worker(&mut self) {
        let events = self.events.take().expect("worker already started");
        let tx = self.handled_tx.clone();
        tokio::spawn(run_worker(events, move |h| {
            let _ = tx.send(h);
        }));
    }

    /// POSTs `body` as Hookline does, signed now with `secret`.
    async fn send_signed_with(&self, secret: &Secret, id: &str, body: &str, timestamp: i64) -> (u16, String) {
        post_signed(&self.client, &self.url, secret, id, body, timestamp).await
    }

    async fn send(&self, id: &str, body: &str) -> (u16, String) {
        self.send_signed_with(&SECRET.parse().unwrap(), id, body, now()).await
    }

    /// The next event the worker handled; fails the test after 5 seconds.
    async fn next_handled(&mut self) -> Handled {
        tokio::time::timeout(Duration::from_secs(5), self.handled.recv())
            .await
            .expect("the worker handled nothing within 5 s")
            .expect("worker channel closed")
    }
}

/// POSTs `body` with the headers Hookline sends, signed with `secret`;
/// returns the status and the response text.
async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    secret: &Secret,
    id: &str,
    body: &str,
    timestamp: i64,
) -> (u16, String) {
    let signature = secret.sign(id, timestamp, body.as_bytes()).to_string();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn connection_created(connection_id: &str) -> String {
    format!(
        r#"{{"webhook_event_type":"connection.created","connection_id":"{connection_id}","customer_id":"cus_acme","provider_name":"hubspot","created_at":"2026-11-28T08:30:00Z"}}"#
    )
}

#[tokio::test]
async fn signed_sync_complete_is_acknowledged_and_handled() {
    let mut h = Harness::running().await;
    assert_eq!(h.send("msg_1", SYNC_COMPLETE).await, (204, String::new()));
    let handled = h.next_handled().await;
    assert_eq!(handled.id, "msg_1");
    assert_eq!(handled.event_type, "sync.complete");
    assert_eq!(handled.summary, "sync run_2Nq8hVgk4Fs1 of conn_salesforce_acme: SUCCESS, 1842 contacts synced");
}

#[tokio::test]
async fn failed_sync_reports_its_error_message() {
    let mut h = Harness::running().await;
    let body = SYNC_COMPLETE
        .replace(r#""result":"SUCCESS""#, r#""result":"ERROR""#)
        .replace(r#""num_records_synced":1842"#, r#""num_records_synced":12"#)
        .replace(r#""error_message":null"#, r#""error_message":"token expired""#);
    assert_eq!(h.send("msg_1", &body).await.0, 204);
    let handled = h.next_handled().await;
    assert_eq!(handled.summary, "sync run_2Nq8hVgk4Fs1 of conn_salesforce_acme failed after 12 records: token expired");
}

#[tokio::test]
async fn connection_created_and_unknown_types_are_handled() {
    let mut h = Harness::running().await;
    assert_eq!(h.send("msg_1", &connection_created("conn_hubspot_acme")).await.0, 204);
    let handled = h.next_handled().await;
    assert_eq!(handled.summary, "connection conn_hubspot_acme created for customer cus_acme (hubspot)");

    // A type this receiver does not know is still acknowledged: retrying it
    // would not help.
    let paused = r#"{"webhook_event_type":"sync.paused","connection_id":"conn_1","reason":"USER_REQUESTED"}"#;
    assert_eq!(h.send("msg_2", paused).await.0, 204);
    let handled = h.next_handled().await;
    assert_eq!(
        (handled.event_type.as_str(), handled.summary.as_str()),
        ("sync.paused", "ignored event type \"sync.paused\"")
    );
}

#[tokio::test]
async fn duplicate_webhook_id_is_acknowledged_but_handled_once() {
    let mut h = Harness::running().await;
    assert_eq!(h.send("msg_dup", SYNC_COMPLETE).await.0, 204);
    assert_eq!(h.next_handled().await.id, "msg_dup");

    // Hookline's retry of the same message: same id, fresh timestamp and
    // signature.
    let later = now() + 1;
    let (status, text) = h.send_signed_with(&SECRET.parse().unwrap(), "msg_dup", SYNC_COMPLETE, later).await;
    assert_eq!((status, text.as_str()), (200, "duplicate: already received"));

    // The worker handles in order, so if the duplicate had been queued it
    // would come before this one.
    assert_eq!(h.send("msg_next", &connection_created("conn_1")).await.0, 204);
    assert_eq!(h.next_handled().await.id, "msg_next");
}

#[tokio::test]
async fn bad_signature_is_rejected_and_not_handled() {
    let mut h = Harness::running().await;
    let wrong: Secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".parse().unwrap();
    let (status, text) = h.send_signed_with(&wrong, "msg_1", SYNC_COMPLETE, now()).await;
    assert_eq!((status, text.as_str()), (400, "invalid webhook: no matching signature"));

    // Signed for other bytes: a body changed on the way.
    let signature = SECRET.parse::<Secret>().unwrap().sign("msg_1", now(), b"{}").to_string();
    let response = h
        .client
        .post(&h.url)
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", now().to_string())
        .header("webhook-signature", signature)
        .body(SYNC_COMPLETE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);

    let unsigned = h.client.post(&h.url).body(SYNC_COMPLETE).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 400);
    assert_eq!(unsigned.text().await.unwrap(), "invalid webhook: missing header webhook-id (or svix-id)");

    // Nothing was handled or recorded: the genuine message with that id is
    // accepted, and it is the first thing the worker sees.
    assert_eq!(h.send("msg_1", &connection_created("conn_genuine")).await.0, 204);
    let handled = h.next_handled().await;
    assert!(handled.summary.contains("conn_genuine"), "{handled:?}");
}

#[tokio::test]
async fn stale_or_future_timestamp_is_rejected() {
    let mut h = Harness::running().await;
    let secret: Secret = SECRET.parse().unwrap();
    let (status, text) = h.send_signed_with(&secret, "msg_old", SYNC_COMPLETE, now() - 10 * 60).await;
    assert_eq!((status, text.as_str()), (400, "invalid webhook: timestamp is too old"));
    let (status, text) = h.send_signed_with(&secret, "msg_new", SYNC_COMPLETE, now() + 10 * 60).await;
    assert_eq!((status, text.as_str()), (400, "invalid webhook: timestamp is too far in the future"));

    assert_eq!(h.send("msg_ok", SYNC_COMPLETE).await.0, 204);
    assert_eq!(h.next_handled().await.id, "msg_ok");
}

#[tokio::test]
async fn full_queue_answers_503_and_the_retry_is_accepted() {
    // Room for one event, and no worker draining it yet.
    let mut h = Harness::start(1).await;
    assert_eq!(h.send("msg_a", SYNC_COMPLETE).await.0, 204);
    let (status, text) = h.send("msg_b", &connection_created("conn_b")).await;
    assert_eq!((status, text.as_str()), (503, "busy, retry later"));

    h.start_worker();
    assert_eq!(h.next_handled().await.id, "msg_a");

    // Hookline's retry: 204 (not 200), because the refused id was not
    // recorded as accepted, and the worker handles it.
    assert_eq!(h.send("msg_b", &connection_created("conn_b")).await.0, 204);
    let handled = h.next_handled().await;
    assert_eq!((handled.id.as_str(), handled.event_type.as_str()), ("msg_b", "connection.created"));
}

#[tokio::test]
async fn verified_body_that_is_not_json_is_rejected() {
    let h = Harness::running().await;
    let (status, text) = h.send("msg_1", "not json").await;
    assert_eq!((status, text.as_str()), (400, "body is not JSON"));
}

#[tokio::test]
async fn svix_header_names_are_accepted() {
    let mut h = Harness::running().await;
    let ts = now();
    let signature = SECRET.parse::<Secret>().unwrap().sign("msg_svix", ts, SYNC_COMPLETE.as_bytes()).to_string();
    let response = h
        .client
        .post(&h.url)
        .header("svix-id", "msg_svix")
        .header("svix-timestamp", ts.to_string())
        .header("svix-signature", signature)
        .body(SYNC_COMPLETE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(h.next_handled().await.id, "msg_svix");
}

#[tokio::test]
async fn concurrent_arrivals_of_one_id_are_queued_once() {
    let mut h = Harness::running().await;
    let timestamp = now();
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url) = (h.client.clone(), h.url.clone());
        sends.spawn(async move {
            post_signed(&client, &url, &SECRET.parse().unwrap(), "msg_race", SYNC_COMPLETE, timestamp).await.0
        });
    }
    let mut statuses = sends.join_all().await;
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 204]);
    assert_eq!(h.next_handled().await.id, "msg_race");
    assert_eq!(h.send("msg_after", SYNC_COMPLETE).await.0, 204);
    assert_eq!(h.next_handled().await.id, "msg_after");
}
