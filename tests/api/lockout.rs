//! Account lockout on every backend: after the limit even the right password is refused, parallel wrong passwords lock at exactly the limit, right ones never do, admins unlock, and a full hashing queue is a 503 that counts as nothing.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, TestDb, WRONG_PASSWORD, count, race_replies};

/// `n` logins of `email` with the wrong password, each refused as a failure (401).
async fn fail_logins(s: &TestApp, email: &str, n: usize) {
    for _ in 0..n {
        assert_eq!(s.login_with(email, WRONG_PASSWORD).await.status, 401);
    }
}

async fn lockout_after_max_failures_even_for_the_right_password(db: TestDb) {
    let s = db
        .app(&[
            ("AUTH_MAX_LOGIN_ATTEMPTS", "3"),
            ("AUTH_LOCKOUT_MINUTES", "15"),
        ])
        .await;
    s.register("ada@example.com").await;
    // Success resets the count.
    fail_logins(&s, "ada@example.com", 2).await;
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 200);
    fail_logins(&s, "ada@example.com", 2).await;
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 200);
    fail_logins(&s, "ada@example.com", 3).await;
    let res = s.login_with("ada@example.com", PASSWORD).await;
    let retry: u64 = res.header("retry-after").parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    assert_eq!(res.problem(), (423, "account_locked"));
    db.assert_audited(&["account_locked", "login_failed", "login_succeeded"])
        .await;

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
    conn.close().await.unwrap();
    fail_logins(&s, "ada@example.com", 1).await;
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 200);
    let u = db.user("ada@example.com").await;
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    s.stop().await;
}

async fn fifty_parallel_wrong_passwords_lock_at_exactly_the_limit(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "5")]).await;
    s.register("ada@example.com").await;
    let results = s.race_logins(50, "ada@example.com", WRONG_PASSWORD).await;
    assert_eq!(count(&results, 401), 5, "{results:?}");
    assert_eq!(count(&results, 423), 45, "{results:?}");
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 423);
    let u = db.user("ada@example.com").await;
    assert_eq!(u.failed_logins, 5);
    assert!(u.locked_until.is_some());
    s.stop().await;
}

async fn parallel_right_passwords_are_never_locked_out(db: TestDb) {
    let s = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "3")]).await;
    s.register("ada@example.com").await;
    let results = s.race_logins(12, "ada@example.com", PASSWORD).await;
    assert_eq!(count(&results, 200), 12, "{results:?}");
    let u = db.user("ada@example.com").await;
    assert_eq!((u.failed_logins, u.locked_until), (0, None));
    s.stop().await;
}

async fn admins_unlock_accounts(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (_, moderator) = s.user_as(&root, "mod@example.com", &["moderator"]).await;
    let id = s.create_user(&root, "dora@example.com", &["user"]).await;
    for _ in 0..5 {
        s.login_with("dora@example.com", WRONG_PASSWORD).await;
    }
    assert_eq!(s.login_with("dora@example.com", PASSWORD).await.status, 423);
    let unlock = format!("/api/v1/users/{id}/unlock");
    let res = s.post_empty(&unlock, &moderator).await;
    assert_eq!(res.problem(), (403, "insufficient_role"));
    assert_eq!(s.post_empty(&unlock, &root).await.status, 204);
    assert_eq!(s.login_with("dora@example.com", PASSWORD).await.status, 200);
    let unknown = format!("/api/v1/users/{}/unlock", uuid::Uuid::now_v7());
    assert_eq!(s.post_empty(&unknown, &root).await.status, 404);
    let total = s
        .audit_total(&root, &format!("event=user_unlocked&user_id={id}"))
        .await;
    assert_eq!(total, 1);
    s.stop().await;
}

per_backend!(
    lockout_after_max_failures_even_for_the_right_password,
    fifty_parallel_wrong_passwords_lock_at_exactly_the_limit,
    parallel_right_passwords_are_never_locked_out,
    admins_unlock_accounts,
);

/// A full hashing queue answers 503 with Retry-After at once, and does not count as a failed
/// login. One worker and a queue of one admit two verifications at a time, so of logins that
/// all reach the pool while the first verification runs, exactly two are verified (401) and
/// every other one is refused at once (503). Released together from a barrier, twelve reach
/// it within tens of milliseconds; one verification at this cost (32 MiB, 6 passes) takes
/// about half a second here, and only grows when the machine is busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_hashing_pool_answers_503() {
    const WORKERS: usize = 1;
    const QUEUE: usize = 1;
    const LOGINS: usize = 12;
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let (workers, queue) = (WORKERS.to_string(), QUEUE.to_string());
    let s = db
        .app(&[
            ("PASSWORD_HASH_WORKERS", workers.as_str()),
            ("PASSWORD_HASH_QUEUE", queue.as_str()),
            ("PASSWORD_ARGON2_MEMORY_KIB", "32768"),
            ("PASSWORD_ARGON2_ITERATIONS", "6"),
            ("AUTH_MAX_LOGIN_ATTEMPTS", "100"),
        ])
        .await;
    s.register("ada@example.com").await;
    let login = json!({"email": "ada@example.com", "password": WRONG_PASSWORD});
    let replies = race_replies(LOGINS, |_| {
        s.client.post(s.url("/api/v1/auth/login")).json(&login)
    })
    .await;
    let (mut busy, mut wrong) = (0, 0);
    for res in &replies {
        match res.problem() {
            (503, "server_busy") => {
                assert!(res.header("retry-after").parse::<u64>().unwrap() >= 1);
                busy += 1;
            }
            (401, "invalid_credentials") => wrong += 1,
            other => panic!("{other:?}: {}", res.body),
        }
    }
    assert_eq!((wrong, busy), (WORKERS + QUEUE, LOGINS - WORKERS - QUEUE));
    let u = db.user("ada@example.com").await;
    assert_eq!(
        u.failed_logins as usize, wrong,
        "503s must not count as failures"
    );
    s.stop().await;
}
