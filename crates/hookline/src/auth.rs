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
        /// What the token may do within the application.
        #[serde(rename = "c", default = "Capabilities::all", with = "capability_bits")]
        caps: Capabilities,
    },
}

/// What an application token may do: Svix's app portal capabilities.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Capabilities(u8);

impl Capabilities {
    pub const VIEW_BASE: Capabilities = Capabilities(1);
    pub const VIEW_ENDPOINT_SECRET: Capabilities = Capabilities(2);
    pub const MANAGE_ENDPOINT_SECRET: Capabilities = Capabilities(4);
    pub const MANAGE_TRANSFORMATIONS: Capabilities = Capabilities(8);
    pub const CREATE_ATTEMPTS: Capabilities = Capabilities(16);
    pub const MANAGE_ENDPOINT: Capabilities = Capabilities(32);

    const NAMES: [(&'static str, Capabilities); 6] = [
        ("ViewBase", Capabilities::VIEW_BASE),
        ("ViewEndpointSecret", Capabilities::VIEW_ENDPOINT_SECRET),
        ("ManageEndpointSecret", Capabilities::MANAGE_ENDPOINT_SECRET),
        ("ManageTransformations", Capabilities::MANAGE_TRANSFORMATIONS),
        ("CreateAttempts", Capabilities::CREATE_ATTEMPTS),
        ("ManageEndpoint", Capabilities::MANAGE_ENDPOINT),
    ];

    /// Svix's default when a token names none.
    pub const fn all() -> Capabilities {
        Capabilities(63)
    }

    /// What a read-only token may do.
    pub const fn read_only() -> Capabilities {
        Capabilities::VIEW_BASE
    }

    /// The named capabilities; the name that is not one, if any.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Capabilities, &'a str> {
        let mut caps = Capabilities::VIEW_BASE;
        for name in names {
            let (_, cap) = Capabilities::NAMES.iter().find(|(n, _)| *n == name).ok_or(name)?;
            caps.0 |= cap.0;
        }
        Ok(caps)
    }

    pub fn names(self) -> Vec<&'static str> {
        Capabilities::NAMES.iter().filter(|(_, c)| self.0 & c.0 != 0).map(|(n, _)| *n).collect()
    }

    /// Whether the token holds at least one of `any`.
    pub fn any_of(self, any: &[Capabilities]) -> bool {
        any.iter().any(|c| self.0 & c.0 == c.0)
    }

    /// Whether every capability of `other` is also in `self`.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Capabilities travel in a token as one small number.
mod capability_bits {
    use super::Capabilities;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Capabilities, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(c.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Capabilities, D::Error> {
        Ok(Capabilities(u8::deserialize(d)? & Capabilities::all().0))
    }
}

#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(flatten)]
    scope: Scope,
    /// Unix seconds after which the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    /// The application's token generation when the token was issued:
    /// `expire-all` starts a new one and refuses the older tokens. A counter
    /// in the store, not a time, so no node's clock decides.
    #[serde(default)]
    g: i64,
    /// The session the token was issued for, which `expire-all` may name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The integration whose key this is, and the key's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    int: Option<(String, i64)>,
    /// Random, so two tokens with the same scope differ (empty in an
    /// integration's key, which its id and version make unique and which
    /// reads back the same every time it is shown).
    n: String,
    /// Tokens issued before capabilities were read-only or not; a
    /// read-only one keeps only `ViewBase`.
    #[serde(default, rename = "read_only", skip_serializing)]
    legacy_read_only: bool,
}

/// How a token is issued.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: Scope,
    /// Unix seconds after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    pub session_id: Option<String>,
    /// The application's token generation (0 for admin tokens).
    pub generation: i64,
}

