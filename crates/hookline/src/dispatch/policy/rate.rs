//! Per-endpoint rate limits: the deliveries of an endpoint limited to
//! `rate` a second start at least `1/rate` seconds apart, so no window of
//! one second ever holds more than `rate` starts, however claims fall.
//!
//! The whole state is one time per endpoint, the next free start slot (the
//! "theoretical arrival time" of GCRA), kept in the store's queue row, which
//! a claim holds locked: the limit holds for the sum of every node claiming
//! from one store. A claim reserves the slots that fall within
//! [`HORIZON`] of its time and hands each job the wait until its own slot,
//! so a fast endpoint is claimed in batches (100 jobs a claim at 1000/s)
//! while its starts stay evenly spaced.
//!
//! A token bucket would be as cheap but not as strict: after a quiet spell
//! it lets a full burst through at once and then refills during the same
//! second, nearly twice the rate in one window.

use chrono::Duration;

use crate::store::model::Timestamp;

/// How far ahead a claim reserves start slots.
pub const HORIZON: Duration = Duration::milliseconds(100);

/// Start slots reserved by one claim: `count` slots, the first at `first`,
/// then one every `interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartSlots {
    pub first: Timestamp,
    pub interval: Duration,
    pub count: usize,
}

impl StartSlots {
    /// The start time of the `i`-th slot.
    pub fn at(&self, i: usize) -> Timestamp {
        self.first + self.interval * i as i32
    }
}

fn interval(rate: u32) -> Duration {
    // Whole microseconds, rounded up: never faster than the rate.
    Duration::microseconds((1_000_000 + i64::from(rate.max(1)) - 1) / i64::from(rate.max(1)))
}

/// Reserves up to `want` start slots at `now` for an endpoint whose next
/// free slot is `next_slot` (`None`: it has never sent). Returns the slots
/// and the endpoint's new next free slot.
pub fn reserve(
    rate: u32,
    next_slot: Option<Timestamp>,
    now: Timestamp,
    want: usize,
) -> (StartSlots, Option<Timestamp>) {
    let interval = interval(rate);
    // A slot left unused in the past is gone: idle time is not saved up.
    let first = next_slot.map_or(now, |slot| slot.max(now));
    let ahead = now + HORIZON - first;
    let fit = if ahead <= Duration::zero() {
        0
    } else {
        // StartSlots at first, first + interval, … strictly before now + HORIZON.
        let micros = ahead.num_microseconds().unwrap_or(i64::MAX);
        let step = interval.num_microseconds().unwrap_or(1).max(1);
        ((micros + step - 1) / step) as usize
    };
    let count = fit.min(want);
    let slots = StartSlots { first, interval, count };
    let next = if count == 0 { next_slot } else { Some(slots.at(count)) };
    (slots, next)
}

/// Gives back the last `unused` of reserved slots (less work was due than
/// was reserved for): returns the endpoint's next free slot.
pub fn give_back(slots: &StartSlots, next_slot: Option<Timestamp>, unused: usize) -> Option<Timestamp> {
    if unused == 0 || slots.count == 0 {
        return next_slot;
    }
    Some(slots.at(slots.count - unused.min(slots.count)))
}

/// The earliest an endpoint is worth a claim again, whatever work it has:
/// once its next slot is half a horizon away, so that the next claim
/// reserves slots before this claim's run out.
pub fn not_before(next_slot: Option<Timestamp>) -> Option<Timestamp> {
    next_slot.map(|slot| slot - HORIZON / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        chrono::DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
    }

    #[test]
    fn an_idle_endpoint_starts_now_and_a_slow_one_once_a_horizon() {
        let (slots, next) = reserve(5, None, at(0), 100);
        assert_eq!((slots.first, slots.count), (at(0), 1));
        assert_eq!(next, Some(at(200)));
        let (slots, _) = reserve(5, next, at(10), 100);
        assert_eq!(slots.count, 0, "the next slot is beyond the horizon");
        assert_eq!(not_before(next), Some(at(150)));
        let (slots, next) = reserve(5, next, at(150), 100);
        assert_eq!((slots.first, slots.count), (at(200), 1), "reserved ahead, started at its slot");
        assert_eq!(next, Some(at(400)));
    }

    #[test]
    fn a_fast_endpoint_is_claimed_in_batches_of_evenly_spaced_slots() {
        let (slots, next) = reserve(1000, None, at(0), 500);
        assert_eq!(slots.count, 100);
        assert_eq!(slots.at(99), at(99));
        assert_eq!(next, Some(at(100)));
        let (slots, _) = reserve(1000, next, at(50), 500);
        assert_eq!((slots.first, slots.count), (at(100), 50));
    }

    #[test]
    fn unused_slots_are_given_back_and_idle_time_is_not_saved_up() {
        let (slots, next) = reserve(1000, None, at(0), 40);
        assert_eq!(give_back(&slots, next, 10), Some(at(30)));
        let (slots, _) = reserve(1000, Some(at(30)), at(5000), 1000);
        assert_eq!((slots.first, slots.count), (at(5000), 100), "no burst after a quiet spell");
    }

    /// Claims at uneven times, each wanting an uneven number: no second
    /// ever holds more than `rate` starts, and the rate is reached.
    #[test]
    fn no_window_of_a_second_holds_more_than_the_rate() {
        for rate in [1, 3, 10, 250, 1000] {
            let mut starts = Vec::new();
            let mut next = None;
            let mut now = at(0);
            let mut i: i64 = 0;
            while now < at(20_000) {
                let want = (i * 7919 % 13) as usize + usize::from(i % 5 == 0) * 300;
                let (slots, after) = reserve(rate, next, now, want);
                let used = slots.count.saturating_sub((i % 3) as usize);
                next = give_back(&slots, after, slots.count - used);
                starts.extend((0..used).map(|k| slots.at(k)));
                now += Duration::milliseconds(1 + i * 37 % 61);
                i += 1;
            }
            starts.sort();
            for (k, first) in starts.iter().enumerate() {
                let in_second = starts[k..].iter().take_while(|s| **s - *first < Duration::seconds(1)).count();
                assert!(in_second <= rate as usize, "{rate}/s: {in_second} starts in one second");
            }
            let reached = starts.len() as f64 / 20.0;
            assert!(reached >= f64::from(rate) * 0.5, "{rate}/s: only {reached}/s");
        }
    }

    #[test]
    fn sustained_claims_at_their_next_look_reach_the_rate() {
        let mut next = None;
        let mut now = at(0);
        let mut total = 0;
        while now < at(10_000) {
            let (slots, after) = reserve(1000, next, now, usize::MAX);
            total += slots.count;
            next = after;
            // Work is always due; a claim lands a few milliseconds after
            // its time.
            now = now.max(not_before(next).unwrap_or(now)) + Duration::milliseconds(3);
        }
        assert!((9_900..=10_100).contains(&total), "{total} starts in 10 s at 1000/s");
    }
}
