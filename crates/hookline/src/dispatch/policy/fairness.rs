//! Who gets the node's attempt slots: however slow some endpoints are, they
//! cannot take every slot, and an endpoint with nothing in flight is served
//! before busy ones.

/// One endpoint's attempts on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointLoad {
    /// Requests open to it: what its concurrency cap limits.
    pub requests: usize,
    /// Attempts holding a lease, answered ones whose outcome is not
    /// recorded yet included: what makes it busy rather than idle.
    pub leases: usize,
}

/// The node's slot rules for one claim.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Most deliveries to claim in all, this time.
    pub budget: usize,
    /// Most requests open to one endpoint from this node.
    pub per_endpoint_cap: usize,
    /// Attempts this node holds a lease for.
    pub total_in_flight: usize,
    /// Endpoints with attempts in flight may not push the node's total past
    /// this; the rest is kept for endpoints with nothing in flight.
    pub busy_slot_limit: usize,
}

impl Slots {
    /// How many more deliveries an endpoint with `load` may start, given
    /// `planned` already granted in this claim; `None` when it must wait
    /// for a slot to free up.
    pub fn room(&self, load: EndpointLoad, planned: usize) -> Option<usize> {
        let left = self.budget.saturating_sub(planned);
        if left == 0 || load.requests >= self.per_endpoint_cap {
            return None;
        }
        if load.leases > 0 && self.total_in_flight + planned >= self.busy_slot_limit {
            return None;
        }
        Some((self.per_endpoint_cap - load.requests).min(left))
    }
}

/// Orders candidates so endpoints with nothing in flight come first, keeping
/// the store's order (earliest due first) otherwise.
pub fn idle_first<T>(candidates: &mut [T], load: impl Fn(&T) -> EndpointLoad) {
    candidates.sort_by_key(|c| load(c).leases > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOTS: Slots = Slots { budget: 112, per_endpoint_cap: 64, total_in_flight: 400, busy_slot_limit: 384 };

    fn load(requests: usize, leases: usize) -> EndpointLoad {
        EndpointLoad { requests, leases }
    }

    #[test]
    fn busy_endpoints_cannot_take_the_slots_kept_for_idle_ones() {
        assert_eq!(SLOTS.room(load(5, 5), 0), None, "busy, and the node is past the busy limit");
        assert_eq!(SLOTS.room(load(0, 0), 0), Some(64), "idle endpoints may still start");
        assert_eq!(SLOTS.room(load(64, 64), 0), None, "at its own cap");
        assert_eq!(SLOTS.room(load(0, 0), 100), Some(12), "never past the budget");
        assert_eq!(SLOTS.room(load(0, 0), 112), None);
        let quiet = Slots { total_in_flight: 10, ..SLOTS };
        assert_eq!(quiet.room(load(60, 60), 0), Some(4));
    }

    #[test]
    fn answered_attempts_free_the_cap_but_keep_the_endpoint_busy() {
        let quiet = Slots { total_in_flight: 100, ..SLOTS };
        assert_eq!(quiet.room(load(0, 64), 0), Some(64), "its requests are all answered");
        assert_eq!(SLOTS.room(load(0, 64), 0), None, "still busy: the idle endpoints' slots are not its");
    }

    #[test]
    fn idle_endpoints_go_first_in_due_order() {
        let mut c = vec![("a", load(0, 3)), ("b", load(0, 0)), ("c", load(1, 1)), ("d", load(0, 0))];
        idle_first(&mut c, |(_, l)| *l);
        assert_eq!(c.iter().map(|(id, _)| *id).collect::<String>(), "bdac");
    }
}
