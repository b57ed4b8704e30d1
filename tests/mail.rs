//! Email verification and password reset through HTTP on every backend, with mail delivered to a real SMTP server started by the test (or the `.eml` outbox): the message arrives, its link works once, and answers never reveal an account.

mod common;

use common::{SmtpSink, TestDb, TestServer, link_token, wait_for_eml};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse9";
const NEW_PASSWORD: &str = "Battery-Staple7";
const PUBLIC: &str = "https://id.example.test";

async fn post(s: &TestServer, path: &str, body: Value, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = s.client.post(s.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn me(s: &TestServer, token: &str) -> (StatusCode, Value) {
    let res = s
        .client
        .get(s.url("/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login(s: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    post(
        s,
        "/api/v1/auth/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await
}

fn with_subject<'a>(messages: &'a [String], subject: &str) -> Vec<&'a String> {
    messages
        .iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .collect()
}

async fn verification_mail_arrives_and_its_link_works_once(db: TestDb) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let s = db
        .server(&[
            ("SMTP_URL", url.as_str()),
            ("GATEHOUSE_PUBLIC_URL", PUBLIC),
            ("AUTH_REQUIRE_EMAIL_VERIFICATION", "true"),
            ("MAIL_FROM", "Gatehouse Test <noreply@example.test>"),
        ])
        .await;
    let (status, _) = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "Ada@Example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let messages = smtp.wait_for(1).await;
    let mail = &messages[0];
    assert!(mail.contains("To: Ada@Example.com"), "{mail}");
    assert!(
        mail.contains("Gatehouse Test") && mail.contains("<noreply@example.test>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: Confirm your email address"));
    assert!(mail.contains("multipart/alternative"));
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    assert!(common::decode_qp(mail).contains(&format!("{PUBLIC}/verify-email?token=")));
    let token = link_token(mail, "/verify-email").unwrap();
    assert!(token.len() >= 40, "≥ 128 bits: {token}");

    let (status, body) = login(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("email_not_verified"))
    );
    let (status, _) = post(
        &s,
        "/api/v1/auth/verify-email",
        json!({"token": token}),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = post(
        &s,
        "/api/v1/auth/verify-email",
        json!({"token": token}),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token")),
        "a link works once"
    );
    let (status, pair) = login(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(status, 200);
    let (_, body) = me(&s, pair["access_token"].as_str().unwrap()).await;
    assert_eq!(body["user"]["email_verified"], true);
    let (status, _) = post(
        &s,
        "/api/v1/auth/verify-email",
        json!({"token": "forged"}),
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Resend: 202 for anyone; mail only for an unverified account, at most once a minute.
    post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "bo@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    smtp.wait_for(2).await;
    for email in [
        "nobody@example.com",
        "ada@example.com",
        "bo@example.com",
        "not an email",
    ] {
        let (status, _) = post(
            &s,
            "/api/v1/auth/verify-email/resend",
            json!({"email": email}),
            None,
        )
        .await;
        assert_eq!(status, 202, "{email}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(
        smtp.messages().len(),
        2,
        "nothing for unknown, verified or just-mailed accounts"
    );
    s.stop().await;
}

async fn password_reset_revokes_everything_and_links_die(db: TestDb) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let s = db
        .server(&[("SMTP_URL", url.as_str()), ("GATEHOUSE_PUBLIC_URL", PUBLIC)])
        .await;
    post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "cy@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    let (_, session) = login(&s, "cy@example.com", PASSWORD).await;

    let (status, _) = post(
        &s,
        "/api/v1/auth/password-reset/request",
        json!({"email": "nobody@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    for _ in 0..2 {
        let (status, _) = post(
            &s,
            "/api/v1/auth/password-reset/request",
            json!({"email": "CY@example.com"}),
            None,
        )
        .await;
        assert_eq!(status, 202);
    }
    let messages = smtp.wait_for(3).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let messages = if smtp.messages().len() > messages.len() {
        smtp.messages()
    } else {
        messages
    };
    let resets = with_subject(&messages, "Reset your password");
    assert_eq!(
        resets.len(),
        2,
        "two for the account, none for the unknown email"
    );
    assert!(resets.iter().all(|m| m.contains("To: cy@example.com")));
    let older = link_token(resets[0], "/reset-password").unwrap();
    let newer = link_token(resets[1], "/reset-password").unwrap();
    assert!(
        common::decode_qp(resets[1]).contains(&format!("{PUBLIC}/reset-password?token={newer}"))
    );

    // The policy is checked first; a refused password does not spend the link.
    let (status, body) = post(
        &s,
        "/api/v1/auth/password-reset/confirm",
        json!({"token": newer, "new_password": "short"}),
        None,
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "new_password")
    );
    let (status, _) = post(
        &s,
        "/api/v1/auth/password-reset/confirm",
        json!({"token": newer, "new_password": NEW_PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Every session is gone, the old password too; the new one works.
    assert_eq!(
        me(&s, session["access_token"].as_str().unwrap()).await.0,
        401
    );
    let (status, _) = post(
        &s,
        "/api/v1/auth/refresh",
        json!({"refresh_token": session["refresh_token"]}),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(login(&s, "cy@example.com", PASSWORD).await.0, 401);
    assert_eq!(login(&s, "cy@example.com", NEW_PASSWORD).await.0, 200);

    // The used link and the older one are both dead.
    for token in [&newer, &older] {
        let (status, body) = post(
            &s,
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "new_password": "Another-Pass5"}),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token"))
        );
    }
    assert_eq!(login(&s, "cy@example.com", NEW_PASSWORD).await.0, 200);

    // Parallel use of one link: exactly one wins.
    post(
        &s,
        "/api/v1/auth/password-reset/request",
        json!({"email": "cy@example.com"}),
        None,
    )
    .await;
    let messages = smtp.wait_for(4).await;
    let token = link_token(
        with_subject(&messages, "Reset your password")
            .last()
            .unwrap(),
        "/reset-password",
    )
    .unwrap();
    let results = common::race_post(&s.client, 8, |i| {
        (
            s.url("/api/v1/auth/password-reset/confirm"),
            json!({"token": token, "new_password": format!("Parallel-Pass{i}")}),
        )
    })
    .await;
    assert_eq!(common::count(&results, 204), 1, "{results:?}");
    assert_eq!(common::count(&results, 401), 7);
    s.stop().await;
}

async fn without_smtp_mail_goes_to_the_outbox(db: TestDb) {
    let s = db.server(&[("GATEHOUSE_PUBLIC_URL", PUBLIC)]).await;
    post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "eve@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    let files = wait_for_eml(&db.outbox(), 1).await;
    assert!(files[0].contains("To: eve@example.com"));
    let token = link_token(&files[0], "/verify-email").unwrap();
    let (status, _) = post(
        &s,
        "/api/v1/auth/verify-email",
        json!({"token": token}),
        None,
    )
    .await;
    assert_eq!(status, 204);
    post(
        &s,
        "/api/v1/auth/password-reset/request",
        json!({"email": "eve@example.com"}),
        None,
    )
    .await;
    let files = wait_for_eml(&db.outbox(), 2).await;
    assert!(files.iter().any(|f| f.contains("/reset-password?token=")));
    s.stop().await;
}

async fn a_dead_smtp_server_never_fails_the_request(db: TestDb) {
    let s = db.server(&[("SMTP_URL", "smtp://127.0.0.1:1")]).await;
    let (status, _) = post(
        &s,
        "/api/v1/auth/register",
        json!({"email": "fay@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(
        &s,
        "/api/v1/auth/password-reset/request",
        json!({"email": "fay@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    s.stop().await;
}

per_backend!(
    verification_mail_arrives_and_its_link_works_once,
    password_reset_revokes_everything_and_links_die,
    without_smtp_mail_goes_to_the_outbox,
    a_dead_smtp_server_never_fails_the_request,
);
