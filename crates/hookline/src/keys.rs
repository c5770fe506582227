//! The main key and the keys derived from it.
//!
//! One 32-byte main key (from `HOOKLINE_MAIN_KEY`, or generated once into the
//! data dir) is the root; token signing and secret encryption each use their
//! own HKDF-derived key, so one leaking never reveals the other.

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

const KEY_FILE: &str = "main.key";

pub struct MainKey([u8; 32]);

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

/// Encrypts endpoint signing secrets at rest: XChaCha20-Poly1305 with a random
/// 24-byte nonce per secret, stored as `nonce || ciphertext`.
#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

impl SecretCipher {
    pub fn new(main: &MainKey) -> SecretCipher {
        let key = main.derive("hookline endpoint-secret encryption v1");
        SecretCipher { aead: XChaCha20Poly1305::new(&key.into()) }
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, String> {
        if stored.len() < 24 {
            return Err("stored secret is truncated".into());
        }
        let (nonce, ciphertext) = stored.split_at(24);
        self.aead
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| "stored secret does not decrypt with this main key (HOOKLINE_MAIN_KEY changed?)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_nonces_differ() {
        let cipher = SecretCipher::new(&MainKey::from_bytes([7; 32]));
        let a = cipher.encrypt(b"whsec_abc");
        let b = cipher.encrypt(b"whsec_abc");
        assert_ne!(a, b);
        assert_eq!(cipher.decrypt(&a).unwrap(), b"whsec_abc");
        let other = SecretCipher::new(&MainKey::from_bytes([8; 32]));
        assert!(other.decrypt(&a).is_err());
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
