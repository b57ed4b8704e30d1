//! Authentication through the HTTP API on every backend: register, login, tokens, refresh rotation and reuse, lockout, sessions, password change — the races with real concurrent requests.

mod common;

use std::collections::HashSet;

use base64::Engine;
use common::{TestDb, TestServer, count, race_post};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse9";

async fn post(s: &TestServer, path: &str, body: Value, token: Option<&str>) -> reqwest::Response {
    let mut req = s.client.post(s.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn get(s: &TestServer, path: &str, token: &str) -> reqwest::Response {
    s.client
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn code(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (
        status,
        body["code"].as_str().unwrap_or_default().to_string(),
    )
}

async fn register(s: &TestServer, email: &str) -> Value {
    let res = post(
        s,
        "/api/v1/auth/register",
        json!({"email": email, "password": PASSWORD, "name": "Ada"}),
        None,
    )
    .await;
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn login(s: &TestServer, email: &str, password: &str) -> reqwest::Response {
    post(
        s,
        "/api/v1/auth/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await
}

async fn pair(s: &TestServer, email: &str) -> Value {
    let res = login(s, email, PASSWORD).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn audit_events(db: &TestDb) -> Vec<String> {
    use gatehouse::store::entities::audit_log;
    let conn = db.connect().await;
    let rows = audit_log::Entity::find().all(&conn).await.unwrap();
    conn.close().await.unwrap();
    rows.into_iter().map(|r| r.event).collect()
}

async fn register_validates_and_refuses_duplicates(db: TestDb) {
    let s = db.server(&[]).await;
    let body = register(&s, "  Ada@Example.com ").await;
    let user = &body["user"];
    assert_eq!(user["email"], "Ada@Example.com");
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

    let res = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "ada@EXAMPLE.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::CONFLICT, "email_taken".into())
    );

    let res = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "not-an-email", "password": "short"}),
        None,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
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
    let res = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "b@example.com", "password": "b@example.com"}),
        None,
    )
    .await;
    let p: Value = res.json().await.unwrap();
    assert!(
        p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "equals_email"),
        "{p}"
    );

    // Wrong types and broken JSON are 400, never 500.
    let res = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": 5, "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(code(res).await.0, 400);
    let res = s
        .client
        .post(s.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{\"email\":")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(res).await,
        (StatusCode::BAD_REQUEST, "malformed_json".into())
    );

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
    let s = db.server(&[]).await;
    let results = race_post(&s.client, 12, |i| {
        let email = if i % 2 == 0 {
            "Race@Example.com"
        } else {
            "race@example.COM"
        };
        (
            s.url("/api/v1/auth/register"),
            json!({"email": email, "password": PASSWORD}),
        )
    })
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        11,
        "{statuses:?}"
    );
    s.stop().await;
}

async fn auto_login_on_register_returns_a_pair(db: TestDb) {
    let s = db.server(&[("AUTH_AUTO_LOGIN_ON_REGISTER", "true")]).await;
    let body = register(&s, "auto@example.com").await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["user"]["email"], "auto@example.com");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(get(&s, "/api/v1/auth/me", token).await.status(), 200);
    s.stop().await;
}

