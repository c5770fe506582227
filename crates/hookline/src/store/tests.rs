//! One suite, every backend: the store's behaviour (claims, leases, rate
//! limits, outcomes, retention) and its correctness when writes race.
//!
//! Each test runs against the embedded store and against PostgreSQL (a
//! fresh database on the server named by `HOOKLINE_TEST_DATABASE_URL`,
//! which `scripts/test.sh` starts).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::model::*;
use super::queue::*;
use super::{AttemptFilter, Store, StoreError, StoreResult};
use crate::dispatch::policy::fairness::{EndpointLoad, Slots};

/// A store of one backend, and what keeps it alive.
pub(crate) struct TestStore {
    pub name: &'static str,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = super::sqlite::SqliteStore::open(dir.path()).unwrap();
    vec![
        TestStore { name: "sqlite", store: Store::Sqlite(sqlite), _dir: Some(dir) },
        TestStore { name: "postgres", store: super::postgres::test_support::test_store().await, _dir: None },
    ]
}

pub(crate) fn app(id: &str) -> Application {
    let now = Utc::now();
    // Looked up by uid below: these short ids are not well-formed app ids.
    Application {
        id: id.into(),
        uid: Some(id.into()),
        name: "a".into(),
        rate_limit: None,
        metadata: Default::default(),
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn endpoint(id: &str, app_id: &str, rate_limit: Option<u32>) -> Endpoint {
    let now = Utc::now();
    Endpoint {
        id: id.into(),
        app_id: app_id.into(),
        // Short ids are not well-formed: look them up as uid.
        uid: Some(id.into()),
        url: "https://example.com".into(),
        description: String::new(),
        version: 1,
        disabled: false,
        rate_limit,
        filter_types: None,
        channels: None,
        metadata: Default::default(),
        headers: Default::default(),
        secret: SealedSecret(vec![0; 40]),
        retired_secrets: Vec::new(),
        failing_since: None,
        created_at: now,
        updated_at: now,
    }
}

pub(crate) fn message(id: &str, app_id: &str) -> Message {
    let now = Utc::now();
    Message {
        id: id.into(),
        app_id: app_id.into(),
        event_type: "t".into(),
        // Short ids are not well-formed: look them up as eventId.
        event_id: Some(id.into()),
        channels: None,
        tags: None,
        payload: Some("{}".into()),
        payload_expires_at: now - chrono::Duration::seconds(1),
        deliver_at: None,
        created_at: now,
    }
}

/// A delivery of `msg_id` to `endpoint_id`, both of `app_f`, due now.
pub(crate) fn delivery(msg_id: &str, endpoint_id: &str) -> NewDelivery {
    NewDelivery { msg_id: msg_id.into(), endpoint_id: endpoint_id.into(), app_id: "app_f".into(), due_at: None }
}

/// One app ("app_f"), the given endpoints (id, rate limit) and `per_endpoint`
/// messages owed to each, due now.
pub(crate) async fn fixture(store: &Store, endpoints: &[(&'static str, Option<u32>)], per_endpoint: usize) {
    let eps: Vec<(&'static str, Option<u32>)> = endpoints.to_vec();
    store
        .write(move |tx| {
            tx.insert_application(&app("app_f"))?;
            for (i, (ep, rate)) in eps.iter().enumerate() {
                tx.insert_endpoint(&endpoint(ep, "app_f", *rate))?;
                for n in 0..per_endpoint {
                    let msg = message(&format!("msg_{i}_{n}"), "app_f");
                    tx.insert_message(&msg)?;
                    tx.insert_deliveries(&[delivery(&msg.id, ep)])?;
                }
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
}

pub(crate) fn request(lease: chrono::Duration) -> ClaimRequest {
    ClaimRequest {
        lease,
        slots: Slots { budget: 512, per_endpoint_cap: 64, total_in_flight: 0, busy_slot_limit: 384 },
        in_flight: HashMap::new(),
        live_claims: Vec::new(),
        released_leases: Vec::new(),
        default_rate_limit: 1000,
    }
}

pub(crate) fn outcome(job: &DeliveryJob, status: u16, next: NextStep) -> AttemptOutcome {
    AttemptOutcome {
        claim_id: job.claim_id.clone(),
        attempt: Attempt {
            id: crate::ids::IdKind::Attempt.generate(),
            msg_id: job.msg_id.clone(),
            endpoint_id: job.endpoint_id.clone(),
            app_id: job.app_id.clone(),
            url: job.destination.url.clone(),
            status: if next == NextStep::Succeeded { DeliveryStatus::Success } else { DeliveryStatus::Failed },
            response_status_code: status,
            response: String::new(),
            response_duration_ms: 1,
            trigger: AttemptTrigger::Scheduled,
            error: None,
            created_at: Utc::now(),
        },
        next,
        ignored_by_health: false,
    }
}

async fn status_of(store: &Store, msg_id: &str) -> Vec<DeliveryStatus> {
    let msg_id = msg_id.to_string();
    store.read(move |tx| tx.deliveries_of_message("app_f", &msg_id)).await.unwrap().iter().map(|d| d.status).collect()
}

/// Claims once the store's background work from earlier writes is done (on
/// PostgreSQL, a wake-up round briefly locks the queue entries it marks,
/// and a claim skips locked entries: in service, that round's NOTIFY makes
/// the dispatcher claim again).
pub(crate) async fn claim(store: &Store, req: ClaimRequest) -> StoreResult<Claimed> {
    if let Store::Postgres(pg) = store {
        pg.published().await;
    }
    store.claim(req).await
}

/// Claims until a claim hands out work (or `within` passes: then the last,
/// empty, claim). Work falls due by the store's wall clock, which a test's
/// sleep cannot pin: a loaded machine or a clock step moves one against the
/// other.
async fn claim_when_due(store: &Store, req: ClaimRequest, within: Duration) -> Claimed {
    let deadline = std::time::Instant::now() + within;
    loop {
        let claimed = claim(store, req.clone()).await.unwrap();
        if !claimed.jobs.is_empty() || std::time::Instant::now() >= deadline {
            return claimed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) const LONG: chrono::Duration = chrono::Duration::seconds(30);
pub(crate) const DAYS: chrono::Duration = chrono::Duration::days(5);

#[tokio::test]
async fn due_work_is_claimed_once_and_its_outcome_recorded() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 3).await;
        let first = claim(&t.store, request(LONG)).await.unwrap();
        assert_eq!(first.jobs.len(), 3, "{}", t.name);
        assert!(first.jobs.iter().all(|j| j.endpoint_id == "ep_a" && j.payload.as_deref() == Some(&b"{}"[..])));
        let again = claim(&t.store, request(LONG)).await.unwrap();
        assert!(again.jobs.is_empty(), "{}: leased work was handed out twice", t.name);

        let job = &first.jobs[0];
        t.store.record_outcomes(vec![outcome(job, 200, NextStep::Succeeded)], DAYS).await.unwrap();
        assert_eq!(status_of(&t.store, &job.msg_id).await, [DeliveryStatus::Success], "{}", t.name);
        let job = first.jobs[1].clone();
        // Delays here are long enough that a stalled test machine cannot
        // make them pass before the next line runs.
        let retry = NextStep::RetryIn(chrono::Duration::milliseconds(1500));
        t.store.record_outcomes(vec![outcome(&job, 500, retry)], DAYS).await.unwrap();
        assert_eq!(status_of(&t.store, &job.msg_id).await, [DeliveryStatus::Pending], "{}", t.name);
        // The retry falls due after its delay, not before.
        assert!(claim(&t.store, request(LONG)).await.unwrap().jobs.is_empty(), "{}", t.name);
        let retried = claim_when_due(&t.store, request(LONG), Duration::from_secs(10)).await;
        assert_eq!(retried.jobs.iter().map(|j| &j.msg_id).collect::<Vec<_>>(), [&job.msg_id], "{}", t.name);
        assert_eq!(retried.jobs[0].attempts, 1);
        let msg = job.msg_id.clone();
        let attempts = t
            .store
            .read(move |tx| {
                tx.list_attempts(
                    "app_f",
                    &AttemptFilter { msg_id: Some(msg), ..Default::default() },
                    &Default::default(),
                )
            })
            .await
            .unwrap();
        assert_eq!(attempts.data.len(), 1, "{}", t.name);
    }
}

/// A claim's jobs share its id. A new claim of the node never takes the
/// lease of a live claim, even run out, except one released (its attempt is
/// over, its outcome given up): that one falls due at its lease's end,
/// though another job of the same claim is still in flight.
#[tokio::test]
async fn a_live_claim_keeps_its_leases_but_the_ones_it_released() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 2).await;
        let claimed = claim(&t.store, request(chrono::Duration::milliseconds(300))).await.unwrap().jobs;
        assert_eq!(claimed.len(), 2, "{}", t.name);
        assert_eq!(claimed[0].claim_id, claimed[1].claim_id, "{}", t.name);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let live = ClaimRequest { live_claims: vec![claimed[0].claim_id.clone()], ..request(LONG) };
        assert!(claim(&t.store, live.clone()).await.unwrap().jobs.is_empty(), "{}", t.name);
        let released = LeaseRef {
            claim_id: claimed[1].claim_id.clone(),
            msg_id: claimed[1].msg_id.clone(),
            endpoint_id: claimed[1].endpoint_id.clone(),
        };
        let req = ClaimRequest { released_leases: vec![released.key()], ..live };
        let again = claim_when_due(&t.store, req, Duration::from_secs(10)).await.jobs;
        assert_eq!(again.iter().map(|j| &j.msg_id).collect::<Vec<_>>(), [&claimed[1].msg_id], "{}", t.name);
    }
}

#[tokio::test]
async fn an_expired_lease_falls_due_again_and_a_renewed_one_does_not() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 2).await;
        let short = chrono::Duration::milliseconds(1500);
        let claimed = claim(&t.store, request(short)).await.unwrap().jobs;
        assert_eq!(claimed.len(), 2);
        // Renew one lease only.
        let kept = &claimed[0];
        let lease = LeaseRef {
            claim_id: kept.claim_id.clone(),
            msg_id: kept.msg_id.clone(),
            endpoint_id: kept.endpoint_id.clone(),
        };
        assert_eq!(t.store.extend_leases(vec![lease], LONG).await.unwrap(), 1, "{}", t.name);
        let again = claim_when_due(&t.store, request(LONG), Duration::from_secs(10)).await.jobs;
        assert_eq!(again.iter().map(|j| &j.msg_id).collect::<Vec<_>>(), [&claimed[1].msg_id], "{}", t.name);

        // The first claim of the expired lease records its attempt but no
        // longer moves the delivery: the new claim owns it.
        let stale = outcome(&claimed[1], 200, NextStep::Succeeded);
        t.store.record_outcomes(vec![stale], DAYS).await.unwrap();
        assert_eq!(status_of(&t.store, &claimed[1].msg_id).await, [DeliveryStatus::Sending], "{}", t.name);
        t.store.record_outcomes(vec![outcome(&again[0], 200, NextStep::Succeeded)], DAYS).await.unwrap();
        assert_eq!(status_of(&t.store, &claimed[1].msg_id).await, [DeliveryStatus::Success], "{}", t.name);
    }
}

#[tokio::test]
async fn the_rate_limit_holds_however_often_claims_come() {
    for t in stores().await {
        // 1/s: the claims below would have to take a whole second for the
        // next start slot to come among them.
        fixture(&t.store, &[("ep_slow", Some(1)), ("ep_fast", None)], 10).await;
        let mut slow = 0;
        let mut fast = Vec::new();
        let mut next_due = None;
        for _ in 0..5 {
            let claimed = claim(&t.store, request(LONG)).await.unwrap();
            slow += claimed.jobs.iter().filter(|j| j.endpoint_id == "ep_slow").count();
            fast.extend(claimed.jobs.iter().filter(|j| j.endpoint_id == "ep_fast").map(|j| j.starts_at));
            next_due = next_due.or(claimed.next_due);
        }
        assert_eq!(slow, 1, "{}: a 1/s endpoint got {slow} at once", t.name);
        assert_eq!(fast.len(), 10, "{}: a throttled endpoint held up another", t.name);
        // At 1000/s the fast endpoint's jobs start a millisecond apart.
        for pair in fast.windows(2) {
            assert!(pair[1] >= pair[0] + Duration::from_micros(900), "{}: {fast:?}", t.name);
        }
        // The throttled endpoint is next worth a look near its next slot.
        let wait = next_due.unwrap() - Utc::now();
        assert!(wait > chrono::Duration::milliseconds(100), "{}: {wait}", t.name);
        let later = claim_when_due(&t.store, request(LONG), Duration::from_secs(10)).await;
        assert_eq!(later.jobs.len(), 1, "{}: one slot a second, and no more", t.name);
    }
}

#[tokio::test]
async fn an_endpoint_whose_work_is_done_is_not_due_again() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 1).await;
        let short = chrono::Duration::milliseconds(1500);
        let job = claim(&t.store, request(short)).await.unwrap().jobs.remove(0);
        t.store.record_outcomes(vec![outcome(&job, 200, NextStep::Succeeded)], DAYS).await.unwrap();
        // Its queue entry fell due when the lease would have ended; the
        // claim then finds no work, and nothing is due after it, however
        // near the endpoint's next start slot.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        // By the store's clock, which a sleep cannot pin (see `claim_when_due`).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let after = loop {
            let after = claim(&t.store, request(LONG)).await.unwrap();
            if after.next_due.is_none() || std::time::Instant::now() >= deadline {
                break after;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(after.jobs.is_empty(), "{}", t.name);
        assert_eq!(after.next_due, None, "{}: an idle endpoint stays due", t.name);
    }
}

