//! Email verification and password reset through HTTP on every backend, with mail delivered to an SMTP server started by the test (or the `.eml` outbox): the message arrives, its link works once, answers never reveal an account, and a dead SMTP server fails no request and shows in the metrics.

use serde_json::json;

use crate::helpers::{
    PASSWORD, Reply, SmtpSink, TestApp, TestDb, count, decode_qp, link_token, wait_for_eml,
};

const NEW_PASSWORD: &str = "Battery-Staple7";
const PUBLIC: &str = "https://id.example.test";

fn with_subject<'a>(messages: &'a [String], subject: &str) -> Vec<&'a String> {
    messages
        .iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .collect()
}

impl TestApp {
    async fn verify_email(&self, token: &str) -> Reply {
        self.post_public("/api/v1/auth/verify-email", json!({"token": token}))
            .await
    }

    async fn request_reset(&self, email: &str) -> Reply {
        self.post_public(
            "/api/v1/auth/password-reset/request",
            json!({"email": email}),
        )
        .await
    }

    async fn confirm_reset(&self, token: &str, new_password: &str) -> Reply {
        self.post_public(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "new_password": new_password}),
        )
        .await
    }
}

async fn verification_mail_arrives_and_its_link_works_once(db: TestDb) {
    let smtp = SmtpSink::start().await;
    let url = smtp.url();
    let s = db
        .settling_app(&[
            ("SMTP_URL", url.as_str()),
            ("GATEHOUSE_PUBLIC_URL", PUBLIC),
            ("AUTH_REQUIRE_EMAIL_VERIFICATION", "true"),
            ("MAIL_FROM", "Gatehouse Test <noreply@example.test>"),
        ])
        .await;
    s.register("Ada@Example.com").await;
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
    assert!(decode_qp(mail).contains(&format!("{PUBLIC}/verify-email?token=")));
    let token = link_token(mail, "/verify-email").unwrap();
    assert!(token.len() >= 40, "≥ 128 bits: {token}");

    let res = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (403, "email_not_verified"));
    assert_eq!(s.verify_email(&token).await.status, 204);
    let res = s.verify_email(&token).await;
    assert_eq!(res.problem(), (401, "invalid_token"), "a link works once");
    let pair = s.login("ada@example.com").await;
    assert_eq!(
        s.me(&pair.access).await.body["user"]["email_verified"],
        true
    );
    assert_eq!(s.verify_email("forged").await.status, 401);

    // Resend: 202 for anyone; mail only for an unverified account, at most once a minute.
    s.register("bo@example.com").await;
    smtp.wait_for(2).await;
    for email in [
        "nobody@example.com",
        "ada@example.com",
        "bo@example.com",
        "not an email",
    ] {
        let res = s
            .post_public("/api/v1/auth/verify-email/resend", json!({"email": email}))
            .await;
        assert_eq!(res.status, 202, "{email}");
    }
    // Resend decides after the answer: once the server has settled, all mail has been sent.
    s.settle().await;
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
        .settling_app(&[("SMTP_URL", url.as_str()), ("GATEHOUSE_PUBLIC_URL", PUBLIC)])
        .await;
    s.register("cy@example.com").await;
    let session = s.login("cy@example.com").await;

    assert_eq!(s.request_reset("nobody@example.com").await.status, 202);
    for _ in 0..2 {
        assert_eq!(s.request_reset("CY@example.com").await.status, 202);
    }
    // The verification mail of the registration and two resets, then nothing more.
    s.settle().await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let resets = with_subject(&messages, "Reset your password");
    assert_eq!(
        resets.len(),
        2,
        "two for the account, none for the unknown email"
    );
    assert!(resets.iter().all(|m| m.contains("To: cy@example.com")));
    let older = link_token(resets[0], "/reset-password").unwrap();
    let newer = link_token(resets[1], "/reset-password").unwrap();
    assert!(decode_qp(resets[1]).contains(&format!("{PUBLIC}/reset-password?token={newer}")));

    // The policy is checked first; a refused password does not spend the link.
    let res = s.confirm_reset(&newer, "short").await;
    assert_eq!(res.status, 422);
    assert!(
        res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "new_password")
    );
    assert_eq!(s.confirm_reset(&newer, NEW_PASSWORD).await.status, 204);

    // Every session is gone, the old password too; the new one works.
    assert_eq!(s.me(&session.access).await.status, 401);
    assert_eq!(s.refresh(&session.refresh).await.status, 401);
    assert_eq!(s.login_with("cy@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        s.login_with("cy@example.com", NEW_PASSWORD).await.status,
        200
    );

    // The used link and the older one are both dead.
    for token in [&newer, &older] {
        let res = s.confirm_reset(token, "Another-Pass5").await;
        assert_eq!(res.problem(), (401, "invalid_token"));
    }
    assert_eq!(
        s.login_with("cy@example.com", NEW_PASSWORD).await.status,
        200
    );

    // Parallel use of one link: exactly one wins.
    s.request_reset("cy@example.com").await;
    let messages = smtp.wait_for(4).await;
    let token = link_token(
        with_subject(&messages, "Reset your password")
            .last()
            .unwrap(),
        "/reset-password",
    )
    .unwrap();
    let results = s
        .race(
            8,
            "/api/v1/auth/password-reset/confirm",
            |i| json!({"token": token, "new_password": format!("Parallel-Pass{i}")}),
        )
        .await;
    assert_eq!(count(&results, 204), 1, "{results:?}");
    assert_eq!(count(&results, 401), 7);
    s.stop().await;
}

