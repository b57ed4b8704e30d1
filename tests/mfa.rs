//! TOTP MFA through HTTP on every backend, with codes computed by an independent RFC 6238 implementation (HMAC-SHA1 here, not totp-rs): enrol, confirm, the two-step login at aal2, replay and parallel use of one code or recovery code, lockout, and disabling.

mod common;

use base64::Engine;
use common::{TestDb, TestServer, count, race_post};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse9";
/// 32 bytes, base64.
const MASTER_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

fn base32_decode(s: &str) -> Vec<u8> {
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
fn code_at(secret: &[u8], step: u64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[o] & 0x7f, h[o + 1], h[o + 2], h[o + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn step_now() -> u64 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
        / 30
}

async fn post(s: &TestServer, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = s.client.post(s.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login(s: &TestServer, email: &str) -> Value {
    let (status, body) = post(
        s,
        "/api/v1/auth/login",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Register `email`, enrol and confirm TOTP; returns the secret, the recovery codes, the aal1
/// pair used to enrol, and the step the confirmation used.
async fn with_totp(s: &TestServer, email: &str) -> (Vec<u8>, Vec<String>, Value, u64) {
    post(
        s,
        "/api/v1/auth/register",
        json!({"email": email, "password": PASSWORD}),
        None,
    )
    .await;
    let pair = login(s, email).await;
    let token = pair["access_token"].as_str().unwrap();
    let (status, enrolled) = post(s, "/api/v1/auth/mfa/totp/enroll", json!({}), Some(token)).await;
    assert_eq!(status, 200, "{enrolled}");
    let secret = base32_decode(enrolled["secret"].as_str().unwrap());
    let step = step_now();
    let (status, body) = post(
        s,
        "/api/v1/auth/mfa/totp/confirm",
        json!({"code": code_at(&secret, step)}),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<String> = serde_json::from_value(body["recovery_codes"].clone()).unwrap();
    (secret, codes, pair, step)
}

async fn enrol_confirm_and_log_in_at_aal2(db: TestDb) {
    let s = db.server(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "ada@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    let pair = login(&s, "ada@example.com").await;
    let token = pair["access_token"].as_str().unwrap();
    let (status, enrolled) = post(&s, "/api/v1/auth/mfa/totp/enroll", json!({}), Some(token)).await;
    assert_eq!(status, 200);
    let base32 = enrolled["secret"].as_str().unwrap().to_string();
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/") && uri.contains(&format!("secret={base32}")),
        "{uri}"
    );
    assert!(
        uri.contains("ada%40example.com") && uri.contains("issuer=Gatehouse"),
        "{uri}"
    );
    assert!(enrolled["qr_svg"].as_str().unwrap().contains("<svg"));
    let secret = base32_decode(&base32);
    assert!(secret.len() >= 16);

    // Encrypted at rest: the database never holds the secret in clear.
    let conn = db.connect().await;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT mfa_pending_secret FROM users",
        ))
        .await
        .unwrap()
        .unwrap();
    let stored: String = row.try_get("", "mfa_pending_secret").unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains(&base32),
        "{stored}"
    );

    // Not active until confirmed; a wrong code does not confirm.
    assert_eq!(login(&s, "ada@example.com").await["token_type"], "Bearer");
    let wrong = if code_at(&secret, step_now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = post(
        &s,
        "/api/v1/auth/mfa/totp/confirm",
        json!({"code": wrong}),
        Some(token),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_mfa_code"))
    );
    let step = step_now();
    let (status, body) = post(
        &s,
        "/api/v1/auth/mfa/totp/confirm",
        json!({"code": code_at(&secret, step)}),
        Some(token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let codes = body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM recovery_codes",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 10);
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT code_hash FROM recovery_codes",
        ))
        .await
        .unwrap();
    for r in rows {
        let hash: String = r.try_get("", "code_hash").unwrap();
        assert!(
            codes.iter().all(|c| !hash.contains(c.as_str().unwrap())),
            "stored hashed"
        );
    }
    conn.close().await.unwrap();
    let (status, body) = post(&s, "/api/v1/auth/mfa/totp/enroll", json!({}), Some(token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("mfa_already_enabled"))
    );

    // Login now stops at the second factor.
    let (status, challenge) = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "ada@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["totp", "recovery_code"]));
    assert!(challenge.get("access_token").is_none());
    let mfa_token = challenge["mfa_token"].clone();

    // The code that confirmed enrolment was used: it cannot log in (no replay in its window).
    let (status, body) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": code_at(&secret, step)}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code"))
    );
    // The next step's code is inside the ±1 window: accepted, at aal2.
    let next = code_at(&secret, step + 1);
    let (status, pair) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": next}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(
        claims(pair["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );
    let (_, sessions) = {
        let res = s
            .client
            .get(s.url("/api/v1/auth/sessions"))
            .bearer_auth(pair["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["aal"], "aal2");
    assert_eq!(pair["user"]["mfa_enabled"], true);
    // The mfa_token is spent, and the code cannot be replayed with a fresh one.
    let (status, body) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": next}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_mfa_token"))
    );
    let fresh = login(&s, "ada@example.com").await["mfa_token"].clone();
    let (status, _) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": fresh, "code": next}),
        None,
    )
    .await;
    assert_eq!(status, 401, "a code is accepted once");

    // A recovery code works once, in any case and grouping.
    let code = codes[0].as_str().unwrap().to_string();
    let (status, pair) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": fresh, "recovery_code": code.to_lowercase()}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{pair}");
    assert_eq!(
        claims(pair["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );
    let again = login(&s, "ada@example.com").await["mfa_token"].clone();
    let (status, _) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": again, "recovery_code": code}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": again}),
        None,
    )
    .await;
    assert_eq!(status, 422);
    let (status, _) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": "forged", "code": "123456"}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    s.stop().await;
}

async fn one_code_or_recovery_code_succeeds_once_in_parallel(db: TestDb) {
    let s = db
        .server(&[
            ("ENCRYPTION_MASTER_KEY", MASTER_KEY),
            ("AUTH_MAX_LOGIN_ATTEMPTS", "50"),
        ])
        .await;
    let (secret, codes, _, step) = with_totp(&s, "bo@example.com").await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(login(&s, "bo@example.com").await["mfa_token"].clone());
    }
    let code = code_at(&secret, step + 1);
    let results = race_post(&s.client, 10, |i| {
        (
            s.url("/api/v1/auth/mfa/verify"),
            json!({"mfa_token": tokens[i], "code": code}),
        )
    })
    .await;
    assert_eq!(count(&results, 200), 1, "{results:?}");
    assert_eq!(count(&results, 401), 9);

    let mut tokens = Vec::new();
    for _ in 0..10 {
        tokens.push(login(&s, "bo@example.com").await["mfa_token"].clone());
    }
    let results = race_post(&s.client, 10, |i| {
        (
            s.url("/api/v1/auth/mfa/verify"),
            json!({"mfa_token": tokens[i], "recovery_code": codes[3]}),
        )
    })
    .await;
    assert_eq!(count(&results, 200), 1, "{results:?}");
    assert_eq!(count(&results, 401), 9);
    s.stop().await;
}

async fn wrong_codes_lock_the_account(db: TestDb) {
    let s = db.server(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    let (secret, _, _, step) = with_totp(&s, "cy@example.com").await;
    let mfa_token = login(&s, "cy@example.com").await["mfa_token"].clone();
    let good: Vec<String> = (step - 1..=step + 1).map(|t| code_at(&secret, t)).collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !good.contains(c))
        .unwrap();
    for _ in 0..5 {
        let (status, body) = post(
            &s,
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": mfa_token, "code": wrong}),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_mfa_code"))
        );
    }
    let (status, _) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": code_at(&secret, step + 1)}),
        None,
    )
    .await;
    assert_eq!(status, 423, "locked even with the right code");
    let (status, body) = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "cy@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::LOCKED, Some("account_locked"))
    );
    s.stop().await;
}

