//! Keys: the symmetric [`Secret`] (`whsec_`), the ed25519 [`SigningKey`]
//! (`whsk_`) and [`VerifyingKey`] (`whpk_`), and the two "either kind" enums
//! [`SenderKey`] and [`ReceiverKey`].

use std::fmt;
use std::str::FromStr;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::KeyError;
use crate::sign::{self, Signature};

const SECRET_PREFIX: &str = "whsec_";
const SIGNING_PREFIX: &str = "whsk_";
const VERIFYING_PREFIX: &str = "whpk_";

/// Standard base64 that accepts input with or without `=` padding.
const B64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn b64_decode(text: &str) -> Option<Vec<u8>> {
    B64_LENIENT.decode(text).ok()
}

/// Which known prefix `s` starts with, if any.
fn known_prefix(s: &str) -> Option<&'static str> {
    [SECRET_PREFIX, SIGNING_PREFIX, VERIFYING_PREFIX].into_iter().find(|p| s.starts_with(p))
}

/// Strips `prefix` (optional in the input), rejects the other known prefixes,
/// and base64-decodes the rest into non-empty bytes.
fn decode_key(s: &str, prefix: &'static str) -> Result<Vec<u8>, KeyError> {
    let s = s.trim();
    let body = match known_prefix(s) {
        Some(p) if p == prefix => &s[p.len()..],
        Some(found) => return Err(KeyError::WrongKind { expected: prefix, found }),
        None => s,
    };
    let bytes = b64_decode(body).ok_or(KeyError::Base64)?;
    if bytes.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(bytes)
}

/// A symmetric signing secret, used for `v1` (HMAC-SHA256) signatures.
///
/// Parsed from `whsec_<base64>` or from plain base64 (both with or without
/// `=` padding); [`Display`](fmt::Display) gives the `whsec_` form back.
/// Any non-empty key is accepted: the spec asks senders for 24 to 64 random
/// bytes, but checking that is the sender's job, not the receiver's.
///
/// `Debug` never prints the key bytes, and the bytes are wiped from memory
/// when the `Secret` is dropped.
///
/// ```
/// use hookline_signature::Secret;
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// assert_eq!(secret.as_bytes().len(), 24);
/// assert_eq!(secret.to_string(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
/// assert_eq!(format!("{secret:?}"), "Secret(<24 bytes redacted>)");
///
/// // The prefix is optional.
/// let same: Secret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// assert_eq!(same.as_bytes(), secret.as_bytes());
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

impl Secret {
    /// Wraps raw key bytes. Fails only on an empty key.
    ///
    /// ```
    /// use hookline_signature::Secret;
    ///
    /// let secret = Secret::from_bytes(*b"0123456789abcdef01234567")?;
    /// assert_eq!(secret.to_string(), "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3");
    /// assert!(Secret::from_bytes(Vec::new()).is_err());
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Secret { key })
    }

    /// The raw key bytes.
    ///
    /// ```
    /// use hookline_signature::Secret;
    ///
    /// let secret = Secret::from_bytes(vec![7u8; 32])?;
    /// assert_eq!(secret.as_bytes(), &[7u8; 32]);
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.key
    }

    /// Signs a webhook with HMAC-SHA256 (`v1`); same as [`sign`](crate::sign()).
    ///
    /// ```
    /// use hookline_signature::Secret;
    ///
    /// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
    /// let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
    /// assert_eq!(sig.to_string(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Signature {
        Signature::v1(sign::hmac_v1(&self.key, msg_id, timestamp, body))
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key);
    }
}

impl FromStr for Secret {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        Ok(Secret { key: decode_key(s, SECRET_PREFIX)? })
    }
}

/// Prints the key as `whsec_<base64>`: this reveals the secret.
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SECRET_PREFIX}{}", b64_encode(&self.key))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.key.len())
    }
}

