//! TOTP MFA through HTTP on every backend, with codes from the harness's own RFC 6238 implementation: enrol (secret encrypted at rest), confirm, the two-step login at aal2, replay and parallel use of one code or recovery code, lockout, and disabling.

use serde_json::json;

use crate::helpers::{
    PASSWORD, TestDb, WRONG_PASSWORD, base32_decode, claims, code_at, count, step_now, wrong_code,
};

async fn enrol_confirm_and_log_in_at_aal2(db: TestDb) {
    let s = db.mfa_app(&[]).await;
    s.register("ada@example.com").await;
    let pair = s.login("ada@example.com").await;
    let token = pair.access.as_str();
    let enrolled = s.enroll_totp(token).await;
    assert_eq!(enrolled.status, 200);
    let enrolled = enrolled.body;
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
    let rows = db.query("SELECT mfa_pending_secret FROM users").await;
    let stored: String = rows[0].try_get("", "mfa_pending_secret").unwrap();
    assert!(
        stored.starts_with("v1:") && !stored.contains(&base32),
        "{stored}"
    );

    // Not active until confirmed; a wrong code does not confirm.
    assert_eq!(
        s.login("ada@example.com").await.body["token_type"],
        "Bearer"
    );
    let wrong = if code_at(&secret, step_now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let res = s.confirm_totp(token, wrong).await;
    assert_eq!(res.field_error(), (422, "invalid_mfa_code"));
    let step = step_now();
    let res = s.confirm_totp(token, &code_at(&secret, step)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let codes = res.body["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    let rows = db.query("SELECT COUNT(*) AS n FROM recovery_codes").await;
    assert_eq!(rows[0].try_get::<i64>("", "n").unwrap(), 10);
    for r in db.query("SELECT code_hash FROM recovery_codes").await {
        let hash: String = r.try_get("", "code_hash").unwrap();
        assert!(
            codes.iter().all(|c| !hash.contains(c.as_str().unwrap())),
            "stored hashed"
        );
    }
    let res = s.enroll_totp(token).await;
    assert_eq!(res.problem(), (409, "mfa_already_enabled"));

    // Login now stops at the second factor.
    let challenge = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(challenge.status, 200);
    let challenge = challenge.body;
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["totp", "recovery_code"]));
    assert!(challenge.get("access_token").is_none());
    let mfa_token = challenge["mfa_token"].clone();

    // The code that confirmed enrolment was used: it cannot log in (no replay in its window).
    let res = s
        .mfa_verify(&mfa_token, json!({"code": code_at(&secret, step)}))
        .await;
    assert_eq!(res.problem(), (401, "invalid_mfa_code"));
    // The next step's code is inside the ±1 window: accepted, at aal2.
    let next = code_at(&secret, step + 1);
    let pair = s.mfa_verify(&mfa_token, json!({"code": next})).await.pair();
    assert_eq!(claims(&pair.access)["aal"], "aal2");
    assert_eq!(s.current_session(&pair.access).await["aal"], "aal2");
    assert_eq!(pair.body["user"]["mfa_enabled"], true);
    // The mfa_token is spent, and the code cannot be replayed with a fresh one.
    let res = s.mfa_verify(&mfa_token, json!({"code": next})).await;
    assert_eq!(res.problem(), (401, "invalid_mfa_token"));
    let fresh = s.mfa_challenge("ada@example.com").await;
    let res = s.mfa_verify(&fresh, json!({"code": next})).await;
    assert_eq!(res.status, 401, "a code is accepted once");

    // A recovery code works once, in any case and grouping.
    let code = codes[0].as_str().unwrap().to_string();
    let pair = s
        .mfa_verify(&fresh, json!({"recovery_code": code.to_lowercase()}))
        .await
        .pair();
    assert_eq!(claims(&pair.access)["aal"], "aal2");
    let again = s.mfa_challenge("ada@example.com").await;
    let res = s.mfa_verify(&again, json!({"recovery_code": code})).await;
    assert_eq!(res.status, 401);
    let res = s.mfa_verify(&again, json!({})).await;
    assert_eq!(res.status, 422);
    let res = s
        .mfa_verify(&json!("forged"), json!({"code": "123456"}))
        .await;
    assert_eq!(res.status, 401);
    s.stop().await;
}

async fn disabling_needs_aal2_and_the_password(db: TestDb) {
    let s = db.mfa_app(&[]).await;
    let totp = s.with_totp("dee@example.com").await;
    let delete = |token: &str, password: &str| {
        let body = json!({"password": password});
        let s = &s;
        let token = token.to_string();
        async move {
            s.send(
                reqwest::Method::DELETE,
                "/api/v1/auth/mfa/totp",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    let res = delete(&totp.aal1.access, PASSWORD).await;
    assert_eq!(res.problem(), (403, "aal2_required"));
    let mfa_token = s.mfa_challenge("dee@example.com").await;
    let aal2 = s
        .mfa_verify(
            &mfa_token,
            json!({"code": code_at(&totp.secret, totp.step + 1)}),
        )
        .await
        .pair();
    assert_eq!(delete(&aal2.access, WRONG_PASSWORD).await.status, 401);
    assert_eq!(delete(&aal2.access, PASSWORD).await.status, 204);
    let pair = s.login("dee@example.com").await;
    assert_eq!(pair.body["token_type"], "Bearer", "one step again");
    assert_eq!(pair.body["user"]["mfa_enabled"], false);
    s.stop().await;
}

async fn without_a_master_key_enrolment_is_refused(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("eve@example.com").await;
    let pair = s.login("eve@example.com").await;
    let res = s.enroll_totp(&pair.access).await;
    assert_eq!(res.problem(), (503, "encryption_not_configured"));
    s.stop().await;
}

async fn one_code_or_recovery_code_succeeds_once_in_parallel(db: TestDb) {
    let s = db.mfa_app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "50")]).await;
    let totp = s.with_totp("bo@example.com").await;
    let code = code_at(&totp.secret, totp.step + 1);
    let recovery = &totp.recovery_codes[3];
    for proof in [json!({"code": code}), json!({"recovery_code": recovery})] {
        let mut tokens = Vec::new();
        for _ in 0..10 {
            tokens.push(s.mfa_challenge("bo@example.com").await);
        }
        let results = s
            .race(10, "/api/v1/auth/mfa/verify", |i| {
                let mut body = proof.clone();
                body["mfa_token"] = tokens[i].clone();
                body
            })
            .await;
        assert_eq!(count(&results, 200), 1, "{proof}: {results:?}");
        assert_eq!(count(&results, 401), 9, "{proof}");
    }
    s.stop().await;
}

async fn wrong_codes_lock_the_account(db: TestDb) {
    let s = db.mfa_app(&[]).await;
    let totp = s.with_totp("cy@example.com").await;
    let mfa_token = s.mfa_challenge("cy@example.com").await;
    let wrong = wrong_code(&totp.secret, totp.step - 1..=totp.step + 1);
    for _ in 0..5 {
        let res = s.mfa_verify(&mfa_token, json!({"code": wrong})).await;
        assert_eq!(res.problem(), (401, "invalid_mfa_code"));
    }
    let right = code_at(&totp.secret, totp.step + 1);
    let res = s.mfa_verify(&mfa_token, json!({"code": right})).await;
    assert_eq!(res.status, 423, "locked even with the right code");
    let res = s.login_with("cy@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (423, "account_locked"));
    s.stop().await;
}

async fn parallel_wrong_codes_lock_at_exactly_the_limit(db: TestDb) {
    let s = db.mfa_app(&[]).await;
    let totp = s.with_totp("par@example.com").await;
    let mfa_token = s.mfa_challenge("par@example.com").await;
    let wrong = wrong_code(&totp.secret, totp.step - 1..=totp.step + 2);
    let results = s
        .race(
            12,
            "/api/v1/auth/mfa/verify",
            |_| json!({"mfa_token": mfa_token, "code": wrong}),
        )
        .await;
    // AUTH_MAX_LOGIN_ATTEMPTS is 5: five codes are checked, every other attempt finds the lock.
    assert_eq!(count(&results, 401), 5, "{results:?}");
    assert_eq!(count(&results, 423), 7, "{results:?}");
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
