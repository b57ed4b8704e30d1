//! Registering and logging in through the HTTP API on every backend: validation, duplicates under races, the contract's claims, refused accounts, and bcrypt hashes upgraded on login.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::helpers::{PASSWORD, Reply, TestDb, WRONG_PASSWORD, claims, count};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

async fn register_validates_and_refuses_duplicates(db: TestDb) {
    let s = db.app(&[]).await;
    let res = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": "  Ada@Example.com ", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let body = res.body;
    let user = &body["user"];
    assert_eq!(user["email"], "Ada@Example.com");
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["active"], true);
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["mfa_enabled"], false);
    assert_eq!(user["metadata"], json!({}));
    assert!(
        uuid::Uuid::parse_str(user["id"].as_str().unwrap())
            .unwrap()
            .get_version_num()
            == 7
    );
    let text = body.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password") && !text.contains("access_token"),
        "{text}"
    );

    let res = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": "ada@EXAMPLE.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.problem(), (409, "email_taken"));

    let res = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": "not-an-email", "password": "short"}),
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(res.header("content-type"), "application/problem+json");
    let problem = res.body;
    assert_eq!(problem["code"], "validation_failed");
    let errors: HashSet<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().into(),
                e["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (field, c) in [
        ("email", "invalid_email"),
        ("password", "too_short"),
        ("password", "missing_uppercase"),
        ("password", "missing_digit"),
        ("password", "missing_symbol"),
    ] {
        assert!(
            errors.contains(&(field.into(), c.into())),
            "{field}/{c} missing in {problem}"
        );
    }
    let p = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": "b@example.com", "password": "b@example.com"}),
        )
        .await
        .body;
    assert!(
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "equals_email"),
        "{p}"
    );

    // Wrong types and broken JSON are 400, never 500.
    let res = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": 5, "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 400);
    let res = s
        .client
        .post(s.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    let res = Reply::read(res).await;
    assert_eq!(res.problem(), (400, "malformed_json"));

    // Nothing half-written: one account, with one role.
    let conn = db.connect().await;
    assert_eq!(
        gatehouse::store::users::list(&conn, 100)
            .await
            .unwrap()
            .len(),
        1
    );
    conn.close().await.unwrap();
    s.stop().await;
}

async fn parallel_registrations_of_one_email_yield_one_account(db: TestDb) {
    let s = db.app(&[]).await;
    let results = s
        .race(12, "/api/v1/auth/register", |i| {
            let email = ["Race@Example.com", "race@example.COM"][i % 2];
            json!({"email": email, "password": PASSWORD})
        })
        .await;
    assert_eq!(count(&results, 201), 1, "{results:?}");
    assert_eq!(count(&results, 409), 11, "{results:?}");
    s.stop().await;
}

async fn auto_login_on_register_returns_a_pair(db: TestDb) {
    let s = db.app(&[("AUTH_AUTO_LOGIN_ON_REGISTER", "true")]).await;
    let body = s.register("auto@example.com").await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["email"], "auto@example.com");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(s.me(token).await.status, 200);
    s.stop().await;
}

