//! Getting a batch of attempt outcomes into the store.
//!
//! An attempt keeps its slot and its lease until its outcome is recorded,
//! so an outcome the store will not take, retried as part of its batch,
//! would hold every outcome batched with it, and with them the node's
//! in-flight budget, for ever. So:
//! - while the store cannot write (unavailable, a full disk, a failover:
//!   every error but a refusal) the whole batch waits for it, however long;
//! - a batch the store refuses (the statement or its values: a constraint,
//!   a trigger, a value it cannot hold; [`StoreError::Refused`] and its
//!   kin) is recorded one outcome at a time, in the order the attempts
//!   started;
//! - an outcome refused alone is tried again without its response body (the
//!   one part an endpoint controls);
//! - one refused even so is handed back ([`Fate::Held`]): the caller keeps
//!   trying it on its own ([`record_until_taken`]), its attempt in flight,
//!   while the rest goes on, and gives it up past a bound (its lease then
//!   runs out and the delivery is sent again: never lost).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::queue::AttemptOutcome;
use crate::store::{StoreError, StoreResult};

/// Refusals of an outcome alone before its response body is dropped. Few,
/// since each holds the rest of its batch.
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
    /// Not recorded: the store refused it alone, without its response
    /// body too (the outcome as last tried).
    Held(Box<AttemptOutcome>),
}

/// Whether the store refused the statement or the values written, which
/// waiting does not cure.
fn refuses_the_values(e: &StoreError) -> bool {
    matches!(e, StoreError::Refused(_) | StoreError::Invalid(_) | StoreError::Conflict(_) | StoreError::NotFound)
}

/// An error as logged here: its first line (a PostgreSQL error's detail
/// may quote the row, which holds what an endpoint sent).
fn first_line(e: &StoreError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// How [`record_batch`] reaches the store: `record` records outcomes (one
/// call per try), waiting from `first_backoff` up to [`MAX_BACKOFF`]
/// between tries.
pub(super) struct Recorder<F> {
    pub record: F,
    pub first_backoff: Duration,
}

/// Records `outcomes`; returns each outcome's fate, in order.
pub(super) async fn record_batch<F, Fut>(outcomes: &[AttemptOutcome], recorder: &mut Recorder<F>) -> Vec<Fate>
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut backoff = Backoff::new(recorder.first_backoff);
    let refusal = loop {
        match (recorder.record)(outcomes.to_vec()).await {
            Ok(()) => return vec![Fate::Recorded; outcomes.len()],
            Err(e) if refuses_the_values(&e) => break e,
            Err(e) => {
                tracing::error!(error = %first_line(&e), outcomes = outcomes.len(), "recording attempts failed; retrying")
            }
        }
        backoff.wait().await;
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
        fates[i] = record_alone(outcomes[i].clone(), recorder).await;
    }
    fates
}

async fn record_alone<F, Fut>(mut outcome: AttemptOutcome, recorder: &mut Recorder<F>) -> Fate
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    let mut backoff = Backoff::new(recorder.first_backoff);
    let mut refusals = 0;
    loop {
        match (recorder.record)(vec![outcome.clone()]).await {
            Ok(()) if refusals < TRIES_ALONE => return Fate::Recorded,
            Ok(()) => return Fate::RecordedWithoutResponse,
            Err(e) if refuses_the_values(&e) => {
                refusals += 1;
                let attempt = &mut outcome.attempt;
                if refusals == TRIES_ALONE {
                    tracing::error!(error = %first_line(&e), msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store refuses an attempt's outcome; recording it without the response body");
                    attempt.response = RESPONSE_NOT_STORED.to_string();
                } else if refusals > TRIES_ALONE {
                    return Fate::Held(Box::new(outcome));
                }
            }
            // The store's condition, not the outcome's: waited for.
            Err(e) => tracing::error!(error = %first_line(&e), "recording an attempt failed; retrying"),
        }
        backoff.wait().await;
    }
}

