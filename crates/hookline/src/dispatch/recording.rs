//! Getting a batch of attempt outcomes into the store.
//!
//! An attempt keeps its slot and its lease until its outcome is recorded,
//! so an outcome the store refuses for good, retried as part of its batch,
//! would hold every outcome batched with it, and with them the node's
//! in-flight budget, for ever. So a store that cannot write right now
//! (unavailable, a full disk) is waited for with the whole batch, but a
//! batch whose values the store refuses is recorded one outcome at a time,
//! in the order the attempts started. An outcome refused alone is tried
//! again a few times, then without its response body (the one part an
//! endpoint controls). One refused even so is handed back: the caller keeps
//! trying it on its own ([`record_until_taken`]) while the others go on, and
//! its delivery stays in flight, neither lost nor sent again.

use std::future::Future;
use std::time::Duration;

use crate::store::queue::AttemptOutcome;
use crate::store::{StoreError, StoreResult};

/// Refusals of an outcome recorded alone before its response body is
/// dropped. A few, in case the refusal passes; not many, since each holds
/// the recording of the rest of its batch.
const TRIES_ALONE: u32 = 4;
/// Longest wait between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// What an attempt's log shows in place of a response the store refused.
pub(super) const RESPONSE_NOT_STORED: &str = "(the response could not be stored)";

/// What became of one outcome of a batch.
#[derive(Debug, Clone)]
pub(super) enum Fate {
    Recorded,
    /// Recorded with [`RESPONSE_NOT_STORED`] as its response.
    RecordedWithoutResponse,
    /// Refused even without its response body (which it no longer holds):
    /// not recorded yet.
    Refused(Box<AttemptOutcome>),
}

/// Whether the store refused the values written, which waiting does not
/// cure (anything else is the store's condition: wait for it).
fn refuses_the_values(e: &StoreError) -> bool {
    matches!(e, StoreError::Refused(_) | StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::NotFound)
}

/// An error as logged here: its first line (a PostgreSQL error's detail
/// may quote the row, which holds what an endpoint sent).
fn first_line(e: &StoreError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// Records `outcomes` with `record` (one store call per try), waiting from
/// `first_backoff` up to [`MAX_BACKOFF`] between tries. Returns each
/// outcome's fate, in order.
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
            Err(e) if refuses_the_values(&e) => break e,
            Err(e) => {
                tracing::error!(error = %first_line(&e), outcomes = outcomes.len(), "recording attempts failed; retrying");
                backoff.wait().await;
            }
        }
    };
    if outcomes.len() > 1 {
        tracing::error!(error = %first_line(&refusal), outcomes = outcomes.len(), "the store refused a batch of attempt outcomes; recording them one by one");
    }
    // In the order the attempts started, as a batch applies them (an
    // endpoint's health follows its latest attempt).
    let mut order: Vec<usize> = (0..outcomes.len()).collect();
    order.sort_by_key(|&i| outcomes[i].attempt.created_at);
    let mut fates = vec![Fate::Recorded; outcomes.len()];
    for i in order {
        fates[i] = record_alone(outcomes[i].clone(), first_backoff, &mut record).await;
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
        match record(vec![outcome.clone()]).await {
            Ok(()) if refusals < TRIES_ALONE => return Fate::Recorded,
            Ok(()) => return Fate::RecordedWithoutResponse,
            Err(e) if refuses_the_values(&e) => {
                refusals += 1;
                let attempt = &mut outcome.attempt;
                if refusals == TRIES_ALONE {
                    tracing::error!(error = %first_line(&e), msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store refuses an attempt's outcome; recording it without the response body");
                    attempt.response = RESPONSE_NOT_STORED.to_string();
                } else if refusals > TRIES_ALONE {
                    return Fate::Refused(Box::new(outcome));
                }
            }
            Err(e) => tracing::error!(error = %first_line(&e), "recording an attempt failed; retrying"),
        }
        backoff.wait().await;
    }
}

