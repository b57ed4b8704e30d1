//! TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step) through totp-rs: secrets, enrolment URIs and QR codes, and which time step a code belongs to.

use totp_rs::{Algorithm, TOTP};

/// Seconds per step.
pub const STEP: u64 = 30;

/// A fresh 160-bit secret (the RFC 4226 recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    secret
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        secret.to_vec(),
        Some(issuer.replace(':', "")),
        account.replace(':', ""),
    )
    .ok()
}

/// What enrolment shows: the base32 secret, the `otpauth://` URI and its QR code as SVG.
pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Option<(String, String, String)> {
    let t = totp(secret, issuer, account)?;
    let uri = t.get_url();
    let svg = qrcode::QrCode::new(uri.as_bytes())
        .ok()?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Some((t.get_secret_base32(), uri, svg))
}

/// The time step (`unix time / 30`) whose code `code` is, among the steps of `now` ± 1; `None`
/// when it matches none. Compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "x", "x")?;
    let current = now / STEP;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = t.generate(step * STEP);
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, last 6 digits.
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59u64, "287082"),
            (1111111109, "081804"),
            (2000000000, "279037"),
        ] {
            assert_eq!(
                matching_step(secret, code, time),
                Some(time / STEP),
                "{time}"
            );
        }
    }

    #[test]
    fn one_step_either_side_and_no_further() {
        let secret = b"12345678901234567890".to_vec();
        let t = totp(&secret, "x", "x").unwrap();
        let now = 1_800_000_000;
        for delta in [-1i64, 0, 1] {
            let step = (now / STEP) as i64 + delta;
            let code = t.generate(step as u64 * STEP);
            assert_eq!(matching_step(&secret, &code, now), Some(step as u64));
        }
        for away in [2, 3, 10] {
            let far = t.generate(now + away * STEP);
            assert_eq!(
                matching_step(&secret, &far, now),
                None,
                "{away} steps ahead"
            );
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn enrolment_shows_an_otpauth_uri_and_an_svg() {
        let (secret, uri, svg) = enrolment(&new_secret(), "Gatehouse", "ada@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/Gatehouse:ada%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={secret}")));
        assert!(svg.contains("<svg"));
    }
}
