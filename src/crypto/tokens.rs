//! Opaque secrets: refresh tokens derived from (session, generation) with an HMAC under a per-session HKDF key, random single-use tokens, and their hashes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

const REFRESH_LEN: usize = 16 + 8 + 32;

/// The server-wide secrets refresh-token keys are derived from: the first mints, every one
/// verifies (the previous signing keys during a rotation, so no session is cut off by it).
#[derive(Clone)]
pub struct RefreshSecret(Vec<[u8; 32]>);

/// One 32-byte key per piece of material, each derived under `salt` and `info`.
fn derive_all(materials: &[&[u8]], salt: &[u8], info: &[u8]) -> Vec<[u8; 32]> {
    assert!(!materials.is_empty(), "at least one key");
    materials
        .iter()
        .map(|material| {
            let hk = Hkdf::<Sha256>::new(Some(salt), material);
            let mut out = [0u8; 32];
            hk.expand(info, &mut out)
                .expect("32 bytes is a valid HKDF length");
            out
        })
        .collect()
}

impl RefreshSecret {
    /// Keys from `materials`, the one that mints first.
    pub fn new(materials: &[&[u8]]) -> Self {
        // Domain-separate from the JWT use of the same material.
        Self(derive_all(
            materials,
            b"gatehouse refresh v1",
            b"refresh-master",
        ))
    }

