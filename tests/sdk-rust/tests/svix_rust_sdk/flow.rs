//! Named steps run in order, one output line each, as the Python and
//! JavaScript scripts print them; after a failure the rest of a flow is
//! skipped (and counted as failed), since its steps share state.

use std::future::Future;
use std::time::{Duration, Instant};

use svix::api::{Svix, SvixOptions};
use svix::error::Error;

/// What a step answers: a failure carries its reason.
pub type Outcome<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How long a delivery or a background task may take.
const WAIT: Duration = Duration::from_secs(30);

/// Fails the step with the message unless the condition holds.
macro_rules! check {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(format!($($what)+).into());
        }
    };
}
pub(crate) use check;

/// A client of `server_url` with `token`. No client-side retries: a 5xx must
/// surface as a failure, not be hidden.
pub fn client(server_url: &str, token: &str) -> Svix {
    let options = SvixOptions {
        server_url: Some(server_url.to_string()),
        retry_schedule: Some(Vec::new()),
        num_retries: Some(0),
        ..SvixOptions::default()
    };
    Svix::new(token.to_string(), Some(options))
}

/// Passes when `call` fails with HTTP `status` (and, but for a 422, a Svix
/// error body with a code).
pub async fn expect_http_error<T: std::fmt::Debug>(
    status: u16,
    call: impl Future<Output = svix::error::Result<T>>,
) -> Outcome {
    match call.await {
        Err(Error::Http(e)) => {
            check!(e.status.as_u16() == status, "expected HTTP {status}, got {}: {:?}", e.status, e.payload);
            check!(e.payload.as_ref().is_some_and(|p| !p.code.is_empty()), "error without code: {:?}", e.payload);
            Ok(())
        }
        Err(Error::Validation(e)) => {
            check!(status == 422, "expected HTTP {status}, got 422: {:?}", e.payload);
            check!(e.payload.is_some(), "a 422 without a validation body");
            Ok(())
        }
        Err(e) => Err(format!("expected HTTP {status}, got {e}").into()),
        Ok(answer) => Err(format!("expected HTTP {status}, but the call succeeded: {answer:?}").into()),
    }
}

/// Polls `probe` until it answers `Some`; fails naming `what` after 30 s.
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> Outcome<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Outcome<Option<T>>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(got) = probe().await? {
            return Ok(got);
        }
        check!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The counts of every flow.
#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
}

pub struct Flow<'r> {
    name: &'static str,
    broken: bool,
    report: &'r mut Report,
}

impl<'r> Flow<'r> {
    pub fn new(name: &'static str, report: &'r mut Report) -> Flow<'r> {
        Flow { name, broken: false, report }
    }

    /// Runs `step` (a future not yet polled) unless an earlier step failed.
    pub async fn step(&mut self, label: &str, step: impl Future<Output = Outcome>) {
        let full = format!("{}: {label}", self.name);
        if self.broken {
            self.report.failed += 1;
            println!("SKIP {full} (an earlier step failed)");
            return;
        }
        match step.await {
            Ok(()) => {
                self.report.passed += 1;
                println!("ok   {full}");
            }
            Err(e) => {
                self.report.failed += 1;
                self.broken = true;
                println!("FAIL {full}\n  {e}");
            }
        }
    }
}