#[tokio::test]
async fn endpoints_that_answer_again_are_no_longer_failing() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None), ("ep_b", None), ("ep_c", None)], 1).await;
        let jobs = claim(&t.store, request(LONG)).await.unwrap().jobs;
        assert_eq!(jobs.len(), 3, "{}", t.name);
        let retry = NextStep::RetryIn(chrono::Duration::seconds(60));
        let failed: Vec<AttemptOutcome> = jobs.iter().map(|j| outcome(j, 500, retry)).collect();
        t.store.record_outcomes(failed, DAYS).await.unwrap();
        // Two of the three answer again (the batch of a shared outage
        // ending); the third is still failing.
        let answered: Vec<AttemptOutcome> =
            jobs.iter().filter(|j| j.endpoint_id != "ep_b").map(|j| outcome(j, 200, NextStep::Succeeded)).collect();
        t.store.record_outcomes(answered, DAYS).await.unwrap();
        let failing = t
            .store
            .read(|tx| {
                ["ep_a", "ep_b", "ep_c"]
                    .iter()
                    .map(|id| Ok(tx.endpoint("app_f", id)?.and_then(|e| e.failing_since).is_some()))
                    .collect::<StoreResult<Vec<bool>>>()
            })
            .await
            .unwrap();
        assert_eq!(failing, [false, true, false], "{}", t.name);
    }
}

