//! Verifying: [`HeaderSource`], [`Verifier`] and its result [`Verified`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subtle::ConstantTimeEq;

use crate::error::VerifyError;
use crate::keys::ReceiverKey;
use crate::replay::ReplayGuard;
use crate::sign::{self, Entry};
use crate::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// How far a webhook's timestamp may be from the receiver's clock, either
/// way, by default: 5 minutes, as in the Standard Webhooks libraries.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(hookline_signature::DEFAULT_TOLERANCE, Duration::from_secs(300));
/// ```
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Anything that can look up a request header by name.
///
/// The verifier asks for lowercase names (`webhook-id`, then `svix-id`, ...);
/// an implementation must match names case-insensitively, and should return
/// the first value if a header occurs twice.
///
/// Implemented for slices, arrays and `Vec`s of `(name, value)` pairs, for
/// `HashMap`s, and for closures `Fn(&str) -> Option<String>`. For your HTTP
/// library's header map, implement it on a small wrapper:
///
/// ```
/// use std::borrow::Cow;
/// use hookline_signature::HeaderSource;
///
/// struct MyHeaders(Vec<(String, Vec<u8>)>); // stands in for e.g. http::HeaderMap
///
/// impl HeaderSource for MyHeaders {
///     fn header(&self, name: &str) -> Option<Cow<'_, str>> {
///         let (_, value) = self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
///         std::str::from_utf8(value).ok().map(Cow::Borrowed)
///     }
/// }
///
/// let headers = MyHeaders(vec![("Webhook-Id".into(), b"msg_1".to_vec())]);
/// assert_eq!(headers.header("webhook-id").as_deref(), Some("msg_1"));
///
/// // Closures work too:
/// let lookup = |name: &str| (name == "webhook-id").then(|| "msg_1".to_string());
/// assert_eq!(lookup.header("webhook-id").as_deref(), Some("msg_1"));
/// ```
pub trait HeaderSource {
    /// The value of header `name`, matched case-insensitively, if present.
    ///
    /// ```
    /// use hookline_signature::HeaderSource;
    ///
    /// let headers = [("Webhook-Timestamp", "1614265330")];
    /// assert_eq!(headers.header("webhook-timestamp").as_deref(), Some("1614265330"));
    /// assert_eq!(headers.header("webhook-id"), None);
    /// ```
    fn header(&self, name: &str) -> Option<Cow<'_, str>>;
}

fn find_pair<'a, K: AsRef<str> + 'a, V: AsRef<str> + 'a>(
    pairs: impl IntoIterator<Item = (&'a K, &'a V)>,
    name: &str,
) -> Option<Cow<'a, str>> {
    pairs.into_iter().find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name)).map(|(_, v)| Cow::Borrowed(v.as_ref()))
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for [(K, V)] {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        find_pair(self.iter().map(|(k, v)| (k, v)), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderSource for [(K, V); N] {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderSource for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> HeaderSource for HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        find_pair(self.iter(), name)
    }
}

impl<F: Fn(&str) -> Option<String>> HeaderSource for F {
    fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self(name).map(Cow::Owned)
    }
}

/// Looks up a `webhook-*` header, falling back to its `svix-*` twin. Empty
/// values count as absent.
fn lookup<'h, H: HeaderSource + ?Sized>(headers: &'h H, name: &'static str) -> Result<Cow<'h, str>, VerifyError> {
    let twin = name.replacen("webhook-", "svix-", 1);
    headers
        .header(name)
        .filter(|v| !v.trim().is_empty())
        .or_else(|| headers.header(&twin).filter(|v| !v.trim().is_empty()))
        .ok_or(VerifyError::MissingHeader(name))
}

/// The current unix time in seconds.
pub(crate) fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// What a successful verification vouches for.
///
/// ```
/// use hookline_signature::{Secret, Verifier};
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let body = br#"{"test": 2432232314}"#;
/// let verified = Verifier::new(secret).verify_at(&headers, body, 1614265330)?;
/// assert_eq!(verified.msg_id(), "msg_p5jXN8AQM9LWM0D4loKWxJek");
/// assert_eq!(verified.timestamp(), 1614265330);
/// assert_eq!(verified.valid_until(), 1614265330 + 300);
/// # Ok::<(), hookline_signature::VerifyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    msg_id: String,
    timestamp: i64,
    valid_until: i64,
}

