//! Encryption at rest: AES-256-GCM with a random nonce per value, stored as `v1:<key id>:<base64(nonce ‖ ciphertext)>`, bound to what the value is for.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::config::{Config, ConfigError};

/// A value could not be opened: another key, tampered, or not an envelope.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(&'static str);

/// The master key (`ENCRYPTION_MASTER_KEY`) and its id, which seals; and any older keys
/// (`ENCRYPTION_READ_KEYS`) that only open, so values move to a new key while the server runs.
#[derive(Clone)]
pub struct Envelope {
    cipher: Aes256Gcm,
    key_id: String,
    readers: Vec<Envelope>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Envelope({})", self.key_id)
    }
}

impl Envelope {
    /// From the base64 master key; `None` unless it decodes to 32 bytes.
    pub fn from_base64(master: &str) -> Option<Self> {
        let master = master.trim();
        let bytes = STANDARD
            .decode(master)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(master))
            .ok()?;
        if bytes.len() != 32 {
            return None;
        }
        let key_id = hex::encode(&Sha256::digest(&bytes)[..4]);
        Some(Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).ok()?,
            key_id,
            readers: Vec::new(),
        })
    }

    /// This key, also opening what `readers` sealed.
    pub fn with_readers(mut self, readers: Vec<Envelope>) -> Self {
        self.readers = readers;
        self
    }

    /// The configured keys: `None` without `ENCRYPTION_MASTER_KEY`.
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let readers = config
            .encryption_read_keys
            .iter()
            .map(|k| Envelope::from_base64(k.expose()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConfigError::new("ENCRYPTION_READ_KEYS", "each must be 32 bytes, base64")
            })?;
        let Some(master) = &config.encryption_master_key else {
            if readers.is_empty() {
                return Ok(None);
            }
            return Err(ConfigError::new(
                "ENCRYPTION_READ_KEYS",
                "needs ENCRYPTION_MASTER_KEY, the key that seals",
            ));
        };
        let master = Envelope::from_base64(master.expose())
            .ok_or_else(|| ConfigError::new("ENCRYPTION_MASTER_KEY", "must be 32 bytes, base64"))?;
        Ok(Some(master.with_readers(readers)))
    }

    /// Whether `sealed` is sealed under this (the sealing) key.
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed
            .strip_prefix("v1:")
            .and_then(|rest| rest.strip_prefix(self.key_id.as_str()))
            .is_some_and(|rest| rest.starts_with(':'))
    }

    /// The key's id: the first 4 bytes of its SHA-256, in hex, as envelopes name it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Encrypt `plaintext`; `context` (e.g. `totp:<user id>`) must be given again to open it,
    /// so a value copied to another row does not decrypt.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("v1:{}:{}", self.key_id, STANDARD.encode(out))
    }

    /// Decrypt a value made by `seal` with the same key and context.
    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, EnvelopeError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some("v1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(EnvelopeError("not an encrypted value"));
        };
        let Some(key) = std::iter::once(self)
            .chain(&self.readers)
            .find(|k| k.key_id == key_id)
        else {
            return Err(EnvelopeError("encrypted under another master key"));
        };
        let raw = STANDARD
            .decode(body)
            .map_err(|_| EnvelopeError("not an encrypted value"))?;
        if raw.len() < 12 + 16 {
            return Err(EnvelopeError("not an encrypted value"));
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| EnvelopeError("bad nonce"))?;
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| EnvelopeError("the value does not decrypt"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Envelope {
        Envelope::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn round_trip_and_every_tamper_is_refused() {
        let k = key(7);
        let sealed = k.seal(b"JBSWY3DPEHPK3PXP", "totp:a");
        assert!(sealed.starts_with(&format!("v1:{}:", k.key_id)));
        assert!(!sealed.contains("JBSWY3DPEHPK3PXP"));
        assert_ne!(
            sealed,
            k.seal(b"JBSWY3DPEHPK3PXP", "totp:a"),
            "fresh nonce each time"
        );
        assert_eq!(k.open(&sealed, "totp:a").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(k.open(&sealed, "totp:b").is_err(), "another row");
        assert!(key(8).open(&sealed, "totp:a").is_err(), "another key");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(
            k.open(std::str::from_utf8(&flipped).unwrap(), "totp:a")
                .is_err()
        );
        assert!(k.open("plain", "totp:a").is_err());
        assert!(Envelope::from_base64("c2hvcnQ=").is_none());
    }

    #[test]
    fn readers_open_but_never_seal() {
        let (old, new) = (key(1), key(2));
        let sealed_old = old.seal(b"secret", "ctx");
        let ring = new.clone().with_readers(vec![old.clone()]);
        assert_eq!(ring.open(&sealed_old, "ctx").unwrap(), b"secret");
        assert!(!ring.is_current(&sealed_old));
        let sealed_new = ring.seal(b"secret", "ctx");
        assert!(ring.is_current(&sealed_new) && new.is_current(&sealed_new));
        assert_eq!(new.open(&sealed_new, "ctx").unwrap(), b"secret");
        assert!(new.open(&sealed_old, "ctx").is_err());
        assert!(old.open(&sealed_new, "ctx").is_err());
    }
}