#[tokio::test]
async fn busy_endpoints_cannot_take_the_slots_kept_for_idle_ones() {
    for t in stores().await {
        fixture(&t.store, &[("ep_capped", None), ("ep_idle", None), ("ep_busy", None)], 1).await;
        let mut req = request(LONG);
        let load = |n| EndpointLoad { requests: n, leases: n };
        // Its five requests are answered, but their outcomes not recorded: still busy.
        let answered = EndpointLoad { requests: 0, leases: 5 };
        req.in_flight = [("ep_capped".to_string(), load(64)), ("ep_busy".to_string(), answered)].into_iter().collect();
        req.slots.total_in_flight = 400;
        req.slots.budget = 112;
        let claimed = claim(&t.store, req).await.unwrap();
        let ids: Vec<&str> = claimed.jobs.iter().map(|j| j.endpoint_id.as_str()).collect();
        assert_eq!(ids, ["ep_idle"], "{}: only the idle endpoint may start work", t.name);
        assert!(claimed.waiting_for_slots, "{}", t.name);
        // The waiting endpoints' due work does not make the dispatcher spin:
        // the only other queued work is the idle endpoint's lease.
        assert!(claimed.next_due.unwrap() > Utc::now() + chrono::Duration::seconds(20), "{}", t.name);
    }
}

