//! The main key and the keys derived from it.
//!
//! One 32-byte main key (from `HOOKLINE_MAIN_KEY`, or generated once into the
//! data dir) is the root; token signing and secret encryption each use their
//! own HKDF-derived key, so one leaking never reveals the other.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::store::model::SealedSecret;
use crate::store::{Store, StoreError};

const KEY_FILE: &str = "main.key";

pub struct MainKey([u8; 32]);

impl Drop for MainKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl MainKey {
    /// The configured key, or the data dir's key file (created on first use).
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<MainKey, String> {
        if let Some(text) = configured {
            return Self::parse(text).map_err(|e| format!("HOOKLINE_MAIN_KEY: {e}"));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
                let mut key = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                write_private(&path, &B64.encode(key)).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(MainKey(key))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn parse(text: &str) -> Result<MainKey, String> {
        let bytes = B64.decode(text.trim()).map_err(|_| "not valid base64".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "must be base64 of exactly 32 bytes".to_string())?;
        Ok(MainKey(key))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> MainKey {
        MainKey(bytes)
    }

    /// Names this key without revealing it: stored by the database so that a
    /// node started with another key refuses to run instead of writing
    /// secrets no other node can read.
    pub fn fingerprint(&self) -> String {
        let digest = self.derive("hookline main-key fingerprint v1");
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(None, &self.0)
            .expand(purpose.as_bytes(), &mut out)
            .expect("32 bytes is a valid HKDF output length");
        out
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Encrypts secrets at rest (endpoint signing secrets, replayable answers
/// that carry a secret or a token): XChaCha20-Poly1305 with a random 24-byte
/// nonce per value, stored as `nonce || ciphertext`.
///
/// Every value is sealed for an *owner* (the row it belongs to), passed as
/// associated data: a sealed value copied onto another row does not open.
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

/// Whom a sealed value belongs to; bound into its ciphertext.
pub enum Owner<'a> {
    Endpoint(&'a str),
    IdempotencyRecord(&'a [u8]),
}

impl Owner<'_> {
    fn associated_data(&self) -> Vec<u8> {
        match self {
            Owner::Endpoint(id) => [b"endpoint\0".as_slice(), id.as_bytes()].concat(),
            Owner::IdempotencyRecord(key) => [b"idempotency\0".as_slice(), key].concat(),
        }
    }
}

const NONCE_LEN: usize = 24;

impl SecretCipher {
    pub fn new(main: &MainKey) -> SecretCipher {
        let key = Zeroizing::new(main.derive("hookline endpoint-secret encryption v1"));
        SecretCipher { aead: XChaCha20Poly1305::new(key.as_ref().into()) }
    }

    pub fn seal(&self, plaintext: &[u8], owner: Owner<'_>) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = owner.associated_data();
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, stored: &[u8], owner: Owner<'_>) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_with(stored, &owner.associated_data())
    }

    /// Opens a value sealed before values were bound to their owner (stores
    /// written by Hookline before schema version 2); only the upgrade uses it.
    pub fn open_unbound(&self, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        self.open_with(stored, b"")
    }

    fn open_with(&self, stored: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
        if stored.len() < NONCE_LEN {
            return Err("stored secret is truncated".into());
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LEN);
        self.aead
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad })
            .map(Zeroizing::new)
            .map_err(|_| "stored secret does not open with this main key for this owner".into())
    }
}

const FINGERPRINT: &str = "main_key_fingerprint";
const SECRETS_UNBOUND: &str = "secrets_unbound";

/// Ties the store to the main key before anything is served: a store written
/// under another key is refused (its secrets would not open, and new ones
/// would not open for the other nodes), and secrets sealed before they were
/// bound to their owner are re-sealed, in one transaction.
pub async fn bind_store(store: &Store, main: &MainKey, cipher: &SecretCipher) -> Result<(), String> {
    /// A refusal undoes the whole transaction, unlike an `Ok` carrying one.
    struct Refused(String);
    impl From<StoreError> for Refused {
        fn from(e: StoreError) -> Refused {
            Refused(e.to_string())
        }
    }
    let fingerprint = main.fingerprint();
    let cipher = cipher.clone();
    store
        .write(move |tx| {
            match tx.meta(FINGERPRINT)? {
                Some(known) if known != fingerprint => {
                    return Err(Refused(format!(
                        "the store was written with another main key (fingerprint {known}, this one is \
                         {fingerprint}); set HOOKLINE_MAIN_KEY to the key it was written with"
                    )))
                }
                Some(_) => {}
                None => tx.set_meta(FINGERPRINT, &fingerprint)?,
            }
            if tx.meta(SECRETS_UNBOUND)?.is_some() {
                for mut ep in tx.every_endpoint()? {
                    let reseal = |sealed: &SealedSecret| -> Result<SealedSecret, Refused> {
                        let plain =
                            cipher.open_unbound(&sealed.0).map_err(|e| Refused(format!("endpoint {}: {e}", ep.id)))?;
                        Ok(SealedSecret(cipher.seal(&plain, Owner::Endpoint(&ep.id))))
                    };
                    ep.secret = reseal(&ep.secret)?;
                    for retired in &mut ep.retired_secrets {
                        retired.secret = reseal(&retired.secret)?;
                    }
                    tx.update_endpoint(&ep)?;
                }
                tx.delete_meta(SECRETS_UNBOUND)?;
            }
            Ok(())
        })
        .await
        .map_err(|Refused(why)| why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_nonces_differ() {
        let cipher = SecretCipher::new(&MainKey::from_bytes([7; 32]));
        let a = cipher.seal(b"whsec_abc", Owner::Endpoint("ep_1"));
        let b = cipher.seal(b"whsec_abc", Owner::Endpoint("ep_1"));
        assert_ne!(a, b);
        assert_eq!(cipher.open(&a, Owner::Endpoint("ep_1")).unwrap().as_slice(), b"whsec_abc");
        let other = SecretCipher::new(&MainKey::from_bytes([8; 32]));
        assert!(other.open(&a, Owner::Endpoint("ep_1")).is_err());
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_owner() {
        let cipher = SecretCipher::new(&MainKey::from_bytes([7; 32]));
        let sealed = cipher.seal(b"whsec_abc", Owner::Endpoint("ep_1"));
        assert!(cipher.open(&sealed, Owner::Endpoint("ep_2")).is_err());
        assert!(cipher.open(&sealed, Owner::IdempotencyRecord(b"ep_1")).is_err());
        assert!(cipher.open_unbound(&sealed).is_err());
    }

    #[test]
    fn fingerprints_name_keys_without_revealing_them() {
        let a = MainKey::from_bytes([7; 32]);
        assert_eq!(a.fingerprint(), MainKey::from_bytes([7; 32]).fingerprint());
        assert_ne!(a.fingerprint(), MainKey::from_bytes([8; 32]).fingerprint());
        assert_eq!(a.fingerprint().len(), 24);
    }

    #[test]
    fn key_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = MainKey::load(None, dir.path()).unwrap();
        let b = MainKey::load(None, dir.path()).unwrap();
        assert_eq!(a.0, b.0);
        assert!(MainKey::load(Some("short"), dir.path()).is_err());
    }
}
