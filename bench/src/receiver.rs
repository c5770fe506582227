//! The loopback receivers the deliveries go to: one hyper server on its own
//! runtime (so the load generator cannot delay it), one path per endpoint
//! (`/ep/{index}`), each answering at once or never. Every delivery is
//! recorded with its `webhook-id` (the message id) and the `Instant` it
//! arrived, on the same clock as the load generator's answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::{Context, Error, Result};

/// How one endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `204` as soon as the body is read.
    Answer,
    /// Reads the request and never answers (the sender's timeout ends it).
    Hang,
}

/// One delivery as it arrived.
pub struct Arrival {
    pub endpoint: usize,
    pub id: String,
    pub at: Instant,
}

struct Shared {
    behaviours: Vec<Behaviour>,
    /// Whether every arrival is kept (or only counted).
    keep: bool,
    answered: Vec<AtomicUsize>,
    record: Mutex<Record>,
}

#[derive(Default)]
struct Record {
    arrivals: Vec<Arrival>,
    last: Option<Instant>,
}

pub struct Receivers {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Worker threads of the receivers' runtime.
const THREADS: usize = 2;

impl Receivers {
    /// Starts one endpoint per behaviour on a free loopback port, keeping
    /// every arrival.
    pub fn start(behaviours: Vec<Behaviour>) -> Result<Receivers> {
        Receivers::start_keeping(behaviours, true)
    }

    /// Like [`start`](Receivers::start), but only counting arrivals (for a
    /// million deliveries whose latency is not asked for).
    pub fn counting(behaviours: Vec<Behaviour>) -> Result<Receivers> {
        Receivers::start_keeping(behaviours, false)
    }

    fn start_keeping(behaviours: Vec<Behaviour>, keep: bool) -> Result<Receivers> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(THREADS)
            .thread_name("receiver")
            .enable_all()
            .build()
            .context("starting the receivers' runtime")?;
        // Bound here, served there: this may be called on another runtime.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding a receiver port")?;
        listener.set_nonblocking(true).context("a non-blocking receiver socket")?;
        let addr = listener.local_addr().context("the receiver's address")?;
        let shared = Arc::new(Shared {
            answered: behaviours.iter().map(|_| AtomicUsize::new(0)).collect(),
            behaviours,
            keep,
            record: Mutex::new(Record::default()),
        });
        runtime.spawn(accept(listener, shared.clone()));
        Ok(Receivers { addr, shared, runtime: Some(runtime) })
    }

    /// How many endpoints there are.
    pub fn endpoint_count(&self) -> usize {
        self.shared.behaviours.len()
    }

    /// The URL of endpoint `index`.
    pub fn url(&self, index: usize) -> String {
        format!("http://{}/ep/{index}", self.addr)
    }

    /// Deliveries answered so far by the endpoints `endpoints` selects.
    pub fn answered(&self, endpoints: impl Fn(usize) -> bool) -> usize {
        self.shared
            .answered
            .iter()
            .enumerate()
            .filter(|(i, _)| endpoints(*i))
            .map(|(_, n)| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits until the endpoints `endpoints` selects have answered `count`
    /// deliveries; fails if none arrives for `stall`.
    pub async fn wait_for(&self, endpoints: impl Fn(usize) -> bool, count: usize, stall: Duration) -> Result<()> {
        let (mut seen, mut progressed) = (0, Instant::now());
        loop {
            let now = self.answered(&endpoints);
            if now >= count {
                return Ok(());
            }
            if now > seen {
                (seen, progressed) = (now, Instant::now());
            } else if progressed.elapsed() > stall {
                return Err(Error::new(format!(
                    "{now} of {count} deliveries arrived, then none for {} s",
                    stall.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every delivery kept so far (emptying the record).
    pub fn take_arrivals(&self) -> Vec<Arrival> {
        std::mem::take(&mut self.shared.record().arrivals)
    }

    /// When the last delivery arrived.
    pub fn last_arrival(&self) -> Option<Instant> {
        self.shared.record().last
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Hung requests never end by themselves: don't wait for them.
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn accept(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => return eprintln!("hookline-bench: the receivers cannot listen: {e}"),
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: wait, don't spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| receive(request, shared.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn receive(request: Request<Incoming>, shared: Arc<Shared>) -> Result<Response<Full<Bytes>>, Infallible> {
    let endpoint = request.uri().path().strip_prefix("/ep/").and_then(|i| i.parse::<usize>().ok());
    let Some((endpoint, behaviour)) = endpoint.and_then(|i| Some((i, *shared.behaviours.get(i)?))) else {
        return Ok(status(StatusCode::NOT_FOUND));
    };
    let id = request.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    if request.into_body().collect().await.is_err() {
        return Ok(status(StatusCode::BAD_REQUEST));
    }
    if behaviour == Behaviour::Hang {
        std::future::pending::<()>().await;
    }
    let at = Instant::now();
    {
        let mut record = shared.record();
        record.last = Some(at);
        if shared.keep {
            record.arrivals.push(Arrival { endpoint, id, at });
        }
    }
    shared.answered[endpoint].fetch_add(1, Ordering::Relaxed);
    Ok(status(StatusCode::NO_CONTENT))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}
