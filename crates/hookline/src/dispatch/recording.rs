//! Getting a batch of attempt outcomes into the store.
//!
//! An attempt keeps its slot and its lease until its outcome is recorded,
//! so an outcome the store refuses for good, retried as part of its batch,
//! would hold every outcome batched with it, and with them the node's
//! in-flight budget, for ever. A batch the store refuses (anything but
//! "unavailable", which waiting cures) is therefore recorded one outcome at
//! a time. An outcome refused alone is tried again a few times, then once
//! without its response body (the one part an endpoint controls), then
//! given up: its slot frees, its lease expires, and the delivery is sent
//! again, which keeps "at least once".

use std::future::Future;
use std::time::Duration;

use crate::ops::metrics;
use crate::store::queue::AttemptOutcome;
use crate::store::{StoreError, StoreResult};

/// Refusals of an outcome recorded alone before its response body is
/// dropped. A few, because a refusal may still be passing (a disk briefly
/// full); not many, because each holds the attempt's slot.
const TRIES_ALONE: u32 = 4;
/// Longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// What an attempt's log shows in place of a response the store refused.
pub(super) const RESPONSE_NOT_STORED: &str = "(the response could not be stored)";

/// What became of one outcome of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Recorded,
    /// Recorded with [`RESPONSE_NOT_STORED`] as its response.
    RecordedWithoutResponse,
    /// Not recorded: the delivery is sent again when its lease expires.
    Abandoned,
}

/// Records `outcomes` with `record` (one store call per try), waiting from
/// `first_backoff` up to [`MAX_BACKOFF`] between tries. Returns each
/// outcome's fate, in order. Never gives up while the store is unavailable.
pub(super) async fn record_batch<F, Fut>(
    outcomes: &[AttemptOutcome],
    first_backoff: Duration,
    mut record: F,
) -> Vec<Fate>
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut backoff = Backoff::new(first_backoff);
    let refusal = loop {
        match record(outcomes.to_vec()).await {
            Ok(()) => return vec![Fate::Recorded; outcomes.len()],
            Err(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, outcomes = outcomes.len(), "recording attempts failed; retrying");
                backoff.wait().await;
            }
            Err(refusal) => break refusal,
        }
    };
    if outcomes.len() > 1 {
        tracing::error!(error = %refusal, outcomes = outcomes.len(), "the store refused a batch of attempt outcomes; recording them one by one");
    }
    let mut fates = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        fates.push(record_alone(outcome.clone(), first_backoff, &mut record).await);
    }
    fates
}

async fn record_alone<F, Fut>(mut outcome: AttemptOutcome, first_backoff: Duration, record: &mut F) -> Fate
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut backoff = Backoff::new(first_backoff);
    let mut refusals = 0;
    loop {
        let refusal = match record(vec![outcome.clone()]).await {
            Ok(()) if refusals < TRIES_ALONE => return Fate::Recorded,
            Ok(()) => return Fate::RecordedWithoutResponse,
            Err(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "recording an attempt failed; retrying");
                backoff.wait().await;
                continue;
            }
            Err(refusal) => refusal,
        };
        refusals += 1;
        let attempt = &mut outcome.attempt;
        // Ids only: the refused values may be anything an endpoint sent.
        if refusals == TRIES_ALONE {
            tracing::error!(error = %refusal, msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store refuses an attempt's outcome; recording it without the response body");
            attempt.response = RESPONSE_NOT_STORED.to_string();
        } else if refusals > TRIES_ALONE {
            tracing::error!(error = %refusal, msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store refuses an attempt's outcome; giving it up, the delivery will be sent again when its lease expires");
            metrics::get().outcome_abandoned();
            return Fate::Abandoned;
        }
        backoff.wait().await;
    }
}

/// Doubling waits, capped.
struct Backoff(Duration);

