//! The stored password-hash formats Gatehouse accepts from the systems it replaces (bcrypt, argon2id, and the PBKDF2 and scrypt strings of passlib, Werkzeug and Django): recognising them at import and verifying them at login, through the RustCrypto crates.

use argon2::password_hash::PasswordHash;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use subtle::ConstantTimeEq;

/// A stored hash format Gatehouse verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// `$argon2id$v=19$m=…,t=…,p=…$salt$hash` (PHC): what Gatehouse writes.
    Argon2id,
    /// `$2a$`, `$2b$`, `$2y$` + cost.
    Bcrypt,
    /// passlib `$pbkdf2-sha256$rounds$salt$hash` (and `-sha512`), adapted base64.
    PasslibPbkdf2,
    /// Werkzeug `pbkdf2:sha256:N$salt$hexhash` (and `sha512`).
    WerkzeugPbkdf2,
    /// Werkzeug `scrypt:N:r:p$salt$hexhash`.
    WerkzeugScrypt,
    /// Django `pbkdf2_sha256$N$salt$base64hash`.
    DjangoPbkdf2,
}

/// The most PBKDF2 rounds an imported hash may ask for (a login must not cost seconds).
pub const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;
/// The largest scrypt `N·r` accepted (128·N·r bytes of memory: 256 MiB).
const MAX_SCRYPT_NR: u64 = 1 << 21;
const MAX_SCRYPT_P: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prf {
    Sha256,
    Sha512,
}

/// A PBKDF2 or scrypt hash taken apart, ready to verify.
#[derive(Debug, PartialEq, Eq)]
enum Kdf {
    Pbkdf2 {
        prf: Prf,
        rounds: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
    Scrypt {
        log_n: u8,
        r: u32,
        p: u32,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
}

/// passlib's "adapted base64": `.` for `+`, no padding.
fn ab64_decode(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(text.replace('.', "+")).ok()
}

fn prf(name: &str) -> Option<Prf> {
    match name {
        "sha256" => Some(Prf::Sha256),
        "sha512" => Some(Prf::Sha512),
        _ => None,
    }
}

fn rounds(text: &str) -> Result<u32, &'static str> {
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_PBKDF2_ROUNDS).contains(&n) => Ok(n),
        Ok(_) => Err("the PBKDF2 iteration count is out of range (1 to 10,000,000)"),
        Err(_) => Err("the PBKDF2 iteration count is not a number"),
    }
}

/// Take a PBKDF2 or scrypt string apart. `Ok(None)`: not one of these formats.
fn parse_kdf(stored: &str) -> Result<Option<(HashFormat, Kdf)>, &'static str> {
    const MALFORMED: &str = "a malformed PBKDF2 or scrypt hash";
    if let Some(rest) = stored.strip_prefix("$pbkdf2-") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [name, n, salt, hash] = parts[..] else {
            return Err(MALFORMED);
        };
        let prf = prf(name).ok_or("an unsupported passlib PBKDF2 digest (sha256 or sha512)")?;
        let kdf = Kdf::Pbkdf2 {
            prf,
            rounds: rounds(n)?,
            salt: ab64_decode(salt).ok_or(MALFORMED)?,
            expected: ab64_decode(hash).ok_or(MALFORMED)?,
        };
        return Ok(Some((HashFormat::PasslibPbkdf2, kdf)));
    }
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [n, salt, hash] = parts[..] else {
            return Err(MALFORMED);
        };
        let kdf = Kdf::Pbkdf2 {
            prf: Prf::Sha256,
            rounds: rounds(n)?,
            salt: salt.as_bytes().to_vec(),
            expected: STANDARD.decode(hash).map_err(|_| MALFORMED)?,
        };
        return Ok(Some((HashFormat::DjangoPbkdf2, kdf)));
    }
    let werkzeug = stored.starts_with("pbkdf2:") || stored.starts_with("scrypt:");
    if !werkzeug {
        return Ok(None);
    }
    let parts: Vec<&str> = stored.split('$').collect();
    let [method, salt, hash] = parts[..] else {
        return Err(MALFORMED);
    };
    let salt = salt.as_bytes().to_vec();
    let expected = hex::decode(hash).map_err(|_| MALFORMED)?;
    let params: Vec<&str> = method.split(':').collect();
    match params[..] {
        ["pbkdf2", name, n] => {
            let prf =
                prf(name).ok_or("an unsupported Werkzeug PBKDF2 digest (sha256 or sha512)")?;
            let kdf = Kdf::Pbkdf2 {
                prf,
                rounds: rounds(n)?,
                salt,
                expected,
            };
            Ok(Some((HashFormat::WerkzeugPbkdf2, kdf)))
        }
        ["pbkdf2", _] => Err("a Werkzeug PBKDF2 hash without its iteration count"),
        ["scrypt", n, r, p] => {
            let (n, r, p) = match (n.parse::<u64>(), r.parse::<u32>(), p.parse::<u32>()) {
                (Ok(n), Ok(r), Ok(p)) => (n, r, p),
                _ => return Err(MALFORMED),
            };
            let in_range = n >= 2
                && n.is_power_of_two()
                && r >= 1
                && (1..=MAX_SCRYPT_P).contains(&p)
                && n.saturating_mul(r as u64) <= MAX_SCRYPT_NR;
            if !in_range {
                return Err(
                    "scrypt parameters out of range (N a power of two, 128·N·r ≤ 256 MiB, p ≤ 16)",
                );
            }
            let kdf = Kdf::Scrypt {
                log_n: n.trailing_zeros() as u8,
                r,
                p,
                salt,
                expected,
            };
            Ok(Some((HashFormat::WerkzeugScrypt, kdf)))
        }
        _ => Err(MALFORMED),
    }
}

