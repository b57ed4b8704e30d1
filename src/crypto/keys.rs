//! Resolving the JWT signing secret (the configured one, or in development a random key generated once and kept beside the SQLite database), and making fresh keys.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use rand::RngCore;

use crate::config::{Backend, Config, ConfigError, JwtAlgorithm, Secret};

fn random_key() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh value for `JWT_SECRET` (384 random bits).
pub fn generate_jwt_secret() -> String {
    random_key()
}

/// A fresh private key for an asymmetric algorithm, as a PKCS#8 PEM (`None` for HS256, whose
/// key is a secret: see [`generate_jwt_secret`]).
pub fn generate_pem(algorithm: JwtAlgorithm) -> Option<String> {
    // One pkcs8 crate serves the three key types.
    use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
    let pem = match algorithm {
        JwtAlgorithm::HS256 => return None,
        JwtAlgorithm::EdDSA => {
            let mut seed = [0u8; 32];
            rand::rng().fill_bytes(&mut seed);
            ed25519_dalek::SigningKey::from_bytes(&seed).to_pkcs8_pem(LineEnding::LF)
        }
        JwtAlgorithm::ES256 => {
            p256::SecretKey::random(&mut rsa::rand_core::OsRng).to_pkcs8_pem(LineEnding::LF)
        }
        JwtAlgorithm::RS256 => rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .expect("a 2048-bit RSA key can be generated")
            .to_pkcs8_pem(LineEnding::LF),
    };
    Some(pem.expect("a fresh key encodes as PKCS#8").to_string())
}

/// A fresh value for `ENCRYPTION_MASTER_KEY` (32 random bytes, base64).
pub fn generate_master_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The development key kept at `path`, when there is a usable one.
fn existing_dev_key(path: &Path) -> Option<String> {
    let existing = std::fs::read_to_string(path).ok()?;
    let existing = existing.trim();
    (existing.len() >= 32).then(|| existing.to_string())
}

fn read_or_create(path: &Path) -> std::io::Result<String> {
    if let Some(existing) = existing_dev_key(path) {
        return Ok(existing);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let key = random_key();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(key.as_bytes())?;
    Ok(key)
}

/// The HS256 secret tokens are signed with now, without making one: `JWT_SECRET`, else the
/// development key when one was kept; `None` for asymmetric algorithms or when there is none.
pub fn current_jwt_secret(config: &Config) -> Option<Secret> {
    if config.jwt.algorithm != JwtAlgorithm::HS256 {
        return None;
    }
    config.jwt.secret.clone().or_else(|| {
        let path = config.dev_jwt_key_path()?;
        existing_dev_key(&path).map(Secret::new)
    })
}

/// The HS256 secret to sign with; `None` for asymmetric algorithms (their key file is used instead).
pub fn resolve_jwt_secret(config: &Config) -> Result<Option<Secret>, ConfigError> {
    if config.jwt.algorithm != JwtAlgorithm::HS256 {
        return Ok(None);
    }
    if let Some(secret) = &config.jwt.secret {
        return Ok(Some(secret.clone()));
    }
    if config.database.backend != Backend::Sqlite {
        return Err(ConfigError::new(
            "JWT_SECRET",
            "required with PostgreSQL or MySQL (generate one with `gatehouse keys generate`)",
        ));
    }
    match config.dev_jwt_key_path() {
        Some(path) => {
            let key = read_or_create(&path).map_err(|e| {
                ConfigError::new(
                    "JWT_SECRET",
                    format!(
                        "unset, and the development key {} cannot be used: {e}",
                        path.display()
                    ),
                )
            })?;
            tracing::warn!(
                path = %path.display(),
                "JWT_SECRET is not set: using a development key kept beside the database; set JWT_SECRET in production"
            );
            Ok(Some(Secret::new(key)))
        }
        None => {
            tracing::warn!(
                "JWT_SECRET is not set: using a random key for this in-memory database; tokens die with the process"
            );
            Ok(Some(Secret::new(random_key())))
        }
    }
}

/// Where the development ID-token key is kept beside the SQLite database.
fn dev_oidc_key_path(config: &Config) -> Option<std::path::PathBuf> {
    config
        .dev_jwt_key_path()
        .map(|p| p.with_file_name("oidc_signing_key.pem"))
}

/// The PEM key (and where it came from) that signs ID tokens while access tokens are HS256:
/// `OIDC_SIGNING_KEY_FILE`, else a development key generated once beside the SQLite database,
/// else (PostgreSQL, MySQL, in-memory SQLite) a key made for this process only, with a warning.
/// `None` when the JWT signing key is asymmetric: it signs ID tokens itself.
pub fn resolve_oidc_key(config: &Config) -> Result<Option<(String, Vec<u8>)>, ConfigError> {
    const VAR: &str = "OIDC_SIGNING_KEY_FILE";
    if config.jwt.algorithm != JwtAlgorithm::HS256 {
        return Ok(None);
    }
    if let Some(path) = &config.jwt.oidc_signing_key_file {
        let pem = std::fs::read(path)
            .map_err(|e| ConfigError::new(VAR, format!("cannot read {}: {e}", path.display())))?;
        return Ok(Some((path.display().to_string(), pem)));
    }
    let fresh = || {
        generate_pem(JwtAlgorithm::ES256)
            .expect("ES256 keys are PEM")
            .into_bytes()
    };
    match dev_oidc_key_path(config) {
        Some(path) => {
            if let Ok(pem) = std::fs::read(&path) {
                return Ok(Some((path.display().to_string(), pem)));
            }
            let pem = fresh();
            let write = || -> std::io::Result<()> {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                opts.open(&path)?.write_all(&pem)
            };
            match write() {
                Ok(()) => Ok(Some((path.display().to_string(), pem))),
                // Another process made it first: use theirs.
                Err(_) => std::fs::read(&path)
                    .map(|pem| Some((path.display().to_string(), pem)))
                    .map_err(|e| {
                        ConfigError::new(
                            VAR,
                            format!(
                                "unset, and the development key {} cannot be used: {e}",
                                path.display()
                            ),
                        )
                    }),
            }
        }
        None => {
            tracing::debug!(
                "OIDC_SIGNING_KEY_FILE is not set: ID tokens are signed with a key made for this process; set it (or an asymmetric JWT_ALGORITHM) before registering OpenID clients"
            );
            Ok(Some(("a key made for this process".into(), fresh())))
        }
    }
}
