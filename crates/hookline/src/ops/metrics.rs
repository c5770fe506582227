//! Prometheus metrics: one registry per process, served at `/metrics`
//! (OpenMetrics text, see [`super::scrape`]).
//!
//! Every series is created when the process starts or the first time its
//! label value is seen, and recording is an atomic add or a short lock on one
//! histogram: the hot paths (accept, attempt, commit) never allocate here,
//! except the first time a label value appears.
//!
//! Cardinality is bounded by construction: no label carries an application
//! or endpoint id; event types get a label of their own only when they are
//! registered in the catalog, and only the first [`MAX_EVENT_TYPE_LABELS`]
//! of those (the rest count as `other`); routes are the templates of the
//! route table, statuses their class (`2xx`).
//!
//! Gauges of the store (backlog, due, oldest due, failing and disabled
//! endpoints) are sampled every few seconds by [`super::sampler`], never per
//! request. With several nodes on one database each node reports the same
//! global figures: aggregate them with `max`, not `sum`.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Event types counted under their own name, at most; later ones count as
/// [`OTHER`].
pub const MAX_EVENT_TYPE_LABELS: usize = 50;
/// The label value of everything past a cardinality cap (and of event types
/// not in the catalog).
pub const OTHER: &str = "other";

/// What became of one delivery attempt. Every attempt is counted once, under
/// exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered 2xx.
    Success,
    /// It failed and another attempt is scheduled.
    RetryScheduled,
    /// It failed and it was the last one: the delivery has failed.
    Failed,
    /// The SSRF guard refused the destination address; nothing was sent.
    /// (The delivery is retried on the schedule like any failure.)
    SsrfBlocked,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 4] =
        [AttemptOutcome::Success, AttemptOutcome::RetryScheduled, AttemptOutcome::Failed, AttemptOutcome::SsrfBlocked];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::RetryScheduled => "retry_scheduled",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::SsrfBlocked => "ssrf_blocked",
        }
    }
}

/// Rows the retention sweeper deleted, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deleted {
    pub payloads: u64,
    pub messages: u64,
    pub attempts: u64,
    pub idempotency_keys: u64,
}

