//! TOTP as an authenticator app computes it, written independently of the server's totp-rs (RFC 6238 over HMAC-SHA1 here), and an account enrolled with it.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use super::{Pair, Reply, TestApp, TestDb};

/// A master key for `ENCRYPTION_MASTER_KEY` (32 bytes, base64), which MFA needs.
pub const MASTER_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

pub fn base32_decode(s: &str) -> Vec<u8> {
    let mut bits = 0u64;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').chars() {
        let v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
            .find(c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// RFC 6238 / RFC 4226: the 6-digit code of time step `step`.
pub fn code_at(secret: &[u8], step: u64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

pub fn step_now() -> u64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
        / 30
}

/// A six-digit code that is none of the codes of `steps` (so certainly wrong then).
pub fn wrong_code(secret: &[u8], steps: std::ops::RangeInclusive<u64>) -> String {
    let good: Vec<String> = steps.map(|t| code_at(secret, t)).collect();
    (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !good.contains(c))
        .unwrap()
}

/// An account with TOTP enrolled and confirmed.
pub struct Totp {
    pub secret: Vec<u8>,
    pub recovery_codes: Vec<String>,
    /// The aal1 pair used to enrol.
    pub aal1: Pair,
    /// The time step whose code confirmed the enrolment (so it is spent).
    pub step: u64,
}

impl TestDb {
    /// A server with an encryption master key (MFA needs one) and these other settings.
    pub async fn mfa_app(&self, extra_env: &[(&str, &str)]) -> TestApp {
        let mut env = vec![("ENCRYPTION_MASTER_KEY", MASTER_KEY)];
        env.extend_from_slice(extra_env);
        self.app(&env).await
    }
}

impl TestApp {
    pub async fn enroll_totp(&self, token: &str) -> Reply {
        self.post("/api/v1/auth/mfa/totp/enroll", token, json!({}))
            .await
    }

    pub async fn confirm_totp(&self, token: &str, code: &str) -> Reply {
        self.post(
            "/api/v1/auth/mfa/totp/confirm",
            token,
            json!({"code": code}),
        )
        .await
    }

    /// The second step of a login: `proof` is `{"code": …}` or `{"recovery_code": …}`.
    pub async fn mfa_verify(&self, mfa_token: &Value, proof: Value) -> Reply {
        let mut body = proof;
        body["mfa_token"] = mfa_token.clone();
        self.post_public("/api/v1/auth/mfa/verify", body).await
    }

    /// Enrol and confirm TOTP on the account behind `token` (an aal1 token will do).
    pub async fn turn_on_totp(&self, token: &str) {
        let enrolled = self.enroll_totp(token).await;
        assert_eq!(enrolled.status, 200, "{}", enrolled.body);
        let secret = base32_decode(enrolled.body["secret"].as_str().unwrap());
        let res = self
            .confirm_totp(token, &code_at(&secret, step_now()))
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }

    /// Register `email`, enrol and confirm TOTP.
    pub async fn with_totp(&self, email: &str) -> Totp {
        self.register(email).await;
        let aal1 = self.login(email).await;
        let enrolled = self.enroll_totp(&aal1.access).await;
        assert_eq!(enrolled.status, 200, "{}", enrolled.body);
        let secret = base32_decode(enrolled.body["secret"].as_str().unwrap());
        let step = step_now();
        let res = self
            .confirm_totp(&aal1.access, &code_at(&secret, step))
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let recovery_codes = serde_json::from_value(res.body["recovery_codes"].clone()).unwrap();
        Totp {
            secret,
            recovery_codes,
            aal1,
            step,
        }
    }
}
