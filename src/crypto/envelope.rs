//! Encryption at rest: AES-256-GCM with a random nonce per value, stored as `v1:<key id>:<base64(nonce ‖ ciphertext)>`, bound to what the value is for.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A value could not be opened: another key, tampered, or not an envelope.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(&'static str);

/// The master key (`ENCRYPTION_MASTER_KEY`) and its id.
#[derive(Clone)]
pub struct Envelope {
    cipher: Aes256Gcm,
    key_id: String,
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
        })
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
        if key_id != self.key_id {
            return Err(EnvelopeError("encrypted under another master key"));
        }
        let raw = STANDARD
            .decode(body)
            .map_err(|_| EnvelopeError("not an encrypted value"))?;
        if raw.len() < 12 + 16 {
            return Err(EnvelopeError("not an encrypted value"));
        }
        let (nonce, ciphertext) = raw.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| EnvelopeError("bad nonce"))?;
        self.cipher
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
}