/// An ed25519 private key, used by senders for `v1a` signatures.
///
/// Parsed from `whsk_<base64>` (prefix optional) holding either the 32-byte
/// seed or the 64-byte `seed || public key` keypair; [`Display`](fmt::Display)
/// writes the 64-byte keypair form. The key is wiped from memory on drop.
///
/// `Debug` prints only the public half.
///
/// ```
/// use hookline_signature::SigningKey;
///
/// // RFC 8032 section 7.1, TEST 1 seed.
/// let key: SigningKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".parse()?;
/// assert_eq!(
///     key.verifying_key().to_string(),
///     "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
/// );
/// assert!(!format!("{key:?}").contains("nWGxne"));
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone)]
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// Builds the key from a 32-byte seed (the RFC 8032 "private key").
    /// Generate the seed with a cryptographic RNG; this crate has none.
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// let key = SigningKey::from_seed([42u8; 32]);
    /// assert_eq!(key.seed(), [42u8; 32]);
    /// ```
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SigningKey { inner: ed25519_dalek::SigningKey::from_bytes(&seed) }
    }

    /// Builds the key from 32 bytes (seed) or 64 bytes (`seed || public key`,
    /// checked for consistency).
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// let key = SigningKey::from_slice(&[1u8; 32])?;
    /// let mut pair = [0u8; 64];
    /// pair[..32].copy_from_slice(&[1u8; 32]);
    /// pair[32..].copy_from_slice(key.verifying_key().as_bytes());
    /// assert_eq!(SigningKey::from_slice(&pair)?.seed(), [1u8; 32]);
    /// assert!(SigningKey::from_slice(&[1u8; 64]).is_err()); // public half does not match
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        if let Ok(seed) = <[u8; 32]>::try_from(bytes) {
            return Ok(Self::from_seed(seed));
        }
        let pair =
            <[u8; 64]>::try_from(bytes).map_err(|_| KeyError::Length { expected: "32 or 64", found: bytes.len() })?;
        ed25519_dalek::SigningKey::from_keypair_bytes(&pair)
            .map(|inner| SigningKey { inner })
            .map_err(|_| KeyError::InvalidEd25519)
    }

    /// The 32-byte seed.
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// assert_eq!(SigningKey::from_seed([3u8; 32]).seed(), [3u8; 32]);
    /// ```
    pub fn seed(&self) -> [u8; 32] {
        self.inner.to_bytes()
    }

    /// The public key that receivers verify with.
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// let key = SigningKey::from_seed([9u8; 32]);
    /// assert!(key.verifying_key().to_string().starts_with("whpk_"));
    /// ```
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey { inner: self.inner.verifying_key() }
    }

    /// Signs a webhook with ed25519 (`v1a`).
    ///
    /// ```
    /// use hookline_signature::{SigningKey, Verifier};
    ///
    /// let key = SigningKey::from_seed([9u8; 32]);
    /// let sig = key.sign("msg_1", 1700000000, b"hello");
    /// assert!(sig.to_string().starts_with("v1a,"));
    /// Verifier::new(key.verifying_key())
    ///     .verify_parts("msg_1", 1700000000, &sig.to_string(), b"hello")?;
    /// # Ok::<(), hookline_signature::VerifyError>(())
    /// ```
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Signature {
        use ed25519_dalek::Signer;
        let content = sign::signed_content(msg_id, timestamp, body);
        Signature::v1a(self.inner.sign(&content).to_bytes())
    }
}

impl FromStr for SigningKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_slice(&decode_key(s, SIGNING_PREFIX)?)
    }
}

/// Prints the key as `whsk_<base64 of seed || public key>`: this reveals it.
impl fmt::Display for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pair = self.inner.to_keypair_bytes();
        write!(f, "{SIGNING_PREFIX}{}", b64_encode(&pair))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(<redacted>, public: {})", self.verifying_key())
    }
}

/// An ed25519 public key, used by receivers to verify `v1a` signatures.
///
/// Parsed from `whpk_<base64 of 32 bytes>` (prefix optional);
/// [`Display`](fmt::Display) gives the `whpk_` form.
///
/// ```
/// use hookline_signature::VerifyingKey;
///
/// let key: VerifyingKey = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse()?;
/// assert_eq!(key.as_bytes()[0], 0xd7);
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    /// Builds the key from its 32 bytes; fails if they are not a curve point.
    ///
    /// ```
    /// use hookline_signature::{SigningKey, VerifyingKey};
    ///
    /// let public = SigningKey::from_seed([5u8; 32]).verifying_key();
    /// assert_eq!(VerifyingKey::from_bytes(public.as_bytes())?, public);
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(|inner| VerifyingKey { inner })
            .map_err(|_| KeyError::InvalidEd25519)
    }

    /// The 32 key bytes.
    ///
    /// ```
    /// use hookline_signature::SigningKey;
    ///
    /// assert_eq!(SigningKey::from_seed([5u8; 32]).verifying_key().as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.inner.as_bytes()
    }

    /// Checks an ed25519 signature over the raw signed content. Strict: rejects
    /// weak keys and non-canonical signatures.
    pub(crate) fn verify_raw(&self, content: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.inner.verify_strict(content, &sig).is_ok()
    }
}

impl FromStr for VerifyingKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bytes = decode_key(s, VERIFYING_PREFIX)?;
        let bytes = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| KeyError::Length { expected: "32", found: bytes.len() })?;
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{VERIFYING_PREFIX}{}", b64_encode(self.as_bytes()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({self})")
    }
}

/// A key a sender signs with: a `whsec_` [`Secret`] or a `whsk_` [`SigningKey`].
///
/// Parsing picks the kind by prefix; text without a prefix is taken as a
/// base64 `whsec_` secret.
///
/// ```
/// use hookline_signature::{SenderKey, SignatureHeader};
///
/// let old: SenderKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let new: SenderKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".parse()?;
/// // During a key rotation, sign with both keys.
/// let header: SignatureHeader = [&old, &new]
///     .iter()
///     .map(|k| k.sign("msg_1", 1700000000, b"{}"))
///     .collect();
/// assert_eq!(header.len(), 2);
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub enum SenderKey {
    /// A shared secret: signs `v1` (HMAC-SHA256).
    Symmetric(Secret),
    /// An ed25519 private key: signs `v1a`.
    Ed25519(SigningKey),
}

