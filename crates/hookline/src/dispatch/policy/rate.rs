//! Per-endpoint rate limits: a token bucket holding at most `rate` tokens,
//! refilled continuously at `rate` tokens a second. A delivery is claimed
//! only with a token, so the limit holds for the sum of every node claiming
//! from one store (the bucket lives in the store's queue row, which a claim
//! holds locked).
//!
//! Sustained, an endpoint gets `rate` deliveries a second; after a quiet
//! second it may get a burst of up to `rate` at once. Two columns per
//! endpoint (tokens, refilled at) are the whole state: claiming costs the
//! same whatever the rate.

use crate::store::model::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    pub tokens: f64,
    pub refilled_at: Timestamp,
}

impl TokenBucket {
    /// A bucket for an endpoint that has sent nothing yet.
    pub fn full(rate: u32, now: Timestamp) -> TokenBucket {
        TokenBucket { tokens: f64::from(rate.max(1)), refilled_at: now }
    }

    fn refill(&mut self, rate: u32, now: Timestamp) {
        let rate = f64::from(rate.max(1));
        // A clock that went backwards adds nothing.
        let elapsed = (now - self.refilled_at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        if now > self.refilled_at {
            self.refilled_at = now;
        }
    }

    /// Takes up to `want` whole tokens at `now`; returns how many it got.
    pub fn take(&mut self, rate: u32, now: Timestamp, want: usize) -> usize {
        self.refill(rate, now);
        let granted = (self.tokens.floor().max(0.0) as usize).min(want);
        self.tokens -= granted as f64;
        granted
    }

    /// Gives back tokens that were granted but not used (less work was due).
    pub fn give_back(&mut self, rate: u32, unused: usize) {
        self.tokens = (self.tokens + unused as f64).min(f64::from(rate.max(1)));
    }

    /// When the next whole token will be there.
    pub fn next_token_at(&self, rate: u32) -> Timestamp {
        let missing = (1.0 - self.tokens).max(0.0);
        let micros = (missing * 1e6 / f64::from(rate.max(1))).ceil() as i64;
        self.refilled_at + chrono::Duration::microseconds(micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn a_full_bucket_gives_a_burst_of_rate_then_refills_at_rate() {
        let mut b = TokenBucket::full(5, at(0));
        assert_eq!(b.take(5, at(0), 100), 5);
        assert_eq!(b.take(5, at(0), 100), 0);
        assert_eq!(b.next_token_at(5), at(200));
        assert_eq!(b.take(5, at(199), 100), 0);
        assert_eq!(b.take(5, at(200), 100), 1);
        assert_eq!(b.take(5, at(1200), 100), 5, "a second refills the whole rate");
        assert_eq!(b.take(5, at(60_000), 100), 5, "never more than rate at once");
    }

    #[test]
    fn sustained_claims_never_exceed_the_rate() {
        // Claims every 7 ms for 10 s at 1000/s: at most 1000 + 1000 × 10.
        let mut b = TokenBucket::full(1000, at(0));
        let total: usize = (0..=10_000 / 7).map(|i| b.take(1000, at(i * 7), 64)).sum();
        assert!(total <= 11_000, "{total}");
        assert!(total >= 10_000, "the rate is reachable: {total}");
    }

    #[test]
    fn unused_tokens_are_given_back_and_a_clock_going_back_adds_nothing() {
        let mut b = TokenBucket::full(10, at(1000));
        assert_eq!(b.take(10, at(1000), 10), 10);
        b.give_back(10, 4);
        assert_eq!(b.take(10, at(500), 100), 4);
        assert_eq!(b.refilled_at, at(1000));
    }
}
