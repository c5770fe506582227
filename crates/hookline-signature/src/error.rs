//! Error types: [`KeyError`] for parsing keys, [`VerifyError`] for rejecting a webhook.

use std::fmt;

/// Why a key string or key bytes were rejected.
///
/// Returned by the parsers and constructors of [`Secret`](crate::Secret),
/// [`SigningKey`](crate::SigningKey), [`VerifyingKey`](crate::VerifyingKey),
/// [`SenderKey`](crate::SenderKey) and [`ReceiverKey`](crate::ReceiverKey).
///
/// ```
/// use hookline_signature::{KeyError, Secret};
///
/// let err = "whsec_not base64!".parse::<Secret>().unwrap_err();
/// assert_eq!(err, KeyError::Base64);
/// assert_eq!(err.to_string(), "key is not valid base64");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty (no bytes after decoding).
    Empty,
    /// The key text (after its `whsec_` / `whsk_` / `whpk_` prefix) is not base64.
    Base64,
    /// The key has the prefix of another kind of key, e.g. a `whpk_` public key
    /// where a `whsec_` secret was expected.
    WrongKind {
        /// The prefix that was expected, e.g. `"whsec_"`.
        expected: &'static str,
        /// The prefix that was found, e.g. `"whpk_"`.
        found: &'static str,
    },
    /// An ed25519 key has the wrong number of bytes.
    Length {
        /// What was expected, e.g. `"32"` or `"32 or 64"`.
        expected: &'static str,
        /// How many bytes were found.
        found: usize,
    },
    /// The bytes are not a valid ed25519 key (a public key that is not a curve
    /// point, or a 64-byte keypair whose public half does not match its seed).
    InvalidEd25519,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("key is empty"),
            KeyError::Base64 => f.write_str("key is not valid base64"),
            KeyError::WrongKind { expected, found } => {
                write!(f, "expected a `{expected}` key, got a `{found}` key")
            }
            KeyError::Length { expected, found } => {
                write!(f, "ed25519 key must be {expected} bytes, got {found}")
            }
            KeyError::InvalidEd25519 => f.write_str("bytes are not a valid ed25519 key"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a webhook was rejected.
///
/// `Display` gives a short one-line reason, suitable for logs and for
/// `invalid: <reason>` style output. Every variant means "do not trust this
/// request"; the variants only help to diagnose (clock skew, wrong secret, a
/// proxy that strips headers, ...).
///
/// ```
/// use hookline_signature::{Secret, Verifier, VerifyError};
///
/// let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
/// let headers = [("webhook-id", "msg_1"), ("webhook-timestamp", "1614265330")];
/// let err = Verifier::new(secret)
///     .verify_at(&headers, b"{}", 1614265330)
///     .unwrap_err();
/// assert_eq!(err, VerifyError::MissingHeader("webhook-signature"));
/// assert_eq!(
///     err.to_string(),
///     "missing header webhook-signature (or svix-signature)"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent or empty. Holds the `webhook-*` name; the
    /// `svix-*` twin is accepted too.
    MissingHeader(&'static str),
    /// The timestamp header is not an integer number of seconds.
    InvalidTimestamp,
    /// The timestamp is older than the tolerance allows (a replay, a slow
    /// queue, or a receiver clock that runs ahead).
    TimestampTooOld,
    /// The timestamp is further in the future than the tolerance allows (a
    /// receiver clock that runs behind, usually).
    TimestampTooNew,
    /// The signature header holds signatures, but none matches any key.
    NoMatchingSignature,
    /// The signature header holds no `version,signature` entry at all.
    InvalidSignatureHeader,
    /// A key could not be parsed. Lets a handler use `?` on key parsing and
    /// verification alike.
    InvalidKey(KeyError),
    /// The message id was already accepted inside the tolerance window (see
    /// [`ReplayGuard`](crate::ReplayGuard)).
    Replayed,
    /// The [`ReplayGuard`](crate::ReplayGuard) is full of unexpired ids and
    /// refuses new ones (it fails closed); the sender should retry later.
    ReplayGuardFull,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MissingHeader(name) => {
                let twin = name.replacen("webhook-", "svix-", 1);
                write!(f, "missing header {name} (or {twin})")
            }
            VerifyError::InvalidTimestamp => f.write_str("timestamp header is not an integer unix time in seconds"),
            VerifyError::TimestampTooOld => f.write_str("timestamp is too old"),
            VerifyError::TimestampTooNew => f.write_str("timestamp is too far in the future"),
            VerifyError::NoMatchingSignature => f.write_str("no matching signature"),
            VerifyError::InvalidSignatureHeader => f.write_str("signature header holds no `version,signature` entry"),
            VerifyError::InvalidKey(e) => write!(f, "invalid key: {e}"),
            VerifyError::Replayed => f.write_str("message id was already accepted (replay)"),
            VerifyError::ReplayGuardFull => f.write_str("replay guard is full of unexpired ids; retry later"),
        }
    }
}

impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::InvalidKey(e) => Some(e),
            _ => None,
        }
    }
}

impl From<KeyError> for VerifyError {
    fn from(e: KeyError) -> Self {
        VerifyError::InvalidKey(e)
    }
}