impl SenderKey {
    /// Signs a webhook with this key.
    ///
    /// ```
    /// use hookline_signature::SenderKey;
    ///
    /// let key: SenderKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
    /// let sig = key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
    /// assert_eq!(sig.to_string(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> Signature {
        match self {
            SenderKey::Symmetric(s) => s.sign(msg_id, timestamp, body),
            SenderKey::Ed25519(k) => k.sign(msg_id, timestamp, body),
        }
    }

    /// The key a receiver needs to verify this sender's signatures: the same
    /// secret, or the public half.
    ///
    /// ```
    /// use hookline_signature::{ReceiverKey, SenderKey};
    ///
    /// let key: SenderKey = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".parse()?;
    /// assert!(matches!(key.receiver_key(), ReceiverKey::Ed25519(_)));
    /// # Ok::<(), hookline_signature::KeyError>(())
    /// ```
    pub fn receiver_key(&self) -> ReceiverKey {
        match self {
            SenderKey::Symmetric(s) => ReceiverKey::Symmetric(s.clone()),
            SenderKey::Ed25519(k) => ReceiverKey::Ed25519(k.verifying_key()),
        }
    }
}

impl FromStr for SenderKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        match known_prefix(s.trim()) {
            Some(SIGNING_PREFIX) => s.parse().map(SenderKey::Ed25519),
            _ => s.parse().map(SenderKey::Symmetric),
        }
    }
}

impl From<Secret> for SenderKey {
    fn from(s: Secret) -> Self {
        SenderKey::Symmetric(s)
    }
}

impl From<SigningKey> for SenderKey {
    fn from(k: SigningKey) -> Self {
        SenderKey::Ed25519(k)
    }
}

/// A key a receiver verifies with: a `whsec_` [`Secret`] or a `whpk_`
/// [`VerifyingKey`].
///
/// Parsing picks the kind by prefix; text without a prefix is taken as a
/// base64 `whsec_` secret. A `whsk_` private key is refused: give receivers
/// the public key.
///
/// ```
/// use hookline_signature::{ReceiverKey, Verifier};
///
/// let a: ReceiverKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let b: ReceiverKey = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".parse()?;
/// let _verifier = Verifier::new(a).with_key(b);
/// assert!("whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=".parse::<ReceiverKey>().is_err());
/// # Ok::<(), hookline_signature::KeyError>(())
/// ```
#[derive(Clone, Debug)]
pub enum ReceiverKey {
    /// A shared secret: checks `v1` (HMAC-SHA256) signatures.
    Symmetric(Secret),
    /// An ed25519 public key: checks `v1a` signatures.
    Ed25519(VerifyingKey),
}

impl FromStr for ReceiverKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        match known_prefix(s.trim()) {
            Some(VERIFYING_PREFIX) => s.parse().map(ReceiverKey::Ed25519),
            Some(SIGNING_PREFIX) => Err(KeyError::WrongKind { expected: VERIFYING_PREFIX, found: SIGNING_PREFIX }),
            _ => s.parse().map(ReceiverKey::Symmetric),
        }
    }
}

impl From<Secret> for ReceiverKey {
    fn from(s: Secret) -> Self {
        ReceiverKey::Symmetric(s)
    }
}

impl From<VerifyingKey> for ReceiverKey {
    fn from(k: VerifyingKey) -> Self {
        ReceiverKey::Ed25519(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_accepts_padded_and_unpadded_base64() {
        let padded: Secret = "whsec_AAECAw==".parse().unwrap();
        let bare: Secret = "AAECAw".parse().unwrap();
        assert_eq!(padded.as_bytes(), &[0, 1, 2, 3]);
        assert_eq!(bare.as_bytes(), &[0, 1, 2, 3]);
        assert_eq!(padded.to_string(), "whsec_AAECAw==");
    }

    #[test]
    fn secret_rejects_garbage_empty_and_other_kinds() {
        assert_eq!("whsec_".parse::<Secret>().unwrap_err(), KeyError::Empty);
        assert_eq!("".parse::<Secret>().unwrap_err(), KeyError::Empty);
        assert_eq!("whsec_%%%".parse::<Secret>().unwrap_err(), KeyError::Base64);
        assert_eq!(
            "whpk_AAECAw==".parse::<Secret>().unwrap_err(),
            KeyError::WrongKind { expected: "whsec_", found: "whpk_" }
        );
    }

    #[test]
    fn secret_trims_surrounding_whitespace() {
        let s: Secret = " whsec_AAECAw==\n".parse().unwrap();
        assert_eq!(s.as_bytes(), &[0, 1, 2, 3]);
    }

    #[test]
    fn signing_key_round_trips_through_display() {
        let key = SigningKey::from_seed([11u8; 32]);
        let text = key.to_string();
        assert!(text.starts_with("whsk_"));
        let back: SigningKey = text.parse().unwrap();
        assert_eq!(back.seed(), [11u8; 32]);
    }

    #[test]
    fn verifying_key_length_is_checked() {
        assert_eq!("whpk_AAECAw==".parse::<VerifyingKey>().unwrap_err(), KeyError::Length { expected: "32", found: 4 });
    }
}