#[tokio::test]
async fn a_disabled_endpoint_is_skipped_until_enabled_again() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 1).await;
        let job = claim(&t.store, request(LONG)).await.unwrap().jobs.remove(0);
        let gone = outcome(&job, 410, NextStep::GiveUp);
        let recorded = t.store.record_outcomes(vec![gone], DAYS).await.unwrap();
        assert_eq!(recorded.disabled, ["ep_a"], "{}: 410 disables at once", t.name);
        t.store.write(|tx| tx.schedule_delivery("app_f", "msg_0_0", "ep_a", None, true)).await.unwrap();
        assert!(claim(&t.store, request(LONG)).await.unwrap().jobs.is_empty(), "{}", t.name);
        t.store
            .write(|tx| {
                let mut ep = tx.endpoint_for_update("app_f", "ep_a")?.unwrap();
                ep.disabled = false;
                tx.update_endpoint(&ep)?;
                tx.requeue_endpoint("ep_a")
            })
            .await
            .unwrap();
        assert_eq!(claim(&t.store, request(LONG)).await.unwrap().jobs.len(), 1, "{}", t.name);
    }
}

#[tokio::test]
async fn a_row_referring_to_a_deleted_one_is_not_found_not_a_conflict() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 1).await;
        let gone = delivery("msg_0_0", "ep_deleted");
        let result = t.store.write(move |tx| tx.insert_deliveries(std::slice::from_ref(&gone))).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let twice = delivery("msg_0_0", "ep_a");
        let result = t.store.write(move |tx| tx.insert_deliveries(std::slice::from_ref(&twice))).await;
        assert!(matches!(result, Err(StoreError::Conflict(_))), "{}: {result:?}", t.name);
        let result = t.store.write(|tx| tx.schedule_delivery("app_f", "msg_0_0", "ep_deleted", None, true)).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let unsent = delivery("msg_deleted", "ep_a");
        let result = t.store.write(move |tx| tx.insert_deliveries(std::slice::from_ref(&unsent))).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let result = t.store.write(|tx| tx.schedule_delivery("app_f", "msg_deleted", "ep_a", None, true)).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let orphan = message("msg_orphan", "app_deleted");
        let result = t.store.write(move |tx| tx.insert_message(&orphan)).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let orphans = [message("msg_orphan", "app_deleted"), message("msg_kept", "app_f")];
        let result = t.store.write(move |tx| tx.insert_messages_with_fanout(&[&orphans[0], &orphans[1]], &[])).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
    }
}

