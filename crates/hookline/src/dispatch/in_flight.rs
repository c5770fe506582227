//! The attempts this node has in flight: counts for the claim's slot rules,
//! and the claims whose leases the node keeps alive.
//!
//! An attempt holds its lease until its outcome is recorded, but counts
//! toward its endpoint's concurrency only while its request is open: the
//! cap is on connections to the endpoint, and an answered attempt waiting
//! for the store's next commit is not one.
//!
//! A slot is held by a [`Slot`] guard, so it is given back however the
//! attempt ends, a panic included: a leaked slot would shrink the node's
//! capacity for good.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::dispatch::policy::fairness::EndpointLoad;
use crate::store::queue::{lease_key, LeaseRef};

#[derive(Default)]
struct State {
    by_endpoint: HashMap<String, EndpointLoad>,
    /// (claim, message, endpoint) → the lease its attempt holds (one claim
    /// id is shared by every delivery of one claim). The claim is part of
    /// the key: a delivery resent while its attempt is in flight can be
    /// claimed again by this node, and each attempt keeps its own lease.
    leases: HashMap<LeaseKey, LeaseRef>,
    /// Leases held, by claim.
    claims: HashMap<String, usize>,
    /// Leases whose attempts ended without their outcome recorded (given
    /// up) while other attempts of their claim are in flight: the claim
    /// stays live, but these deliveries must fall due again. Forgotten with
    /// their claim's last lease.
    released: HashSet<LeaseKey>,
}

type LeaseKey = (String, String, String);

fn key_of(lease: &LeaseRef) -> LeaseKey {
    (lease.claim_id.clone(), lease.msg_id.clone(), lease.endpoint_id.clone())
}

#[derive(Default)]
pub struct InFlight {
    state: Mutex<State>,
    /// Rung whenever a slot is given back.
    pub freed: Notify,
}

/// One attempt's place in [`InFlight`]; given back when dropped.
pub struct Slot {
    owner: Arc<InFlight>,
    lease: LeaseRef,
    /// Its request is open (it counts in its endpoint's `requests`).
    requesting: bool,
    /// Its outcome was given up: the lease is released, not kept.
    released: bool,
}

impl InFlight {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under a panic (every change is one
        // statement), so a poisoned lock is safe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn take(self: &Arc<Self>, lease: LeaseRef) -> Slot {
        let mut state = self.lock();
        let load = state.by_endpoint.entry(lease.endpoint_id.clone()).or_default();
        load.requests += 1;
        load.leases += 1;
        state.leases.insert(key_of(&lease), lease.clone());
        *state.claims.entry(lease.claim_id.clone()).or_default() += 1;
        Slot { owner: self.clone(), lease, requesting: true, released: false }
    }

    pub fn total(&self) -> usize {
        self.lock().leases.len()
    }

    /// The leases to keep alive.
    pub fn leases(&self) -> Vec<LeaseRef> {
        self.lock().leases.values().cloned().collect()
    }

    /// What a claim must know of the attempts in flight, read under one
    /// lock: a claim asks for it on the store's writer thread, once a batch.
    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            total: state.leases.len(),
            by_endpoint: state.by_endpoint.clone(),
            live_claims: state.claims.keys().cloned().collect(),
            released: state.released.iter().map(|(claim, msg, endpoint)| lease_key(claim, msg, endpoint)).collect(),
        }
    }
}

/// The attempts in flight as a claim sees them.
pub struct Snapshot {
    pub total: usize,
    pub by_endpoint: HashMap<String, EndpointLoad>,
    /// The claims their leases belong to.
    pub live_claims: Vec<String>,
    /// Leases of live claims whose attempts are over (see `State::released`),
    /// as [`LeaseRef::key`]s.
    pub released: Vec<String>,
}

impl Slot {
    /// The attempt's outcome was given up: its delivery must fall due again
    /// when the lease runs out, even while its claim lives on.
    pub fn release(&mut self) {
        self.released = true;
    }

