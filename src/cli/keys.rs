//! `gatehouse keys generate`: fresh secrets to paste into the configuration; `gatehouse keys rotate`: every sealed secret moved to the master key.

use crate::Error;
use crate::config::{Config, ConfigError};
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