/// The store's figures, as one sample.
#[derive(Debug, Clone, Copy, Default)]
pub struct BacklogSample {
    /// Deliveries owed: due, scheduled for later, or in flight (leased).
    pub pending: u64,
    /// Deliveries due now and not yet claimed.
    pub due: u64,
    /// How long the oldest due delivery has been waiting (0 when none).
    pub oldest_due_age: Duration,
    pub endpoints_failing: u64,
    pub endpoints_disabled: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventTypeLabels {
    event_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn http_histogram() -> Histogram {
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// Every series of one process.
pub struct Metrics {
    registry: Registry,
    messages_accepted: Family<EventTypeLabels, Counter>,
    /// The counters of `messages_accepted` by label value, found without
    /// allocating.
    accepted_by_type: RwLock<HashMap<String, Counter>>,
    attempts: [Counter; 4],
    attempt_duration: Histogram,
    http_requests: Family<HttpLabels, Histogram, fn() -> Histogram>,
    pending: Gauge,
    due: Gauge,
    in_flight: Gauge,
    oldest_due_age: FloatGauge,
    endpoints_failing: Gauge,
    endpoints_disabled: Gauge,
    store_up: Gauge,
    commit_duration: Histogram,
    commit_group_size: Histogram,
    retention_deleted: [Counter; 4],
    outcomes_held: Gauge,
    outcomes_given_up: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("hookline");
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info.get_or_create(&VersionLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "Always 1; the version of Hookline as a label", build_info);

        let messages_accepted = Family::<EventTypeLabels, Counter>::default();
        registry.register(
            "messages_accepted",
            "Messages accepted (committed) by the API, by event type (catalog types only, the first 50; others count \
             as \"other\")",
            messages_accepted.clone(),
        );

        let attempt_family = Family::<OutcomeLabels, Counter>::default();
        let attempts =
            AttemptOutcome::ALL.map(|o| attempt_family.get_or_create_owned(&OutcomeLabels { outcome: o.as_str() }));
        registry.register(
            "delivery_attempts",
            "Delivery attempts by outcome: success, retry_scheduled, failed (the last attempt failed), ssrf_blocked \
             (the destination address was refused)",
            attempt_family,
        );

        let attempt_duration =
            Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0]);
        registry.register_with_unit(
            "delivery_attempt_duration",
            "Time of one delivery attempt, from the request to the end of the response (or the failure)",
            Unit::Seconds,
            attempt_duration.clone(),
        );

        let http_requests = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(http_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "API requests by method, route template and status class",
            Unit::Seconds,
            http_requests.clone(),
        );

        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let pending = gauge(
            &mut registry,
            "deliveries_pending",
            "Deliveries owed: due, scheduled for a retry or later, or in flight (sampled from the store)",
        );
        let due =
            gauge(&mut registry, "deliveries_due", "Deliveries due now and not yet claimed (sampled from the store)");
        let in_flight = gauge(&mut registry, "deliveries_in_flight", "Attempts in flight on this node");
        let oldest_due_age = FloatGauge::default();
        registry.register_with_unit(
            "oldest_due_delivery_age",
            "How long the oldest due delivery has waited past its due time; 0 when nothing is due (sampled)",
            Unit::Seconds,
            oldest_due_age.clone(),
        );
        let endpoints_failing = gauge(
            &mut registry,
            "endpoints_failing",
            "Enabled endpoints whose last attempts failed (failing since some time; sampled)",
        );
        let endpoints_disabled = gauge(&mut registry, "endpoints_disabled", "Disabled endpoints (sampled)");
        let store_up = gauge(
            &mut registry,
            "store_up",
            "1 when the last sample of the store succeeded, 0 when the store could not be read",
        );

        let commit_duration =
            Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]);
        registry.register_with_unit(
            "store_commit_duration",
            "Write transactions, from BEGIN until the COMMIT is durable (embedded store: one group commit; \
             PostgreSQL: one transaction)",
            Unit::Seconds,
            commit_duration.clone(),
        );
        let commit_group_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0]);
        registry.register(
            "store_commit_group_size",
            "Writes committed together in one transaction (group commit of the embedded store; always 1 on \
             PostgreSQL)",
            commit_group_size.clone(),
        );

        let deleted_family = Family::<KindLabels, Counter>::default();
        let retention_deleted = ["payloads", "messages", "attempts", "idempotency_keys"]
            .map(|kind| deleted_family.get_or_create_owned(&KindLabels { kind }));
        registry.register(
            "retention_deleted_rows",
            "Rows the retention sweeper deleted (payloads are cleared, not rows), by kind",
            deleted_family,
        );

        let outcomes_held = gauge(
            &mut registry,
            "attempt_outcomes_held",
            "Attempt outcomes the store does not take, tried on their own while their deliveries stay in flight",
        );
        let outcomes_given_up = Counter::default();
        registry.register(
            "attempt_outcomes_given_up",
            "Held attempt outcomes given up (too many held, or held too long): their deliveries are sent again when \
             their leases expire",
            outcomes_given_up.clone(),
        );

        Metrics {
            registry,
            messages_accepted,
            accepted_by_type: RwLock::new(HashMap::new()),
            attempts,
            attempt_duration,
            http_requests,
            pending,
            due,
            in_flight,
            oldest_due_age,
            endpoints_failing,
            endpoints_disabled,
            store_up,
            commit_duration,
            commit_group_size,
            retention_deleted,
            outcomes_held,
            outcomes_given_up,
        }
    }

    /// The OpenMetrics text of every series.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// One message committed by the API. `registered`: its event type is in
    /// the catalog (others share the `other` label).
    pub fn message_accepted(&self, event_type: &str, registered: bool) {
        let wanted = if registered { event_type } else { OTHER };
        {
            let known = self.accepted_by_type.read().unwrap_or_else(|p| p.into_inner());
            if let Some(counter) = known.get(wanted) {
                counter.inc();
                return;
            }
            // Full: every new name is `other` (which is always among the known).
            if known.len() > MAX_EVENT_TYPE_LABELS {
                if let Some(other) = known.get(OTHER) {
                    other.inc();
                    return;
                }
            }
        }
        let mut known = self.accepted_by_type.write().unwrap_or_else(|p| p.into_inner());
        if !known.contains_key(OTHER) {
            let other = self.messages_accepted.get_or_create_owned(&EventTypeLabels { event_type: OTHER.into() });
            known.insert(OTHER.to_string(), other);
        }
        let label = if known.contains_key(wanted) || known.len() <= MAX_EVENT_TYPE_LABELS { wanted } else { OTHER };
        let counter = known.entry(label.to_string()).or_insert_with(|| {
            self.messages_accepted.get_or_create_owned(&EventTypeLabels { event_type: label.into() })
        });
        counter.inc();
    }

    /// One delivery attempt, once its outcome is recorded.
    pub fn attempt(&self, outcome: AttemptOutcome, took: Duration) {
        let index = AttemptOutcome::ALL.iter().position(|o| *o == outcome).expect("every outcome is listed");
        self.attempts[index].inc();
        self.attempt_duration.observe(took.as_secs_f64());
    }

    /// One API request, by the route template that matched it.
    pub fn http_request(&self, method: &'static str, route: &'static str, status: u16, took: Duration) {
        let class = STATUS_CLASSES[usize::from((status / 100).clamp(1, 5)) - 1];
        self.http_requests.get_or_create(&HttpLabels { method, route, status: class }).observe(took.as_secs_f64());
    }

    /// One write transaction committed (`group`: writes in it).
    pub fn store_commit(&self, took: Duration, group: usize) {
        self.commit_duration.observe(took.as_secs_f64());
        self.commit_group_size.observe(group as f64);
    }

    pub fn retention_deleted(&self, deleted: &Deleted) {
        let by_kind = [deleted.payloads, deleted.messages, deleted.attempts, deleted.idempotency_keys];
        for (counter, n) in self.retention_deleted.iter().zip(by_kind) {
            counter.inc_by(n);
        }
    }

    pub fn backlog(&self, sample: &BacklogSample) {
        self.pending.set(clamp_i64(sample.pending));
        self.due.set(clamp_i64(sample.due));
        self.oldest_due_age.set(sample.oldest_due_age.as_secs_f64());
        self.endpoints_failing.set(clamp_i64(sample.endpoints_failing));
        self.endpoints_disabled.set(clamp_i64(sample.endpoints_disabled));
    }

    pub fn outcome_held(&self) {
        self.outcomes_held.inc();
    }

    pub fn outcome_released(&self) {
        self.outcomes_held.dec();
    }

    pub fn outcome_given_up(&self) {
        self.outcomes_given_up.inc();
    }

    pub fn in_flight(&self, n: usize) {
        self.in_flight.set(clamp_i64(n as u64));
    }

    pub fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
    }

    #[test]
    fn event_type_labels_are_capped_and_unregistered_types_are_other() {
        let m = Metrics::new();
        m.message_accepted("user.created", true);
        m.message_accepted("user.created", true);
        m.message_accepted("not.in.catalog", false);
        for i in 0..(MAX_EVENT_TYPE_LABELS + 20) {
            m.message_accepted(&format!("type.{i}"), true);
        }
        let text = m.render();
        assert_eq!(sample(&text, r#"hookline_messages_accepted_total{event_type="user.created"}"#), Some(2.0));
        let labelled = text.lines().filter(|l| l.starts_with("hookline_messages_accepted_total{")).count();
        assert_eq!(labelled, MAX_EVENT_TYPE_LABELS + 1, "{text}");
        // The unregistered one, and every registered type past the cap.
        let other = sample(&text, r#"hookline_messages_accepted_total{event_type="other"}"#).unwrap();
        assert_eq!(other, 1.0 + 21.0);
    }

    #[test]
    fn series_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.attempt(AttemptOutcome::SsrfBlocked, Duration::from_millis(3));
        m.http_request("POST", "/api/v1/app/{app_id}/msg", 202, Duration::from_millis(4));
        m.store_commit(Duration::from_millis(2), 17);
        m.retention_deleted(&Deleted { attempts: 5, ..Default::default() });
        let text = m.render();
        for series in [
            r#"hookline_delivery_attempts_total{outcome="ssrf_blocked"} 1"#,
            r#"hookline_delivery_attempts_total{outcome="success"} 0"#,
            "hookline_delivery_attempt_duration_seconds_count 1",
            r#"hookline_http_request_duration_seconds_count{method="POST",route="/api/v1/app/{app_id}/msg",status="2xx"} 1"#,
            "hookline_store_commit_group_size_sum 17.0",
            r#"hookline_retention_deleted_rows_total{kind="attempts"} 5"#,
            "hookline_deliveries_pending 0",
            r#"hookline_build_info{version=""#,
        ] {
            assert!(text.contains(series), "{series} missing in:\n{text}");
        }
    }
}