/// Tries `outcome` until the store takes it, every [`MAX_BACKOFF`] at most.
pub(super) async fn record_until_taken<F, Fut>(outcome: AttemptOutcome, first_backoff: Duration, mut record: F)
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut backoff = Backoff::new(first_backoff);
    loop {
        match record(vec![outcome.clone()]).await {
            Ok(()) => {
                tracing::info!(msg = %outcome.attempt.msg_id, endpoint = %outcome.attempt.endpoint_id, "a refused attempt's outcome is recorded at last");
                return;
            }
            Err(e) => {
                let attempt = &outcome.attempt;
                tracing::error!(error = %first_line(&e), msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store refuses an attempt's outcome even without its response body; its delivery stays in flight, trying again");
            }
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
        StoreError::Refused("refused by a trigger".into())
    }

    fn labels(fates: &[Fate]) -> Vec<&'static str> {
        fates
            .iter()
            .map(|f| match f {
                Fate::Recorded => "recorded",
                Fate::RecordedWithoutResponse => "without response",
                Fate::Refused(_) => "refused",
            })
            .collect()
    }

    fn pair(msg: &str, response: &str) -> (String, String) {
        (msg.to_string(), response.to_string())
    }

    #[tokio::test]
    async fn a_batch_the_store_takes_is_one_call() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let fates = store.record(&batch, |_, _| Ok(())).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.calls(), [2]);
    }

    #[tokio::test]
    async fn a_store_that_cannot_write_is_waited_for_with_the_whole_batch() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let down = |_: &[AttemptOutcome], call| match call {
            1..=4 => Err(StoreError::Unavailable("down".into())),
            5..=8 => Err(StoreError::Backend("database or disk is full".into())),
            _ => Ok(()),
        };
        let fates = store.record(&batch, down).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.calls(), [2; 9], "never split while the store cannot write");
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
        assert_eq!(labels(&fates), ["recorded", "without response", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_a", "ok"), pair("msg_b", RESPONSE_NOT_STORED), pair("msg_c", "ok")]);
        // The batch, then msg_a, msg_b refused TRIES_ALONE times, msg_b
        // without its response, msg_c.
        assert_eq!(store.calls().len(), 1 + 1 + TRIES_ALONE as usize + 1 + 1);
    }

    #[tokio::test]
    async fn an_outcome_refused_whatever_its_response_is_handed_back_and_holds_no_other() {
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
        assert_eq!(labels(&fates), ["refused", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_b", "ok")]);
        let Fate::Refused(handed_back) = &fates[0] else { unreachable!() };
        assert_eq!(handed_back.attempt.response, RESPONSE_NOT_STORED);
    }

    #[tokio::test]
    async fn a_refused_outcome_is_tried_until_the_store_takes_it() {
        let store = FakeStore::default();
        let calls = store.calls.clone();
        let stored = store.stored.clone();
        record_until_taken(outcome("msg_a", RESPONSE_NOT_STORED), Duration::from_millis(1), |batch| {
            let call = {
                let mut calls = calls.lock().unwrap();
                calls.push(batch.len());
                calls.len()
            };
            let result = if call <= 6 { Err(refused()) } else { Ok(()) };
            if result.is_ok() {
                stored.lock().unwrap().extend(batch);
            }
            async move { result }
        })
        .await;
        assert_eq!(store.calls(), [1; 7]);
        assert_eq!(store.responses(), [pair("msg_a", RESPONSE_NOT_STORED)]);
    }

    #[tokio::test]
    async fn outcomes_alone_are_recorded_in_the_order_their_attempts_started() {
        let store = FakeStore::default();
        let (mut later, earlier) = (outcome("msg_later", "ok"), outcome("msg_earlier", "ok"));
        later.attempt.created_at = earlier.attempt.created_at + chrono::Duration::milliseconds(5);
        let batch = [later, earlier];
        let fates = store.record(&batch, |batch, _| if batch.len() > 1 { Err(refused()) } else { Ok(()) }).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_earlier", "ok"), pair("msg_later", "ok")]);
    }

    #[tokio::test]
    async fn a_passing_refusal_keeps_the_response() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "kept")];
        let once = |_: &[AttemptOutcome], call| if call <= 2 { Err(refused()) } else { Ok(()) };
        let fates = store.record(&batch, once).await;
        assert_eq!(labels(&fates), ["recorded"]);
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
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_a", "kept"), pair("msg_b", "kept")]);
    }
}
