//! Signing: the signed content, one [`Signature`], and the space-separated
//! [`SignatureHeader`].

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::{b64_decode, b64_encode, Secret};

/// HMAC-SHA256 of `{msg_id}.{timestamp}.{body}` under `key`.
pub(crate) fn hmac_v1(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The bytes that are signed: `{msg_id}.{timestamp}.{body}`.
pub(crate) fn signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut content = Vec::with_capacity(msg_id.len() + ts.len() + body.len() + 2);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(ts.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// Signs a webhook with a symmetric secret: HMAC-SHA256 (`v1`) over
/// `{msg_id}.{timestamp}.{body}`.
///
/// `timestamp` is the unix time in seconds that goes into the
/// `webhook-timestamp` header; `body` is the exact bytes of the request body.
///
/// ```
/// use hookline_signature::{sign, Secret};
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let sig = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
/// assert_eq!(sig.to_string(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> Signature {
    secret.sign(msg_id, timestamp, body)
}

#[derive(Clone, Copy)]
enum Repr {
    V1([u8; 32]),
    V1a([u8; 64]),
}

/// One versioned signature: `v1` (HMAC-SHA256) or `v1a` (ed25519).
///
/// [`Display`](fmt::Display) gives the header form `v1,<base64>` or
/// `v1a,<base64>`. There is deliberately no `PartialEq`: check signatures with
/// a [`Verifier`](crate::Verifier), which compares in constant time.
///
/// ```
/// use hookline_signature::Secret;
///
/// let secret = Secret::from_bytes(vec![1u8; 32])?;
/// let sig = secret.sign("msg_1", 1700000000, b"{}");
/// assert_eq!(sig.version(), "v1");
/// assert_eq!(sig.as_bytes().len(), 32);
/// assert!(sig.to_string().starts_with("v1,"));
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Signature(Repr);

impl Signature {
    pub(crate) fn v1(mac: [u8; 32]) -> Self {
        Signature(Repr::V1(mac))
    }

    pub(crate) fn v1a(sig: [u8; 64]) -> Self {
        Signature(Repr::V1a(sig))
    }

    /// The version identifier: `"v1"` or `"v1a"`.
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// let sig = SigningKey::from_seed([1u8; 32]).sign("msg_1", 1700000000, b"{}");
    /// assert_eq!(sig.version(), "v1a");
    /// ```
    pub fn version(&self) -> &'static str {
        match self.0 {
            Repr::V1(_) => "v1",
            Repr::V1a(_) => "v1a",
        }
    }

    /// The raw signature bytes (32 for `v1`, 64 for `v1a`).
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// let sig = SigningKey::from_seed([1u8; 32]).sign("msg_1", 1700000000, b"{}");
    /// assert_eq!(sig.as_bytes().len(), 64);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::V1(b) => b,
            Repr::V1a(b) => b,
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.version(), b64_encode(self.as_bytes()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

/// One entry of a received signature header, as far as it could be parsed.
pub(crate) enum Entry {
    /// `v1,<32 bytes>`.
    V1([u8; 32]),
    /// `v1a,<64 bytes>`.
    V1a([u8; 64]),
    /// `version,value` with an unknown version, or a known version whose value
    /// is not base64 of the right length: skipped.
    Other,
}

/// Parses a received `webhook-signature` value. Returns `None` if it holds no
/// `version,value` entry at all.
pub(crate) fn parse_header(header: &str) -> Option<Vec<Entry>> {
    let entries: Vec<Entry> = header
        .split_ascii_whitespace()
        .filter_map(|token| {
            let (version, value) = token.split_once(',')?;
            if version.is_empty() || value.is_empty() {
                return None;
            }
            let bytes = b64_decode(value);
            let entry = match (version, bytes) {
                ("v1", Some(b)) => b.try_into().map(Entry::V1).unwrap_or(Entry::Other),
                ("v1a", Some(b)) => b.try_into().map(Entry::V1a).unwrap_or(Entry::Other),
                _ => Entry::Other,
            };
            Some(entry)
        })
        .collect();
    (!entries.is_empty()).then_some(entries)
}

/// The value of a `webhook-signature` header: one or more signatures,
/// separated by spaces.
///
/// Send several during a key rotation (old and new key), or to offer both a
/// `v1` and a `v1a` signature; a receiver accepts the request if any of them
/// matches a key it holds.
///
/// ```
/// use hookline_signature::{Secret, SignatureHeader, SigningKey};
///
/// let old = Secret::from_bytes(vec![1u8; 24])?;
/// let new = SigningKey::from_seed([2u8; 32]);
/// let header = SignatureHeader::new()
///     .with(old.sign("msg_1", 1700000000, b"{}"))
///     .with(new.sign("msg_1", 1700000000, b"{}"));
/// let value = header.to_string();
/// assert!(value.starts_with("v1,"));
/// assert!(value.contains(" v1a,"));
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct SignatureHeader {
    signatures: Vec<Signature>,
}

impl SignatureHeader {
    /// An empty header (displays as the empty string until a signature is added).
    ///
    /// ```
    /// use hookline_signature::SignatureHeader;
    ///
    /// assert!(SignatureHeader::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a signature, builder style.
    ///
    /// ```
    /// use hookline_signature::{Secret, SignatureHeader};
    ///
    /// let s = Secret::from_bytes(vec![1u8; 24])?;
    /// let header = SignatureHeader::new().with(s.sign("msg_1", 1, b""));
    /// assert_eq!(header.len(), 1);
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn with(mut self, signature: Signature) -> Self {
        self.push(signature);
        self
    }

    /// Adds a signature.
    ///
    /// ```
    /// use hookline_signature::{Secret, SignatureHeader};
    ///
    /// let s = Secret::from_bytes(vec![1u8; 24])?;
    /// let mut header = SignatureHeader::new();
    /// header.push(s.sign("msg_1", 1, b""));
    /// assert_eq!(header.len(), 1);
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn push(&mut self, signature: Signature) {
        self.signatures.push(signature);
    }

    /// Number of signatures.
    ///
    /// ```
    /// use hookline_signature::SignatureHeader;
    ///
    /// assert_eq!(SignatureHeader::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.signatures.len()
    }

    /// Whether there are no signatures.
    ///
    /// ```
    /// use hookline_signature::SignatureHeader;
    ///
    /// assert!(SignatureHeader::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }

    /// The signatures, in order.
    ///
    /// ```
    /// use hookline_signature::{Secret, SignatureHeader};
    ///
    /// let s = Secret::from_bytes(vec![1u8; 24])?;
    /// let header = SignatureHeader::new().with(s.sign("msg_1", 1, b""));
    /// assert_eq!(header.signatures()[0].version(), "v1");
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }
}

