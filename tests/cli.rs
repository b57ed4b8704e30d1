//! The `gatehouse` binary against a fresh database on every backend: schema revisions, admin helpers, backup, and one-line failures.

mod common;

use common::{Backend, TestDb, assert_one_line_failure, stderr, stdout};

const ALL_TABLES: usize = 12;

async fn applied(db: &TestDb) -> (usize, usize) {
    let o = db.cli(&["db", "status"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out.lines().last().unwrap().to_string();
    // "N of M applied"
    let mut parts = line.split_whitespace();
    let n = parts.next().unwrap().parse().unwrap();
    parts.next();
    let m = parts.next().unwrap().parse().unwrap();
    (n, m)
}

/// `db init`, then `admin create root@example.com`.
async fn init_with_admin(db: &TestDb) {
    assert!(db.cli(&["db", "init"], &[], None).await.status.success());
    let o = db
        .cli(
            &[
                "admin",
                "create",
                "--email",
                "root@example.com",
                "--password-stdin",
            ],
            &[],
            Some("Sup3r-Secret!"),
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
}

async fn init_status_and_round_trip(db: TestDb) {
    let o = db.cli(&["db", "init"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let (n, total) = applied(&db).await;
    assert!(total >= 6);
    assert_eq!(n, total);
    let status = stdout(&db.cli(&["db", "status"], &[], None).await);
    assert!(
        status.contains("m0001_users_roles") && status.contains("applied"),
        "{status}"
    );
    assert_eq!(
        db.tables().await.len(),
        ALL_TABLES,
        "{:?}",
        db.tables().await
    );

    let o = db.cli(&["db", "downgrade", "--to", "0"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(applied(&db).await, (0, total));
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);

    // Partial upgrade by number, then by name, then the rest.
    let o = db.cli(&["db", "upgrade", "--to", "2"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(applied(&db).await.0, 2);
    let o = db
        .cli(&["db", "upgrade", "--to", "m0004_usage_billing"], &[], None)
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(applied(&db).await.0, 4);
    let o = db.cli(&["db", "upgrade"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(applied(&db).await, (total, total));
    assert_eq!(db.tables().await.len(), ALL_TABLES);

    // Down one step by name, and back.
    let o = db
        .cli(&["db", "downgrade", "--to", "m0005_audit_log"], &[], None)
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(applied(&db).await.0, 5);
    let o = db.cli(&["db", "upgrade"], &[], None).await;
    assert!(o.status.success());
}

async fn unknown_or_wrong_way_revisions_fail_in_one_line(db: TestDb) {
    assert!(db.cli(&["db", "init"], &[], None).await.status.success());
    let line = assert_one_line_failure(
        &db.cli(&["db", "upgrade", "--to", "m9999_nope"], &[], None)
            .await,
    );
    assert!(line.contains("m9999_nope"), "{line}");
    let line =
        assert_one_line_failure(&db.cli(&["db", "downgrade", "--to", "99"], &[], None).await);
    assert!(line.contains("99"), "{line}");
    assert!(
        db.cli(&["db", "downgrade", "--to", "1"], &[], None)
            .await
            .status
            .success()
    );
    let line = assert_one_line_failure(&db.cli(&["db", "downgrade", "--to", "3"], &[], None).await);
    assert!(line.contains("upgrade"), "{line}");
    // Nothing changed by the refused commands.
    assert_eq!(applied(&db).await.0, 1);
}

async fn check_reports_backend_version_and_latency(db: TestDb) {
    let o = db.cli(&["db", "check"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let backend = match db.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
        Backend::MySql => "mysql",
    };
    assert!(out.contains(&format!("backend: {backend}")), "{out}");
    assert!(out.contains("server version: "), "{out}");
    assert!(out.contains("latency: ") && out.contains(" ms"), "{out}");
}

async fn roles_seed_is_idempotent_and_repairs(db: TestDb) {
    use sea_orm::{ConnectionTrait, Statement};
    assert!(db.cli(&["db", "init"], &[], None).await.status.success());
    let o = db.cli(&["roles", "seed"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 created, 0 updated"),
        "{}",
        stdout(&o)
    );
    let conn = db.connect().await;
    let be = conn.get_database_backend();
    conn.execute_raw(Statement::from_string(
        be,
        "DELETE FROM roles WHERE name = 'guest'",
    ))
    .await
    .unwrap();
    conn.execute_raw(Statement::from_string(
        be,
        "UPDATE roles SET description = 'changed' WHERE name = 'admin'",
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();
    let o = db.cli(&["roles", "seed"], &[], None).await;
    assert!(
        stdout(&o).contains("1 created, 1 updated"),
        "{}",
        stdout(&o)
    );
    let o = db.cli(&["roles", "seed"], &[], None).await;
    assert!(
        stdout(&o).contains("0 created, 0 updated"),
        "{}",
        stdout(&o)
    );
}

async fn admin_create_promote_and_list(db: TestDb) {
    assert!(db.cli(&["db", "init"], &[], None).await.status.success());
    // Weak password: refused, every broken rule named, nothing written.
    let o = db
        .cli(
            &[
                "admin",
                "create",
                "--email",
                "root@example.com",
                "--password-stdin",
            ],
            &[],
            Some("short\n"),
        )
        .await;
    let line = assert_one_line_failure(&o);
    assert!(
        line.contains("too short") || line.contains("at least 8"),
        "{line}"
    );
    assert!(
        line.contains("upper-case") && line.contains("digit") && line.contains("symbol"),
        "{line}"
    );
    assert!(!line.contains("short\n"));
    let listed = stdout(&db.cli(&["users", "list"], &[], None).await);
    assert!(listed.contains("0 user(s)"), "{listed}");

    let o = db
        .cli(
            &[
                "admin",
                "create",
                "--email",
                " Root@Example.com ",
                "--password-stdin",
            ],
            &[],
            Some("Sup3r-Secret!\n"),
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("created super_admin Root@Example.com"),
        "{}",
        stdout(&o)
    );
    // Same address in another case: already there, no password asked.
    let o = db
        .cli(
            &["admin", "create", "--email", "root@example.COM"],
            &[],
            None,
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("already a super_admin"),
        "{}",
        stdout(&o)
    );

    // An ordinary account is promoted, its password untouched.
    let conn = db.connect().await;
    gatehouse::store::users::insert(
        &conn,
        gatehouse::store::users::NewUser {
            email: "Ada@Example.com".into(),
            email_lower: "ada@example.com".into(),
            password_hash: Some(
                "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into(),
            ),
            name: Some("Ada".into()),
            roles: vec!["user".into()],
            email_verified: false,
        },
    )
    .await
    .unwrap();
    let o = db
        .cli(
            &["admin", "create", "--email", "ada@example.com"],
            &[],
            None,
        )
        .await;
    assert!(
        stdout(&o).contains("promoted"),
        "{} {}",
        stdout(&o),
        stderr(&o)
    );
    let hash = gatehouse::store::users::find_by_email(&conn, "ada@example.com")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_eq!(
        hash.as_deref(),
        Some("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
    );
    conn.close().await.unwrap();

    let listed = stdout(&db.cli(&["users", "list"], &[], None).await);
    assert!(listed.contains("2 user(s)"), "{listed}");
    let ada = listed
        .lines()
        .find(|l| l.contains("Ada@Example.com"))
        .unwrap();
    assert!(ada.contains("super_admin,user"), "{ada}");
    // The stored hash is argon2id, never the password.
    let conn = db.connect().await;
    let root = gatehouse::store::users::find_by_email(&conn, "root@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(root.password_hash.unwrap().starts_with("$argon2id$"));
    conn.close().await.unwrap();
}

async fn admin_create_refuses_without_terminal_or_flag(db: TestDb) {
    assert!(db.cli(&["db", "init"], &[], None).await.status.success());
    let line = assert_one_line_failure(
        &db.cli(
            &["admin", "create", "--email", "root@example.com"],
            &[],
            None,
        )
        .await,
    );
    assert!(line.contains("--password-stdin"), "{line}");
    let line = assert_one_line_failure(
        &db.cli(
            &[
                "admin",
                "create",
                "--email",
                "not-an-email",
                "--password-stdin",
            ],
            &[],
            Some("Sup3r-Secret!"),
        )
        .await,
    );
    assert!(line.contains("email"), "{line}");
}

async fn reset_needs_yes_and_empties_data(db: TestDb) {
    init_with_admin(&db).await;
    let line = assert_one_line_failure(&db.cli(&["db", "reset"], &[], None).await);
    assert!(line.contains("--yes"), "{line}");
    assert!(stdout(&db.cli(&["users", "list"], &[], None).await).contains("1 user(s)"));
    let o = db.cli(&["db", "reset", "--yes"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&db.cli(&["users", "list"], &[], None).await).contains("0 user(s)"));
    let (n, m) = applied(&db).await;
    assert_eq!(n, m);
    assert_eq!(db.tables().await.len(), ALL_TABLES);
}

async fn backup_and_restore(db: TestDb) {
    init_with_admin(&db).await;
    let file = db.dir.path().join("backups").join("gh.bak");
    let file = file.to_str().unwrap();
    let o = db.cli(&["db", "backup", file], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    match db.backend {
        Backend::Sqlite => {
            // Online: taken while a server holds the database open.
            let server = db.server(&[]).await;
            let second = db.dir.path().join("second.bak");
            let o = db
                .cli(&["db", "backup", second.to_str().unwrap()], &[], None)
                .await;
            assert!(o.status.success(), "{}", stderr(&o));
            server.stop().await;
            // Refuses to overwrite.
            assert_one_line_failure(&db.cli(&["db", "backup", file], &[], None).await);
            assert!(
                db.cli(&["db", "reset", "--yes"], &[], None)
                    .await
                    .status
                    .success()
            );
            assert!(stdout(&db.cli(&["users", "list"], &[], None).await).contains("0 user(s)"));
            let o = db.cli(&["db", "restore", file], &[], None).await;
            assert!(o.status.success(), "{}", stderr(&o));
            let listed = stdout(&db.cli(&["users", "list"], &[], None).await);
            assert!(listed.contains("root@example.com"), "{listed}");
            // A file that is not a backup is refused and the database kept.
            let junk = db.dir.path().join("junk.bak");
            std::fs::write(&junk, b"not a database").unwrap();
            assert_one_line_failure(
                &db.cli(&["db", "restore", junk.to_str().unwrap()], &[], None)
                    .await,
            );
            assert!(
                stdout(&db.cli(&["users", "list"], &[], None).await).contains("root@example.com")
            );
        }
        Backend::Postgres => {
            assert!(
                stdout(&o).contains("pg_dump") && stdout(&o).contains(&db.name),
                "{}",
                stdout(&o)
            );
            let r = db.cli(&["db", "restore", file], &[], None).await;
            assert!(stdout(&r).contains("pg_restore"), "{}", stdout(&r));
        }
        Backend::MySql => {
            assert!(
                stdout(&o).contains("mysqldump") && stdout(&o).contains(&db.name),
                "{}",
                stdout(&o)
            );
            let r = db.cli(&["db", "restore", file], &[], None).await;
            assert!(stdout(&r).contains("mysql "), "{}", stdout(&r));
        }
    }
}

async fn sessions_cleanup_counts_what_it_deletes(db: TestDb) {
    use gatehouse::store::entities::sessions;
    use sea_orm::{ActiveModelTrait, Set};
    init_with_admin(&db).await;
    let conn = db.connect().await;
    let user = gatehouse::store::users::find_by_email(&conn, "root@example.com")
        .await
        .unwrap()
        .unwrap();
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
        }
        .insert(&conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();
    let o = db.cli(&["sessions", "cleanup"], &[], None).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("deleted 2 row(s)"), "{}", stdout(&o));
    let o = db.cli(&["sessions", "cleanup"], &[], None).await;
    assert!(stdout(&o).contains("deleted 0 row(s)"), "{}", stdout(&o));
}

async fn serve_migrates_bootstraps_admin_and_stops_on_sigterm(db: TestDb) {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("serve").current_dir(db.dir.path()).env_clear();
    for (k, v) in db.env() {
        cmd.env(k, v);
    }
    cmd.env("GATEHOUSE_BIND", &bind)
        .env("ADMIN_USERNAME", "boot@example.com")
        .env("ADMIN_PASSWORD", "Bo0t-Strap!")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let client = reqwest::Client::new();
    let mut ok = false;
    for _ in 0..200 {
        if let Ok(r) = client.get(format!("http://{bind}/ready")).send().await
            && r.status() == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "server never became ready");
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "exit {status:?}");
    let listed = stdout(&db.cli(&["users", "list"], &[], None).await);
    let line = listed
        .lines()
        .find(|l| l.contains("boot@example.com"))
        .expect(&listed);
    assert!(line.contains("super_admin"), "{line}");
    assert_eq!(applied(&db).await.0, applied(&db).await.1);
}

per_backend!(
    init_status_and_round_trip,
    unknown_or_wrong_way_revisions_fail_in_one_line,
    check_reports_backend_version_and_latency,
    roles_seed_is_idempotent_and_repairs,
    admin_create_promote_and_list,
    admin_create_refuses_without_terminal_or_flag,
    reset_needs_yes_and_empties_data,
    backup_and_restore,
    sessions_cleanup_counts_what_it_deletes,
    serve_migrates_bootstraps_admin_and_stops_on_sigterm,
);

/// Commands that fail before any database: configuration, unreachable servers.
mod failures {
    use super::common::{assert_one_line_failure, run_cli, stdout};

    async fn run(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        run_cli(dir.path(), &[], args, env, None).await
    }

    #[tokio::test]
    async fn bad_configuration_names_the_variable() {
        for (var, value) in [
            ("DB_POOL_SIZE", "lots"),
            ("DB_TYPE", "oracle"),
            ("LOG_FORMAT", "xml"),
            ("JWT_SECRET", "short"),
            ("DATABASE_URL", "ftp://x/y"),
        ] {
            let line = assert_one_line_failure(&run(&[(var, value)], &["db", "status"]).await);
            assert!(line.contains(var), "{line}");
        }
    }

    #[tokio::test]
    async fn unreachable_database_is_one_line_without_the_password() {
        for url in [
            "postgres://gate:hunter2@127.0.0.1:1/gh",
            "mysql://gate:hunter2@127.0.0.1:1/gh",
        ] {
            for args in [
                &["db", "check"][..],
                &["db", "status"],
                &["serve"],
                &["users", "list"],
            ] {
                let o = run(
                    &[
                        ("DATABASE_URL", url),
                        ("DB_CONNECT_TIMEOUT", "2"),
                        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
                    ],
                    args,
                )
                .await;
                let line = assert_one_line_failure(&o);
                assert!(line.contains("cannot connect"), "{line}");
                assert!(!line.contains("hunter2"), "{line}");
            }
        }
    }

    #[tokio::test]
    async fn postgres_without_jwt_secret_refuses_to_serve() {
        let line = assert_one_line_failure(
            &run(
                &[(
                    "DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/postgres",
                )],
                &["serve"],
            )
            .await,
        );
        assert!(line.contains("JWT_SECRET"), "{line}");
    }

    #[tokio::test]
    async fn a_bad_signing_key_file_is_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let url = format!("sqlite://{}", dir.path().join("gh.db").display());
        for alg in ["EdDSA", "ES256", "RS256"] {
            let env = [
                ("DATABASE_URL", url.as_str()),
                ("JWT_ALGORITHM", alg),
                ("JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
            ];
            let line =
                assert_one_line_failure(&run_cli(dir.path(), &[], &["serve"], &env, None).await);
            assert!(line.contains("JWT_PRIVATE_KEY_FILE"), "{line}");
        }
        let line = assert_one_line_failure(
            &run(
                &[
                    ("JWT_ALGORITHM", "RS256"),
                    ("JWT_PRIVATE_KEY_FILE", "/nonexistent.pem"),
                ],
                &["serve"],
            )
            .await,
        );
        assert!(line.contains("JWT_PRIVATE_KEY_FILE"), "{line}");
    }

    #[tokio::test]
    async fn print_config_masks_secrets_and_reads_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "JWT_SECRET=dotenv-secret-dotenv-secret-dotenv-secret\nGATEHOUSE_BIND=0.0.0.0:9999\nDB_POOL_SIZE=3\n").unwrap();
        let o = run_cli(
            dir.path(),
            &[],
            &["serve", "--print-config"],
            &[
                ("DB_POOL_SIZE", "7"),
                ("DATABASE_URL", "postgres://u:pw-secret@db/gh"),
            ],
            None,
        )
        .await;
        assert!(o.status.success());
        let out = stdout(&o);
        assert!(out.contains("GATEHOUSE_BIND=0.0.0.0:9999"), "{out}");
        assert!(
            out.contains("DB_POOL_SIZE=7"),
            "environment wins over .env: {out}"
        );
        assert!(out.contains("JWT_SECRET=********"), "{out}");
        assert!(
            !out.contains("dotenv-secret") && !out.contains("pw-secret"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn keys_generate_prints_usable_keys() {
        let o = run(&[], &["keys", "generate"]).await;
        assert!(o.status.success());
        let out = stdout(&o);
        let jwt = out
            .lines()
            .find_map(|l| l.strip_prefix("JWT_SECRET="))
            .unwrap();
        let master = out
            .lines()
            .find_map(|l| l.strip_prefix("ENCRYPTION_MASTER_KEY="))
            .unwrap();
        assert!(jwt.len() >= 32);
        // Both are accepted by the configuration.
        let o = run(
            &[("JWT_SECRET", jwt), ("ENCRYPTION_MASTER_KEY", master)],
            &["serve", "--print-config"],
        )
        .await;
        assert!(o.status.success(), "{}", super::common::stderr(&o));
        let again = stdout(&run(&[], &["keys", "generate"]).await);
        assert_ne!(out, again);
    }
}
