//! What an outside probe found, closed on every backend: uncacheable token answers, header hygiene, CORS that lets a browser send its bearer, malformed heads as problem documents, control characters refused, JSON arrays refused as bodies, registration that hides taken emails on request, and connections that stall closed.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{PASSWORD, ROOT, TestApp, TestDb, wait_for_eml};

async fn token_answers_are_never_cached(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let login = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.header("cache-control"), "no-store");
    assert_eq!(login.header("x-content-type-options"), "nosniff");
    let pair = login.pair();
    for res in [
        s.refresh(&pair.refresh).await,
        s.me(&pair.access).await,
        s.post_empty("/api/v1/auth/mfa/totp/enroll", &pair.access)
            .await,
        s.login_with("ada@example.com", "Wrong-Horse9").await,
    ] {
        assert_eq!(res.header("cache-control"), "no-store", "{}", res.text);
        assert_eq!(res.header("x-content-type-options"), "nosniff");
    }
    let health = s.get_public("/health").await;
    assert_eq!(health.header("x-content-type-options"), "nosniff");
    assert!(health.headers.get("strict-transport-security").is_none());
    s.stop().await;
}

async fn hsts_only_behind_https(db: TestDb) {
    let s = db
        .app(&[("GATEHOUSE_PUBLIC_URL", "https://auth.example.com")])
        .await;
    for path in ["/health", "/api/v1/auth/me", "/nope"] {
        let res = s.get_public(path).await;
        assert_eq!(
            res.header("strict-transport-security"),
            "max-age=31536000; includeSubDomains",
            "{path}"
        );
    }
    // And the device cookie is Secure there.
    s.register("ada@example.com").await;
    let login = s.login_with("ada@example.com", PASSWORD).await;
    assert!(login.header("set-cookie").contains("; Secure"));
    s.stop().await;
}

