//! Signing and verifying access tokens (HS256, EdDSA, ES256, RS256): one key signs, previous keys keep verifying during a rotation, every token names its key by `kid`, and the public keys are published as a JWKS.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{ConfigError, JwtAlgorithm, JwtConfig, Secret};

/// The audience every access token is issued for.
pub const AUDIENCE: &str = "gatehouse";

/// Seconds a token is still accepted past its `exp` (clock skew between instances).
const LEEWAY_SECONDS: u64 = 5;

/// Memory the verified-token memo may hold (tokens and their claims, weighed in bytes).
const MEMO_BYTES: u64 = 64 * 1024 * 1024;

/// A token longer than this is verified every time, never remembered.
const MEMO_MAX_TOKEN_BYTES: usize = 4 * 1024;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub sid: Uuid,
    pub roles: Vec<String>,
    pub aal: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// The `kid` of an HS256 secret: a truncated SHA-256 fingerprint (96 bits, base64url) under a
/// label of its own. It names the secret without revealing it; anyone holding a token could
/// already test guesses of the secret against the token's MAC, so the fingerprint adds nothing.
pub fn secret_kid(secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"gatehouse jwt kid v1\0")
        .chain_update(secret.as_bytes())
        .finalize();
    format!("hs256-{}", URL_SAFE_NO_PAD.encode(&digest[..12]))
}

/// The public JWK of an Ed25519 PKCS#8 PEM private key.
fn ed25519_jwk(var: &'static str, pem: &[u8]) -> Result<Jwk, ConfigError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType,
    };
    let text = std::str::from_utf8(pem).map_err(|_| ConfigError::new(var, "is not a PEM file"))?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text)
        .map_err(|e| ConfigError::new(var, format!("not an Ed25519 PKCS#8 key: {e}")))?;
    Ok(Jwk {
        common: CommonParameters {
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes()),
        }),
    })
}

/// One key: its id, what it signs with and verifies with, its public JWK (asymmetric keys only),
/// and the bytes refresh and device tokens derive their own keys from.
struct Key {
    kid: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Option<Jwk>,
    material: Vec<u8>,
}

impl Key {
    fn from_secret(secret: &Secret) -> Self {
        let bytes = secret.expose().as_bytes();
        Self {
            kid: secret_kid(secret.expose()),
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            jwk: None,
            material: bytes.to_vec(),
        }
    }

    /// The PEM private key in `path` (named by `var` in errors), for `algorithm`, or for
    /// whichever of EdDSA, ES256 and RS256 the file holds when `None`.
    fn from_pem_file(
        var: &'static str,
        path: &Path,
        algorithm: Option<JwtAlgorithm>,
    ) -> Result<Self, ConfigError> {
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError::new(var, format!("cannot read {}: {e}", path.display())))?;
        Self::from_pem(var, &path.display().to_string(), pem, algorithm)
    }

    /// The PEM private key `pem` (from `label`, named by `var` in errors), as [`Key::from_pem_file`].
    fn from_pem(
        var: &'static str,
        label: &str,
        pem: Vec<u8>,
        algorithm: Option<JwtAlgorithm>,
    ) -> Result<Self, ConfigError> {
        let algorithm = match algorithm {
            Some(a) => a,
            None => pem_algorithm(&pem).ok_or_else(|| {
                ConfigError::new(
                    var,
                    format!("{label} is not a PEM private key for EdDSA, ES256 or RS256"),
                )
            })?,
        };
        let bad = |e: jsonwebtoken::errors::Error| {
            ConfigError::new(
                var,
                format!("{label}: not a PEM private key for {algorithm:?}: {e}"),
            )
        };
        let (alg, encoding) = match algorithm {
            JwtAlgorithm::EdDSA => (
                Algorithm::EdDSA,
                EncodingKey::from_ed_pem(&pem).map_err(bad)?,
            ),
            JwtAlgorithm::ES256 => (
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&pem).map_err(bad)?,
            ),
            JwtAlgorithm::RS256 => (
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(&pem).map_err(bad)?,
            ),
            JwtAlgorithm::HS256 => {
                return Err(ConfigError::new(
                    var,
                    "HS256 keys are secrets, not key files",
                ));
            }
        };
        let mut jwk = match alg {
            // jsonwebtoken cannot derive an Ed25519 public key: do it with ed25519-dalek.
            Algorithm::EdDSA => ed25519_jwk(var, &pem)?,
            _ => Jwk::from_encoding_key(&encoding, alg).map_err(bad)?,
        };
        let kid = jwk.thumbprint(ThumbprintHash::SHA256);
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
        let decoding = DecodingKey::from_jwk(&jwk).map_err(bad)?;
        Ok(Self {
            kid,
            algorithm: alg,
            encoding,
            decoding,
            jwk: Some(jwk),
            material: pem,
        })
    }
}

