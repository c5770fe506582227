//! What Svix's public API answers, as the import reads it: the fields it
//! copies, lenient about the rest (Svix adds fields; old and new names of a
//! field may both be present, as Hookline itself sends `filterTypes` and
//! `eventTypes`).

use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::store::model::{StringMap, Timestamp};

/// One page of a list: `{data, iterator, done}`.
#[derive(Debug, Deserialize)]
pub struct ListPage<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub iterator: Option<String>,
    #[serde(default)]
    pub done: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SvixEventType {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub deprecated: bool,
    #[serde(default)]
    pub schemas: Option<Value>,
    #[serde(default)]
    pub feature_flag: Option<String>,
    #[serde(default)]
    pub feature_flags: Option<Vec<String>>,
    #[serde(default)]
    pub group_name: Option<String>,
    /// Hookline's extension; absent from Svix.
    #[serde(default)]
    pub validate_payloads: Option<bool>,
    #[serde(default)]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SvixApp {
    pub id: String,
    #[serde(default)]
    pub uid: Option<String>,
    pub name: String,
    #[serde(default)]
    rate_limit: Option<i64>,
    #[serde(default)]
    throttle_rate: Option<i64>,
    #[serde(default)]
    pub metadata: Option<StringMap>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl SvixApp {
    /// `rateLimit`, or its older name `throttleRate`.
    pub fn rate_limit(&self) -> Option<i64> {
        self.rate_limit.or(self.throttle_rate)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SvixEndpoint {
    pub id: String,
    #[serde(default)]
    pub uid: Option<String>,
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub version: Option<i32>,
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    filter_types: Option<Vec<String>>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    #[serde(default)]
    rate_limit: Option<i64>,
    #[serde(default)]
    throttle_rate: Option<i64>,
    #[serde(default)]
    pub metadata: Option<StringMap>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl SvixEndpoint {
    /// `filterTypes`, or its alias `eventTypes`.
    pub fn filter_types(&self) -> Option<Vec<String>> {
        self.filter_types.clone().or_else(|| self.event_types.clone())
    }

    /// `rateLimit`, or its older name `throttleRate`.
    pub fn rate_limit(&self) -> Option<i64> {
        self.rate_limit.or(self.throttle_rate)
    }
}

/// `GET …/endpoint/{id}/secret`.
/// (Moved into a `Zeroizing` as soon as it is read.)
#[derive(Deserialize)]
pub struct SvixSecret {
    pub key: String,
}

/// `GET …/endpoint/{id}/headers`: the values of `sensitive` headers are
/// never shown, only their names.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SvixHeaders {
    #[serde(default)]
    pub headers: StringMap,
    #[serde(default)]
    pub sensitive: Vec<String>,
}

/// An endpoint with what is read about it separately.
pub struct SourceEndpoint {
    pub endpoint: SvixEndpoint,
    pub secret: Zeroizing<String>,
    pub headers: SvixHeaders,
}

/// An application with its endpoints: what one transaction writes.
pub struct SourceApp {
    pub app: SvixApp,
    pub endpoints: Vec<SourceEndpoint>,
}

/// A creation time as Svix writes it (RFC 3339), at the store's precision.
pub fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc3339(text?).ok()?.with_timezone(&chrono::Utc);
    Some(chrono::SubsecRound::trunc_subsecs(t, 3))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_read_either_name_of_a_field_and_both_at_once() {
        let both: SvixEndpoint = serde_json::from_value(json!({
            "id": "ep_1", "url": "https://x", "filterTypes": ["a"], "eventTypes": ["a"],
            "rateLimit": 5, "throttleRate": 5, "futureField": true
        }))
        .unwrap();
        assert_eq!(both.filter_types(), Some(vec!["a".to_string()]));
        assert_eq!(both.rate_limit(), Some(5));
        let old: SvixEndpoint =
            serde_json::from_value(json!({"id": "ep_1", "url": "https://x", "eventTypes": ["b"], "throttleRate": 7}))
                .unwrap();
        assert_eq!(old.filter_types(), Some(vec!["b".to_string()]));
        assert_eq!(old.rate_limit(), Some(7));
        let bare: SvixEndpoint = serde_json::from_value(json!({"id": "ep_1", "url": "https://x"})).unwrap();
        assert_eq!((bare.filter_types(), bare.rate_limit(), bare.disabled), (None, None, None));
    }

    #[test]
    fn times_keep_milliseconds() {
        let t = parse_time(Some("2024-05-01T10:00:00.123456Z")).unwrap();
        assert_eq!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "2024-05-01T10:00:00.123Z");
        assert_eq!(parse_time(Some("yesterday")), None);
        assert_eq!(parse_time(None), None);
    }
}