impl Verified {
    /// The message id (`webhook-id`). Senders keep it across retries, so it
    /// serves as an idempotency key.
    ///
    /// ```
    /// # use hookline_signature::{Secret, Verifier};
    /// # let v = Verifier::new(Secret::from_bytes(vec![1u8; 24])?);
    /// # let sig = Secret::from_bytes(vec![1u8; 24])?.sign("msg_1", 100, b"").to_string();
    /// let h = [("webhook-id", "msg_1"), ("webhook-timestamp", "100"), ("webhook-signature", sig.as_str())];
    /// assert_eq!(v.verify_at(&h, b"", 100)?.msg_id(), "msg_1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn msg_id(&self) -> &str {
        &self.msg_id
    }

    /// The signed timestamp (`webhook-timestamp`), unix seconds.
    ///
    /// ```
    /// # use hookline_signature::{Secret, Verifier};
    /// # let v = Verifier::new(Secret::from_bytes(vec![1u8; 24])?);
    /// # let sig = Secret::from_bytes(vec![1u8; 24])?.sign("msg_1", 100, b"").to_string();
    /// let h = [("webhook-id", "msg_1"), ("webhook-timestamp", "100"), ("webhook-signature", sig.as_str())];
    /// assert_eq!(v.verify_at(&h, b"", 120)?.timestamp(), 100);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The last second (unix time) at which this same request would still
    /// pass the timestamp check: `timestamp + tolerance`. A
    /// [`ReplayGuard`] remembers the id until then.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use hookline_signature::{Secret, Verifier};
    /// # let sig = Secret::from_bytes(vec![1u8; 24])?.sign("msg_1", 100, b"").to_string();
    /// let v = Verifier::new(Secret::from_bytes(vec![1u8; 24])?).tolerance(Duration::from_secs(60));
    /// let h = [("webhook-id", "msg_1"), ("webhook-timestamp", "100"), ("webhook-signature", sig.as_str())];
    /// assert_eq!(v.verify_at(&h, b"", 100)?.valid_until(), 160);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn valid_until(&self) -> i64 {
        self.valid_until
    }
}

/// Verifies webhooks against one or more keys.
///
/// Checks, in order: the three headers are present, the timestamp is an
/// integer within the tolerance (default [`DEFAULT_TOLERANCE`], both ways) of
/// the receiver's clock, and at least one signature in the signature header
/// matches at least one key (`v1` entries against `whsec_` secrets in constant
/// time, `v1a` entries against `whpk_` public keys). Entries with other
/// versions, or that do not decode, are skipped.
///
/// Headers are `webhook-id`, `webhook-timestamp` and `webhook-signature`;
/// each falls back to its `svix-*` twin when absent. Pass the body exactly as
/// received: do not parse and re-serialize the JSON first.
///
/// ```
/// use hookline_signature::{Secret, Verifier, VerifyError};
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let verifier = Verifier::new(secret);
/// let headers = [
///     ("Svix-Id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("Svix-Timestamp", "1614265330"),
///     ("Svix-Signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let body = br#"{"test": 2432232314}"#;
///
/// // In a real handler: `verifier.verify(&headers, body)?`, which uses the clock.
/// verifier.verify_at(&headers, body, 1614265330 + 10)?;
/// assert_eq!(
///     verifier.verify_at(&headers, body, 1614265330 + 301),
///     Err(VerifyError::TimestampTooOld)
/// );
/// assert_eq!(
///     verifier.verify_at(&headers, b"{}", 1614265330),
///     Err(VerifyError::NoMatchingSignature)
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier {
    keys: Vec<ReceiverKey>,
    tolerance: i64,
}

impl Verifier {
    /// A verifier holding one key, with the default tolerance.
    ///
    /// ```
    /// use hookline_signature::{Secret, Verifier};
    ///
    /// let _verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse::<Secret>()?);
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn new(key: impl Into<ReceiverKey>) -> Self {
        Verifier { keys: vec![key.into()], tolerance: DEFAULT_TOLERANCE.as_secs() as i64 }
    }

