//! Who gets the node's attempt slots: however slow some endpoints are, they
//! cannot take every slot, and an endpoint with nothing in flight is served
//! before busy ones.

/// The node's slot rules for one claim.
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// Most deliveries to claim in all, this time.
    pub budget: usize,
    /// Most deliveries in flight to one endpoint on this node.
    pub per_endpoint_cap: usize,
    /// Deliveries this node has in flight.
    pub total_in_flight: usize,
    /// Endpoints with work in flight may not push the node's total past
    /// this; the rest is kept for endpoints with nothing in flight.
    pub busy_slot_limit: usize,
}

impl Slots {
    /// How many more deliveries an endpoint with `in_flight` of its own may
    /// start, given `planned` already granted in this claim; `None` when it
    /// must wait for a slot to free up.
    pub fn room(&self, in_flight: usize, planned: usize) -> Option<usize> {
        let left = self.budget.saturating_sub(planned);
        if left == 0 || in_flight >= self.per_endpoint_cap {
            return None;
        }
        if in_flight > 0 && self.total_in_flight + planned >= self.busy_slot_limit {
            return None;
        }
        Some((self.per_endpoint_cap - in_flight).min(left))
    }
}

/// Orders candidates so endpoints with nothing in flight come first, keeping
/// the store's order (earliest due first) otherwise.
pub fn idle_first<T>(candidates: &mut [T], in_flight: impl Fn(&T) -> usize) {
    candidates.sort_by_key(|c| in_flight(c) > 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOTS: Slots = Slots { budget: 112, per_endpoint_cap: 64, total_in_flight: 400, busy_slot_limit: 384 };

    #[test]
    fn busy_endpoints_cannot_take_the_slots_kept_for_idle_ones() {
        assert_eq!(SLOTS.room(5, 0), None, "busy, and the node is past the busy limit");
        assert_eq!(SLOTS.room(0, 0), Some(64), "idle endpoints may still start");
        assert_eq!(SLOTS.room(64, 0), None, "at its own cap");
        assert_eq!(SLOTS.room(0, 100), Some(12), "never past the budget");
        assert_eq!(SLOTS.room(0, 112), None);
        let quiet = Slots { total_in_flight: 10, ..SLOTS };
        assert_eq!(quiet.room(60, 0), Some(4));
    }

    #[test]
    fn idle_endpoints_go_first_in_due_order() {
        let mut c = vec![("a", 3), ("b", 0), ("c", 1), ("d", 0)];
        idle_first(&mut c, |(_, n)| *n);
        assert_eq!(c.iter().map(|(id, _)| *id).collect::<String>(), "bdac");
    }
}
