//! Sign and verify webhook signatures of the
//! [Standard Webhooks](https://www.standardwebhooks.com/) scheme, which Svix
//! uses too.
//!
//! # What this crate is for
//!
//! * **Receivers** checking that a webhook really comes from the sender
//!   (Hookline, Svix, or any Standard Webhooks sender) and is fresh:
//!   [`Verifier`], optionally with a [`ReplayGuard`].
//! * **Senders** producing the `webhook-signature` header: [`Secret::sign`],
//!   [`SigningKey::sign`], [`SignatureHeader`]. The Hookline server signs
//!   through this crate.
//!
//! It is synchronous, does no I/O, and depends on no HTTP library: you hand
//! it the raw body bytes and a way to look up headers ([`HeaderSource`]).
//!
//! # What it is not for
//!
//! * Receiving HTTP requests, reading bodies, or answering them: that is your
//!   web framework's job.
//! * Generating keys: this crate has no random number generator. Make secrets
//!   from 24 to 64 random bytes ([`Secret::from_bytes`]) and ed25519 keys from
//!   a random 32-byte seed ([`SigningKey::from_seed`]) with your own CSPRNG.
//! * Durable, exactly-once processing: [`ReplayGuard`] is in memory and per
//!   process. Deduplicate on the message id in your database for that.
//! * Other webhook signature schemes (Stripe's, GitHub's, ...).
//!
//! # The scheme
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, with the
//! body bytes exactly as sent. A signature is written `version,base64`:
//!
//! | version | algorithm      | sender's key                | receiver's key          |
//! |---------|----------------|-----------------------------|-------------------------|
//! | `v1`    | HMAC-SHA256    | `whsec_…` ([`Secret`])       | the same `whsec_…`      |
//! | `v1a`   | ed25519        | `whsk_…` ([`SigningKey`])    | `whpk_…` ([`VerifyingKey`]) |
//!
//! The `webhook-signature` header holds one or more signatures separated by
//! spaces (several during a key rotation); a receiver accepts the request if
//! any one matches a key it holds, and skips versions it does not know. The
//! `webhook-timestamp` (unix seconds) must be within a tolerance of the
//! receiver's clock, 5 minutes by default. Svix sends the same headers as
//! `svix-id`, `svix-timestamp` and `svix-signature`; both sets are accepted.
//!
//! # Receiving
//!
//! ```
//! use hookline_signature::{ReplayGuard, Secret, Verifier, VerifyError};
//!
//! // Once, at startup:
//! let secret: Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let verifier = Verifier::new(secret);
//! let guard = ReplayGuard::new(100_000);
//!
//! // Per request (headers as your framework gives them, body as raw bytes):
//! let headers = vec![
//!     ("webhook-id".to_string(), "msg_p5jXN8AQM9LWM0D4loKWxJek".to_string()),
//!     ("webhook-timestamp".to_string(), "1614265330".to_string()),
//!     ("webhook-signature".to_string(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()),
//! ];
//! let body = br#"{"test": 2432232314}"#;
//!
//! // A real handler calls `verifier.verify_with_guard(&headers, body, &guard)`,
//! // which reads the system clock; this example pins the clock instead.
//! match verifier.verify_with_guard_at(&headers, body, &guard, 1614265330) {
//!     Ok(verified) => println!("accepted {}", verified.msg_id()),
//!     Err(e) => println!("invalid: {e}"), // answer 4xx
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Sending
//!
//! ```
//! use hookline_signature::{SenderKey, SignatureHeader};
//!
//! let key: SenderKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse()?;
//! let (id, timestamp, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
//! let header = SignatureHeader::from(key.sign(id, timestamp, body));
//! let request_headers = [
//!     (hookline_signature::HEADER_ID, id.to_string()),
//!     (hookline_signature::HEADER_TIMESTAMP, timestamp.to_string()),
//!     (hookline_signature::HEADER_SIGNATURE, header.to_string()),
//! ];
//! assert_eq!(request_headers[2].1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//! # Ok::<(), hookline_signature::KeyError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod keys;
mod replay;
mod sign;
mod verify;

pub use error::{KeyError, VerifyError};
pub use keys::{ReceiverKey, Secret, SenderKey, SigningKey, VerifyingKey};
pub use replay::ReplayGuard;
pub use sign::{sign, Signature, SignatureHeader};
pub use verify::{parse_timestamp, HeaderSource, Verified, Verifier, DEFAULT_TOLERANCE};

/// Name of the message id header. Receivers also accept `svix-id`.
///
/// ```
/// assert_eq!(hookline_signature::HEADER_ID, "webhook-id");
/// ```
pub const HEADER_ID: &str = "webhook-id";

/// Name of the timestamp header (unix seconds). Receivers also accept
/// `svix-timestamp`.
///
/// ```
/// assert_eq!(hookline_signature::HEADER_TIMESTAMP, "webhook-timestamp");
/// ```
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";

/// Name of the signature header. Receivers also accept `svix-signature`.
///
/// ```
/// assert_eq!(hookline_signature::HEADER_SIGNATURE, "webhook-signature");
/// ```
pub const HEADER_SIGNATURE: &str = "webhook-signature";