    /// Adds another key (e.g. the new secret during a rotation, or a `whpk_`
    /// public key next to a `whsec_` secret). A signature matching any key passes.
    ///
    /// ```
    /// use hookline_signature::{ReceiverKey, Secret, Verifier};
    ///
    /// let old = Secret::from_bytes(vec![1u8; 24])?;
    /// let new: ReceiverKey = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse()?;
    /// let verifier = Verifier::new(old.clone()).with_key(new);
    /// let sig = old.sign("msg_1", 100, b"x").to_string();
    /// verifier.verify_parts("msg_1", 100, &sig, b"x").unwrap();
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn with_key(mut self, key: impl Into<ReceiverKey>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Sets how far the timestamp may be from the receiver's clock, in either
    /// direction (whole seconds; sub-second parts are ignored).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hookline_signature::{Secret, Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new(Secret::from_bytes(vec![1u8; 24])?)
    ///     .tolerance(Duration::from_secs(60));
    /// assert_eq!(verifier.check_timestamp(1000, 1061), Err(VerifyError::TimestampTooOld));
    /// assert_eq!(verifier.check_timestamp(1000, 1060), Ok(()));
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// Verifies a request against the system clock.
    ///
    /// ```no_run
    /// use hookline_signature::{Secret, Verifier};
    ///
    /// # fn handler(headers: Vec<(String, String)>, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse::<Secret>()?);
    /// let verified = verifier.verify(&headers, body)?;
    /// println!("accepted {}", verified.msg_id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify<H: HeaderSource + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<Verified, VerifyError> {
        self.verify_at(headers, body, unix_now())
    }