#[tokio::test]
async fn write_then_hands_over_what_was_committed_and_nothing_of_what_failed() {
    for t in stores().await {
        let (done, answer) = tokio::sync::oneshot::channel();
        let kept = app("app_kept");
        t.store
            .write_then(
                move |tx| tx.insert_application(&kept).map(|()| 7),
                move |result: StoreResult<i32>| {
                    let thread = std::thread::current().name().map(str::to_string);
                    let _ = done.send((result, thread));
                },
            )
            .await;
        let (result, thread) = answer.await.unwrap();
        assert_eq!(result, Ok(7), "{}", t.name);
        if t.store.is_embedded() {
            // Where the COMMIT ended, not a task the result was passed to.
            assert_eq!(thread.as_deref(), Some("hookline-sqlite-writer"), "{}", t.name);
        }
        let found = t.store.read(|tx| tx.application("app_kept")).await.unwrap();
        assert!(found.is_some(), "{}: what `then` was told is committed is there", t.name);

        let (done, answer) = tokio::sync::oneshot::channel();
        let undone = app("app_undone");
        t.store
            .write_then(
                move |tx| {
                    tx.insert_application(&undone)?;
                    Err::<(), _>(StoreError::Refused("the batch failed after its first write".into()))
                },
                move |result| {
                    let _ = done.send(result);
                },
            )
            .await;
        assert!(matches!(answer.await.unwrap(), Err(StoreError::Refused(_))), "{}", t.name);
        let found = t.store.read(|tx| tx.application("app_undone")).await.unwrap();
        assert!(found.is_none(), "{}: a failed write leaves nothing", t.name);
    }
}

#[tokio::test]
async fn a_batch_fans_out_only_the_messages_it_inserted() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None), ("ep_b", None)], 0).await;
        t.store.write(|tx| tx.insert_message(&message("msg_old", "app_f"))).await.unwrap();
        let mut taken = message("msg_taken", "app_f");
        taken.event_id = Some("msg_old".into());
        let fresh = message("msg_new", "app_f");
        let fanout = [delivery("msg_taken", "ep_a"), delivery("msg_new", "ep_a"), delivery("msg_new", "ep_b")];
        let inserted =
            t.store.write(move |tx| tx.insert_messages_with_fanout(&[&taken, &fresh], &fanout)).await.unwrap();
        assert_eq!(inserted, [false, true], "{}: the eventId is taken", t.name);
        let owed = t.store.read(|tx| tx.deliveries_of_message("app_f", "msg_new")).await.unwrap();
        assert_eq!(owed.len(), 2, "{}", t.name);
        let refused = t.store.read(|tx| tx.deliveries_of_message("app_f", "msg_taken")).await.unwrap();
        assert!(refused.is_empty(), "{}: the refused message has no deliveries", t.name);
        // Both deliveries are claimable. (On PostgreSQL the claim waits
        // for the publisher, which marks the queue entries too; the test
        // of the statement alone is in `postgres::dispatch_queue`.)
        let mut jobs: Vec<(String, String)> =
            claim(&t.store, request(LONG)).await.unwrap().jobs.into_iter().map(|j| (j.msg_id, j.endpoint_id)).collect();
        jobs.sort();
        let new = |ep: &str| ("msg_new".to_string(), ep.to_string());
        assert_eq!(jobs, [new("ep_a"), new("ep_b")], "{}: nothing for the refused message", t.name);

        // An endpoint gone from the application refuses the whole batch.
        let other = message("msg_other", "app_f");
        let gone = [delivery("msg_other", "ep_deleted")];
        let result = t.store.write(move |tx| tx.insert_messages_with_fanout(&[&other], &gone)).await;
        assert_eq!(result, Err(StoreError::NotFound), "{}", t.name);
        let kept = t.store.read(|tx| tx.message("app_f", "msg_other")).await.unwrap();
        assert!(kept.is_none(), "{}: its message was not kept", t.name);
    }
}