    fn mac(master: &[u8; 32], salt: &str, session: Uuid, generation: u64) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), master);
        let mut key = [0u8; 32];
        hk.expand(b"session-key", &mut key)
            .expect("32 bytes is a valid HKDF length");
        let mut mac = HmacSha256::new_from_slice(&key).expect("any key length");
        mac.update(session.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The refresh token of `session` at `generation`, under the minting key.
    pub fn token(&self, salt: &str, session: Uuid, generation: u64) -> String {
        let mut raw = Vec::with_capacity(REFRESH_LEN);
        raw.extend_from_slice(session.as_bytes());
        raw.extend_from_slice(&generation.to_be_bytes());
        raw.extend_from_slice(&Self::mac(&self.0[0], salt, session, generation));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `mac` is the right one for (session, generation) under `salt` and any key, in
    /// constant time per key.
    pub fn verify(&self, salt: &str, presented: &ParsedRefresh) -> bool {
        self.0.iter().any(|master| {
            let expected = Self::mac(master, salt, presented.session, presented.generation);
            expected.ct_eq(&presented.mac).into()
        })
    }
}

/// Signs device tokens: proof that a client signed in to an account before (OWASP "device
/// cookies"), so it keeps a budget of its own while the account is locked for everyone else.
#[derive(Clone)]
pub struct DeviceKey(Vec<[u8; 32]>);

const DEVICE_ID_LEN: usize = 16;

impl DeviceKey {
    /// Keys from `materials`, the one that issues first; every one verifies.
    pub fn new(materials: &[&[u8]]) -> Self {
        Self(derive_all(
            materials,
            b"gatehouse device v1",
            b"device-master",
        ))
    }

    fn mac(key: &[u8; 32], id: &[u8], account: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
        mac.update(id);
        mac.update(account.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A new device token for the account whose login key is `account`.
    pub fn issue(&self, account: &str) -> String {
        let mut id = [0u8; DEVICE_ID_LEN];
        rand::rng().fill_bytes(&mut id);
        let mut raw = id.to_vec();
        raw.extend_from_slice(&Self::mac(&self.0[0], &id, account));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The device's id (hex) when `token` was issued by this server for `account`.
    pub fn verify(&self, token: &str, account: &str) -> Option<String> {
        if token.len() > 96 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if raw.len() != DEVICE_ID_LEN + 32 {
            return None;
        }
        let (id, mac) = raw.split_at(DEVICE_ID_LEN);
        let ok = self
            .0
            .iter()
            .any(|key| bool::from(Self::mac(key, id, account).ct_eq(mac)));
        ok.then(|| hex::encode(id))
    }
}

/// Keys of the hosted pages: the page-session cookie (an HMAC over a session's id under a key
/// derived from its salt, so nothing of the cookie is stored and a revoked session's cookie is
/// worthless) and CSRF tokens (an HMAC over what the browser's cookies hold).
#[derive(Clone)]
pub struct PageKey {
    cookie: Vec<[u8; 32]>,
    csrf: Vec<[u8; 32]>,
}

const PAGE_COOKIE_LEN: usize = 16 + 32;

impl PageKey {
    /// Keys from `materials`, the one that mints first; every one verifies (a signing-key
    /// rotation signs nobody out of the pages).
    pub fn new(materials: &[&[u8]]) -> Self {
        Self {
            cookie: derive_all(materials, b"gatehouse pages v1", b"page-session"),
            csrf: derive_all(materials, b"gatehouse pages v1", b"page-csrf"),
        }
    }

    fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    fn cookie_under(key: &[u8; 32], salt: &str, session: Uuid) -> String {
        let mut raw = session.as_bytes().to_vec();
        raw.extend_from_slice(&Self::mac(key, &[salt.as_bytes(), session.as_bytes()]));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The page-session cookie of `session`, whose salt is `salt`.
    pub fn session_cookie(&self, salt: &str, session: Uuid) -> String {
        Self::cookie_under(&self.cookie[0], salt, session)
    }

    /// The session a cookie names, when it is one of ours by shape (not yet verified).
    pub fn cookie_session(cookie: &str) -> Option<Uuid> {
        if cookie.len() > 96 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(cookie.trim()).ok()?;
        (raw.len() == PAGE_COOKIE_LEN)
            .then(|| Uuid::from_slice(&raw[..16]).ok())
            .flatten()
    }

    /// Whether `cookie` is the cookie of `session` under `salt` and any key, in constant time
    /// per key.
    pub fn verify_cookie(&self, salt: &str, session: Uuid, cookie: &str) -> bool {
        self.cookie.iter().any(|key| {
            let expected = Self::cookie_under(key, salt, session);
            expected.as_bytes().ct_eq(cookie.trim().as_bytes()).into()
        })
    }

    fn csrf_under(key: &[u8; 32], nonce: &str, session: &str) -> String {
        URL_SAFE_NO_PAD.encode(Self::mac(key, &[nonce.as_bytes(), session.as_bytes()]))
    }

    /// The CSRF token of a browser holding the CSRF cookie `nonce` and the page-session
    /// cookie `session` ("" when signed out): it changes when either does.
    pub fn csrf_token(&self, nonce: &str, session: &str) -> String {
        Self::csrf_under(&self.csrf[0], nonce, session)
    }

    /// Whether `presented` is the CSRF token of (`nonce`, `session`) under any key, in
    /// constant time per key.
    pub fn verify_csrf(&self, nonce: &str, session: &str, presented: &str) -> bool {
        !nonce.is_empty()
            && self.csrf.iter().any(|key| {
                Self::csrf_under(key, nonce, session)
                    .as_bytes()
                    .ct_eq(presented.as_bytes())
                    .into()
            })
    }
}

/// A refresh token split into its parts (not yet verified).
#[derive(Debug, Clone)]
pub struct ParsedRefresh {
    pub session: Uuid,
    pub generation: u64,
    mac: [u8; 32],
}

/// Split a presented refresh token; `None` when it is not one of ours by shape.
pub fn parse_refresh(token: &str) -> Option<ParsedRefresh> {
    if token.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if raw.len() != REFRESH_LEN {
        return None;
    }
    let session = Uuid::from_slice(&raw[..16]).ok()?;
    let generation = u64::from_be_bytes(raw[16..24].try_into().ok()?);
    let mac: [u8; 32] = raw[24..].try_into().ok()?;
    Some(ParsedRefresh {
        session,
        generation,
        mac,
    })
}

/// `n` random bytes, base64url.
pub fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A secret derived from other secrets: base64url of the SHA-256 of `label` and `inputs`,
/// NUL-separated (43 characters). One-way, so storing one input's hash gives none of it away.
pub fn derived_token(label: &str, inputs: &[&str]) -> String {
    let mut hash = Sha256::new();
    hash.update(label.as_bytes());
    for input in inputs {
        hash.update([0u8]);
        hash.update(input.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(hash.finalize())
}

/// Hex SHA-256, how single-use secrets are stored.
/// Whether two strings are equal, in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bind_every_part() {
        let s = RefreshSecret::new(&[b"server secret of enough length........"]);
        let sid = Uuid::now_v7();
        let t = s.token("salt-a", sid, 7);
        let p = parse_refresh(&t).unwrap();
        assert_eq!((p.session, p.generation), (sid, 7));
        assert!(s.verify("salt-a", &p));
        // Another salt, another secret, another generation: refused.
        assert!(!s.verify("salt-b", &p));
        assert!(!RefreshSecret::new(&[b"other"]).verify("salt-a", &p));
        let mut forged = p.clone();
        forged.generation = 8;
        assert!(!s.verify("salt-a", &forged));
        // Deterministic: the successor can be recomputed.
        assert_eq!(s.token("salt-a", sid, 7), t);
        assert_ne!(s.token("salt-a", sid, 8), t);
    }

    #[test]
    fn device_tokens_are_bound_to_their_account_and_key() {
        let k = DeviceKey::new(&[b"server secret of enough length........"]);
        let t = k.issue("ada@example.com");
        let id = k.verify(&t, "ada@example.com").unwrap();
        assert_eq!(id.len(), 32);
        assert_ne!(
            k.issue("ada@example.com"),
            t,
            "each sign-in gets its own device"
        );
        assert_eq!(k.verify(&t, "eve@example.com"), None);
        assert_eq!(
            DeviceKey::new(&[b"other"]).verify(&t, "ada@example.com"),
            None
        );
        let mut forged = t.clone().into_bytes();
        forged[3] = if forged[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            k.verify(&String::from_utf8(forged).unwrap(), "ada@example.com"),
            None
        );
        assert_eq!(k.verify("", "ada@example.com"), None);
    }

    #[test]
    fn page_cookies_and_csrf_tokens_bind_every_part() {
        let k = PageKey::new(&[b"server secret of enough length........"]);
        let sid = Uuid::now_v7();
        let c = k.session_cookie("salt-a", sid);
        assert_eq!(PageKey::cookie_session(&c), Some(sid));
        assert!(k.verify_cookie("salt-a", sid, &c));
        assert!(!k.verify_cookie("salt-b", sid, &c));
        assert!(!k.verify_cookie("salt-a", Uuid::now_v7(), &c));
        assert!(!PageKey::new(&[b"other"]).verify_cookie("salt-a", sid, &c));
        // After a signing-key rotation, the previous key's cookies and tokens still verify.
        let rotated = PageKey::new(&[b"next key", b"server secret of enough length........"]);
        assert!(rotated.verify_cookie("salt-a", sid, &c));
        assert!(rotated.verify_csrf("nonce", "", &k.csrf_token("nonce", "")));
        assert_ne!(
            rotated.session_cookie("salt-a", sid),
            c,
            "minted under the new key"
        );
        assert_eq!(PageKey::cookie_session("!!"), None);
        let t = k.csrf_token("nonce", "");
        assert!(k.verify_csrf("nonce", "", &t));
        assert!(
            !k.verify_csrf("nonce", &c, &t),
            "signing in changes the token"
        );
        assert!(!k.verify_csrf("other", "", &t));
        assert!(
            !k.verify_csrf("", "", &k.csrf_token("", "")),
            "no cookie, no token"
        );
        assert!(!k.verify_csrf("nonce", "", ""));
    }

    #[test]
    fn tokens_minted_under_a_previous_key_verify_while_it_is_kept() {
        let (old, new): (&[u8], &[u8]) = (b"old key material", b"new key material");
        let sid = Uuid::now_v7();
        let before = RefreshSecret::new(&[old]);
        let p = parse_refresh(&before.token("salt", sid, 3)).unwrap();
        let rotated = RefreshSecret::new(&[new, old]);
        assert!(rotated.verify("salt", &p));
        // The successor is minted under the new key, and verifies without the old one.
        let next = parse_refresh(&rotated.token("salt", sid, 4)).unwrap();
        assert!(RefreshSecret::new(&[new]).verify("salt", &next));
        assert!(!RefreshSecret::new(&[new]).verify("salt", &p));

        let device = DeviceKey::new(&[old]).issue("ada@example.com");
        assert!(
            DeviceKey::new(&[new, old])
                .verify(&device, "ada@example.com")
                .is_some()
        );
        assert_eq!(
            DeviceKey::new(&[new]).verify(&device, "ada@example.com"),
            None
        );
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        for bad in [
            "",
            "abc",
            "!!!!",
            &"A".repeat(200),
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        ] {
            assert!(parse_refresh(bad).is_none(), "{bad}");
        }
    }
}