async fn login_issues_tokens_with_the_contract_claims(db: TestDb) {
    let s = db.server(&[]).await;
    let registered = register(&s, "Ada@Example.com").await;
    let p = pair(&s, "  ADA@example.com ").await;
    assert_eq!(p["token_type"], "Bearer");
    assert_eq!(p["expires_in"], 900);
    assert_eq!(p["user"]["id"], registered["user"]["id"]);
    assert!(p["user"]["last_login_at"].is_string());
    let c = claims(p["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], registered["user"]["id"]);
    assert_eq!(c["sid"], p["session_id"]);
    assert_eq!(c["roles"], json!(["user"]));
    assert_eq!(c["aal"], "aal1");
    assert_eq!(c["aud"], "gatehouse");
    assert_eq!(c["iss"], "http://127.0.0.1:8080");
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 900);
    assert!(c["jti"].is_string());
    // Refresh tokens are opaque, not JWTs, and not stored.
    let refresh = p["refresh_token"].as_str().unwrap();
    assert!(!refresh.contains('.'));

    let me: Value = get(&s, "/api/v1/auth/me", p["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["email"], "Ada@Example.com");
    // The same instant before and after a round trip through the database.
    assert_eq!(me["user"]["created_at"], registered["user"]["created_at"]);
    assert_eq!(me["user"]["last_login_at"], p["user"]["last_login_at"]);

    // Wrong password and unknown email: the same answer.
    let wrong = code(login(&s, "ada@example.com", "Wrong-Horse9").await).await;
    let unknown = code(login(&s, "nobody@example.com", PASSWORD).await).await;
    assert_eq!(
        wrong,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    assert_eq!(unknown, wrong);
    let res = login(&s, "not an email", PASSWORD).await;
    assert_eq!(code(res).await, wrong);
    s.stop().await;
}

async fn bad_tokens_are_refused(db: TestDb) {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    let p = pair(&s, "ada@example.com").await;
    let access = p["access_token"].as_str().unwrap().to_string();
    let refresh = p["refresh_token"].as_str().unwrap().to_string();
    let c = claims(&access);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&c)
    );
    let mut tampered_claims = c.clone();
    tampered_claims["roles"] = json!(["super_admin"]);
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    let wrong_key = encode(
        &Header::default(),
        &c,
        &EncodingKey::from_secret(b"another-secret-another-secret-1234"),
    )
    .unwrap();
    let mut expired_claims = c.clone();
    expired_claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let expired = encode(
        &Header::default(),
        &expired_claims,
        &EncodingKey::from_secret(b"test-secret-test-secret-test-secret-1234"),
    )
    .unwrap();
    let mut other_aud = c.clone();
    other_aud["aud"] = json!("someone-else");
    let other_aud = encode(
        &Header::default(),
        &other_aud,
        &EncodingKey::from_secret(b"test-secret-test-secret-test-secret-1234"),
    )
    .unwrap();

    for bad in [
        none.as_str(),
        &tampered,
        &wrong_key,
        &expired,
        &other_aud,
        &refresh,
        "garbage",
        "",
    ] {
        let res = get(&s, "/api/v1/auth/me", bad).await;
        assert_eq!(res.status(), 401, "{bad}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
    let res = s.client.get(s.url("/api/v1/auth/me")).send().await.unwrap();
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    // An access token is not a refresh token.
    let res = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": access}),
        None,
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_refresh_token".into())
    );
    // A forged refresh token (right shape, wrong MAC) is refused and does not revoke anything.
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&refresh)
        .unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let res = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": forged}),
        None,
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(get(&s, "/api/v1/auth/me", &access).await.status(), 200);
    s.stop().await;
}

async fn refresh_rotates_with_grace_and_revokes_on_replay(db: TestDb) {
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    let first = pair(&s, "ada@example.com").await;
    let r0 = first["refresh_token"].as_str().unwrap();
    let second: Value = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r0}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let r1 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r0, r1);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_ne!(second["access_token"], first["access_token"]);
    // Within the grace: the same successor again (two tabs racing).
    let again: Value = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r0}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["refresh_token"], second["refresh_token"]);
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            again["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );
    // The successor itself rotates normally.
    let third: Value = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r1}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let r2 = third["refresh_token"].as_str().unwrap().to_string();
    // r0 is now two generations old: replay, the whole session dies.
    let res = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r0}),
        None,
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "refresh_token_reused".into())
    );
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            third["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    let res = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r2}),
        None,
    )
    .await;
    assert_eq!(res.status(), 401);
    assert!(
        audit_events(&db)
            .await
            .contains(&"refresh_token_reused".to_string())
    );
    s.stop().await;
}