async fn cors_preflight_lets_a_browser_send_its_bearer(db: TestDb) {
    let s = db
        .app(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")])
        .await;
    let res = s
        .client
        .request(Method::OPTIONS, s.url("/api/v1/auth/me"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example.com");
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(!allowed.contains('*'), "{allowed}");
    for name in ["authorization", "content-type"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    // An origin off the list gets no CORS grant.
    let res = s
        .client
        .request(Method::OPTIONS, s.url("/api/v1/auth/me"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}

async fn malformed_requests_get_problem_documents(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let pair = s.login("ada@example.com").await;
    // Two Authorization headers: which one counts would be a guess.
    let res = s
        .client
        .get(s.url("/api/v1/auth/me"))
        .header("authorization", format!("Bearer {}", pair.access))
        .header("authorization", "Bearer forged")
        .send()
        .await
        .unwrap();
    let res = crate::helpers::Reply::read(res).await;
    assert_eq!(res.problem(), (400, "duplicate_authorization"));
    // A JSON array is not an object, even when its items would fit the fields in order.
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!(["ada@example.com", PASSWORD]))
        .send()
        .await
        .unwrap();
    let res = crate::helpers::Reply::read(res).await;
    assert_eq!(res.problem(), (400, "invalid_body"));
    assert!(
        res.headers.get("set-cookie").is_none(),
        "no sign-in happened"
    );
    // An over-long target and too many header fields.
    let long = format!("/api/v1/users?q={}", "a".repeat(9000));
    let res = s.get(&long, &pair.access).await;
    assert_eq!(res.problem(), (414, "uri_too_long"));
    assert_eq!(res.header("content-type"), "application/problem+json");
    let mut req = s.client.get(s.url("/health"));
    for i in 0..80 {
        req = req.header(format!("x-filler-{i}"), "v");
    }
    let res = crate::helpers::Reply::read(req.send().await.unwrap()).await;
    assert_eq!(res.problem(), (431, "headers_too_large"));
    s.stop().await;
}

async fn control_characters_are_refused(db: TestDb) {
    let s = db.app(&[]).await;
    let admin = s.admin().await;
    // `q=%00` used to match every user.
    for query in ["q=%00", "q=a%01b", "role=user%00"] {
        let res = s.get(&format!("/api/v1/users?{query}"), &admin).await;
        assert_eq!(res.field_error(), (422, "invalid_characters"), "{query}");
    }
    let res = s.get("/api/v1/audit?event=login%00", &admin).await;
    assert_eq!(res.field_error(), (422, "invalid_characters"));
    // A password with a control character is refused, and no account is made.
    for bad in [
        "Correct-Horse9\u{0}",
        "Correct\nHorse9!",
        "Correct\u{7f}Horse9!",
    ] {
        let res = s
            .post_public(
                "/api/v1/auth/register",
                json!({"email": "eve@example.com", "password": bad}),
            )
            .await;
        assert_eq!(res.status, 422, "{bad:?}");
        let codes: Vec<&str> = res.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["code"].as_str())
            .collect();
        assert!(codes.contains(&"invalid_characters"), "{codes:?}");
    }
    let list = s.get("/api/v1/users?q=eve", &admin).await;
    assert_eq!(list.body["total"], 0);
    s.stop().await;
}

async fn registration_can_hide_which_emails_are_taken(db: TestDb) {
    let s = db
        .app(&[
            ("AUTH_REQUIRE_EMAIL_VERIFICATION", "true"),
            ("AUTH_REGISTER_CONCEAL_EXISTING", "true"),
        ])
        .await;
    let register = |email: &'static str| {
        let s = &s;
        async move {
            s.post_public(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
        }
    };
    let new = register("ada@example.com").await;
    let taken = register("ada@example.com").await;
    assert_eq!(new.status, 202, "{}", new.body);
    assert_eq!((taken.status, &taken.body), (new.status, &new.body));
    // The newcomer got a verification link; the owner got word of the second attempt.
    let mails = wait_for_eml(&db.outbox(), 2).await;
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Confirm your email address"))
    );
    assert!(
        mails
            .iter()
            .any(|m| m.contains("You already have an account"))
    );
    assert!(mails.iter().all(|m| m.contains("ada@example.com")));
    let rows = db.query("SELECT id FROM users").await;
    assert_eq!(rows.len(), 1);
    db.assert_audited(&["user_registered", "registration_with_existing_email"])
        .await;
    s.stop().await;
}

async fn conceal_needs_verified_email(db: TestDb) {
    let out = db
        .cli(
            &["serve", "--print-config"],
            &[("AUTH_REGISTER_CONCEAL_EXISTING", "true")],
            None,
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AUTH_REGISTER_CONCEAL_EXISTING")
            && err.contains("AUTH_REQUIRE_EMAIL_VERIFICATION"),
        "{err}"
    );
}

async fn admin_commands_on_an_empty_database_say_to_run_db_init(db: TestDb) {
    let out = db
        .cli(
            &["admin", "create", "--email", ROOT, "--password-stdin"],
            &[],
            Some("Root-pass-123!\n"),
        )
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gatehouse db init"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = db.run(&["users", "list"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("gatehouse db init"));
}

per_backend!(
    token_answers_are_never_cached,
    hsts_only_behind_https,
    cors_preflight_lets_a_browser_send_its_bearer,
    malformed_requests_get_problem_documents,
    control_characters_are_refused,
    registration_can_hide_which_emails_are_taken,
    conceal_needs_verified_email,
    admin_commands_on_an_empty_database_say_to_run_db_init,
);

/// A client that opens a connection and never finishes its request head is cut off, and an
/// idle keep-alive connection too, so stalled sockets cannot pile up.
#[tokio::test]
async fn stalled_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("gh.db").display());
    let s = TestApp::start(&url, dir.path(), &[]).await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let half = async {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(40), c.read(&mut buf))
            .await
            .expect("closed within the header-read timeout")
            .unwrap_or(0)
    };
    let idle = async {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        tokio::time::timeout(Duration::from_secs(40), c.read(&mut buf))
            .await
            .expect("closed within the header-read timeout")
            .unwrap_or(0)
    };
    let (half_read, idle_read) = tokio::join!(half, idle);
    assert_eq!(
        half_read, 0,
        "a half-sent request gets no answer, the socket closes"
    );
    assert_eq!(idle_read, 0);
    s.stop().await;
}