/// Which format `stored` is, or why Gatehouse cannot verify it (a row with such a hash is
/// refused at import, never stored).
pub fn recognise(stored: &str) -> Result<HashFormat, String> {
    if ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        // A bcrypt string is exactly 60 characters: `$2b$` + cost + `$` + 53 of salt and hash.
        let cost = stored.get(4..6).and_then(|c| c.parse::<u32>().ok());
        return match cost {
            Some(4..=31) if stored.len() == 60 && stored.as_bytes()[6] == b'$' => {
                Ok(HashFormat::Bcrypt)
            }
            _ => Err("a malformed bcrypt hash".into()),
        };
    }
    if stored.starts_with("$argon2") {
        return match PasswordHash::new(stored) {
            Ok(h) if h.algorithm.as_str() != "argon2id" => {
                Err("an argon2 variant other than argon2id".into())
            }
            Ok(h) if h.hash.is_some() => argon2::Params::try_from(&h)
                .map(|_| HashFormat::Argon2id)
                .map_err(|_| "argon2id parameters out of range".into()),
            _ => Err("a malformed argon2id hash".into()),
        };
    }
    match parse_kdf(stored) {
        Ok(Some((_, Kdf::Pbkdf2 { expected, .. } | Kdf::Scrypt { expected, .. })))
            if !(16..=64).contains(&expected.len()) =>
        {
            Err("a PBKDF2 or scrypt hash of an unusual length (16 to 64 bytes)".into())
        }
        Ok(Some((format, _))) => Ok(format),
        Ok(None) => Err("an unknown password hash format".into()),
        Err(why) => Err(why.into()),
    }
}

fn derive(kdf: &Kdf, password: &[u8]) -> Option<Vec<u8>> {
    match kdf {
        Kdf::Pbkdf2 {
            prf,
            rounds,
            salt,
            expected,
        } => {
            let mut out = vec![0u8; expected.len()];
            match prf {
                Prf::Sha256 => {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *rounds, &mut out)
                }
                Prf::Sha512 => {
                    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, *rounds, &mut out)
                }
            }
            Some(out)
        }
        Kdf::Scrypt {
            log_n,
            r,
            p,
            salt,
            expected,
        } => {
            let params = scrypt::Params::new(*log_n, *r, *p, expected.len()).ok()?;
            let mut out = vec![0u8; expected.len()];
            scrypt::scrypt(password, salt, &params, &mut out).ok()?;
            Some(out)
        }
    }
}

