//! The `gatehouse` binary's admin helpers on every backend: seeding roles, creating and promoting the super_admin (passwords only on stdin, never echoed), listing users, and cleaning up sessions.

use crate::helpers::{TestDb, assert_one_line_failure, stderr, stdout};

/// A stored argon2id hash that no test logs in with.
const SOME_HASH: &str = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// `admin create --email EMAIL --password-stdin` with `password` on stdin.
async fn create_admin(db: &TestDb, email: &str, password: &str) -> std::process::Output {
    db.cli(
        &["admin", "create", "--email", email, "--password-stdin"],
        &[],
        Some(password),
    )
    .await
}

async fn roles_seed_is_idempotent_and_repairs(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let out = db.run_ok(&["roles", "seed"]).await;
    assert!(out.contains("0 created, 0 updated"), "{out}");
    db.execute("DELETE FROM roles WHERE name = 'guest'").await;
    db.execute("UPDATE roles SET description = 'changed' WHERE name = 'admin'")
        .await;
    let out = stdout(&db.run(&["roles", "seed"]).await);
    assert!(out.contains("1 created, 1 updated"), "{out}");
    let out = stdout(&db.run(&["roles", "seed"]).await);
    assert!(out.contains("0 created, 0 updated"), "{out}");
}

async fn admin_create_promote_and_list(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    // Weak password: refused, every broken rule named, nothing written.
    let line = assert_one_line_failure(&create_admin(&db, "root@example.com", "short\n").await);
    assert!(
        line.contains("too short") || line.contains("at least 8"),
        "{line}"
    );
    assert!(
        line.contains("upper-case") && line.contains("digit") && line.contains("symbol"),
        "{line}"
    );
    assert!(!line.contains("short\n"));
    let listed = stdout(&db.run(&["users", "list"]).await);
    assert!(listed.contains("0 user(s)"), "{listed}");

    let o = create_admin(&db, " Root@Example.com ", "Sup3r-Secret!\n").await;
    let out = crate::helpers::assert_success(&o);
    assert!(
        out.contains("created super_admin Root@Example.com"),
        "{out}"
    );
    // Same address in another case: already there, no password asked.
    let out = db
        .run_ok(&["admin", "create", "--email", "root@example.COM"])
        .await;
    assert!(out.contains("already a super_admin"), "{out}");

    // An ordinary account is promoted, its password untouched.
    let conn = db.connect().await;
    gatehouse::store::users::insert(
        &conn,
        gatehouse::store::users::NewUser {
            email: "Ada@Example.com".into(),
            email_lower: "ada@example.com".into(),
            password_hash: Some(SOME_HASH.into()),
            name: Some("Ada".into()),
            roles: vec!["user".into()],
            email_verified: false,
        },
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    let o = db
        .run(&["admin", "create", "--email", "ada@example.com"])
        .await;
    assert!(
        stdout(&o).contains("promoted"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    let hash = db.user("ada@example.com").await.password_hash;
    assert_eq!(hash.as_deref(), Some(SOME_HASH));

    let listed = stdout(&db.run(&["users", "list"]).await);
    assert!(listed.contains("2 user(s)"), "{listed}");
    let ada = listed
        .lines()
        .find(|l| l.contains("Ada@Example.com"))
        .unwrap();
    assert!(ada.contains("super_admin,user"), "{ada}");
    // The stored hash is argon2id, never the password.
    let root = db.user("root@example.com").await;
    assert!(root.password_hash.unwrap().starts_with("$argon2id$"));
}

async fn admin_create_refuses_without_terminal_or_flag(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let line = assert_one_line_failure(
        &db.run(&["admin", "create", "--email", "root@example.com"])
            .await,
    );
    assert!(line.contains("--password-stdin"), "{line}");
    let line = assert_one_line_failure(&create_admin(&db, "not-an-email", "Sup3r-Secret!").await);
    assert!(line.contains("email"), "{line}");
}

async fn sessions_cleanup_counts_what_it_deletes(db: TestDb) {
    use gatehouse::store::entities::sessions;
    use sea_orm::{ActiveModelTrait, Set};
    db.init_with_admin().await;
    let user = db.user("root@example.com").await;
    let conn = db.connect().await;
    let now = chrono::Utc::now();
    for (expires, revoked) in [
        (now - chrono::Duration::hours(1), None),
        (now + chrono::Duration::hours(1), Some(now)),
        (now + chrono::Duration::hours(1), None),
    ] {
        sessions::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            user_id: Set(user.id),
            refresh_generation: Set(0),
            salt: Set("c2FsdA".into()),
            ip_address: Set(Some("127.0.0.1".into())),
            user_agent: Set(None),
            aal: Set("aal1".into()),
            created_at: Set(now),
            last_used_at: Set(now),
            refreshed_at: Set(None),
            expires_at: Set(expires),
            revoked_at: Set(revoked),
            revoked_reason: Set(None),
            ..Default::default()
        }
        .insert(&conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    let out = db.run_ok(&["sessions", "cleanup"]).await;
    assert!(out.contains("deleted 2 row(s)"), "{out}");
    let out = stdout(&db.run(&["sessions", "cleanup"]).await);
    assert!(out.contains("deleted 0 row(s)"), "{out}");
}

per_backend!(
    roles_seed_is_idempotent_and_repairs,
    admin_create_promote_and_list,
    admin_create_refuses_without_terminal_or_flag,
    sessions_cleanup_counts_what_it_deletes,
);
