//! What happens after an attempt: success, a retry at a jittered time, or
//! giving up.

use std::time::Duration;

use chrono::Utc;
use rand::Rng;

use crate::store::queue::NextStep;

/// A `Retry-After` longer than this is capped: an endpoint cannot park its
/// deliveries for days.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct RetrySchedule {
    /// Delay after attempt 1, 2, …; its length + 1 is the number of attempts.
    delays: Vec<Duration>,
}

/// What an attempt got back, as far as scheduling cares.
#[derive(Debug, Clone, Copy)]
pub struct AttemptReport {
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl AttemptReport {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> RetrySchedule {
        RetrySchedule { delays }
    }

    /// `attempts_before` is how many attempts preceded this one.
    /// `one_shot` is a manual resend of a delivery that had already finished.
    /// A retry is a delay, not a time: the store adds it to its own clock.
    pub fn next_step(&self, attempts_before: u32, report: AttemptReport, one_shot: bool) -> NextStep {
        if report.succeeded() {
            return NextStep::Succeeded;
        }
        // A resend of a finished delivery is one attempt; 410 Gone means stop.
        if one_shot || report.status == Some(410) {
            return NextStep::GiveUp;
        }
        let Some(base) = self.delays.get(attempts_before as usize) else {
            return NextStep::GiveUp;
        };
        let jitter = rand::thread_rng().gen_range(0.8..=1.2);
        let mut delay = base.mul_f64(jitter);
        if let Some(asked) = report.retry_after {
            delay = delay.max(asked.min(MAX_RETRY_AFTER));
        }
        NextStep::RetryIn(chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(24)))
    }
}

/// Parses `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(status: u16) -> AttemptReport {
        AttemptReport { status: Some(status), retry_after: None }
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_give_up() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        for _ in 0..50 {
            let NextStep::RetryIn(delay) = schedule.next_step(0, failed(500), false) else { panic!() };
            let ms = delay.num_milliseconds();
            assert!((8000..=12000).contains(&ms), "{ms}");
        }
        assert!(matches!(schedule.next_step(1, failed(500), false), NextStep::RetryIn(_)));
        assert_eq!(schedule.next_step(2, failed(500), false), NextStep::GiveUp);
        assert_eq!(schedule.next_step(0, failed(410), false), NextStep::GiveUp);
        assert_eq!(schedule.next_step(0, failed(500), true), NextStep::GiveUp);
        assert_eq!(schedule.next_step(5, failed(204), false), NextStep::Succeeded);
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(1)]);
        let report = AttemptReport { status: Some(429), retry_after: Some(Duration::from_secs(60)) };
        let NextStep::RetryIn(delay) = schedule.next_step(0, report, false) else { panic!() };
        assert_eq!(delay.num_seconds(), 60);
        let report = AttemptReport { status: Some(503), retry_after: Some(Duration::from_secs(10 * 86400)) };
        let NextStep::RetryIn(delay) = schedule.next_step(0, report, false) else { panic!() };
        assert_eq!(delay.num_hours(), 24);
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