/// Verify `password` against an imported bcrypt, PBKDF2 or scrypt hash; `None` when `stored`
/// is none of these (argon2id is verified by the hashing pool itself).
pub fn verify_imported(password: &str, stored: &str) -> Option<bool> {
    if recognise(stored) == Ok(HashFormat::Bcrypt) {
        return Some(bcrypt::verify(password.as_bytes(), stored).unwrap_or(false));
    }
    let (_, kdf) = parse_kdf(stored).ok().flatten()?;
    let expected = match &kdf {
        Kdf::Pbkdf2 { expected, .. } | Kdf::Scrypt { expected, .. } => expected,
    };
    if !(16..=64).contains(&expected.len()) {
        return Some(false);
    }
    let derived = derive(&kdf, password.as_bytes())?;
    Some(derived.as_slice().ct_eq(expected.as_slice()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python's standard library while writing this module
    // (`hashlib.pbkdf2_hmac('sha256', b'Old-Pass1!', salt, 1000)`, `hashlib.scrypt(...)`),
    // laid out as passlib 1.7, Werkzeug 3 and Django 5 write them.
    const PASSWORD: &str = "Old-Pass1!";
    const VECTORS: &[(&str, HashFormat)] = &[
        (
            "$pbkdf2-sha256$1000$Wh58Cz2fSi6Max0POl58mw$E2bNvKZnOvarV/dpJFcVDjPi9LTb3lGYTU1w1GLNqMI",
            HashFormat::PasslibPbkdf2,
        ),
        (
            "$pbkdf2-sha512$1000$Wh58Cz2fSi6Max0POl58mw$G/UoFWAsmJ3eBAd5v7HxoMofbIxXN3oJR6Z0TXEw25qlHTKnyAMdP4DipBQ6dGyBqlVJlXqPmDwcJkRaNwlHhQ",
            HashFormat::PasslibPbkdf2,
        ),
        (
            "pbkdf2:sha256:1000$Xq3vR8tLm2Pz9KfW$f69118d774ac2d78d56a7894262d313fa8e8619faa7aa82b48406d6c6140ceaf",
            HashFormat::WerkzeugPbkdf2,
        ),
        (
            "scrypt:1024:8:1$Xq3vR8tLm2Pz9KfW$f334846f07ec84bd0d4b95d057c23333eb5cb65890c1e5a90514cb8f1c3f684f7da9972e2f4b1687d5c13e5e60eb32d5c58ec0ee1570180c1cafb1b336dbfa9f",
            HashFormat::WerkzeugScrypt,
        ),
        (
            "pbkdf2_sha256$1000$dJ4kQm8RtVz2wXa7bNc5Ye$sascOXKs4PDdNjH0Wf5i45DioUzq/oHVkCJHuQy1SUM=",
            HashFormat::DjangoPbkdf2,
        ),
    ];

    #[test]
    fn each_format_verifies_the_right_password_only() {
        for (stored, format) in VECTORS {
            assert_eq!(recognise(stored), Ok(*format), "{stored}");
            assert_eq!(verify_imported(PASSWORD, stored), Some(true), "{stored}");
            assert_eq!(
                verify_imported("old-pass1!", stored),
                Some(false),
                "{stored}"
            );
            assert_eq!(verify_imported("", stored), Some(false), "{stored}");
        }
    }

    #[test]
    fn a_changed_hash_no_longer_verifies() {
        for (stored, _) in VECTORS {
            // One character of the hash part changed, still a valid encoding of other bytes.
            let at = stored.len() - 5;
            let was = stored.as_bytes()[at];
            let now = if was == b'0' { "1" } else { "0" };
            let changed = format!("{}{now}{}", &stored[..at], &stored[at + 1..]);
            assert_eq!(
                verify_imported(PASSWORD, &changed),
                Some(false),
                "{changed}"
            );
        }
    }

    #[test]
    fn unknown_and_out_of_range_hashes_are_refused_with_a_reason() {
        let bcrypt = bcrypt::hash(PASSWORD, 4).unwrap();
        assert_eq!(recognise(&bcrypt), Ok(HashFormat::Bcrypt));
        assert_eq!(verify_imported(PASSWORD, &bcrypt), Some(true));
        for (stored, why) in [
            ("", "unknown"),
            ("5f4dcc3b5aa765d61d8327deb882cf99", "unknown"),
            ("{SSHA}abcdef", "unknown"),
            ("$1$salt$hash", "unknown"),
            ("$2b$12$short", "bcrypt"),
            (
                "$argon2i$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "argon2id",
            ),
            ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA", "argon2id"),
            ("pbkdf2:sha256$salt$00ff", "iteration count"),
            ("pbkdf2:sha256:0$salt$00ff", "out of range"),
            ("pbkdf2:sha256:99999999999$salt$00ff", "iteration count"),
            ("pbkdf2:md5:1000$salt$00ff", "digest"),
            ("pbkdf2:sha256:1000$salt$zz", "malformed"),
            ("scrypt:1000:8:1$salt$00ff", "scrypt parameters"),
            ("scrypt:1048576:8:1$salt$00ff", "scrypt parameters"),
            ("$pbkdf2-sha1$1000$c2FsdA$aGFzaA", "digest"),
            ("pbkdf2_sha256$1000$salt$not base64!", "malformed"),
            ("pbkdf2_sha1$1000$salt$aGFzaA==", "unknown"),
            ("pbkdf2:sha256:1000$salt$00ff", "unusual length"),
        ] {
            let err = recognise(stored).unwrap_err();
            assert!(err.contains(why), "{stored}: {err}");
            assert_ne!(verify_imported(PASSWORD, stored), Some(true), "{stored}");
        }
    }
}
