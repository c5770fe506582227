//! When an endpoint is disabled: it failed without a single success for
//! `HOOKLINE_DISABLE_AFTER`, or it answered 410 Gone. The failing-since time
//! lives in the store, so the clock survives restarts and is shared by nodes.

use std::collections::BTreeMap;

use crate::store::model::Timestamp;
use crate::store::queue::{AttemptOutcome, NextStep};

/// What a batch of outcomes says about one endpoint's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// The latest attempt succeeded: the failing clock stops.
    Recovered,
    /// Failing since at least `since` (the first failure after the last
    /// success in the batch); `gone` when an answer was 410.
    Failing { since: Timestamp, gone: bool },
}

/// Folds a batch of outcomes into one change per endpoint. Outcomes
/// `ignored_by_health` (failures of Hookline's own, outcomes recorded late)
/// say nothing about the endpoint.
pub fn changes(outcomes: &[AttemptOutcome]) -> BTreeMap<String, HealthChange> {
    let mut ordered: Vec<&AttemptOutcome> = outcomes.iter().filter(|o| !o.ignored_by_health).collect();
    ordered.sort_by_key(|o| o.attempt.created_at);
    let mut changes = BTreeMap::new();
    for o in ordered {
        let change = if o.next == NextStep::Succeeded {
            HealthChange::Recovered
        } else {
            let gone = o.attempt.response_status_code == 410;
            match changes.get(&o.attempt.endpoint_id) {
                Some(HealthChange::Failing { since, gone: was_gone }) => {
                    HealthChange::Failing { since: *since, gone: gone || *was_gone }
                }
                _ => HealthChange::Failing { since: o.attempt.created_at, gone },
            }
        };
        changes.insert(o.attempt.endpoint_id.clone(), change);
    }
    changes
}

/// Whether an endpoint failing since `failing_since` is disabled at `now`.
pub fn should_disable(failing_since: Timestamp, now: Timestamp, disable_after: chrono::Duration, gone: bool) -> bool {
    gone || now - failing_since >= disable_after
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::*;
    use crate::store::queue::*;

    fn outcome(endpoint: &str, at_s: i64, status: u16, next: NextStep) -> AttemptOutcome {
        let t = chrono::DateTime::from_timestamp(1_800_000_000 + at_s, 0).unwrap();
        AttemptOutcome {
            claim_id: "c".into(),
            attempt: Attempt {
                id: format!("atmpt_{at_s}"),
                msg_id: "msg".into(),
                endpoint_id: endpoint.into(),
                app_id: "app".into(),
                url: "https://example.com".into(),
                status: if next == NextStep::Succeeded { DeliveryStatus::Success } else { DeliveryStatus::Failed },
                response_status_code: status,
                response: String::new(),
                response_duration_ms: 1,
                trigger: AttemptTrigger::Scheduled,
                error: None,
                created_at: t,
            },
            next,
            ignored_by_health: false,
        }
    }

    #[test]
    fn the_latest_outcome_per_endpoint_decides() {
        let retry = NextStep::RetryIn(chrono::Duration::seconds(5));
        let batch = [
            outcome("a", 3, 200, NextStep::Succeeded),
            outcome("a", 1, 500, retry),
            outcome("b", 1, 200, NextStep::Succeeded),
            outcome("b", 2, 500, retry),
            outcome("b", 3, 410, NextStep::GiveUp),
            outcome("c", 5, 500, retry),
        ];
        let c = changes(&batch);
        assert_eq!(c["a"], HealthChange::Recovered);
        let since = chrono::DateTime::from_timestamp(1_800_000_002, 0).unwrap();
        assert_eq!(c["b"], HealthChange::Failing { since, gone: true });
        assert!(matches!(c["c"], HealthChange::Failing { gone: false, .. }));
    }

    #[test]
    fn failures_of_our_own_do_not_count() {
        let mut ours = outcome("a", 1, 0, NextStep::GiveUp);
        ours.ignored_by_health = true;
        assert!(changes(&[ours]).is_empty());
    }

    #[test]
    fn disabled_after_the_window_or_at_once_when_gone() {
        let t0 = chrono::Utc::now();
        let day = chrono::Duration::days(1);
        assert!(!should_disable(t0, t0 + day, day * 5, false));
        assert!(should_disable(t0, t0 + day * 5, day * 5, false));
        assert!(should_disable(t0, t0, day * 5, true));
    }
}