#[tokio::test]
async fn payloads_and_messages_are_kept_while_a_delivery_is_owed() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 1).await;
        let none = chrono::Duration::zero();
        let purged = t.store.purge_expired(none, 100).await.unwrap().unwrap();
        assert_eq!((purged.payloads, purged.messages), (0, 0), "{}: the delivery is still pending", t.name);
        let job = claim(&t.store, request(LONG)).await.unwrap().jobs.remove(0);
        t.store.record_outcomes(vec![outcome(&job, 200, NextStep::Succeeded)], DAYS).await.unwrap();
        // Past retention means strictly older: let the clock move on.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let purged = t.store.purge_expired(none, 100).await.unwrap().unwrap();
        assert_eq!(purged.payloads, 1, "{}: delivered, the expired payload goes", t.name);
        assert_eq!(purged.messages, 1, "{}: and the message with it", t.name);
        assert_eq!(purged.attempts, 1, "{}", t.name);
    }
}

#[tokio::test]
async fn an_outcome_for_an_endpoint_deleted_meanwhile_is_dropped_and_the_rest_recorded() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None), ("ep_b", None)], 1).await;
        let jobs = claim(&t.store, request(LONG)).await.unwrap().jobs;
        assert_eq!(jobs.len(), 2, "{}", t.name);
        t.store.write(|tx| tx.delete_endpoint("app_f", "ep_a")).await.unwrap();
        let outcomes = jobs.iter().map(|job| outcome(job, 200, NextStep::Succeeded)).collect();
        t.store.record_outcomes(outcomes, DAYS).await.unwrap();
        let attempts =
            t.store.read(|tx| tx.list_attempts("app_f", &AttemptFilter::default(), &Default::default())).await.unwrap();
        let endpoints: Vec<&str> = attempts.data.iter().map(|a| a.endpoint_id.as_str()).collect();
        assert_eq!(endpoints, ["ep_b"], "{}", t.name);
        assert_eq!(status_of(&t.store, "msg_1_0").await, [DeliveryStatus::Success], "{}", t.name);
    }
}

/// Attempts go with their endpoint, their application and their message
/// (on PostgreSQL no foreign key does it for them).
#[tokio::test]
async fn deleting_an_endpoint_or_an_application_deletes_its_deliveries_and_attempts() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None), ("ep_b", None)], 1).await;
        let jobs = claim(&t.store, request(LONG)).await.unwrap().jobs;
        let outcomes = jobs.iter().map(|job| outcome(job, 200, NextStep::Succeeded)).collect();
        t.store.record_outcomes(outcomes, DAYS).await.unwrap();
        let attempted = |store: Store| async move {
            let page = store
                .read(|tx| tx.list_attempts("app_f", &AttemptFilter::default(), &Default::default()))
                .await
                .unwrap();
            let mut endpoints: Vec<String> = page.data.into_iter().map(|a| a.endpoint_id).collect();
            endpoints.sort();
            endpoints
        };
        let delivered = |store: Store, endpoint: &'static str| async move {
            store.read(move |tx| tx.delivery_stats(endpoint, None, None)).await.unwrap().success
        };
        assert_eq!(attempted(t.store.clone()).await, ["ep_a", "ep_b"], "{}", t.name);
        t.store.write(|tx| tx.delete_endpoint("app_f", "ep_a")).await.unwrap();
        assert_eq!(attempted(t.store.clone()).await, ["ep_b"], "{}", t.name);
        assert_eq!(delivered(t.store.clone(), "ep_a").await, 0, "{}: ep_a's delivery is left", t.name);
        assert_eq!(delivered(t.store.clone(), "ep_b").await, 1, "{}", t.name);
        t.store.write(|tx| tx.delete_application("app_f")).await.unwrap();
        assert!(attempted(t.store.clone()).await.is_empty(), "{}", t.name);
        assert_eq!(delivered(t.store.clone(), "ep_b").await, 0, "{}: ep_b's delivery is left", t.name);
    }
}

