//! Lockout tells nothing and locks nobody out on every backend: an email without an account answers exactly as one with an account, and a device the owner signed in from keeps its own budget while strangers' guesses keep the account locked.

use serde_json::json;

use crate::helpers::{PASSWORD, Reply, TestApp, TestDb, WRONG_PASSWORD, count};

/// The cookie a successful login hands out, as `name=value` to send back.
#[track_caller]
fn device_cookie(res: &Reply) -> String {
    let cookie = res.header("set-cookie");
    assert!(cookie.starts_with("gatehouse_device="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    cookie.split(';').next().unwrap().to_string()
}

/// A login that sends `cookie` back, as a browser would.
async fn login_from(s: &TestApp, cookie: &str, email: &str, password: &str) -> Reply {
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .header("cookie", cookie)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    Reply::read(res).await
}

/// The statuses and problem codes of `n` wrong logins of `email`, in order.
async fn wrong_logins(s: &TestApp, email: &str, n: usize) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let res = s.login_with(email, WRONG_PASSWORD).await;
        let (status, code) = res.problem();
        if status == 423 {
            assert!(res.header("retry-after").parse::<u64>().unwrap() > 0);
        }
        out.push((status, code.to_string()));
    }
    out
}

async fn unknown_emails_answer_exactly_as_known_ones(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "5")]).await;
    s.register("ada@example.com").await;
    let known = wrong_logins(&s, "ada@example.com", 8).await;
    let unknown = wrong_logins(&s, "nobody@example.com", 8).await;
    assert_eq!(known, unknown);
    let expected: Vec<(u16, String)> = (0..8)
        .map(|i| match i < 5 {
            true => (401, "invalid_credentials".to_string()),
            false => (423, "account_locked".to_string()),
        })
        .collect();
    assert_eq!(known, expected);
    // Nothing about the unknown email is stored in clear.
    let rows = db
        .query("SELECT key_hash, failed_logins FROM login_throttles")
        .await;
    assert_eq!(rows.len(), 1);
    let key: String = rows[0].try_get("", "key_hash").unwrap();
    assert_eq!(key.len(), 64);
    assert!(!key.contains("nobody"));
    s.stop().await;
}

async fn parallel_guesses_at_an_unknown_email_lock_at_the_limit(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "4")]).await;
    let results = s.race_logins(20, "ghost@example.com", WRONG_PASSWORD).await;
    assert_eq!(count(&results, 401), 4, "{results:?}");
    assert_eq!(count(&results, 423), 16, "{results:?}");
    s.stop().await;
}

async fn the_owners_device_signs_in_while_strangers_keep_the_account_locked(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "3")]).await;
    s.register("ada@example.com").await;
    // The owner signs in once and keeps the device cookie.
    let first = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(first.status, 200);
    let cookie = device_cookie(&first);
    // A stranger locks the account.
    wrong_logins(&s, "ada@example.com", 3).await;
    let locked = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(locked.problem(), (423, "account_locked"));
    // The owner's device still gets in, and gets a fresh device cookie.
    let owner = login_from(&s, &cookie, "ada@example.com", PASSWORD).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    let fresh = device_cookie(&owner);
    assert_ne!(fresh, cookie);
    assert_eq!(s.me(owner.pair().access.as_str()).await.status, 200);
    // Everyone else is still locked out: the owner's sign-in did not lift the lock.
    let stranger = s.login_with("ada@example.com", PASSWORD).await;
    assert_eq!(stranger.problem(), (423, "account_locked"));
    assert!(db.user("ada@example.com").await.locked_until.is_some());
    s.stop().await;
}

async fn a_device_has_a_small_budget_of_its_own(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "3")]).await;
    s.register("ada@example.com").await;
    let cookie = device_cookie(&s.login_with("ada@example.com", PASSWORD).await);
    // Wrong passwords from the device count on the device, not on the account.
    for _ in 0..3 {
        let res = login_from(&s, &cookie, "ada@example.com", WRONG_PASSWORD).await;
        assert_eq!(res.problem(), (401, "invalid_credentials"));
    }
    let res = login_from(&s, &cookie, "ada@example.com", PASSWORD).await;
    assert_eq!(
        res.problem(),
        (423, "account_locked"),
        "the device is locked"
    );
    assert_eq!(db.user("ada@example.com").await.failed_logins, 0);
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 200);
    db.assert_audited(&["device_locked"]).await;
    s.stop().await;
}

async fn a_device_token_only_counts_for_its_own_account(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "2")]).await;
    s.register("ada@example.com").await;
    s.register("bob@example.com").await;
    let ada_device = device_cookie(&s.login_with("ada@example.com", PASSWORD).await);
    wrong_logins(&s, "bob@example.com", 2).await;
    // Ada's device is a stranger to Bob's account, and a forged token is no device at all.
    let res = login_from(&s, &ada_device, "bob@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (423, "account_locked"));
    let forged = format!("{}x", &ada_device[..ada_device.len() - 1]);
    wrong_logins(&s, "ada@example.com", 2).await;
    let res = login_from(&s, &forged, "ada@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (423, "account_locked"));
    s.stop().await;
}

per_backend!(
    unknown_emails_answer_exactly_as_known_ones,
    parallel_guesses_at_an_unknown_email_lock_at_the_limit,
    the_owners_device_signs_in_while_strangers_keep_the_account_locked,
    a_device_has_a_small_budget_of_its_own,
    a_device_token_only_counts_for_its_own_account,
);
