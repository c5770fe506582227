//! The load generator: a hyper client on keep-alive connections, driven
//! closed loop (C workers, each sending its next request when the last is
//! answered) or open loop (requests started at a fixed rate whatever the
//! answers do). Every answer is timed; a `2xx` whose JSON body has an `id`
//! keeps it, so accept→receive latency can be matched to deliveries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::error::{causes, Error, Result};
use crate::stats;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A request not answered within this long fails (a hung server must not
/// hang the benchmark).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds request `i` of a load.
pub type MakeRequest = Arc<dyn Fn(usize) -> Request<Full<Bytes>> + Send + Sync>;

/// A client that keeps connections open between requests.
pub fn client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

/// One answered request.
pub struct Answer {
    pub latency: Duration,
    /// When the whole answer had arrived.
    pub at: Instant,
    /// The `id` of the JSON answer (a created message's id), if any.
    pub id: Option<String>,
}

/// The outcome of a load.
pub struct Load {
    pub started: Instant,
    pub finished: Instant,
    pub answers: Vec<Answer>,
    pub failures: usize,
    pub first_failure: Option<String>,
    /// Open loop: requests not started because too many were in flight.
    pub dropped: usize,
}

impl Load {
    /// Fails with the first failure's text if any request failed.
    pub fn ensure_all_answered(&self) -> Result<()> {
        match &self.first_failure {
            None => Ok(()),
            Some(first) => Err(Error::new(format!(
                "{} of {} requests failed, the first with: {first}",
                self.failures,
                self.failures + self.answers.len()
            ))),
        }
    }

    /// Answers per second from the first request to the last answer.
    pub fn rate(&self) -> f64 {
        stats::rate(self.answers.len(), self.finished - self.started)
    }

    pub fn latencies(&self) -> Vec<Duration> {
        self.answers.iter().map(|a| a.latency).collect()
    }
}

/// What one worker (closed loop) or one send (open loop) came to.
#[derive(Default)]
struct Tally {
    answers: Vec<Answer>,
    failures: usize,
    first_failure: Option<String>,
}

impl Tally {
    fn add(&mut self, outcome: Result<Answer>) {
        match outcome {
            Ok(answer) => self.answers.push(answer),
            Err(e) => {
                self.failures += 1;
                self.first_failure.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.answers.extend(other.answers);
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn into_load(self, started: Instant, dropped: usize) -> Load {
        let finished = self.answers.iter().map(|a| a.at).max().unwrap_or(started);
        Load {
            started,
            finished,
            answers: self.answers,
            failures: self.failures,
            first_failure: self.first_failure,
            dropped,
        }
    }
}

/// Sends requests `0..requests` from `concurrency` workers, each waiting
/// for its answer before sending the next.
pub async fn closed_loop(client: &HttpClient, requests: usize, concurrency: usize, make: MakeRequest) -> Load {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (client, next, make) = (client.clone(), next.clone(), make.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return tally;
                    }
                    tally.add(send(&client, make(i)).await);
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        match worker.await {
            Ok(worker) => tally.merge(worker),
            Err(e) => tally.add(Err(Error::new(format!("a load worker failed: {e}")))),
        }
    }
    tally.into_load(started, 0)
}

/// Starts `rate` requests a second for `duration`, each at its scheduled
/// time whether or not earlier ones were answered (open loop). A request
/// due while `max_in_flight` are outstanding is dropped and counted.
pub async fn open_loop(
    client: &HttpClient,
    rate: u32,
    duration: Duration,
    max_in_flight: usize,
    make: MakeRequest,
) -> Load {
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as usize;
    let in_flight = Arc::new(Semaphore::new(max_in_flight));
    let started = Instant::now();
    let (mut sends, mut dropped, mut issued) = (Vec::with_capacity(total), 0, 0);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while issued < total {
        tick.tick().await;
        // Every request whose time has come (a tick is 1 ms; at 5 000/s
        // that is 5 requests a tick, started together).
        let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as usize).min(total);
        for i in issued..due {
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                dropped += 1;
                continue;
            };
            let (client, request) = (client.clone(), make(i));
            sends.push(tokio::spawn(async move {
                let answer = send(&client, request).await;
                drop(permit);
                answer
            }));
        }
        issued = due;
    }
    let mut tally = Tally::default();
    for sent in sends {
        tally.add(sent.await.unwrap_or_else(|e| Err(Error::new(format!("a send failed: {e}")))));
    }
    tally.into_load(started, dropped)
}

/// Sends `request` and reads the whole answer, within [`REQUEST_TIMEOUT`].
pub async fn exchange(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
    let exchange = async {
        let response = client.request(request).await.map_err(|e| Error::new(causes(&e)))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| Error::new(causes(&e)))?.to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(Error::new(format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))))
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

/// Sends one request and reads the whole answer; a non-2xx is a failure.
async fn send(client: &HttpClient, request: Request<Full<Bytes>>) -> Result<Answer> {
    let uri = request.uri().clone();
    let sent = Instant::now();
    let (status, body) = exchange(client, request).await.map_err(|e| Error::new(format!("{uri}: {e}")))?;
    let at = Instant::now();
    if !status.is_success() {
        return Err(Error::new(format!("{uri} answered {status}: {}", String::from_utf8_lossy(&body))));
    }
    let id = serde_json::from_slice::<Created>(&body).ok().map(|created| created.id);
    Ok(Answer { latency: at - sent, at, id })
}
