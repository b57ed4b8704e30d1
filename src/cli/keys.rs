//! `gatehouse keys generate`: fresh secrets to paste into the configuration; `gatehouse keys rotate`: every sealed secret moved to the master key; `gatehouse keys rotate-jwt`: a new signing key and the variables that keep the old ones verifying.

use std::io::Write;
use std::path::Path;

use crate::Error;
use crate::config::{Config, ConfigError, JwtAlgorithm};
use crate::crypto::envelope::Envelope;
use crate::crypto::keys;
use crate::service::integrations::Integrations;

pub(super) fn generate() {
    println!("JWT_SECRET={}", keys::generate_jwt_secret());
    println!("ENCRYPTION_MASTER_KEY={}", keys::generate_master_key());
}

pub(super) async fn rotate(config: Config, batch: u64, batches: Option<u64>) -> Result<(), Error> {
    let envelope = Envelope::from_config(&config)?.ok_or_else(|| {
        ConfigError::new(
            "ENCRYPTION_MASTER_KEY",
            "is not set: set the new key, and the old ones in ENCRYPTION_READ_KEYS",
        )
    })?;
    let db = super::database(&config).await?;
    let integrations = Integrations::new(db, Some(envelope));
    let done = integrations
        .rotate(batch, batches, |so_far| {
            tracing::info!(
                integrations = so_far.integrations,
                totp = so_far.totp,
                "re-encrypted so far"
            );
        })
        .await?;
    println!(
        "re-encrypted {} integration key(s) and {} TOTP secret(s) under key {}",
        done.integrations, done.totp, done.key_id
    );
    if done.changed_meanwhile > 0 {
        println!(
            "{} value(s) changed while being moved and were left as the server wrote them",
            done.changed_meanwhile
        );
    }
    if !done.unreadable.is_empty() {
        return Err(Error::Usage(format!(
            "{} value(s) open with no configured key, left untouched (first: {}); add their key to ENCRYPTION_READ_KEYS and run again",
            done.unreadable.len(),
            done.unreadable[0]
        )));
    }
    if done.stopped_early {
        println!("stopped after the batches allowed; run again to carry on");
    } else {
        println!("every secret is now under key {}", done.key_id);
    }
    Ok(())
}

/// Make the next JWT signing key (an HS256 secret, or a PEM written to `out`, never over an
/// existing file) and print the variables that sign with it while every key in use now keeps
/// verifying.
pub(super) fn rotate_jwt(
    config: Config,
    algorithm: Option<JwtAlgorithm>,
    out: Option<&Path>,
) -> Result<(), Error> {
    let algorithm = algorithm.unwrap_or(config.jwt.algorithm);
    let mut previous_secrets: Vec<String> = config
        .jwt
        .previous_secrets
        .iter()
        .map(|s| s.expose().to_string())
        .collect();
    let mut previous_files: Vec<String> = config
        .jwt
        .previous_key_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    // The key that signs now becomes the first previous key.
    match (config.jwt.algorithm, &config.jwt.private_key_file) {
        (JwtAlgorithm::HS256, _) => {
            if let Some(secret) = keys::current_jwt_secret(&config) {
                previous_secrets.insert(0, secret.expose().to_string());
            }
        }
        (_, Some(path)) => previous_files.insert(0, absolute(path)?),
        (_, None) => {}
    }
    let (secret, key_file) = match (keys::generate_pem(algorithm), out) {
        (None, None) => (keys::generate_jwt_secret(), String::new()),
        (None, Some(_)) => {
            return Err(Error::Usage(
                "--out is for asymmetric keys; an HS256 secret is printed".into(),
            ));
        }
        (Some(_), None) => {
            return Err(Error::Usage(format!(
                "--out FILE is required: where to write the new {algorithm:?} private key"
            )));
        }
        (Some(pem), Some(path)) => {
            write_new_private(path, &pem)?;
            (String::new(), absolute(path)?)
        }
    };
    let algorithm_name = format!("{algorithm:?}");
    for (var, value) in [
        ("JWT_ALGORITHM", algorithm_name.as_str()),
        ("JWT_SECRET", &secret),
        ("JWT_PRIVATE_KEY_FILE", &key_file),
        ("JWT_PREVIOUS_SECRETS", &previous_secrets.join(",")),
        ("JWT_PREVIOUS_KEY_FILES", &previous_files.join(",")),
    ] {
        println!("{var}={value}");
    }
    eprintln!(
        "set these and restart (several instances: docs/operations.md, Rotating keys); keep the previous keys for JWT_REFRESH_TOKEN_EXPIRES ({} s) so nobody is signed out",
        config.jwt.refresh_token_ttl.as_secs()
    );
    Ok(())
}

fn absolute(path: &Path) -> Result<String, Error> {
    Ok(std::path::absolute(path)?.display().to_string())
}

/// Write `contents` to a new file only the owner can read; an existing file is left alone.
fn write_new_private(path: &Path, contents: &str) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Usage(format!(
                "{} already exists; choose a new file for the new key",
                path.display()
            ))
        } else {
            Error::Usage(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
