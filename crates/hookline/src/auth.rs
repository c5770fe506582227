//! API tokens: who is calling, and what they may reach.
//!
//! A signed token is `hk_<payload>.<mac>` (both base64url): the payload names
//! the scope, the MAC (HMAC-SHA256 under a key derived from the main key)
//! makes it unforgeable. Tokens are stateless, so every node that shares the
//! main key accepts them. A static admin token may also be configured.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::keys::MainKey;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Scope {
    /// The platform: every route, every application.
    #[serde(rename = "admin")]
    Admin,
    /// One application (a customer), as used by the portal.
    #[serde(rename = "app")]
    App {
        app: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        read_only: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(flatten)]
    scope: Scope,
    /// Unix seconds after which the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// Random, so two tokens with the same scope differ.
    n: String,
}

/// The identity behind a verified token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    /// Unix seconds after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    /// A stable digest of the token, to key idempotency records by caller
    /// without storing the token itself.
    pub token_digest: [u8; 32],
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self.scope, Scope::Admin)
    }
}

#[derive(Clone)]
pub struct TokenAuthority {
    mac_key: [u8; 32],
    static_admin: Option<String>,
}

const PREFIX: &str = "hk_";

impl TokenAuthority {
    pub fn new(main: &MainKey, static_admin: Option<String>) -> TokenAuthority {
        TokenAuthority { mac_key: main.derive("hookline api-token signing v1"), static_admin }
    }

    pub fn issue(&self, scope: Scope, expires_at: Option<i64>) -> String {
        let mut nonce = [0u8; 9];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        let claims = Claims { scope, exp: expires_at, n: B64URL.encode(nonce) };
        let payload = B64URL.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let mac = B64URL.encode(self.mac(payload.as_bytes()));
        format!("{PREFIX}{payload}.{mac}")
    }

    /// The caller behind a bearer token, or `None` for anything invalid or expired.
    pub fn verify(&self, token: &str, now_unix: i64) -> Option<Caller> {
        let token_digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(admin) = &self.static_admin {
            let expected: [u8; 32] = Sha256::digest(admin.as_bytes()).into();
            if bool::from(expected.ct_eq(&token_digest)) {
                return Some(Caller { scope: Scope::Admin, expires_at: None, token_digest });
            }
        }
        let (payload, mac) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let mac = B64URL.decode(mac).ok()?;
        if !bool::from(self.mac(payload.as_bytes()).as_slice().ct_eq(&mac)) {
            return None;
        }
        let claims: Claims = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
        if claims.exp.is_some_and(|exp| exp <= now_unix) {
            return None;
        }
        Some(Caller { scope: claims.scope, expires_at: claims.exp, token_digest })
    }

    fn mac(&self, data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.mac_key).expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority() -> TokenAuthority {
        TokenAuthority::new(&MainKey::from_bytes([1; 32]), Some("static-admin".into()))
    }

    #[test]
    fn issued_tokens_verify_with_their_scope() {
        let a = authority();
        let t = a.issue(Scope::App { app: "app_x".into(), read_only: true }, None);
        let c = a.verify(&t, 0).unwrap();
        assert_eq!(c.scope, Scope::App { app: "app_x".into(), read_only: true });
        assert!(a.verify("static-admin", 0).unwrap().is_admin());
    }

    #[test]
    fn tampered_expired_and_foreign_tokens_are_refused() {
        let a = authority();
        let t = a.issue(Scope::Admin, Some(100));
        assert!(a.verify(&t, 99).is_some());
        assert!(a.verify(&t, 100).is_none());
        let mut tampered = t.clone();
        tampered.insert(5, 'x');
        assert!(a.verify(&tampered, 0).is_none());
        let other = TokenAuthority::new(&MainKey::from_bytes([2; 32]), None);
        assert!(other.verify(&a.issue(Scope::Admin, None), 0).is_none());
        assert!(a.verify("", 0).is_none());
    }
}
