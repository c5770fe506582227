//! Shared pieces of the JSON shapes: timestamps, metadata, common validation.

use chrono::SecondsFormat;
use serde::{Deserialize, Serializer};

use super::error::Validation;
use crate::ids::{is_valid_uid, IdKind, ENCODED_LEN};
use crate::store::model::{StringMap, Timestamp};

/// What `ids::is_valid_uid` accepts (with 1 to 256 characters), for schemas.
pub const UID_PATTERN: &str = r"^[a-zA-Z0-9\-_.]+$";
/// The same, or nothing (a list filter's empty entry, which is skipped).
pub const UID_OR_EMPTY_PATTERN: &str = r"^[a-zA-Z0-9\-_.]*$";
/// What `check_channels` accepts (with 1 to 128 characters), for schemas.
pub const CHANNEL_PATTERN: &str = r"^[a-zA-Z0-9\-_.:#+]+$";
/// A name that is not blank: at least one character besides ASCII spaces
/// (what `is_blank` refuses), for schemas.
pub const NOT_BLANK_PATTERN: &str = r"[^ \t\n\r\x0b\x0c]";

/// Whether a name holds nothing but ASCII whitespace (`NOT_BLANK_PATTERN`).
pub fn is_blank(s: &str) -> bool {
    s.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c'))
}

/// Most metadata entries on one application or endpoint.
pub const MAX_METADATA_ENTRIES: usize = 100;

/// JSON has one kind of number: `39.0` is the integer 39 (as JSON Schema's
/// `integer` says), so integer fields accept a whole float too.
pub mod whole {
    use serde::{de::Error, Deserialize, Deserializer};

    fn to_int<E: Error, T: TryFrom<i64>>(v: serde_json::Number) -> Result<T, E> {
        let n = match (v.as_i64(), v.as_f64()) {
            (Some(n), _) => n,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => f as i64,
            _ => return Err(E::custom(format!("invalid type: {v}, expected an integer"))),
        };
        T::try_from(n).map_err(|_| E::custom(format!("{n} is out of range")))
    }

    /// `Option<integer>`.
    pub fn opt<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?.map(to_int).transpose()
    }

    /// PATCH's `Option<Option<integer>>`: absent stays, `null` clears.
    pub fn double_opt<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        opt(d).map(Some)
    }
}

/// A nested struct given as a JSON object only (serde also reads a struct
/// from an array of its fields, which no schema of ours allows). The map is
/// read in place, so a failing field is still named by its path.
pub fn object_only<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    use serde::de::{value::MapAccessDeserializer, MapAccess, Visitor};
    use std::marker::PhantomData;

    struct Nullable<T>(PhantomData<T>);
    struct Object<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Nullable<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Option<T>, D2::Error> {
            d.deserialize_map(Object(PhantomData)).map(Some)
        }
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }
    }

    d.deserialize_option(Nullable(PhantomData))
}

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

/// Refuses a uid (or eventId) with the exact shape of an id of `kind`:
/// every lookup reads such a key as an id, so the object could be created
/// but never found by it. Other keys with the prefix (`ep_mine`) are found
/// by their uid and stay allowed, as endpoints made before this rule hold
/// them.
pub fn check_not_id_shaped(v: &mut Validation, field: &str, kind: IdKind, key: Option<&str>) {
    if key.is_some_and(|k| kind.matches(k)) {
        let prefix = kind.prefix();
        v.push(
            &["body", field],
            format!("must not have the form of an id ({prefix} and {ENCODED_LEN} letters or digits)"),
        );
    }
}

pub fn check_rate_limit(v: &mut Validation, field: &str, rate: Option<i64>) {
    if let Some(r) = rate {
        if !(1..=u32::MAX as i64).contains(&r) {
            v.push(&["body", field], "must be at least 1 (deliveries per second)");
        }
    }
}

/// The schema of what `check_channels` accepts.
pub fn channels_schema(schema: &mut schemars::Schema) {
    schema.insert("minItems".into(), 1.into());
    schema.insert("maxItems".into(), 10.into());
    schema.insert(
        "items".into(),
        serde_json::json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": CHANNEL_PATTERN}),
    );
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

/// The schema of what `check_metadata` accepts.
pub fn metadata_schema(schema: &mut schemars::Schema) {
    schema.insert("maxProperties".into(), MAX_METADATA_ENTRIES.into());
    schema.insert("propertyNames".into(), serde_json::json!({"minLength": 1, "maxLength": 256}));
    schema.insert("additionalProperties".into(), serde_json::json!({"type": "string", "maxLength": 4096}));
}

/// Metadata is the platform's notes, not a store: bounded so one request
/// cannot make every later read of the row expensive.
pub fn check_metadata(v: &mut Validation, metadata: Option<&StringMap>) {
    let Some(map) = metadata else { return };
    if map.len() > MAX_METADATA_ENTRIES {
        v.push(&["body", "metadata"], format!("must hold at most {MAX_METADATA_ENTRIES} entries"));
    }
    // In characters, as JSON Schema's maxLength counts.
    if map.iter().any(|(k, val)| k.is_empty() || k.chars().count() > 256 || val.chars().count() > 4096) {
        v.push(&["body", "metadata"], "keys must be 1 to 256 characters and values at most 4096");
    }
}
