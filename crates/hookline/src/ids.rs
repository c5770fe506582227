//! Prefixed, time-sortable identifiers (`app_…`, `ep_…`, `msg_…`, `atmpt_…`).
//!
//! The body is a KSUID-like 20-byte value: 4 bytes of seconds since the KSUID
//! epoch, 2 bytes of milliseconds, 14 random bytes, written as 27 base62
//! characters. Fixed width keeps lexicographic order equal to creation order,
//! which is what pagination iterates on.

use rand::RngCore;

const KSUID_EPOCH: i64 = 1_400_000_000;
pub const ENCODED_LEN: usize = 27;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The kinds of object that carry an id, each with the prefix Svix uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Application,
    Endpoint,
    Message,
    Attempt,
    Task,
    Integration,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Application => "app_",
            IdKind::Endpoint => "ep_",
            IdKind::Message => "msg_",
            IdKind::Attempt => "atmpt_",
            IdKind::Task => "qtask_",
            IdKind::Integration => "integ_",
        }
    }

    /// A fresh id for an object created now.
    pub fn generate(self) -> String {
        self.generate_at(chrono::Utc::now().timestamp_millis())
    }

    pub fn generate_at(self, unix_ms: i64) -> String {
        let mut raw = [0u8; 20];
        let secs = (unix_ms.div_euclid(1000) - KSUID_EPOCH).clamp(0, u32::MAX as i64) as u32;
        let millis = unix_ms.rem_euclid(1000) as u16;
        raw[..4].copy_from_slice(&secs.to_be_bytes());
        raw[4..6].copy_from_slice(&millis.to_be_bytes());
        rand::thread_rng().fill_bytes(&mut raw[6..]);
        let mut out = String::with_capacity(self.prefix().len() + ENCODED_LEN);
        out.push_str(self.prefix());
        out.push_str(&encode_base62(&raw));
        out
    }

    /// The smallest id of this kind created at `unix_ms` or later: ids
    /// sort by creation time, so `[floor_at(a), floor_at(b))` holds exactly
    /// the ids created in `[a, b)` and an index on the id serves time ranges.
    pub fn floor_at(self, unix_ms: i64) -> String {
        let mut raw = [0u8; 20];
        let secs = (unix_ms.div_euclid(1000) - KSUID_EPOCH).clamp(0, u32::MAX as i64) as u32;
        raw[..4].copy_from_slice(&secs.to_be_bytes());
        raw[4..6].copy_from_slice(&(unix_ms.rem_euclid(1000) as u16).to_be_bytes());
        format!("{}{}", self.prefix(), encode_base62(&raw))
    }

    /// Whether `s` could be a new uid for this kind: a valid uid that does
    /// not carry the id prefix (an `app_…` that matches nothing is a missing
    /// id, not a name to create).
    pub fn is_creatable_uid(self, s: &str) -> bool {
        is_valid_uid(s) && !s.starts_with(self.prefix())
    }

    /// Whether `s` has this kind's prefix followed by a well-formed body.
    /// Anything else is treated as a uid (or as nothing at all).
    pub fn matches(self, s: &str) -> bool {
        s.strip_prefix(self.prefix())
            .is_some_and(|body| body.len() == ENCODED_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
    }
}

fn encode_base62(raw: &[u8; 20]) -> String {
    // Repeated division of a 160-bit big-endian number by 62.
    let mut digits = [0u32; 5];
    for (i, chunk) in raw.chunks(4).enumerate() {
        digits[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let mut out = [b'0'; ENCODED_LEN];
    let mut pos = ENCODED_LEN;
    while digits.iter().any(|&d| d != 0) && pos > 0 {
        let mut rem: u64 = 0;
        for d in digits.iter_mut() {
            let acc = (rem << 32) | u64::from(*d);
            *d = (acc / 62) as u32;
            rem = acc % 62;
        }
        pos -= 1;
        out[pos] = BASE62[rem as usize];
    }
    String::from_utf8(out.to_vec()).expect("base62 alphabet is ASCII")
}

/// Svix's rule for user-chosen uids and event type names.
pub fn is_valid_uid(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order() {
        let a = IdKind::Message.generate_at(1_700_000_000_000);
        let b = IdKind::Message.generate_at(1_700_000_000_001);
        let c = IdKind::Message.generate_at(1_700_000_100_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(IdKind::Message.matches(&a));
        assert!(!IdKind::Endpoint.matches(&a));
        assert_eq!(a.len(), 4 + ENCODED_LEN);
    }

    #[test]
    fn floor_bounds_ids_by_creation_time() {
        let t = 1_700_000_000_123;
        let id = IdKind::Attempt.generate_at(t);
        assert!(IdKind::Attempt.floor_at(t) <= id && id < IdKind::Attempt.floor_at(t + 1));
        assert!(IdKind::Attempt.floor_at(t - 1) < IdKind::Attempt.floor_at(t));
    }

    #[test]
    fn max_value_fits_fixed_width() {
        assert_eq!(encode_base62(&[0xff; 20]), "aWgEPTl1tmebfsQzFP4bxwgy80V");
        assert_eq!(encode_base62(&[0; 20]), "0".repeat(ENCODED_LEN));
    }

    #[test]
    fn uid_rules() {
        assert!(is_valid_uid("customer-42_a.b"));
        assert!(!is_valid_uid(""));
        assert!(!is_valid_uid("has space"));
        assert!(!is_valid_uid(&"a".repeat(257)));
    }
}
