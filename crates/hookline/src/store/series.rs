//! Building an endpoint's attempt time series from rows, the same way for
//! every backend: the backend streams (bucket, succeeded, latency) rows
//! grouped by bucket, fastest first; this keeps one bucket's latencies in
//! memory at a time.

use super::model::{SeriesBucket, Timestamp};

/// Nearest-rank percentile of an ascending list.
fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

pub struct SeriesBuilder {
    buckets: Vec<SeriesBucket>,
    current: Option<usize>,
    latencies: Vec<i64>,
}

impl SeriesBuilder {
    /// Empty buckets of `width` covering [since, until).
    pub fn new(since: Timestamp, until: Timestamp, width: chrono::Duration) -> SeriesBuilder {
        let width_ms = width.num_milliseconds().max(1);
        let span = (until - since).num_milliseconds().max(0);
        let count = (span + width_ms - 1) / width_ms;
        let buckets = (0..count)
            .map(|i| SeriesBucket {
                start: since + chrono::Duration::milliseconds(i * width_ms),
                success: 0,
                failure: 0,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
            })
            .collect();
        SeriesBuilder { buckets, current: None, latencies: Vec::new() }
    }

    /// One attempt in bucket `index`; `latency_ms` when it got an HTTP answer.
    pub fn add(&mut self, index: i64, succeeded: bool, latency_ms: Option<i64>) {
        let Some(index) = usize::try_from(index).ok().filter(|i| *i < self.buckets.len()) else { return };
        if self.current != Some(index) {
            self.close();
            self.current = Some(index);
        }
        if succeeded {
            self.buckets[index].success += 1;
        } else {
            self.buckets[index].failure += 1;
        }
        if let Some(ms) = latency_ms {
            self.latencies.push(ms);
        }
    }

    fn close(&mut self) {
        if let Some(done) = self.current {
            let bucket = &mut self.buckets[done];
            bucket.p50_ms = percentile(&self.latencies, 50);
            bucket.p90_ms = percentile(&self.latencies, 90);
            bucket.p99_ms = percentile(&self.latencies, 99);
            self.latencies.clear();
        }
    }

    pub fn finish(mut self) -> Vec<SeriesBucket> {
        self.close();
        self.buckets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 90), Some(90));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn rows_fill_their_buckets() {
        let t0 = chrono::Utc::now();
        let mut b = SeriesBuilder::new(t0, t0 + chrono::Duration::minutes(3), chrono::Duration::minutes(1));
        b.add(0, true, Some(5));
        b.add(0, false, None);
        b.add(2, true, Some(7));
        b.add(9, true, Some(1)); // outside the range
        let series = b.finish();
        assert_eq!(series.len(), 3);
        assert_eq!((series[0].success, series[0].failure, series[0].p50_ms), (1, 1, Some(5)));
        assert_eq!((series[1].success, series[1].p50_ms), (0, None));
        assert_eq!(series[2].p99_ms, Some(7));
    }
}