/// A message of `app_f` sent at `sent_at` (its payload kept a day from
/// now), delivered to `ep_a` just now; its id.
pub(crate) async fn delivered_to_ep_a(store: &Store, sent_at: Timestamp) -> String {
    let mut sent = message("unused", "app_f");
    sent.id = crate::ids::IdKind::Message.generate_at(sent_at.timestamp_millis());
    (sent.created_at, sent.event_id, sent.payload_expires_at) = (sent_at, None, Utc::now() + chrono::Duration::days(1));
    let msg_id = sent.id.clone();
    store
        .write(move |tx| {
            tx.insert_message(&sent)?;
            tx.insert_deliveries(&[delivery(&sent.id, "ep_a")])
        })
        .await
        .unwrap();
    let jobs = claim(store, request(LONG)).await.unwrap().jobs;
    let outcomes = jobs.iter().map(|job| outcome(job, 200, NextStep::Succeeded)).collect();
    store.record_outcomes(outcomes, DAYS).await.unwrap();
    msg_id
}

#[tokio::test]
async fn a_purged_message_takes_its_deliveries_and_younger_attempts_with_it() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 0).await;
        // Attempted now, three days after it was sent.
        let msg_id = delivered_to_ep_a(&t.store, Utc::now() - chrono::Duration::days(3)).await;

        let purged = t.store.purge_expired(chrono::Duration::days(1), 100).await.unwrap().unwrap();
        assert_eq!((purged.messages, purged.attempts), (1, 0), "{}: the attempt is younger than the retention", t.name);
        let left = t
            .store
            .read(move |tx| {
                let filter = AttemptFilter { msg_id: Some(msg_id.clone()), ..Default::default() };
                tx.list_attempts("app_f", &filter, &Default::default())
            })
            .await
            .unwrap();
        assert!(left.data.is_empty(), "{}: {:?}", t.name, left.data);
        let delivered = t.store.read(|tx| tx.delivery_stats("ep_a", None, None)).await.unwrap();
        assert_eq!(delivered.success, 0, "{}: the purged message's delivery is left", t.name);
    }
}