async fn login_issues_tokens_with_the_contract_claims(db: TestDb) {
    let s = db.app(&[]).await;
    let registered = s.register("Ada@Example.com").await;
    let p = s.login("  ADA@example.com ").await;
    assert_eq!(p.body["token_type"], "Bearer");
    assert_eq!(p.body["expires_in"], 900);
    assert_eq!(p.body["user"]["id"], registered["user"]["id"]);
    assert!(p.body["user"]["last_login_at"].is_string());
    let c = claims(&p.access);
    assert_eq!(c["sub"], registered["user"]["id"]);
    assert_eq!(c["sid"], p.session_id);
    assert_eq!(c["roles"], json!(["user"]));
    assert_eq!(c["aal"], "aal1");
    assert_eq!(c["aud"], "gatehouse");
    assert_eq!(c["iss"], "http://127.0.0.1:8080");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(c["jti"].is_string());
    // Refresh tokens are opaque, not JWTs, and not stored: no value in the database holds
    // the token, its MAC (the secret part: bytes, base64url or hex) or its SHA-256.
    assert!(!p.refresh.contains('.'));
    let raw = URL_SAFE_NO_PAD.decode(&p.refresh).unwrap();
    let mac = &raw[raw.len() - 32..];
    let forms: Vec<Vec<u8>> = vec![
        p.refresh.clone().into(),
        mac.to_vec(),
        URL_SAFE_NO_PAD.encode(mac).into(),
        hex::encode(mac).into(),
        gatehouse::crypto::tokens::sha256_hex(&p.refresh).into(),
    ];
    let stored = db.stored_values().await;
    assert!(
        stored.iter().any(|(c, _)| c == "sessions.salt"),
        "{stored:?}"
    );
    for (column, value) in &stored {
        for form in &forms {
            assert!(
                !value.windows(form.len()).any(|w| w == form.as_slice()),
                "{column} holds the refresh token"
            );
        }
    }

    let me: Value = s.me(&p.access).await.body;
    assert_eq!(me["user"]["email"], "Ada@Example.com");
    // The same instant before and after a round trip through the database.
    assert_eq!(me["user"]["created_at"], registered["user"]["created_at"]);
    assert_eq!(me["user"]["last_login_at"], p.body["user"]["last_login_at"]);

    // Wrong password and unknown email: the same answer.
    let wrong = s.login_with("ada@example.com", WRONG_PASSWORD).await;
    let unknown = s.login_with("nobody@example.com", PASSWORD).await;
    assert_eq!(wrong.problem(), (401, "invalid_credentials"));
    assert_eq!(unknown.problem(), wrong.problem());
    let res = s.login_with("not an email", PASSWORD).await;
    assert_eq!(res.problem(), wrong.problem());
    s.stop().await;
}

async fn disabled_and_unverified_accounts_are_refused_with_their_code(db: TestDb) {
    use gatehouse::store::entities::users;
    use sea_orm::sea_query::Expr;
    let s = db.app(&[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true")]).await;
    s.register("ada@example.com").await;
    // A wrong password still says nothing more than invalid_credentials.
    let res = s.login_with("ada@example.com", WRONG_PASSWORD).await;
    assert_eq!(res.problem(), (401, "invalid_credentials"));
    let res = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (403, "email_not_verified"));
    let conn = db.connect().await;
    let set = |col: users::Column, v: bool| {
        users::Entity::update_many()
            .col_expr(col, Expr::value(v))
            .filter(users::Column::EmailLower.eq("ada@example.com"))
    };
    set(users::Column::EmailVerified, true)
        .exec(&conn)
        .await
        .unwrap();
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 200);
    set(users::Column::Active, false).exec(&conn).await.unwrap();
    conn.close().await.unwrap();
    let before = db.user("ada@example.com").await;
    let res = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (403, "account_disabled"));
    let after = db.user("ada@example.com").await;
    assert_eq!(
        after.last_login_at, before.last_login_at,
        "a refused login is not a login"
    );
    assert_eq!(
        after.failed_logins, 0,
        "a right password never counts as a failure"
    );
    s.stop().await;
}

async fn bcrypt_hashes_verify_and_are_upgraded(db: TestDb) {
    let s = db.app(&[]).await;
    let conn = db.connect().await;
    let hash = bcrypt::hash_with_result(PASSWORD, 4)
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY);
    gatehouse::store::users::insert(
        &conn,
        gatehouse::store::users::NewUser {
            email: "old@example.com".into(),
            email_lower: "old@example.com".into(),
            password_hash: Some(hash),
            name: None,
            roles: vec!["user".into()],
            email_verified: true,
        },
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(
        s.login_with("old@example.com", WRONG_PASSWORD).await.status,
        401
    );
    assert_eq!(s.login_with("old@example.com", PASSWORD).await.status, 200);
    let u = db.user("old@example.com").await;
    assert!(
        u.password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$"),
        "{:?}",
        u.password_hash
    );
    assert_eq!(s.login_with("old@example.com", PASSWORD).await.status, 200);
    s.stop().await;
}

per_backend!(
    register_validates_and_refuses_duplicates,
    parallel_registrations_of_one_email_yield_one_account,
    auto_login_on_register_returns_a_pair,
    login_issues_tokens_with_the_contract_claims,
    disabled_and_unverified_accounts_are_refused_with_their_code,
    bcrypt_hashes_verify_and_are_upgraded,
);