async fn reuse_after_the_grace_revokes_the_session(db: TestDb) {
    let s = db
        .server(&[("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0")])
        .await;
    register(&s, "ada@example.com").await;
    let first = pair(&s, "ada@example.com").await;
    let other = pair(&s, "ada@example.com").await;
    let r0 = first["refresh_token"].as_str().unwrap();
    let second: Value = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r0}),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": r0}),
        None,
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "refresh_token_reused".into())
    );
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            second["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    // Only that session: the user's other login lives on.
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            other["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );
    s.stop().await;
}

async fn twenty_parallel_refreshes_converge_on_one_successor(db: TestDb) {
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    let first = pair(&s, "ada@example.com").await;
    let r0 = first["refresh_token"].as_str().unwrap().to_string();
    let results = race_post(&s.client, 20, |_| {
        (s.url("/api/v1/auth/refresh"), json!({"refresh_token": r0}))
    })
    .await;
    assert_eq!(count(&results, 200), 20);
    let successors: HashSet<String> = results
        .iter()
        .map(|(_, b)| b["refresh_token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(successors.len(), 1, "{successors:?}");
    // The session advanced exactly one generation.
    let conn = db.connect().await;
    let sid = uuid::Uuid::parse_str(first["session_id"].as_str().unwrap()).unwrap();
    let row = gatehouse::store::sessions::find(&conn, sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.refresh_generation, 1);
    assert!(row.revoked_at.is_none());
    conn.close().await.unwrap();
    let next = successors.into_iter().next().unwrap();
    assert_eq!(
        post(
            &s,
            "/api/v1/auth/refresh",
            json!({"refresh_token": next}),
            None
        )
        .await
        .status(),
        200
    );
    s.stop().await;
}

async fn lockout_after_max_failures_even_for_the_right_password(db: TestDb) {
    let s = db
        .server(&[
            ("AUTH_MAX_LOGIN_ATTEMPTS", "3"),
            ("AUTH_LOCKOUT_MINUTES", "15"),
        ])
        .await;
    register(&s, "ada@example.com").await;
    // Success resets the count.
    for _ in 0..2 {
        assert_eq!(
            login(&s, "ada@example.com", "Wrong-Horse9").await.status(),
            401
        );
    }
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 200);
    for _ in 0..2 {
        assert_eq!(
            login(&s, "ada@example.com", "Wrong-Horse9").await.status(),
            401
        );
    }
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(
            login(&s, "ada@example.com", "Wrong-Horse9").await.status(),
            401
        );
    }
    let res = login(&s, "ada@example.com", PASSWORD).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    assert_eq!(
        code(res).await,
        (StatusCode::LOCKED, "account_locked".into())
    );
    let events = audit_events(&db).await;
    assert!(events.contains(&"account_locked".to_string()), "{events:?}");
    assert!(events.contains(&"login_failed".to_string()));
    assert!(events.contains(&"login_succeeded".to_string()));

    // When the lock has run out, the right password works and the count starts afresh.
    let conn = db.connect().await;
    use gatehouse::store::entities::users;
    use sea_orm::sea_query::Expr;
    users::Entity::update_many()
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(users::Column::EmailLower.eq("ada@example.com"))
        .exec(&conn)
        .await
        .unwrap();
    assert_eq!(
        login(&s, "ada@example.com", "Wrong-Horse9").await.status(),
        401
    );
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 200);
    let u = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    conn.close().await.unwrap();
    s.stop().await;
}

async fn fifty_parallel_wrong_passwords_lock_at_exactly_the_limit(db: TestDb) {
    let s = db.server(&[("AUTH_MAX_LOGIN_ATTEMPTS", "5")]).await;
    register(&s, "ada@example.com").await;
    let results = race_post(&s.client, 50, |_| {
        (
            s.url("/api/v1/auth/login"),
            json!({"email": "ada@example.com", "password": "Wrong-Horse9"}),
        )
    })
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 423).count(),
        45,
        "{statuses:?}"
    );
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 423);
    let conn = db.connect().await;
    let u = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.failed_logins, 5);
    assert!(u.locked_until.is_some());
    conn.close().await.unwrap();
    s.stop().await;
}

async fn parallel_right_passwords_are_never_locked_out(db: TestDb) {
    let s = db.server(&[("AUTH_MAX_LOGIN_ATTEMPTS", "3")]).await;
    register(&s, "ada@example.com").await;
    let results = race_post(&s.client, 12, |_| {
        (
            s.url("/api/v1/auth/login"),
            json!({"email": "ada@example.com", "password": PASSWORD}),
        )
    })
    .await;
    assert_eq!(count(&results, 200), 12, "{results:?}");
    let conn = db.connect().await;
    let u = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    conn.close().await.unwrap();
    s.stop().await;
}