    /// Verifies a request as if the clock read `now` (unix seconds). For
    /// tests, and for receivers with their own clock.
    ///
    /// ```
    /// use hookline_signature::{Secret, Verifier, VerifyError};
    ///
    /// let secret = Secret::from_bytes(vec![1u8; 24])?;
    /// let sig = secret.sign("msg_1", 1000, b"{}").to_string();
    /// let headers = vec![
    ///     ("webhook-id", "msg_1"),
    ///     ("webhook-timestamp", "1000"),
    ///     ("webhook-signature", sig.as_str()),
    /// ];
    /// let verifier = Verifier::new(secret);
    /// assert!(verifier.verify_at(&headers, b"{}", 1000).is_ok());
    /// assert_eq!(verifier.verify_at(&headers, b"{}", 600), Err(VerifyError::TimestampTooNew));
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn verify_at<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let msg_id = lookup(headers, HEADER_ID)?;
        let timestamp = lookup(headers, HEADER_TIMESTAMP)?;
        let signature = lookup(headers, HEADER_SIGNATURE)?;
        let timestamp = parse_timestamp(&timestamp)?;
        self.check_timestamp(timestamp, now)?;
        self.verify_parts(&msg_id, timestamp, &signature, body)?;
        Ok(Verified { msg_id: msg_id.into_owned(), timestamp, valid_until: timestamp.saturating_add(self.tolerance) })
    }

    /// Verifies a request against the system clock, then records its id in
    /// `guard`, rejecting an id that was already accepted (see [`ReplayGuard`]).
    ///
    /// ```no_run
    /// use hookline_signature::{ReplayGuard, Secret, Verifier};
    ///
    /// # fn handler(headers: Vec<(String, String)>, body: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// let verifier = Verifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse::<Secret>()?);
    /// let guard = ReplayGuard::new(100_000);
    /// let verified = verifier.verify_with_guard(&headers, body, &guard)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify_with_guard<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        guard: &ReplayGuard,
    ) -> Result<Verified, VerifyError> {
        self.verify_with_guard_at(headers, body, guard, unix_now())
    }

    /// [`verify_with_guard`](Self::verify_with_guard) as if the clock read `now`.
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
    /// let guard = ReplayGuard::new(1000);
    /// assert!(verifier.verify_with_guard_at(&headers, b"{}", &guard, 1000).is_ok());
    /// assert_eq!(
    ///     verifier.verify_with_guard_at(&headers, b"{}", &guard, 1001),
    ///     Err(VerifyError::Replayed)
    /// );
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn verify_with_guard_at<H: HeaderSource + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        guard: &ReplayGuard,
        now: i64,
    ) -> Result<Verified, VerifyError> {
        let verified = self.verify_at(headers, body, now)?;
        guard.check_at(&verified, now)?;
        Ok(verified)
    }

    /// Checks only the signatures, from already extracted header values.
    ///
    /// **Does not check the timestamp**: pair it with
    /// [`check_timestamp`](Self::check_timestamp), or use
    /// [`verify`](Self::verify). Useful for tools that re-check old
    /// deliveries, and for frameworks that hand you header values directly.
    ///
    /// ```
    /// use hookline_signature::{Secret, Verifier, VerifyError};
    ///
    /// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
    /// let verifier = Verifier::new(secret);
    /// let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    /// let body = br#"{"test": 2432232314}"#;
    /// // Only the second signature matches; the unknown `v2` entry is skipped.
    /// let header = "v2,abc v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= \
    ///               v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    /// verifier.verify_parts(id, 1614265330, header, body)?;
    /// assert_eq!(
    ///     verifier.verify_parts(id, 1614265331, header, body),
    ///     Err(VerifyError::NoMatchingSignature)
    /// );
    /// assert_eq!(
    ///     verifier.verify_parts(id, 1614265330, "nonsense", body),
    ///     Err(VerifyError::InvalidSignatureHeader)
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_parts(
        &self,
        msg_id: &str,
        timestamp: i64,
        signature_header: &str,
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let entries = sign::parse_header(signature_header).ok_or(VerifyError::InvalidSignatureHeader)?;

        // Computed at most once, and only if an entry of that version shows up.
        let mut macs: Option<Vec<[u8; 32]>> = None;
        let mut content: Option<Vec<u8>> = None;

        for entry in &entries {
            let matched = match entry {
                Entry::V1(candidate) => macs
                    .get_or_insert_with(|| self.expected_macs(msg_id, timestamp, body))
                    .iter()
                    .any(|mac| bool::from(mac.ct_eq(candidate))),
                Entry::V1a(candidate) => {
                    let content = content.get_or_insert_with(|| sign::signed_content(msg_id, timestamp, body));
                    self.keys.iter().any(|key| match key {
                        ReceiverKey::Ed25519(pk) => pk.verify_raw(content, candidate),
                        ReceiverKey::Symmetric(_) => false,
                    })
                }
                Entry::Other => false,
            };
            if matched {
                return Ok(());
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }

    /// Checks that `timestamp` is within the tolerance of `now` (both unix
    /// seconds). The bounds are inclusive.
    ///
    /// ```
    /// use hookline_signature::{Secret, Verifier, VerifyError};
    ///
    /// let verifier = Verifier::new(Secret::from_bytes(vec![1u8; 24])?);
    /// assert_eq!(verifier.check_timestamp(1000, 1300), Ok(()));
    /// assert_eq!(verifier.check_timestamp(1000, 1301), Err(VerifyError::TimestampTooOld));
    /// assert_eq!(verifier.check_timestamp(1301, 1000), Err(VerifyError::TimestampTooNew));
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn check_timestamp(&self, timestamp: i64, now: i64) -> Result<(), VerifyError> {
        if now.saturating_sub(timestamp) > self.tolerance {
            Err(VerifyError::TimestampTooOld)
        } else if timestamp.saturating_sub(now) > self.tolerance {
            Err(VerifyError::TimestampTooNew)
        } else {
            Ok(())
        }
    }

    fn expected_macs(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<[u8; 32]> {
        self.keys
            .iter()
            .filter_map(|key| match key {
                ReceiverKey::Symmetric(s) => Some(sign::hmac_v1(s.as_bytes(), msg_id, timestamp, body)),
                ReceiverKey::Ed25519(_) => None,
            })
            .collect()
    }
}

/// Parses a `webhook-timestamp` value: an integer number of unix seconds.
///
/// ```
/// use hookline_signature::{parse_timestamp, VerifyError};
///
/// assert_eq!(parse_timestamp("1614265330"), Ok(1614265330));
/// assert_eq!(parse_timestamp("1614265330.5"), Err(VerifyError::InvalidTimestamp));
/// ```
pub fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    value.trim().parse::<i64>().map_err(|_| VerifyError::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sources_match_case_insensitively() {
        let slice: &[(&str, &str)] = &[("Webhook-ID", "a")];
        assert_eq!(slice.header("webhook-id").as_deref(), Some("a"));

        let owned: Vec<(String, String)> = vec![("WEBHOOK-ID".into(), "b".into())];
        assert_eq!(owned.header("webhook-id").as_deref(), Some("b"));

        let map: HashMap<String, String> = [("Webhook-Id".to_string(), "c".to_string())].into();
        assert_eq!(map.header("webhook-id").as_deref(), Some("c"));
        assert_eq!(map.header("webhook-timestamp"), None);
    }

    #[test]
    fn webhook_headers_win_over_svix_twins() {
        let h = [("svix-id", "svix"), ("webhook-id", "std")];
        assert_eq!(lookup(&h[..], HEADER_ID).unwrap(), "std");
        let h = [("svix-id", "svix"), ("webhook-id", " ")];
        assert_eq!(lookup(&h[..], HEADER_ID).unwrap(), "svix");
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let v = Verifier::new(crate::Secret::from_bytes(vec![1]).unwrap());
        assert_eq!(v.check_timestamp(i64::MIN, i64::MAX), Err(VerifyError::TimestampTooOld));
        assert_eq!(v.check_timestamp(i64::MAX, i64::MIN), Err(VerifyError::TimestampTooNew));
        let v = v.tolerance(Duration::MAX);
        assert_eq!(v.check_timestamp(0, i64::MAX), Ok(()));
    }
}