/// Tries `outcome` on its own until the store takes it (true) or `until`
/// passes (false), every [`MAX_BACKOFF`] at most. Time while the store
/// cannot write does not count: `until` moves on with it. Recorded this
/// late, the outcome says nothing of its endpoint's health now.
pub(super) async fn record_until_taken<F, Fut>(
    mut outcome: AttemptOutcome,
    first_backoff: Duration,
    mut until: Instant,
    mut record: F,
) -> bool
where
    F: FnMut(Vec<AttemptOutcome>) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    outcome.ignored_by_health = true;
    let hold = until.saturating_duration_since(Instant::now());
    let mut backoff = Backoff::new(first_backoff);
    loop {
        let attempt = &outcome.attempt;
        match record(vec![outcome.clone()]).await {
            Ok(()) => {
                tracing::info!(msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "a held attempt outcome is recorded at last");
                return true;
            }
            Err(e) => {
                tracing::error!(error = %first_line(&e), msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "the store does not take an attempt's outcome; its delivery stays in flight, trying again");
                if !refuses_the_values(&e) {
                    until = until.max(Instant::now() + hold);
                }
            }
        }
        if Instant::now() >= until {
            return false;
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
            ignored_by_health: false,
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
        /// The store call, answering each call (counted from 1) as
        /// `verdict` says.
        fn call<'a>(
            &'a self,
            verdict: impl Fn(&[AttemptOutcome], usize) -> StoreResult<()> + 'a,
        ) -> impl FnMut(Vec<AttemptOutcome>) -> std::future::Ready<StoreResult<()>> + 'a {
            move |batch| {
                let call = {
                    let mut calls = self.calls.lock().unwrap();
                    calls.push(batch.len());
                    calls.len()
                };
                let result = verdict(&batch, call);
                if result.is_ok() {
                    self.stored.lock().unwrap().extend(batch);
                }
                std::future::ready(result)
            }
        }

        /// Records `outcomes`, the store answering each call as `verdict`
        /// says.
        async fn record(
            &self,
            outcomes: &[AttemptOutcome],
            verdict: impl Fn(&[AttemptOutcome], usize) -> StoreResult<()>,
        ) -> Vec<Fate> {
            let record = self.call(verdict);
            record_batch(outcomes, &mut Recorder { record, first_backoff: Duration::from_millis(1) }).await
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
                Fate::Held(_) => "held",
            })
            .collect()
    }

    fn pair(msg: &str, response: &str) -> (String, String) {
        (msg.to_string(), response.to_string())
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_the_store_takes_is_one_call() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        let fates = store.record(&batch, |_, _| Ok(())).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.calls(), [2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_cannot_write_is_waited_for_with_the_whole_batch() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "ok"), outcome("msg_b", "ok")];
        // Unavailable for minutes, then a full disk for minutes.
        let down = |_: &[AttemptOutcome], call| match call {
            1..=40 => Err(StoreError::Unavailable("down".into())),
            41..=80 => Err(StoreError::Backend("database or disk is full".into())),
            _ => Ok(()),
        };
        let started = Instant::now();
        let fates = store.record(&batch, down).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.calls(), [2; 81], "never split while the store cannot write");
        assert!(started.elapsed() > Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_failing_alone_is_waited_for_too() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "kept"), outcome("msg_b", "kept")];
        // The batch is refused, then the store cannot write for a while.
        let flaky = |_: &[AttemptOutcome], call| match call {
            1 => Err(refused()),
            2..=20 => Err(StoreError::Backend("database or disk is full".into())),
            _ => Ok(()),
        };
        let fates = store.record(&batch, flaky).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_a", "kept"), pair("msg_b", "kept")]);
    }

    #[tokio::test(start_paused = true)]
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

    #[tokio::test(start_paused = true)]
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
        assert_eq!(labels(&fates), ["held", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_b", "ok")]);
        let Fate::Held(handed_back) = &fates[0] else { unreachable!() };
        assert_eq!(handed_back.attempt.response, RESPONSE_NOT_STORED);
    }

    /// `record_until_taken` against a store refusing its first `refusals`
    /// calls; what it returned, and the calls made.
    async fn hold(failures: usize, until: Instant) -> (bool, FakeStore) {
        hold_failing_with(failures, until, refused).await
    }

    async fn hold_failing_with(failures: usize, until: Instant, error: fn() -> StoreError) -> (bool, FakeStore) {
        let store = FakeStore::default();
        let record = store.call(|_, call| if call <= failures { Err(error()) } else { Ok(()) });
        let held = outcome("msg_a", RESPONSE_NOT_STORED);
        let taken = record_until_taken(held, Duration::from_millis(1), until, record).await;
        (taken, store)
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_outcome_is_tried_until_the_store_takes_it_and_says_nothing_of_health() {
        let (taken, store) = hold(6, Instant::now() + Duration::from_secs(600)).await;
        assert!(taken);
        assert_eq!(store.calls(), [1; 7]);
        assert_eq!(store.responses(), [pair("msg_a", RESPONSE_NOT_STORED)]);
        assert!(store.stored.lock().unwrap()[0].ignored_by_health, "recorded late, it must not judge the endpoint");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_outcome_is_given_up_past_its_bound() {
        let until = Instant::now() + Duration::from_secs(60);
        let (taken, store) = hold(usize::MAX, until).await;
        assert!(!taken);
        assert!(Instant::now() >= until);
        assert!(store.calls().len() > 10, "tried all along: {:?}", store.calls());
        assert!(store.responses().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_outcome_waits_out_a_store_that_cannot_write() {
        let started = Instant::now();
        let full = || StoreError::Backend("database or disk is full".into());
        let (taken, store) = hold_failing_with(40, started + Duration::from_secs(60), full).await;
        assert!(taken, "given up while the store could not write");
        assert!(started.elapsed() > Duration::from_secs(120));
        assert_eq!(store.responses(), [pair("msg_a", RESPONSE_NOT_STORED)]);
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_alone_are_recorded_in_the_order_their_attempts_started() {
        let store = FakeStore::default();
        let (mut later, earlier) = (outcome("msg_later", "ok"), outcome("msg_earlier", "ok"));
        later.attempt.created_at = earlier.attempt.created_at + chrono::Duration::milliseconds(5);
        let batch = [later, earlier];
        let fates = store.record(&batch, |batch, _| if batch.len() > 1 { Err(refused()) } else { Ok(()) }).await;
        assert_eq!(labels(&fates), ["recorded", "recorded"]);
        assert_eq!(store.responses(), [pair("msg_earlier", "ok"), pair("msg_later", "ok")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_passing_refusal_keeps_the_response() {
        let store = FakeStore::default();
        let batch = [outcome("msg_a", "kept")];
        let once = |_: &[AttemptOutcome], call| if call <= 2 { Err(refused()) } else { Ok(()) };
        let fates = store.record(&batch, once).await;
        assert_eq!(labels(&fates), ["recorded"]);
        assert_eq!(store.responses(), [pair("msg_a", "kept")]);
    }

    #[tokio::test(start_paused = true)]
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