#[tokio::test]
async fn messages_and_attempts_go_once_older_than_retention_and_not_before() {
    use crate::ids::IdKind;
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 0).await;
        let old_at = Utc::now() - chrono::Duration::days(3);
        let mut old = message("unused", "app_f");
        (old.id, old.created_at, old.event_id) = (IdKind::Message.generate_at(old_at.timestamp_millis()), old_at, None);
        let mut recent = message("unused", "app_f");
        (recent.id, recent.event_id) = (IdKind::Message.generate(), None);
        let ids = [old.id.clone(), recent.id.clone()];
        t.store
            .write(move |tx| {
                for msg in [&old, &recent] {
                    tx.insert_message(msg)?;
                    tx.insert_deliveries(&[delivery(&msg.id, "ep_a")])?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let jobs = claim(&t.store, request(LONG)).await.unwrap().jobs;
        assert_eq!(jobs.len(), 2, "{}", t.name);
        let outcomes = jobs
            .iter()
            .map(|job| {
                let mut done = outcome(job, 200, NextStep::Succeeded);
                if job.msg_id == ids[0] {
                    // Its attempt is as old as its message.
                    done.attempt.id = IdKind::Attempt.generate_at(old_at.timestamp_millis());
                    done.attempt.created_at = old_at;
                }
                done
            })
            .collect();
        t.store.record_outcomes(outcomes, DAYS).await.unwrap();

        let purged = t.store.purge_expired(chrono::Duration::days(1), 100).await.unwrap().unwrap();
        assert_eq!((purged.messages, purged.attempts), (1, 1), "{}: only the three-day-old ones", t.name);
        let [old_id, recent_id] = ids;
        let kept = t
            .store
            .read(move |tx| Ok::<_, StoreError>((tx.message("app_f", &old_id)?, tx.message("app_f", &recent_id)?)))
            .await
            .unwrap();
        assert!(kept.0.is_none() && kept.1.is_some(), "{}: {kept:?}", t.name);
        let again = t.store.purge_expired(chrono::Duration::days(1), 100).await.unwrap().unwrap();
        assert_eq!((again.messages, again.attempts), (0, 0), "{}", t.name);
    }
}

// ---- races: every write is correct when it runs on several nodes at once --

const RACERS: usize = 12;

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_create_one_message() {
    for t in stores().await {
        fixture(&t.store, &[], 0).await;
        let mut racers = Vec::new();
        for i in 0..RACERS {
            let store = t.store.clone();
            racers.push(tokio::spawn(async move {
                store
                    .write(move |tx| {
                        let key = b"the-key".to_vec();
                        let claim = [(key.clone(), IdempotentResponse::pending())];
                        if tx.claim_idempotency_keys(&claim, now())?.is_empty() {
                            let previous = tx.idempotent_response(&key)?.expect("a key not taken has its answer");
                            return Ok::<_, StoreError>(String::from_utf8(previous.body).unwrap());
                        }
                        // Its write would conflict with a concurrent twin's,
                        // had the twin not been made to wait at the claim.
                        let mut msg = message(&format!("msg_race_{i}"), "app_f");
                        msg.event_id = Some("one-event".into());
                        tx.insert_message(&msg)?;
                        let answer =
                            IdempotentResponse { body_hash: vec![1], status: 202, body: msg.id.clone().into() };
                        tx.fill_idempotent_responses(&[(key, answer)])?;
                        Ok(msg.id)
                    })
                    .await
            }));
        }
        let mut answers = Vec::new();
        for r in racers {
            answers.push(r.await.unwrap().unwrap_or_else(|e| panic!("{}: {e}", t.name)));
        }
        answers.dedup();
        assert_eq!(answers.len(), 1, "{}: every racer answers the first message: {answers:?}", t.name);
        let page =
            t.store.read(|tx| tx.list_messages("app_f", &Default::default(), &Default::default())).await.unwrap();
        assert_eq!(page.data.len(), 1, "{}: one message created", t.name);
    }
}

#[tokio::test]
async fn concurrent_creations_of_one_uid_create_one_application() {
    for t in stores().await {
        let mut racers = Vec::new();
        for i in 0..RACERS {
            let store = t.store.clone();
            racers.push(tokio::spawn(async move {
                store
                    .write(move |tx| {
                        let mut candidate = app(&format!("app_racer{i}"));
                        candidate.uid = Some("shared-uid".into());
                        match tx.insert_application(&candidate) {
                            Ok(()) => Ok(candidate.id),
                            Err(StoreError::Conflict(_)) => Ok(tx.application("shared-uid")?.unwrap().id),
                            Err(e) => Err(e),
                        }
                    })
                    .await
            }));
        }
        let mut ids = Vec::new();
        for r in racers {
            ids.push(r.await.unwrap().unwrap_or_else(|e| panic!("{}: {e}", t.name)));
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{}: {ids:?}", t.name);
    }
}

#[tokio::test]
async fn a_patch_racing_an_auto_disable_does_not_enable_the_endpoint() {
    for t in stores().await {
        fixture(&t.store, &[("ep_a", None)], 1).await;
        let job = claim(&t.store, request(LONG)).await.unwrap().jobs.remove(0);
        let (read, has_read) = std::sync::mpsc::channel::<()>();
        let read = Arc::new(std::sync::Mutex::new(read));
        // The PATCH reads the endpoint (enabled), then writes it back a
        // little later with a new description.
        let patch = tokio::spawn({
            let store = t.store.clone();
            async move {
                store
                    .write(move |tx| {
                        let mut ep = tx.endpoint_for_update("app_f", "ep_a")?.unwrap();
                        let _ = read.lock().unwrap().send(());
                        std::thread::sleep(Duration::from_millis(300));
                        ep.description = "patched".into();
                        tx.update_endpoint(&ep)
                    })
                    .await
            }
        });
        // Meanwhile a 410 disables it.
        tokio::task::spawn_blocking(move || has_read.recv().unwrap()).await.unwrap();
        let gone = outcome(&job, 410, NextStep::GiveUp);
        t.store.record_outcomes(vec![gone], DAYS).await.unwrap();
        patch.await.unwrap().unwrap();
        let ep = t.store.read(|tx| tx.endpoint("app_f", "ep_a")).await.unwrap().unwrap();
        assert!(ep.disabled, "{}: the PATCH re-enabled an endpoint the dispatcher disabled", t.name);
        assert_eq!(ep.description, "patched", "{}", t.name);
    }
}

#[tokio::test]
async fn a_key_rotation_from_a_version_moves_only_that_version() {
    for t in stores().await {
        let now = Utc::now();
        let integration = Integration {
            id: "integ_a".into(),
            app_id: "app_i".into(),
            name: "a".into(),
            feature_flags: None,
            key_version: 1,
            created_at: now,
            updated_at: now,
        };
        t.store
            .write(move |tx| {
                tx.insert_application(&app("app_i"))?;
                tx.insert_integration(&integration)
            })
            .await
            .unwrap();
        let rotate = |from: Option<i64>| {
            t.store.write(move |tx| tx.rotate_integration_key("app_i", "integ_a", from, Utc::now()))
        };
        assert_eq!(rotate(Some(1)).await.unwrap().map(|i| i.key_version), Some(2), "{}", t.name);
        // A logout by a holder of version 1 after that rotation changes nothing.
        assert_eq!(rotate(Some(1)).await.unwrap(), None, "{}", t.name);
        assert_eq!(rotate(None).await.unwrap().map(|i| i.key_version), Some(3), "{}", t.name);
    }
}