    /// The request is over: the endpoint has room for another one, while
    /// the lease stays held until the outcome is recorded.
    pub fn answered(&mut self) {
        if std::mem::take(&mut self.requesting) {
            if let Some(load) = self.owner.lock().by_endpoint.get_mut(&self.lease.endpoint_id) {
                load.requests = load.requests.saturating_sub(1);
            }
            self.owner.freed.notify_one();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.owner.lock();
        let endpoint_id = &self.lease.endpoint_id;
        if let Some(load) = state.by_endpoint.get_mut(endpoint_id) {
            load.requests = load.requests.saturating_sub(usize::from(self.requesting));
            load.leases = load.leases.saturating_sub(1);
            if load.leases == 0 {
                state.by_endpoint.remove(endpoint_id);
            }
        }
        let key = key_of(&self.lease);
        state.leases.remove(&key);
        let claim = &self.lease.claim_id;
        let left = state.claims.get_mut(claim).map(|n| {
            *n -= 1;
            *n
        });
        if left == Some(0) {
            state.claims.remove(claim);
            if !state.released.is_empty() {
                state.released.retain(|(c, _, _)| c != claim);
            }
        } else if self.released {
            state.released.insert(key);
        }
        drop(state);
        self.owner.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(msg: &str, endpoint: &str) -> LeaseRef {
        LeaseRef { claim_id: "claim".into(), msg_id: msg.into(), endpoint_id: endpoint.into() }
    }

    #[tokio::test]
    async fn a_panicking_attempt_gives_its_slot_back() {
        let in_flight = Arc::new(InFlight::default());
        let kept = in_flight.take(lease("c1", "ep_a"));
        let slot = in_flight.take(lease("c2", "ep_a"));
        assert_eq!(in_flight.total(), 2);
        let task = tokio::spawn(async move {
            let _slot = slot;
            panic!("a bug in an attempt");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(in_flight.total(), 1);
        let snapshot = in_flight.snapshot();
        assert_eq!(snapshot.by_endpoint["ep_a"], EndpointLoad { requests: 1, leases: 1 });
        assert_eq!(in_flight.leases().iter().map(|l| l.msg_id.as_str()).collect::<Vec<_>>(), ["c1"]);
        assert_eq!(snapshot.live_claims, ["claim"]);
        assert!(snapshot.released.is_empty(), "a panic is not a release");
        drop(kept);
        assert!(in_flight.snapshot().by_endpoint.is_empty());
        assert!(in_flight.snapshot().live_claims.is_empty());
    }

    /// A delivery resent while its first attempt is in flight, and claimed
    /// again by the same node: the first attempt's end keeps the second's
    /// lease alive and counted.
    #[test]
    fn two_claims_of_one_delivery_keep_their_own_leases() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.take(lease("c1", "ep_a"));
        let again = LeaseRef { claim_id: "claim_2".into(), ..lease("c1", "ep_a") };
        let _second = in_flight.take(again);
        assert_eq!(in_flight.total(), 2);
        drop(first);
        assert_eq!(in_flight.total(), 1);
        let kept: Vec<String> = in_flight.leases().into_iter().map(|l| l.claim_id).collect();
        assert_eq!(kept, ["claim_2"]);
        assert_eq!(in_flight.snapshot().live_claims, ["claim_2"]);
    }

    #[test]
    fn an_answered_attempt_frees_its_endpoint_but_keeps_its_lease_until_dropped() {
        let in_flight = Arc::new(InFlight::default());
        let mut first = in_flight.take(lease("c1", "ep_a"));
        let _second = in_flight.take(lease("c2", "ep_a"));
        first.answered();
        first.answered();
        let snapshot = in_flight.snapshot();
        assert_eq!((snapshot.total, snapshot.by_endpoint["ep_a"]), (2, EndpointLoad { requests: 1, leases: 2 }));
        assert_eq!(in_flight.leases().len(), 2);
        drop(first);
        let snapshot = in_flight.snapshot();
        assert_eq!((snapshot.total, snapshot.by_endpoint["ep_a"]), (1, EndpointLoad { requests: 1, leases: 1 }));
    }

    /// An attempt whose outcome was given up releases its lease: its claim
    /// stays live for the others, and its delivery is named as released
    /// until the claim's last lease goes.
    #[test]
    fn a_released_lease_is_named_while_its_claim_lives_on() {
        let in_flight = Arc::new(InFlight::default());
        let mut given_up = in_flight.take(lease("c1", "ep_a"));
        let other = in_flight.take(lease("c2", "ep_a"));
        given_up.release();
        drop(given_up);
        let snapshot = in_flight.snapshot();
        assert_eq!(snapshot.live_claims, ["claim"]);
        assert_eq!(snapshot.released, ["claim c1 ep_a"]);
        drop(other);
        let snapshot = in_flight.snapshot();
        assert!(snapshot.live_claims.is_empty() && snapshot.released.is_empty());
        // Released as the claim's last lease: nothing to name.
        let mut last = in_flight.take(lease("c3", "ep_a"));
        last.release();
        drop(last);
        assert!(in_flight.snapshot().released.is_empty());
    }
}
