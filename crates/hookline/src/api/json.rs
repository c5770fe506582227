//! Shared pieces of the JSON shapes: timestamps, metadata, common validation.

use chrono::SecondsFormat;
use serde::Serializer;

use super::error::Validation;
use crate::ids::is_valid_uid;
use crate::store::model::{StringMap, Timestamp};

/// Most metadata entries on one application or endpoint.
pub const MAX_METADATA_ENTRIES: usize = 100;

/// Datetimes go out as RFC 3339 in UTC with milliseconds, like Svix.
pub fn rfc3339(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn ts<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(t))
}

pub fn opt_ts<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

pub fn check_uid(v: &mut Validation, field: &str, uid: Option<&str>) {
    if let Some(uid) = uid {
        if !is_valid_uid(uid) {
            v.push(&["body", field], "must be 1 to 256 characters of A-Z a-z 0-9 - _ .");
        }
    }
}

pub fn check_rate_limit(v: &mut Validation, field: &str, rate: Option<i64>) {
    if let Some(r) = rate {
        if !(1..=u32::MAX as i64).contains(&r) {
            v.push(&["body", field], "must be at least 1 (deliveries per second)");
        }
    }
}

/// Svix's rule for channel names and list sizes.
pub fn check_channels(v: &mut Validation, channels: Option<&[String]>) {
    if let Some(list) = channels {
        if list.is_empty() || list.len() > 10 {
            v.push(&["body", "channels"], "must hold 1 to 10 channels, or be omitted for all");
        }
        for c in list {
            if !is_channel_name(c) {
                v.push(&["body", "channels"], format!("{c:?} is not a valid channel name"));
            }
        }
    }
}

/// Svix's rule for channel names.
pub fn is_channel_name(c: &str) -> bool {
    !c.is_empty() && c.len() <= 128 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:#+".contains(&b))
}

/// Metadata is the platform's notes, not a store: bounded so one request
/// cannot make every later read of the row expensive.
pub fn check_metadata(v: &mut Validation, metadata: Option<&StringMap>) {
    let Some(map) = metadata else { return };
    if map.len() > MAX_METADATA_ENTRIES {
        v.push(&["body", "metadata"], format!("must hold at most {MAX_METADATA_ENTRIES} entries"));
    }
    if map.iter().any(|(k, val)| k.is_empty() || k.len() > 256 || val.len() > 4096) {
        v.push(&["body", "metadata"], "keys must be 1 to 256 characters and values at most 4096");
    }
}