/// Which asymmetric algorithm a PEM private key is for, by its type.
fn pem_algorithm(pem: &[u8]) -> Option<JwtAlgorithm> {
    if EncodingKey::from_ed_pem(pem).is_ok() {
        Some(JwtAlgorithm::EdDSA)
    } else if EncodingKey::from_ec_pem(pem).is_ok() {
        Some(JwtAlgorithm::ES256)
    } else if EncodingKey::from_rsa_pem(pem).is_ok() {
        Some(JwtAlgorithm::RS256)
    } else {
        None
    }
}

/// What a token signed with an `algorithm` key must satisfy: our issuer and audience, the
/// registered claims present, five seconds of clock skew.
fn validation(issuer: &str, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECONDS;
    validation
}

/// Keys and rules for access tokens: the first key signs, every key verifies. ID tokens of
/// Gatehouse as an OpenID Provider are signed by the signing key when it is asymmetric, else by
/// a key of their own (never by an HS256 secret), published in the same JWKS.
pub struct JwtKeys {
    keys: Vec<Key>,
    id_key: Option<Key>,
    issuer: String,
    /// The rules each key's tokens are checked against, built once (one per key, in order).
    validations: Vec<Validation>,
    jwks: JwkSet,
    /// Access tokens this process has verified, by their exact text: the same bytes under the
    /// same keys verify the same way, so a repeat costs a look-up and the expiry check instead of
    /// base64, HMAC or signature and two JSON parses. Revocation is not the token's business
    /// (the caller checks the session on every call), so this is right on any number of
    /// instances. Bounded by [`MEMO_BYTES`].
    verified: moka::sync::Cache<Box<str>, Arc<Claims>, foldhash::fast::RandomState>,
}

/// A remembered token is dropped once it has expired (past the leeway): it could only be refused.
struct UntilExpired;

impl moka::Expiry<Box<str>, Arc<Claims>> for UntilExpired {
    fn expire_after_create(
        &self,
        _token: &Box<str>,
        claims: &Arc<Claims>,
        _now: std::time::Instant,
    ) -> Option<std::time::Duration> {
        let left = claims
            .exp
            .saturating_add(LEEWAY_SECONDS as i64 + 1)
            .saturating_sub(jsonwebtoken::get_current_timestamp() as i64);
        Some(std::time::Duration::from_secs(left.max(0) as u64))
    }
}

/// What a remembered token weighs: its text and its claims' strings, plus their overheads.
#[allow(clippy::borrowed_box)] // moka's weigher takes `&K`, and `K` is `Box<str>`
fn memo_weight(token: &Box<str>, claims: &Arc<Claims>) -> u32 {
    let strings = claims.iss.len()
        + claims.aud.len()
        + claims.aal.len()
        + claims.roles.iter().map(|r| r.len() + 24).sum::<usize>();
    u32::try_from(token.len() + strings + 256).unwrap_or(u32::MAX)
}

