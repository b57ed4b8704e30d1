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

/// The server-wide secret refresh-token keys are derived from.
#[derive(Clone)]
pub struct RefreshSecret(Vec<u8>);

impl RefreshSecret {
    pub fn new(material: &[u8]) -> Self {
        // Domain-separate from the JWT use of the same material.
        let hk = Hkdf::<Sha256>::new(Some(b"gatehouse refresh v1"), material);
        let mut out = vec![0u8; 32];
        hk.expand(b"refresh-master", &mut out)
            .expect("32 bytes is a valid HKDF length");
        Self(out)
    }

    fn mac(&self, salt: &str, session: Uuid, generation: u64) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(salt.as_bytes()), &self.0);
        let mut key = [0u8; 32];
        hk.expand(b"session-key", &mut key)
            .expect("32 bytes is a valid HKDF length");
        let mut mac = HmacSha256::new_from_slice(&key).expect("any key length");
        mac.update(session.as_bytes());
        mac.update(&generation.to_be_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The refresh token of `session` at `generation`.
    pub fn token(&self, salt: &str, session: Uuid, generation: u64) -> String {
        let mut raw = Vec::with_capacity(REFRESH_LEN);
        raw.extend_from_slice(session.as_bytes());
        raw.extend_from_slice(&generation.to_be_bytes());
        raw.extend_from_slice(&self.mac(salt, session, generation));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Whether `mac` is the right one for (session, generation) under `salt`, in constant time.
    pub fn verify(&self, salt: &str, presented: &ParsedRefresh) -> bool {
        let expected = self.mac(salt, presented.session, presented.generation);
        expected.ct_eq(&presented.mac).into()
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

/// Hex SHA-256, how single-use secrets are stored.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bind_every_part() {
        let s = RefreshSecret::new(b"server secret of enough length........");
        let sid = Uuid::now_v7();
        let t = s.token("salt-a", sid, 7);
        let p = parse_refresh(&t).unwrap();
        assert_eq!((p.session, p.generation), (sid, 7));
        assert!(s.verify("salt-a", &p));
        // Another salt, another secret, another generation: refused.
        assert!(!s.verify("salt-b", &p));
        assert!(!RefreshSecret::new(b"other").verify("salt-a", &p));
        let mut forged = p.clone();
        forged.generation = 8;
        assert!(!s.verify("salt-a", &forged));
        // Deterministic: the successor can be recomputed.
        assert_eq!(s.token("salt-a", sid, 7), t);
        assert_ne!(s.token("salt-a", sid, 8), t);
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