impl fmt::Display for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, sig) in self.signatures.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{sig}")?;
        }
        Ok(())
    }
}

impl From<Signature> for SignatureHeader {
    fn from(signature: Signature) -> Self {
        SignatureHeader { signatures: vec![signature] }
    }
}

impl FromIterator<Signature> for SignatureHeader {
    fn from_iter<I: IntoIterator<Item = Signature>>(iter: I) -> Self {
        SignatureHeader { signatures: iter.into_iter().collect() }
    }
}

impl Extend<Signature> for SignatureHeader {
    fn extend<I: IntoIterator<Item = Signature>>(&mut self, iter: I) {
        self.signatures.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_content_layout() {
        assert_eq!(signed_content("id", -5, b"b.c"), b"id.-5.b.c".to_vec());
    }

    #[test]
    fn parse_header_classifies_entries() {
        let b32 = b64_encode(&[0u8; 32]);
        let b64 = b64_encode(&[0u8; 64]);
        let header = format!("v1,{b32} v1a,{b64} v2,{b32} v1,short v1,%%% junk");
        let entries = parse_header(&header).unwrap();
        let kinds: Vec<&str> = entries
            .iter()
            .map(|e| match e {
                Entry::V1(_) => "v1",
                Entry::V1a(_) => "v1a",
                Entry::Other => "other",
            })
            .collect();
        assert_eq!(kinds, ["v1", "v1a", "other", "other", "other"]);
    }

    #[test]
    fn parse_header_without_entries_is_none() {
        assert!(parse_header("").is_none());
        assert!(parse_header("   ").is_none());
        assert!(parse_header("garbage v1, ,abc").is_none());
    }

    #[test]
    fn header_display_joins_with_spaces() {
        let s = Secret::from_bytes(vec![1u8; 24]).unwrap();
        let a = s.sign("a", 1, b"");
        let b = s.sign("b", 1, b"");
        let header: SignatureHeader = [a, b].into_iter().collect();
        assert_eq!(header.to_string(), format!("{a} {b}"));
        assert_eq!(SignatureHeader::new().to_string(), "");
    }
}