impl JwtKeys {
    /// Build from configuration: the signing key (the HS256 secret, or the PEM private key file
    /// of an asymmetric algorithm), then the previous keys (`JWT_PREVIOUS_SECRETS`,
    /// `JWT_PREVIOUS_KEY_FILES`) that only verify.
    pub fn new(
        cfg: &JwtConfig,
        hs_secret: Option<&Secret>,
        issuer: &str,
    ) -> Result<Self, ConfigError> {
        let signing = match cfg.algorithm {
            JwtAlgorithm::HS256 => Key::from_secret(
                hs_secret.ok_or_else(|| ConfigError::new("JWT_SECRET", "required for HS256"))?,
            ),
            other => {
                const VAR: &str = "JWT_PRIVATE_KEY_FILE";
                let path = cfg
                    .private_key_file
                    .as_ref()
                    .ok_or_else(|| ConfigError::new(VAR, "required for asymmetric algorithms"))?;
                Key::from_pem_file(VAR, path, Some(other))?
            }
        };
        let mut keys = vec![signing];
        for secret in &cfg.previous_secrets {
            keys.push(Key::from_secret(secret));
        }
        for path in &cfg.previous_key_files {
            keys.push(Key::from_pem_file("JWT_PREVIOUS_KEY_FILES", path, None)?);
        }
        // The same key listed twice (say, the signing key left among the previous ones) once.
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.kid.clone()));
        let jwks = JwkSet {
            keys: keys.iter().filter_map(|k| k.jwk.clone()).collect(),
        };
        let validations = keys
            .iter()
            .map(|k| validation(issuer, k.algorithm))
            .collect();
        Ok(Self {
            keys,
            id_key: None,
            issuer: issuer.to_string(),
            validations,
            jwks,
            verified: moka::sync::Cache::builder()
                .max_capacity(MEMO_BYTES)
                .weigher(memo_weight)
                .expire_after(UntilExpired)
                // Keyed per process, and only tokens that verified get in: a fast hash is safe.
                .build_with_hasher(foldhash::fast::RandomState::default()),
        })
    }

    /// Sign ID tokens with the PEM private key `pem` (from `label`), published in the JWKS;
    /// ignored when the signing key is asymmetric already (it signs ID tokens too).
    pub fn with_id_token_key(mut self, label: &str, pem: Vec<u8>) -> Result<Self, ConfigError> {
        if self.keys[0].jwk.is_some() {
            return Ok(self);
        }
        let key = Key::from_pem("OIDC_SIGNING_KEY_FILE", label, pem, None)?;
        // Also listed in JWT_PREVIOUS_KEY_FILES: published once.
        if let Some(jwk) = &key.jwk
            && !self.keys.iter().any(|k| k.kid == key.kid)
        {
            self.jwks.keys.push(jwk.clone());
        }
        self.id_key = Some(key);
        Ok(self)
    }

    /// The key ID tokens are signed with, if there is one.
    fn id_signer(&self) -> Option<&Key> {
        if self.keys[0].jwk.is_some() {
            Some(&self.keys[0])
        } else {
            self.id_key.as_ref()
        }
    }

    /// The algorithm of ID tokens (`RS256`, `ES256`, `EdDSA`), if they can be signed.
    pub fn id_token_algorithm(&self) -> Option<&'static str> {
        self.id_signer().map(|k| match k.algorithm {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        })
    }

    /// Sign an ID token's `claims` with the ID-token key, naming it in `kid`.
    pub fn sign_id_token<T: Serialize>(&self, claims: &T) -> Option<String> {
        let key = self.id_signer()?;
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).ok()
    }

    /// The claims of a valid access token issued to an OpenID client: as [`JwtKeys::verify`],
    /// but for any audience except our own API's (the caller checks it names the client).
    pub fn verify_client_token(&self, token: &str) -> Option<Claims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        self.keys
            .iter()
            .zip(&self.validations)
            .filter(|(k, _)| k.algorithm == header.alg)
            .filter(|(k, _)| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
            .find_map(|(k, validation)| {
                let mut validation = validation.clone();
                validation.validate_aud = false;
                jsonwebtoken::decode::<Claims>(token, &k.decoding, &validation).ok()
            })
            .map(|d| d.claims)
            .filter(|c| c.aud != AUDIENCE)
    }

    /// The claims of an ID token we signed, expired or not (an `id_token_hint` at logout).
    pub fn verify_id_token_hint(&self, token: &str) -> Option<serde_json::Value> {
        let key = self.id_signer()?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }

    /// Sign `claims` with the signing key, naming it in the header's `kid`.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let key = &self.keys[0];
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &key.encoding)
    }

    /// The claims of a valid token: signed by the key its `kid` names (or, for a token without
    /// one, issued before tokens carried it, by any key of its algorithm), with that key's
    /// algorithm, the right issuer and audience, not expired. A token verified before is looked
    /// up, and only its expiry checked again.
    pub fn verify(&self, token: &str) -> Option<Arc<Claims>> {
        let now = jsonwebtoken::get_current_timestamp();
        let unexpired = |c: &Claims| {
            u64::try_from(c.exp).is_ok_and(|exp| exp >= now.saturating_sub(LEEWAY_SECONDS))
        };
        if let Some(claims) = self.verified.get(token) {
            return unexpired(&claims).then_some(claims);
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let claims = self
            .keys
            .iter()
            .zip(&self.validations)
            .filter(|(k, _)| k.algorithm == header.alg)
            .filter(|(k, _)| header.kid.as_deref().is_none_or(|kid| kid == k.kid))
            .find_map(|(k, validation)| {
                jsonwebtoken::decode::<Claims>(token, &k.decoding, validation).ok()
            })
            .map(|d| Arc::new(d.claims))?;
        if token.len() <= MEMO_MAX_TOKEN_BYTES {
            self.verified.insert(token.into(), claims.clone());
        }
        Some(claims)
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.keys[0].kid
    }

    /// The public keys of every asymmetric key that verifies (HS256 secrets are never published).
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The bytes of every key, the signing key's first: refresh and device tokens derive their
    /// own keys from them, so they outlive a rotation as access tokens do.
    pub fn materials(&self) -> Vec<&[u8]> {
        self.keys.iter().map(|k| k.material.as_slice()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const OLD: &str = "old-secret-old-secret-old-secret-0001";
    const NEW: &str = "new-secret-new-secret-new-secret-0002";
    const ISSUER: &str = "https://auth.example.com";

    fn config(algorithm: JwtAlgorithm, key: Option<PathBuf>) -> JwtConfig {
        JwtConfig {
            secret: None,
            algorithm,
            private_key_file: key,
            previous_secrets: Vec::new(),
            previous_key_files: Vec::new(),
            access_token_ttl: std::time::Duration::from_secs(900),
            refresh_token_ttl: std::time::Duration::from_secs(3600),
            oidc_signing_key_file: None,
        }
    }

    fn hs256(secret: &str, previous: &[&str]) -> JwtKeys {
        let mut cfg = config(JwtAlgorithm::HS256, None);
        cfg.previous_secrets = previous.iter().map(|s| Secret::new(*s)).collect();
        JwtKeys::new(&cfg, Some(&Secret::new(secret)), ISSUER).unwrap()
    }

    fn claims() -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: Uuid::now_v7(),
            sid: Uuid::now_v7(),
            roles: vec!["user".into()],
            aal: "aal1".into(),
            iat: now,
            exp: now + 900,
            jti: Uuid::now_v7(),
        }
    }

    fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    /// A fresh Ed25519 PKCS#8 PEM file in `dir`.
    fn ed25519_pem(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(
            &path,
            crate::crypto::keys::generate_pem(JwtAlgorithm::EdDSA).unwrap(),
        )
        .unwrap();
        path
    }

    #[test]
    fn hs256_kid_is_a_fingerprint_not_the_secret() {
        let kid = secret_kid(OLD);
        assert!(kid.starts_with("hs256-"), "{kid}");
        assert_eq!(kid.len(), "hs256-".len() + 16);
        assert!(!kid.contains(OLD) && !OLD.contains(&kid[6..]));
        assert_eq!(kid, secret_kid(OLD));
        assert_ne!(kid, secret_kid(NEW));
    }

    #[test]
    fn a_rotated_hs256_secret_keeps_verifying_and_new_tokens_name_the_new_key() {
        let c = claims();
        let before = hs256(OLD, &[]).sign(&c).unwrap();
        assert_eq!(kid_of(&before), Some(secret_kid(OLD)));

        let rotated = hs256(NEW, &[OLD]);
        assert_eq!(rotated.verify(&before).as_deref(), Some(&c));
        let after = rotated.sign(&c).unwrap();
        assert_eq!(kid_of(&after), Some(secret_kid(NEW)));
        assert_eq!(rotated.kid(), secret_kid(NEW));
        assert_eq!(rotated.verify(&after).as_deref(), Some(&c));
        assert!(
            rotated.jwks().keys.is_empty(),
            "secrets are never published"
        );
        assert_eq!(rotated.materials(), vec![NEW.as_bytes(), OLD.as_bytes()]);

        // Once the old secret is dropped, its tokens are refused.
        let dropped = hs256(NEW, &[]);
        assert_eq!(dropped.verify(&before).as_deref(), None);
        assert_eq!(dropped.verify(&after).as_deref(), Some(&c));
    }

    #[test]
    fn tokens_without_a_kid_are_tried_against_every_key_of_their_algorithm() {
        let c = claims();
        let legacy = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(OLD.as_bytes()),
        )
        .unwrap();
        assert_eq!(hs256(NEW, &[OLD]).verify(&legacy).as_deref(), Some(&c));
        assert_eq!(hs256(NEW, &[]).verify(&legacy).as_deref(), None);
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_one_is_checked_again() {
        let keys = hs256(NEW, &[]);
        let mut c = claims();
        // Just inside the leeway: accepted, and remembered.
        c.exp = jsonwebtoken::get_current_timestamp() as i64 - LEEWAY_SECONDS as i64 + 1;
        let token = keys.sign(&c).unwrap();
        assert_eq!(keys.verify(&token).as_deref(), Some(&c));
        // One byte of the signature changed: not the remembered token, so refused.
        let mut forged = token.clone();
        let at = forged.len() - 10;
        let other = if &forged[at..=at] == "A" { "B" } else { "A" };
        forged.replace_range(at..=at, other);
        assert_eq!(keys.verify(&forged).as_deref(), None);
        // Past the leeway: refused although remembered.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(keys.verify(&token).as_deref(), None);
    }

    #[test]
    fn a_kid_is_checked_against_the_key_it_names_only() {
        let c = claims();
        let keys = hs256(NEW, &[OLD]);
        // Signed with the old secret but naming the new one (or one nobody has): refused.
        for kid in [secret_kid(NEW), "unknown".to_string()] {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.clone());
            let token =
                jsonwebtoken::encode(&header, &c, &EncodingKey::from_secret(OLD.as_bytes()))
                    .unwrap();
            assert_eq!(keys.verify(&token).as_deref(), None, "{kid}");
        }
        // Expired, wrong issuer: refused under any key.
        let mut expired = c.clone();
        expired.exp -= 3600;
        expired.iat -= 3600;
        let old = hs256(OLD, &[]);
        assert_eq!(keys.verify(&old.sign(&expired).unwrap()).as_deref(), None);
        let mut other = c;
        other.iss = "https://elsewhere.example.com".into();
        assert_eq!(keys.verify(&old.sign(&other).unwrap()).as_deref(), None);
    }

    #[test]
    fn asymmetric_rotation_publishes_every_verifying_key_and_may_change_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (
            ed25519_pem(dir.path(), "old.pem"),
            ed25519_pem(dir.path(), "new.pem"),
        );
        let c = claims();
        let before = JwtKeys::new(
            &config(JwtAlgorithm::EdDSA, Some(old.clone())),
            None,
            ISSUER,
        )
        .unwrap();
        let token = before.sign(&c).unwrap();

        let mut cfg = config(JwtAlgorithm::EdDSA, Some(new));
        cfg.previous_key_files = vec![old.clone()];
        cfg.previous_secrets = vec![Secret::new(OLD)];
        let after = JwtKeys::new(&cfg, None, ISSUER).unwrap();
        assert_eq!(after.verify(&token).as_deref(), Some(&c));
        let kids: Vec<_> = after
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, [after.kid().to_string(), before.kid().to_string()]);
        assert_eq!(
            kid_of(&after.sign(&c).unwrap()).as_deref(),
            Some(after.kid())
        );
        // A previous HS256 secret still verifies its tokens after a move to EdDSA.
        let hs_token = hs256(OLD, &[]).sign(&c).unwrap();
        assert_eq!(after.verify(&hs_token).as_deref(), Some(&c));
        // The same file listed again as a previous key is one key.
        let mut twice = config(JwtAlgorithm::EdDSA, Some(old.clone()));
        twice.previous_key_files = vec![old];
        assert_eq!(
            JwtKeys::new(&twice, None, ISSUER)
                .unwrap()
                .jwks()
                .keys
                .len(),
            1
        );
    }

    #[test]
    fn id_tokens_are_never_signed_with_an_hs256_secret() {
        let pem = crate::crypto::keys::generate_pem(JwtAlgorithm::ES256).unwrap();
        let keys = hs256(NEW, &[]);
        assert_eq!(keys.id_token_algorithm(), None);
        assert_eq!(keys.sign_id_token(&claims()), None);
        let keys = keys.with_id_token_key("test", pem.into_bytes()).unwrap();
        assert_eq!(keys.id_token_algorithm(), Some("ES256"));
        let token = keys.sign_id_token(&claims()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(keys.jwks().keys.len(), 1);
        assert_eq!(
            header.kid.as_deref(),
            keys.jwks().keys[0].common.key_id.as_deref()
        );
        // Its key publishes and signs ID tokens only: no access token verifies under it.
        assert_eq!(keys.verify(&token).as_deref(), None);
        assert!(keys.verify_id_token_hint(&token).is_some());
        // With an asymmetric signing key, that key signs ID tokens and no other is added.
        let dir = tempfile::tempdir().unwrap();
        let ed = ed25519_pem(dir.path(), "ed.pem");
        let asym = JwtKeys::new(&config(JwtAlgorithm::EdDSA, Some(ed)), None, ISSUER)
            .unwrap()
            .with_id_token_key(
                "test",
                crate::crypto::keys::generate_pem(JwtAlgorithm::ES256)
                    .unwrap()
                    .into_bytes(),
            )
            .unwrap();
        assert_eq!(asym.id_token_algorithm(), Some("EdDSA"));
        assert_eq!(asym.jwks().keys.len(), 1);
    }

    #[test]
    fn previous_key_files_are_recognised_by_type_and_bad_ones_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        for alg in [
            JwtAlgorithm::EdDSA,
            JwtAlgorithm::ES256,
            JwtAlgorithm::RS256,
        ] {
            let path = dir.path().join(format!("{alg:?}.pem"));
            std::fs::write(&path, crate::crypto::keys::generate_pem(alg).unwrap()).unwrap();
            assert_eq!(
                pem_algorithm(&std::fs::read(&path).unwrap()),
                Some(alg),
                "{alg:?}"
            );
            let signer = JwtKeys::new(&config(alg, Some(path.clone())), None, ISSUER).unwrap();
            let mut cfg = config(JwtAlgorithm::HS256, None);
            cfg.previous_key_files = vec![path];
            let keys = JwtKeys::new(&cfg, Some(&Secret::new(NEW)), ISSUER).unwrap();
            let c = claims();
            assert_eq!(
                keys.verify(&signer.sign(&c).unwrap()).as_deref(),
                Some(&c),
                "{alg:?}"
            );
            assert_eq!(keys.jwks().keys.len(), 1);
        }
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a key").unwrap();
        let mut cfg = config(JwtAlgorithm::HS256, None);
        cfg.previous_key_files = vec![junk];
        let err = JwtKeys::new(&cfg, Some(&Secret::new(NEW)), ISSUER)
            .err()
            .unwrap();
        assert_eq!(err.var, "JWT_PREVIOUS_KEY_FILES");
    }
}
