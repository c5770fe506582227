//! [`ReplayGuard`]: rejects a second arrival of an accepted message id.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use crate::error::VerifyError;
use crate::verify::Verified;

/// Remembers the ids of accepted webhooks for as long as a replay of the same
/// request could still pass the timestamp check, and rejects a second arrival
/// with [`VerifyError::Replayed`].
///
/// # What it remembers, and for how long
///
/// Each accepted id is kept until [`Verified::valid_until`] (its signed
/// timestamp plus the verifier's tolerance). After that a replay of the same
/// request fails with [`VerifyError::TimestampTooOld`] anyway, so the entry is
/// dropped. The guard is keyed on the id alone, so a sender's legitimate
/// retry of a message you already accepted (same id, new timestamp) is also
/// reported as `Replayed` while the first entry lives; if you processed the
/// first arrival, answer such a retry with a 2xx.
///
/// # Bounded memory: it fails closed
///
/// At most `capacity` ids are kept. Expired ids are evicted first; when the
/// guard is still full of unexpired ids, a new id is refused with
/// [`VerifyError::ReplayGuardFull`] instead of evicting the oldest. Evicting
/// would silently reopen the replay window for the evicted ids, whereas
/// refusing only delays delivery: webhook senders retry failed deliveries, and
/// only correctly signed requests reach the guard, so an outsider cannot fill
/// it. Size `capacity` above the number of webhooks you expect within twice the
/// tolerance. A refused id is not recorded.
///
/// # Scope
///
/// In memory, per process: several receiver instances behind a load balancer
/// each have their own guard, and a restart forgets everything. For
/// exactly-once processing, store ids durably (e.g. a unique index) instead.
///
/// The guard is `Sync`; share it by reference or in an `Arc`.
///
/// ```
/// use hookline_signature::{ReplayGuard, Secret, Verifier, VerifyError};
///
/// let secret = Secret::from_bytes(vec![1u8; 24])?;
/// let sig = secret.sign("msg_1", 1000, b"{}").to_string();
/// let headers = [
///     ("webhook-id", "msg_1"),
///     ("webhook-timestamp", "1000"),
///     ("webhook-signature", sig.as_str()),
/// ];
/// let verifier = Verifier::new(secret);
/// let guard = ReplayGuard::new(10_000);
///
/// let verified = verifier.verify_at(&headers, b"{}", 1000)?;
/// guard.check_at(&verified, 1000)?;
/// assert_eq!(guard.check_at(&verified, 1001), Err(VerifyError::Replayed));
/// assert_eq!(guard.len(), 1);
/// # Ok::<(), VerifyError>(())
/// ```
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// id -> valid_until
    by_id: HashMap<String, i64>,
    /// (valid_until, id), to evict in expiry order.
    by_expiry: BTreeSet<(i64, String)>,
}

impl State {
    /// Drops every entry that expired before `now`.
    fn evict_expired(&mut self, now: i64) {
        while let Some((valid_until, _)) = self.by_expiry.first() {
            if *valid_until >= now {
                break;
            }
            if let Some((_, id)) = self.by_expiry.pop_first() {
                self.by_id.remove(&id);
            }
        }
    }
}

impl ReplayGuard {
    /// A guard that keeps at most `capacity` ids (0 refuses everything).
    ///
    /// ```
    /// use hookline_signature::ReplayGuard;
    ///
    /// let guard = ReplayGuard::new(50_000);
    /// assert_eq!(guard.capacity(), 50_000);
    /// assert!(guard.is_empty());
    /// ```
    pub fn new(capacity: usize) -> Self {
        ReplayGuard { capacity, state: Mutex::new(State::default()) }
    }

    /// Records `verified`'s id, or rejects it if it was already recorded and
    /// has not expired, using the system clock.
    ///
    /// ```no_run
    /// # use hookline_signature::{ReplayGuard, Secret, Verifier};
    /// # fn f(headers: &[(&str, &str)], body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// # let verifier = Verifier::new(Secret::from_bytes(vec![1u8; 24])?);
    /// let guard = ReplayGuard::new(10_000);
    /// let verified = verifier.verify(headers, body)?;
    /// guard.check(&verified)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn check(&self, verified: &Verified) -> Result<(), VerifyError> {
        self.check_at(verified, crate::verify::unix_now())
    }

    /// [`check`](Self::check) as if the clock read `now` (unix seconds).
    ///
    /// Checking and recording happen under one lock, so of two concurrent
    /// arrivals of the same id exactly one passes.
    ///
    /// ```
    /// use hookline_signature::{ReplayGuard, Secret, Verifier, VerifyError};
    ///
    /// let secret = Secret::from_bytes(vec![1u8; 24])?;
    /// let sig = secret.sign("msg_1", 1000, b"").to_string();
    /// let h = [("webhook-id", "msg_1"), ("webhook-timestamp", "1000"), ("webhook-signature", sig.as_str())];
    /// let verified = Verifier::new(secret).verify_at(&h, b"", 1000)?;
    ///
    /// let guard = ReplayGuard::new(10);
    /// assert_eq!(guard.check_at(&verified, 1000), Ok(()));
    /// assert_eq!(guard.check_at(&verified, 1300), Err(VerifyError::Replayed));
    /// // Past valid_until (1000 + 300) the entry is gone; the verifier would
    /// // reject that request as too old by then anyway.
    /// assert_eq!(guard.check_at(&verified, 1301), Ok(()));
    /// # Ok::<(), VerifyError>(())
    /// ```
    pub fn check_at(&self, verified: &Verified, now: i64) -> Result<(), VerifyError> {
        let mut state = self.lock();
        state.evict_expired(now);
        if state.by_id.contains_key(verified.msg_id()) {
            return Err(VerifyError::Replayed);
        }
        if state.by_id.len() >= self.capacity {
            return Err(VerifyError::ReplayGuardFull);
        }
        let id = verified.msg_id().to_owned();
        state.by_expiry.insert((verified.valid_until(), id.clone()));
        state.by_id.insert(id, verified.valid_until());
        Ok(())
    }

    /// How many ids are currently held (expired ones may still be counted
    /// until the next check evicts them).
    ///
    /// ```
    /// use hookline_signature::ReplayGuard;
    ///
    /// assert_eq!(ReplayGuard::new(10).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no ids are held.
    ///
    /// ```
    /// use hookline_signature::ReplayGuard;
    ///
    /// assert!(ReplayGuard::new(10).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of ids held at once.
    ///
    /// ```
    /// use hookline_signature::ReplayGuard;
    ///
    /// assert_eq!(ReplayGuard::new(10).capacity(), 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent between operations, so a panic elsewhere
        // while holding the lock leaves nothing half-done: recover from poison.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
