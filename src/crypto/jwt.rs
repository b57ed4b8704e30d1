//! Signing and verifying access tokens (HS256, EdDSA, ES256, RS256) and publishing the public key as a JWKS.

use jsonwebtoken::jwk::{Jwk, JwkSet, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{ConfigError, JwtAlgorithm, JwtConfig, Secret};

/// The audience every access token is issued for.
pub const AUDIENCE: &str = "gatehouse";

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

/// The public JWK of an Ed25519 PKCS#8 PEM private key.
fn ed25519_jwk(pem: &[u8]) -> Result<Jwk, ConfigError> {
    use base64::Engine;
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    use jsonwebtoken::jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm, OctetKeyPairParameters,
        OctetKeyPairType,
    };
    let text = std::str::from_utf8(pem)
        .map_err(|_| ConfigError::new("JWT_PRIVATE_KEY_FILE", "is not a PEM file"))?;
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text).map_err(|e| {
        ConfigError::new(
            "JWT_PRIVATE_KEY_FILE",
            format!("not an Ed25519 PKCS#8 key: {e}"),
        )
    })?;
    Ok(Jwk {
        common: CommonParameters {
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(key.verifying_key().as_bytes()),
        }),
    })
}

/// Keys and rules for access tokens.
pub struct JwtKeys {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: Option<String>,
    jwks: JwkSet,
    validation: Validation,
}

impl JwtKeys {
    /// Build from configuration: the HS256 secret, or the PEM private key file of an asymmetric algorithm.
    pub fn new(
        cfg: &JwtConfig,
        hs_secret: Option<&Secret>,
        issuer: &str,
    ) -> Result<Self, ConfigError> {
        let (algorithm, encoding, decoding, kid, jwks) = match cfg.algorithm {
            JwtAlgorithm::HS256 => {
                let secret = hs_secret
                    .ok_or_else(|| ConfigError::new("JWT_SECRET", "required for HS256"))?
                    .expose()
                    .as_bytes();
                (
                    Algorithm::HS256,
                    EncodingKey::from_secret(secret),
                    DecodingKey::from_secret(secret),
                    None,
                    JwkSet { keys: vec![] },
                )
            }
            other => {
                const VAR: &str = "JWT_PRIVATE_KEY_FILE";
                let path = cfg
                    .private_key_file
                    .as_ref()
                    .ok_or_else(|| ConfigError::new(VAR, "required for asymmetric algorithms"))?;
                let pem = std::fs::read(path).map_err(|e| {
                    ConfigError::new(VAR, format!("cannot read {}: {e}", path.display()))
                })?;
                let bad = |e: jsonwebtoken::errors::Error| {
                    ConfigError::new(VAR, format!("not a PEM private key for {other:?}: {e}"))
                };
                let (alg, enc) = match other {
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
                    JwtAlgorithm::HS256 => unreachable!("handled above"),
                };
                let mut jwk = match alg {
                    // jsonwebtoken cannot derive an Ed25519 public key: do it with ed25519-dalek.
                    Algorithm::EdDSA => ed25519_jwk(&pem)?,
                    _ => Jwk::from_encoding_key(&enc, alg).map_err(bad)?,
                };
                let kid = jwk.thumbprint(ThumbprintHash::SHA256);
                jwk.common.key_id = Some(kid.clone());
                jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
                let dec = DecodingKey::from_jwk(&jwk).map_err(bad)?;
                (alg, enc, dec, Some(kid), JwkSet { keys: vec![jwk] })
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            algorithm,
            encoding,
            decoding,
            kid,
            jwks,
            validation,
        })
    }

    /// Sign `claims` with the configured key.
    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(self.algorithm);
        header.kid = self.kid.clone();
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The claims of a valid token: right algorithm and key, issuer, audience, not expired.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }

    /// The public keys (empty for HS256: a shared secret is never published).
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }
}
