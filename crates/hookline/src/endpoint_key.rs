//! An endpoint's signing key as sealed in the store, and as the API shows
//! it: a `whsec_` HMAC secret (signs `v1`) or a `whsk_` ed25519 key (signs
//! `v1a`, as Svix does).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hookline_signature::{Secret, SenderKey, SigningKey};
use zeroize::Zeroizing;

/// An endpoint key as sealed in the store: an HMAC secret's bytes as they
/// are (`whsec_`), or an ed25519 seed behind this marker (`whsk_`, which
/// signs `v1a`). No `whsec_` secret may start with it.
const ED25519_MARKER: &[u8] = b"\0hookline-ed25519\0";

/// Decodes `whsec_<base64>` (prefix optional; Svix accepts 24 to 75 bytes)
/// or `whsk_<base64>` (an ed25519 seed or keypair) into what is sealed.
pub fn parse_secret(text: &str) -> Result<Vec<u8>, String> {
    if text.starts_with("whsk_") {
        let key: SigningKey = text.parse().map_err(|e| format!("is not a usable whsk_ ed25519 key: {e}"))?;
        let mut sealed = ED25519_MARKER.to_vec();
        sealed.extend_from_slice(Zeroizing::new(key.seed()).as_slice());
        return Ok(sealed);
    }
    let b64 = text.strip_prefix("whsec_").unwrap_or(text);
    let bytes =
        B64.decode(b64).map_err(|_| "must be base64, optionally prefixed with whsec_ (or whsk_)".to_string())?;
    if !(24..=75).contains(&bytes.len()) {
        return Err(format!("must encode 24 to 75 bytes, not {}", bytes.len()));
    }
    if bytes.starts_with(ED25519_MARKER) {
        return Err("must not start with Hookline's key-type marker".into());
    }
    Ok(bytes)
}

pub fn format_secret(bytes: &[u8]) -> String {
    match bytes.strip_prefix(ED25519_MARKER) {
        Some(seed) => format!("whsk_{}", B64.encode(seed)),
        None => format!("whsec_{}", B64.encode(bytes)),
    }
}

/// The keys that sign an endpoint's attempts (those of one claim): the
/// current secret and any retired ones still inside their grace period
/// (wiped from memory when dropped).
pub struct SigningKeys(pub Vec<SenderKey>);

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} keys)", self.0.len())
    }
}

/// The key that signs with what was sealed (moved in, wiped when dropped).
pub fn sender_key(bytes: Zeroizing<Vec<u8>>) -> Result<SenderKey, String> {
    match bytes.strip_prefix(ED25519_MARKER) {
        Some(seed) => SigningKey::from_slice(seed).map(SenderKey::Ed25519).map_err(|e| e.to_string()),
        None => Secret::from_bytes(bytes.to_vec()).map(SenderKey::Symmetric).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_round_trip_and_sign_v1a() {
        let text = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
        let sealed = parse_secret(text).unwrap();
        assert_eq!(format_secret(&sealed), text);
        let key = sender_key(Zeroizing::new(sealed)).unwrap();
        assert!(key.sign("msg_1", 1, b"{}").to_string().starts_with("v1a,"));
        assert!(parse_secret("whsk_c2hvcnQ=").is_err());
        let mut marked = ED25519_MARKER.to_vec();
        marked.extend([7u8; 20]);
        assert!(parse_secret(&B64.encode(&marked)).is_err(), "a whsec_ secret posing as an ed25519 key");
        let hmac = sender_key(Zeroizing::new(vec![9u8; 24])).unwrap();
        assert!(hmac.sign("msg_1", 1, b"{}").to_string().starts_with("v1,"));
    }
}