async fn parallel_wrong_codes_lock_at_exactly_the_limit(db: TestDb) {
    let s = db.server(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    let (secret, _, _, step) = with_totp(&s, "par@example.com").await;
    let mfa_token = login(&s, "par@example.com").await["mfa_token"].clone();
    let good: Vec<String> = (step - 1..=step + 2).map(|t| code_at(&secret, t)).collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !good.contains(c))
        .unwrap();
    let results = race_post(&s.client, 12, |_| {
        (
            s.url("/api/v1/auth/mfa/verify"),
            json!({"mfa_token": mfa_token, "code": wrong}),
        )
    })
    .await;
    // AUTH_MAX_LOGIN_ATTEMPTS is 5: five codes are checked, every other attempt finds the lock.
    assert_eq!(count(&results, 401), 5, "{results:?}");
    assert_eq!(count(&results, 423), 7, "{results:?}");
    s.stop().await;
}

async fn disabling_needs_aal2_and_the_password(db: TestDb) {
    let s = db.server(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    let (secret, _, aal1, step) = with_totp(&s, "dee@example.com").await;
    let delete = |token: String, password: &'static str| {
        let req = s
            .client
            .delete(s.url("/api/v1/auth/mfa/totp"))
            .bearer_auth(token)
            .json(&json!({"password": password}));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = delete(aal1["access_token"].as_str().unwrap().to_string(), PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("aal2_required"))
    );
    let mfa_token = login(&s, "dee@example.com").await["mfa_token"].clone();
    let (_, aal2) = post(
        &s,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": code_at(&secret, step + 1)}),
        None,
    )
    .await;
    let token = aal2["access_token"].as_str().unwrap().to_string();
    assert_eq!(delete(token.clone(), "Wrong-Horse9").await.0, 401);
    assert_eq!(delete(token, PASSWORD).await.0, 204);
    let pair = login(&s, "dee@example.com").await;
    assert_eq!(pair["token_type"], "Bearer", "one step again");
    assert_eq!(pair["user"]["mfa_enabled"], false);
    s.stop().await;
}

async fn without_a_master_key_enrolment_is_refused(db: TestDb) {
    let s = db.server(&[]).await;
    post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "eve@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    let pair = login(&s, "eve@example.com").await;
    let (status, body) = post(
        &s,
        "/api/v1/auth/mfa/totp/enroll",
        json!({}),
        pair["access_token"].as_str(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("encryption_not_configured")
        )
    );
    s.stop().await;
}

per_backend!(
    enrol_confirm_and_log_in_at_aal2,
    one_code_or_recovery_code_succeeds_once_in_parallel,
    wrong_codes_lock_the_account,
    parallel_wrong_codes_lock_at_exactly_the_limit,
    disabling_needs_aal2_and_the_password,
    without_a_master_key_enrolment_is_refused,
);
