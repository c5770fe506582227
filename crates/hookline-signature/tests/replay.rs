//! ReplayGuard: second arrival rejected, expiry after the window, capacity bound.

use std::sync::Arc;
use std::time::Duration;

use hookline_signature::{ReplayGuard, Secret, Verified, Verifier, VerifyError};

fn secret() -> Secret {
    Secret::from_bytes(vec![7u8; 32]).unwrap()
}

/// Signs and verifies a message, giving the `Verified` the guard takes.
fn verified(verifier: &Verifier, id: &str, ts: i64, now: i64) -> Verified {
    let sig = secret().sign(id, ts, b"{}").to_string();
    let ts = ts.to_string();
    let h = [("webhook-id", id), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sig.as_str())];
    verifier.verify_at(&h, b"{}", now).unwrap()
}

#[test]
fn second_arrival_is_rejected() {
    let v = Verifier::new(secret());
    let guard = ReplayGuard::new(100);
    let first = verified(&v, "msg_a", 1000, 1000);
    assert_eq!(guard.check_at(&first, 1000), Ok(()));
    assert_eq!(guard.check_at(&first, 1000), Err(VerifyError::Replayed));
    assert_eq!(guard.check_at(&first, 1299), Err(VerifyError::Replayed));
    // Another id is fine.
    let other = verified(&v, "msg_b", 1000, 1000);
    assert_eq!(guard.check_at(&other, 1000), Ok(()));
    assert_eq!(guard.len(), 2);
}

#[test]
fn retry_with_new_timestamp_is_reported_as_replayed_while_first_lives() {
    let v = Verifier::new(secret());
    let guard = ReplayGuard::new(100);
    guard.check_at(&verified(&v, "msg_a", 1000, 1000), 1000).unwrap();
    let retry = verified(&v, "msg_a", 1100, 1100);
    assert_eq!(guard.check_at(&retry, 1100), Err(VerifyError::Replayed));
}

#[test]
fn verify_with_guard_end_to_end() {
    let v = Verifier::new(secret());
    let guard = ReplayGuard::new(100);
    let sig = secret().sign("msg_a", 1000, b"{}").to_string();
    let h = [("webhook-id", "msg_a"), ("webhook-timestamp", "1000"), ("webhook-signature", sig.as_str())];
    v.verify_with_guard_at(&h, b"{}", &guard, 1000).unwrap();
    assert_eq!(v.verify_with_guard_at(&h, b"{}", &guard, 1010), Err(VerifyError::Replayed));
    // A forged request never reaches the guard, so it cannot burn an id.
    let forged = [("webhook-id", "msg_b"), ("webhook-timestamp", "1000"), ("webhook-signature", sig.as_str())];
    assert_eq!(v.verify_with_guard_at(&forged, b"{}", &guard, 1000), Err(VerifyError::NoMatchingSignature));
    assert_eq!(guard.len(), 1);
    // Once the window has passed, the replay is rejected by the timestamp check.
    assert_eq!(v.verify_with_guard_at(&h, b"{}", &guard, 1301), Err(VerifyError::TimestampTooOld));
}

#[test]
fn entries_expire_after_the_window() {
    let v = Verifier::new(secret()).tolerance(Duration::from_secs(60));
    let guard = ReplayGuard::new(100);
    let a = verified(&v, "msg_a", 1000, 1000);
    assert_eq!(a.valid_until(), 1060);
    guard.check_at(&a, 1000).unwrap();
    assert_eq!(guard.check_at(&a, 1060), Err(VerifyError::Replayed));
    // At 1061 the request itself would be too old; the guard forgets it.
    assert_eq!(guard.check_at(&a, 1061), Ok(()));
    assert_eq!(guard.len(), 1);
}

#[test]
fn expiry_follows_the_signed_timestamp_not_arrival_order() {
    let v = Verifier::new(secret()).tolerance(Duration::from_secs(100));
    let guard = ReplayGuard::new(100);
    // Arrives first but was signed later: lives longer.
    guard.check_at(&verified(&v, "late", 1090, 1000), 1000).unwrap();
    guard.check_at(&verified(&v, "early", 950, 1000), 1000).unwrap();
    // At 1100 "early" (valid until 1050) is gone, "late" (1190) is not.
    guard.check_at(&verified(&v, "probe", 1100, 1100), 1100).unwrap();
    assert_eq!(guard.len(), 2);
    assert_eq!(guard.check_at(&verified(&v, "late", 1090, 1100), 1100), Err(VerifyError::Replayed));
    assert_eq!(guard.check_at(&verified(&v, "early", 1050, 1100), 1100), Ok(()));
}

#[test]
fn capacity_bound_fails_closed_and_recovers_after_expiry() {
    let v = Verifier::new(secret()).tolerance(Duration::from_secs(60));
    let guard = ReplayGuard::new(3);
    for id in ["a", "b", "c"] {
        guard.check_at(&verified(&v, id, 1000, 1000), 1000).unwrap();
    }
    let d = verified(&v, "d", 1000, 1000);
    assert_eq!(guard.check_at(&d, 1000), Err(VerifyError::ReplayGuardFull));
    assert_eq!(guard.len(), 3);
    // Known ids are still reported as replays, not as "full".
    assert_eq!(guard.check_at(&verified(&v, "a", 1000, 1000), 1000), Err(VerifyError::Replayed));
    // The refused id was not recorded; once the others expire it gets in.
    let d_later = verified(&v, "d", 1040, 1061);
    assert_eq!(guard.check_at(&d_later, 1061), Ok(()));
    assert_eq!(guard.len(), 1);
    assert!(guard.len() <= guard.capacity());
}

#[test]
fn capacity_is_never_exceeded() {
    let v = Verifier::new(secret()).tolerance(Duration::from_secs(10));
    let guard = ReplayGuard::new(50);
    let mut accepted = 0;
    for i in 0..1000i64 {
        let now = 1000 + i / 20; // 20 messages a second, each valid 10 s
        let r = guard.check_at(&verified(&v, &format!("msg_{i}"), now, now), now);
        match r {
            Ok(()) => accepted += 1,
            Err(e) => assert_eq!(e, VerifyError::ReplayGuardFull),
        }
        assert!(guard.len() <= 50);
    }
    assert!(accepted > 50, "expired entries must make room: {accepted}");
}

#[test]
fn zero_capacity_refuses_everything() {
    let v = Verifier::new(secret());
    let guard = ReplayGuard::new(0);
    assert_eq!(guard.check_at(&verified(&v, "a", 1000, 1000), 1000), Err(VerifyError::ReplayGuardFull));
}

#[test]
fn concurrent_arrivals_of_one_id_let_exactly_one_through() {
    let v = Verifier::new(secret());
    let guard = Arc::new(ReplayGuard::new(1000));
    let msg = verified(&v, "msg_race", 1000, 1000);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let guard = Arc::clone(&guard);
            let msg = msg.clone();
            std::thread::spawn(move || guard.check_at(&msg, 1000).is_ok())
        })
        .collect();
    let passed = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
    assert_eq!(passed, 1);
}