/// The identity behind a verified token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    /// Unix seconds after which the token is refused; `None` never expires.
    pub expires_at: Option<i64>,
    /// Its application's token generation when it was issued.
    pub generation: i64,
    pub session_id: Option<String>,
    /// For an integration's key: the integration and the key version.
    pub integration_key: Option<(String, i64)>,
    /// A stable digest of the token, to key idempotency records by caller
    /// (and `auth/logout` revocations) without storing the token itself.
    pub token_digest: [u8; 32],
    /// The configured static admin token, which cannot be revoked.
    pub is_static: bool,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self.scope, Scope::Admin)
    }

    /// What the caller may do within an application it reaches.
    pub fn capabilities(&self) -> Capabilities {
        match &self.scope {
            Scope::Admin => Capabilities::all(),
            Scope::App { caps, .. } => *caps,
        }
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
        self.issue_grant(Grant { scope, expires_at, session_id: None, generation: 0 })
    }

    pub fn issue_grant(&self, grant: Grant) -> String {
        let mut nonce = [0u8; 9];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        self.sign(&Claims {
            scope: grant.scope,
            exp: grant.expires_at,
            g: grant.generation,
            sid: grant.session_id,
            int: None,
            n: B64URL.encode(nonce),
            legacy_read_only: false,
        })
    }

    /// The key of an integration of `app` at `version`, issued in the
    /// application's token `generation`: an application token with every
    /// capability, the same each time it is asked for until either moves on.
    pub fn integration_key(&self, app: &str, integration: &str, version: i64, generation: i64) -> String {
        self.sign(&Claims {
            scope: Scope::App { app: app.to_string(), caps: Capabilities::all() },
            exp: None,
            g: generation,
            sid: None,
            int: Some((integration.to_string(), version)),
            n: String::new(),
            legacy_read_only: false,
        })
    }

    fn sign(&self, claims: &Claims) -> String {
        let payload = B64URL.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mac = B64URL.encode(self.mac(payload.as_bytes()));
        format!("{PREFIX}{payload}.{mac}")
    }

    /// The caller behind a bearer token, or `None` for anything invalid or expired.
    pub fn verify(&self, token: &str, now_unix: i64) -> Option<Caller> {
        let token_digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(admin) = &self.static_admin {
            let expected: [u8; 32] = Sha256::digest(admin.as_bytes()).into();
            if bool::from(expected.ct_eq(&token_digest)) {
                return Some(Caller {
                    scope: Scope::Admin,
                    expires_at: None,
                    generation: 0,
                    session_id: None,
                    integration_key: None,
                    token_digest,
                    is_static: true,
                });
            }
        }
        let (payload, mac) = token.strip_prefix(PREFIX)?.split_once('.')?;
        let mac = B64URL.decode(mac).ok()?;
        if !bool::from(self.mac(payload.as_bytes()).as_slice().ct_eq(&mac)) {
            return None;
        }
        let mut claims: Claims = serde_json::from_slice(&B64URL.decode(payload).ok()?).ok()?;
        if let (true, Scope::App { caps, .. }) = (claims.legacy_read_only, &mut claims.scope) {
            *caps = Capabilities::read_only();
        }
        if claims.exp.is_some_and(|exp| exp <= now_unix) {
            return None;
        }
        Some(Caller {
            scope: claims.scope,
            expires_at: claims.exp,
            generation: claims.g,
            session_id: claims.sid,
            integration_key: claims.int,
            token_digest,
            is_static: false,
        })
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
        let scope = Scope::App { app: "app_x".into(), caps: Capabilities::parse(["ViewEndpointSecret"]).unwrap() };
        let t = a.issue(scope.clone(), None);
        let c = a.verify(&t, 0).unwrap();
        assert_eq!(c.scope, scope);
        assert_eq!(c.capabilities().names(), ["ViewBase", "ViewEndpointSecret"]);
        assert_eq!(c.generation, 0);
        assert!(a.verify("static-admin", 0).unwrap().is_admin());
    }

    #[test]
    fn capabilities_parse_by_svix_name_and_always_include_view_base() {
        assert_eq!(Capabilities::parse([]).unwrap(), Capabilities::read_only());
        let caps = Capabilities::parse(["CreateAttempts", "ManageEndpoint"]).unwrap();
        assert_eq!(caps.names(), ["ViewBase", "CreateAttempts", "ManageEndpoint"]);
        assert!(caps.any_of(&[Capabilities::VIEW_ENDPOINT_SECRET, Capabilities::MANAGE_ENDPOINT]));
        assert!(!caps.any_of(&[Capabilities::VIEW_ENDPOINT_SECRET, Capabilities::MANAGE_ENDPOINT_SECRET]));
        assert_eq!(Capabilities::parse(["ViewBase", "Everything"]), Err("Everything"));
        assert_eq!(Capabilities::all().names().len(), 6);
    }

    #[test]
    fn a_read_only_token_from_before_capabilities_stays_read_only() {
        let a = authority();
        let payload = B64URL.encode(br#"{"t":"app","app":"app_x","read_only":true,"n":"x"}"#);
        let token = format!("{PREFIX}{payload}.{}", B64URL.encode(a.mac(payload.as_bytes())));
        assert_eq!(a.verify(&token, 0).unwrap().capabilities(), Capabilities::read_only());
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