async fn sessions_list_and_revocation_cut_access_at_once(db: TestDb) {
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    register(&s, "bob@example.com").await;
    let a1 = pair(&s, "ada@example.com").await;
    let a2 = pair(&s, "ada@example.com").await;
    let a3 = pair(&s, "ada@example.com").await;
    let b1 = pair(&s, "bob@example.com").await;
    let t1 = a1["access_token"].as_str().unwrap();
    let list: Value = s
        .client
        .get(s.url("/api/v1/auth/sessions"))
        .bearer_auth(t1)
        .header("user-agent", "gatehouse-test/1")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 3);
    let sessions = list["sessions"].as_array().unwrap();
    let current: Vec<&Value> = sessions.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], a1["session_id"]);
    assert_eq!(current[0]["ip_address"], "127.0.0.1");
    assert_eq!(current[0]["aal"], "aal1");
    assert!(sessions.iter().all(|x| x["id"] != b1["session_id"]));

    // Someone else's session, an unknown id, a malformed id: 404.
    for id in [
        b1["session_id"].as_str().unwrap(),
        &uuid::Uuid::now_v7().to_string(),
        "not-a-uuid",
    ] {
        let res = s
            .client
            .delete(s.url(&format!("/api/v1/auth/sessions/{id}")))
            .bearer_auth(t1)
            .send()
            .await
            .unwrap();
        assert_eq!(code(res).await, (StatusCode::NOT_FOUND, "not_found".into()));
    }
    assert_eq!(
        get(&s, "/api/v1/auth/me", b1["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // Delete a2 from a1: a2's access and refresh tokens die at once.
    let res = s
        .client
        .delete(s.url(&format!(
            "/api/v1/auth/sessions/{}",
            a2["session_id"].as_str().unwrap()
        )))
        .bearer_auth(t1)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        get(&s, "/api/v1/auth/me", a2["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(
        post(
            &s,
            "/api/v1/auth/refresh",
            json!({"refresh_token": a2["refresh_token"]}),
            None
        )
        .await
        .status(),
        401
    );
    let list: Value = get(&s, "/api/v1/auth/sessions", t1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 2);

    // Logout ends only the current session.
    assert_eq!(
        post(
            &s,
            "/api/v1/auth/logout",
            json!({}),
            Some(a3["access_token"].as_str().unwrap())
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        get(&s, "/api/v1/auth/me", a3["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    assert_eq!(get(&s, "/api/v1/auth/me", t1).await.status(), 200);

    // Logout-all ends every session of the user, and nobody else's.
    let a4 = pair(&s, "ada@example.com").await;
    assert_eq!(
        post(&s, "/api/v1/auth/logout-all", json!({}), Some(t1))
            .await
            .status(),
        204
    );
    for t in [t1, a4["access_token"].as_str().unwrap()] {
        assert_eq!(get(&s, "/api/v1/auth/me", t).await.status(), 401);
    }
    assert_eq!(
        post(
            &s,
            "/api/v1/auth/refresh",
            json!({"refresh_token": a4["refresh_token"]}),
            None
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        get(&s, "/api/v1/auth/me", b1["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let events = audit_events(&db).await;
    for e in ["logout", "logout_all", "session_revoked", "user_registered"] {
        assert!(
            events.contains(&e.to_string()),
            "{e} not audited: {events:?}"
        );
    }
    s.stop().await;
}

async fn change_password_revokes_other_sessions(db: TestDb) {
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    let keep = pair(&s, "ada@example.com").await;
    let other = pair(&s, "ada@example.com").await;
    let t = keep["access_token"].as_str().unwrap();
    let res = post(
        &s,
        "/api/v1/auth/change-password",
        json!({"old_password": "Wrong-Horse9", "new_password": "Battery-Staple7"}),
        Some(t),
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    let res = post(
        &s,
        "/api/v1/auth/change-password",
        json!({"old_password": PASSWORD, "new_password": "weak"}),
        Some(t),
    )
    .await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed".into())
    );
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            other["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        200
    );

    let res = post(
        &s,
        "/api/v1/auth/change-password",
        json!({"old_password": PASSWORD, "new_password": "Battery-Staple7"}),
        Some(t),
    )
    .await;
    assert_eq!(res.status(), 204);
    assert_eq!(get(&s, "/api/v1/auth/me", t).await.status(), 200);
    assert_eq!(
        get(
            &s,
            "/api/v1/auth/me",
            other["access_token"].as_str().unwrap()
        )
        .await
        .status(),
        401
    );
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 401);
    assert_eq!(
        login(&s, "ada@example.com", "Battery-Staple7")
            .await
            .status(),
        200
    );
    assert!(
        audit_events(&db)
            .await
            .contains(&"password_changed".to_string())
    );
    s.stop().await;
}

async fn bcrypt_hashes_verify_and_are_upgraded(db: TestDb) {
    let s = db.server(&[]).await;
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
    assert_eq!(
        login(&s, "old@example.com", "Wrong-Horse9").await.status(),
        401
    );
    assert_eq!(login(&s, "old@example.com", PASSWORD).await.status(), 200);
    let u = gatehouse::store::users::find_by_email(&conn, "old@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        u.password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$"),
        "{:?}",
        u.password_hash
    );
    assert_eq!(login(&s, "old@example.com", PASSWORD).await.status(), 200);
    conn.close().await.unwrap();
    s.stop().await;
}

async fn client_ip_honours_trusted_proxies_only(db: TestDb) {
    let s = db.server(&[]).await;
    register(&s, "ada@example.com").await;
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    let list: Value = get(
        &s,
        "/api/v1/auth/sessions",
        p["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(list["sessions"][0]["ip_address"], "127.0.0.1");
    s.stop().await;
    let s = db.server(&[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.7")
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let p: Value = res.json().await.unwrap();
    let list: Value = get(
        &s,
        "/api/v1/auth/sessions",
        p["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    let current = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["ip_address"], "198.51.100.7");
    s.stop().await;
}

/// Two instances on one database behave as one: tokens, rotation races, revocation and lockout.
async fn two_instances_behave_as_one(db: TestDb) {
    let a = db.server(&[("AUTH_MAX_LOGIN_ATTEMPTS", "4")]).await;
    let b = db.server(&[("AUTH_MAX_LOGIN_ATTEMPTS", "4")]).await;
    register(&a, "ada@example.com").await;
    let p = pair(&a, "ada@example.com").await;
    let token = p["access_token"].as_str().unwrap();
    assert_eq!(get(&b, "/api/v1/auth/me", token).await.status(), 200);

    // Twenty racers on one refresh token, spread over both instances: one successor.
    let r0 = p["refresh_token"].as_str().unwrap().to_string();
    let results = race_post(&a.client, 20, |i| {
        let server = if i % 2 == 0 { &a } else { &b };
        (
            server.url("/api/v1/auth/refresh"),
            json!({"refresh_token": r0}),
        )
    })
    .await;
    assert_eq!(count(&results, 200), 20);
    let successors: HashSet<String> = results
        .iter()
        .map(|(_, b)| b["refresh_token"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(successors.len(), 1);

    // Logout on B cuts the token on A at once.
    assert_eq!(
        post(&b, "/api/v1/auth/logout", json!({}), Some(token))
            .await
            .status(),
        204
    );
    assert_eq!(get(&a, "/api/v1/auth/me", token).await.status(), 401);

    // Parallel wrong passwords over both instances lock at exactly the limit.
    let results = race_post(&a.client, 16, |i| {
        let server = if i % 2 == 0 { &a } else { &b };
        (
            server.url("/api/v1/auth/login"),
            json!({"email": "ada@example.com", "password": "Wrong-Horse9"}),
        )
    })
    .await;
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 423).count(),
        12,
        "{statuses:?}"
    );
    assert_eq!(login(&b, "ada@example.com", PASSWORD).await.status(), 423);
    a.stop().await;
    b.stop().await;
}

async fn disabled_and_unverified_accounts_are_refused_with_their_code(db: TestDb) {
    use gatehouse::store::entities::users;
    use sea_orm::sea_query::Expr;
    let s = db
        .server(&[("AUTH_REQUIRE_EMAIL_VERIFICATION", "true")])
        .await;
    register(&s, "ada@example.com").await;
    // A wrong password still says nothing more than invalid_credentials.
    let res = login(&s, "ada@example.com", "Wrong-Horse9").await;
    assert_eq!(
        code(res).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".into())
    );
    let res = login(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(
        code(res).await,
        (StatusCode::FORBIDDEN, "email_not_verified".into())
    );
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
    assert_eq!(login(&s, "ada@example.com", PASSWORD).await.status(), 200);
    set(users::Column::Active, false).exec(&conn).await.unwrap();
    let before = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    let res = login(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(
        code(res).await,
        (StatusCode::FORBIDDEN, "account_disabled".into())
    );
    let after = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        after.last_login_at, before.last_login_at,
        "a refused login is not a login"
    );
    assert_eq!(
        after.failed_logins, 0,
        "a right password never counts as a failure"
    );
    conn.close().await.unwrap();
    s.stop().await;
}

per_backend!(
    two_instances_behave_as_one,
    disabled_and_unverified_accounts_are_refused_with_their_code,
    register_validates_and_refuses_duplicates,
    parallel_registrations_of_one_email_yield_one_account,
    auto_login_on_register_returns_a_pair,
    login_issues_tokens_with_the_contract_claims,
    bad_tokens_are_refused,
    refresh_rotates_with_grace_and_revokes_on_replay,
    reuse_after_the_grace_revokes_the_session,
    twenty_parallel_refreshes_converge_on_one_successor,
    lockout_after_max_failures_even_for_the_right_password,
    fifty_parallel_wrong_passwords_lock_at_exactly_the_limit,
    parallel_right_passwords_are_never_locked_out,
    sessions_list_and_revocation_cut_access_at_once,
    change_password_revokes_other_sessions,
    bcrypt_hashes_verify_and_are_upgraded,
    client_ip_honours_trusted_proxies_only,
);

/// A full hashing queue answers 503 with Retry-After at once, and does not count as a failed login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_hashing_pool_answers_503() {
    let db = TestDb::create(common::Backend::Sqlite).await.unwrap();
    let s = db
        .server(&[
            ("PASSWORD_HASH_WORKERS", "1"),
            ("PASSWORD_HASH_QUEUE", "1"),
            ("PASSWORD_ARGON2_MEMORY_KIB", "32768"),
            ("PASSWORD_ARGON2_ITERATIONS", "3"),
            ("AUTH_MAX_LOGIN_ATTEMPTS", "100"),
        ])
        .await;
    register(&s, "ada@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (client, url) = (s.client.clone(), s.url("/api/v1/auth/login"));
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .json(&json!({"email": "ada@example.com", "password": "Wrong-Horse9"}))
                .send()
                .await
                .unwrap();
            let retry = res.headers().get("retry-after").is_some();
            let (status, c) = code(res).await;
            (status.as_u16(), c, retry)
        }));
    }
    let mut busy = 0;
    let mut wrong = 0;
    for t in tasks {
        match t.await.unwrap() {
            (503, c, true) if c == "server_busy" => busy += 1,
            (401, _, _) => wrong += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(busy >= 1 && wrong >= 1, "busy={busy} wrong={wrong}");
    let conn = db.connect().await;
    let u = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        u.failed_logins as usize, wrong,
        "503s must not count as failures"
    );
    conn.close().await.unwrap();
    s.stop().await;
}

/// Asymmetric algorithms: tokens verify with the key published at /.well-known/jwks.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_tokens_verify_with_the_published_jwks() {
    for (alg, genkey) in [
        ("EdDSA", vec!["genpkey", "-algorithm", "ed25519"]),
        (
            "ES256",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
        ),
        (
            "RS256",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
        ),
    ] {
        let db = TestDb::create(common::Backend::Sqlite).await.unwrap();
        let key = db.dir.path().join("key.pem");
        let out = std::process::Command::new("openssl")
            .args(&genkey)
            .args(["-out", key.to_str().unwrap()])
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = db
            .server(&[
                ("JWT_ALGORITHM", alg),
                ("JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
            ])
            .await;
        register(&s, "ada@example.com").await;
        let p = pair(&s, "ada@example.com").await;
        let token = p["access_token"].as_str().unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = s
            .client
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwks.keys.len(), 1, "{alg}");
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid in jwks");
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&["gatehouse"]);
        let data = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sid"], p["session_id"], "{alg}");
        assert_eq!(get(&s, "/api/v1/auth/me", token).await.status(), 200);
        // The JWKS never holds private parts.
        let raw = s
            .client
            .get(s.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!raw.contains("\"d\""), "{raw}");
        // An HS256 token made with the public key as secret (algorithm confusion) is refused.
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &data.claims,
            &jsonwebtoken::EncodingKey::from_secret(raw.as_bytes()),
        )
        .unwrap();
        assert_eq!(get(&s, "/api/v1/auth/me", &forged).await.status(), 401);
        s.stop().await;
    }
    // HS256 publishes no key.
    let db = TestDb::create(common::Backend::Sqlite).await.unwrap();
    let s = db.server(&[]).await;
    let jwks: Value = s
        .client
        .get(s.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, json!({"keys": []}));
    s.stop().await;
}