async fn without_smtp_mail_goes_to_the_outbox(db: TestDb) {
    let s = db.app(&[("GATEHOUSE_PUBLIC_URL", PUBLIC)]).await;
    s.register("eve@example.com").await;
    let files = wait_for_eml(&db.outbox(), 1).await;
    assert!(files[0].contains("To: eve@example.com"));
    let token = link_token(&files[0], "/verify-email").unwrap();
    assert_eq!(s.verify_email(&token).await.status, 204);
    s.request_reset("eve@example.com").await;
    let files = wait_for_eml(&db.outbox(), 2).await;
    assert!(files.iter().any(|f| f.contains("/reset-password?token=")));
    s.stop().await;
}

/// In a process of its own, so that its `/metrics` counts only its own mail.
async fn a_dead_smtp_server_fails_no_request_and_is_counted(db: TestDb) {
    const SENT: &str = r#"gatehouse_mail_total{outcome="sent"}"#;
    const FAILED: &str = r#"gatehouse_mail_total{outcome="failed"}"#;
    let mut smtp = SmtpSink::start().await;
    let url = smtp.url();
    let server = db
        .serve(&[("SMTP_URL", url.as_str()), ("GATEHOUSE_PUBLIC_URL", PUBLIC)])
        .await;
    let register = json!({"email": "fay@example.com", "password": PASSWORD});
    assert_eq!(server.post("/api/v1/auth/register", register).await, 201);
    smtp.wait_for(1).await;
    server.wait_metric(SENT, 1).await;

    // Down: the request still succeeds; the message is retried, then counted as failed.
    smtp.stop().await;
    let reset = json!({"email": "fay@example.com"});
    let path = "/api/v1/auth/password-reset/request";
    assert_eq!(server.post(path, reset.clone()).await, 202);
    server.wait_metric(FAILED, 1).await;
    assert_eq!(server.metric(SENT).await, 1);

    // Back on the same port: the next message goes out, the failed one never does.
    smtp.restart().await;
    assert_eq!(server.post(path, reset).await, 202);
    let messages = smtp.wait_for(2).await;
    server.wait_metric(SENT, 2).await;
    assert_eq!(server.metric(FAILED).await, 1);
    assert_eq!(messages.len(), 2);
    assert!(messages[1].contains("Subject: Reset your password"));
    assert!(server.terminate().await.success());
}

per_backend!(
    verification_mail_arrives_and_its_link_works_once,
    password_reset_revokes_everything_and_links_die,
    without_smtp_mail_goes_to_the_outbox,
    a_dead_smtp_server_fails_no_request_and_is_counted,
);