impl Backoff {
    fn new(first: Duration) -> Backoff {
        Backoff(first)
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::model::{now, Attempt, AttemptTrigger, DeliveryStatus};
    use crate::store::queue::NextStep;

    fn outcome(msg_id: &str, response: &str) -> AttemptOutcome {
        AttemptOutcome {
            claim_id: "claim".into(),
            attempt: Attempt {
                id: format!("atmpt_{msg_id}"),
                msg_id: msg_id.into(),
                endpoint_id: "ep_1".into(),
                app_id: "app_1".into(),
                url: "https://example.com/hook".into(),
                status: DeliveryStatus::Success,
                response_status_code: 200,
                response: response.into(),
                response_duration_ms: 3,
                trigger: AttemptTrigger::Scheduled,
                error: None,
                created_at: now(),
            },
            next: NextStep::Succeeded,
            failed_on_our_side: false,
        }
    }

    /// A store that refuses (or is unavailable for) the batches `verdict`
    /// picks, and keeps what it accepted and every call's size.
    #[derive(Clone, Default)]
    struct FakeStore {
        stored: Arc<Mutex<Vec<AttemptOutcome>>>,
        calls: Arc<Mutex<Vec<usize>>>,
    }

    impl FakeStore {
        async fn record(
            &self,
            outcomes: &[AttemptOutcome],
            verdict: impl Fn(&[AttemptOutcome], usize) -> StoreResult<()>,
        ) -> Vec<Fate> {
            record_batch(outcomes, Duration::from_millis(1), |batch| {
                let call = {
                    let mut calls = self.calls.lock().unwrap();
                    calls.push(batch.len());
                    calls.len()
                };
                let result = verdict(&batch, call);
                if result.is_ok() {
                    self.stored.lock().unwrap().extend(batch);
                }
                async move { result }
            })
            .await
        }

        fn responses(&self) -> Vec<(String, String)> {
            let stored = self.stored.lock().unwrap();
            stored.iter().map(|o| (o.attempt.msg_id.clone(), o.attempt.response.clone())).collect()
        }

        fn calls(&self) -> Vec<usize> {
            self.calls.lock().unwrap().clone()
        }
    }

    fn refused() -> StoreError {
        StoreError::Backend("refused".into())
    }

    fn pair(msg: &str, response: &str) -> (String, String) {
        (msg.to_string(), response.to_string())
    }

    #[tokio::test]
    async fn a_batch_the_store_takes_is_one_call() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let fates = store.record(&batch, |_, _| Ok(())).await;
        assert_eq!(fates, [Fate::Recorded, Fate::Recorded]);
        assert_eq!(store.calls(), [2]);
    }

    #[tokio::test]
    async fn an_unavailable_store_is_waited_for_with_the_whole_batch() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let down = |_: &[AttemptOutcome], call| {
            if call <= 8 {
                Err(StoreError::Unavailable("down".into()))
            } else {
                Ok(())
            }
        };
        let fates = store.record(&batch, down).await;
        assert_eq!(fates, [Fate::Recorded, Fate::Recorded]);
        assert_eq!(store.calls(), [2; 9], "never split, never given up while unavailable");
    }

    #[tokio::test]
    async fn an_outcome_refused_for_its_response_is_recorded_without_it_and_holds_no_other() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "poison"), outcome("msg_c", "ok")];
        let poisoned = |batch: &[AttemptOutcome], _| {
            if batch.iter().any(|o| o.attempt.response == "poison") {
                Err(refused())
            } else {
                Ok(())
            }
        };
        let fates = store.record(&batch, poisoned).await;
        assert_eq!(fates, [Fate::Recorded, Fate::RecordedWithoutResponse, Fate::Recorded]);
        assert_eq!(store.responses(), [pair("msg_a", "ok"), pair("msg_b", RESPONSE_NOT_STORED), pair("msg_c", "ok")]);
        // The batch, then msg_a, msg_b refused TRIES_ALONE times, msg_b
        // without its response, msg_c.
        assert_eq!(store.calls().len(), 1 + 1 + TRIES_ALONE as usize + 1 + 1);
    }

    #[tokio::test]
    async fn an_outcome_refused_whatever_its_response_is_given_up_and_holds_no_other() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let poisoned = |batch: &[AttemptOutcome], _| {
            if batch.iter().any(|o| o.attempt.msg_id == "msg_a") {
                Err(refused())
            } else {
                Ok(())
            }
        };
        let fates = store.record(&batch, poisoned).await;
        assert_eq!(fates, [Fate::Abandoned, Fate::Recorded]);
        assert_eq!(store.responses(), [pair("msg_b", "ok")]);
    }

    #[tokio::test]
    async fn a_passing_refusal_keeps_the_response() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "kept")];
        let once = |_: &[AttemptOutcome], call| if call <= 2 { Err(refused()) } else { Ok(()) };
        let fates = store.record(&batch, once).await;
        assert_eq!(fates, [Fate::Recorded]);
        assert_eq!(store.responses(), [pair("msg_a", "kept")]);
    }

    #[tokio::test]
    async fn an_unavailable_store_does_not_count_as_a_refusal_alone() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "kept"), outcome("msg_b", "kept")];
        // The batch is refused, then the store goes down for longer than
        // TRIES_ALONE tries before taking msg_a alone.
        let flaky = |batch: &[AttemptOutcome], call| match call {
            1 => Err(refused()),
            2..=9 => Err(StoreError::Unavailable("down".into())),
            _ => {
                assert_eq!(batch.len(), 1);
                Ok(())
            }
        };
        let fates = store.record(&batch, flaky).await;
        assert_eq!(fates, [Fate::Recorded, Fate::Recorded]);
        assert_eq!(store.responses(), [pair("msg_a", "kept"), pair("msg_b", "kept")]);
    }
}
