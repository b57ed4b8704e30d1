//! The `gatehouse` binary's database commands against a fresh database on every backend: schema revisions up and down, check, reset, backup and restore, and `serve` stopping on SIGTERM.

use crate::helpers::{Backend, TestDb, assert_one_line_failure, assert_success, stdout};

// m0012 added oidc_clients, oidc_consents and oidc_codes; m0013 passkeys and webauthn_ceremonies.
const ALL_TABLES: usize = 19;

async fn init_status_and_round_trip(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let (n, total) = db.applied().await;
    assert!(total >= 6);
    assert_eq!(n, total);
    let status = stdout(&db.run(&["db", "status"]).await);
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

    db.run_ok(&["db", "downgrade", "--to", "0"]).await;
    assert_eq!(db.applied().await, (0, total));
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);

    // Partial upgrade by number, then by name, then the rest.
    db.run_ok(&["db", "upgrade", "--to", "2"]).await;
    assert_eq!(db.applied().await.0, 2);
    db.run_ok(&["db", "upgrade", "--to", "m0004_usage_billing"])
        .await;
    assert_eq!(db.applied().await.0, 4);
    db.run_ok(&["db", "upgrade"]).await;
    assert_eq!(db.applied().await, (total, total));
    assert_eq!(db.tables().await.len(), ALL_TABLES);

    // Down one step by name, and back.
    db.run_ok(&["db", "downgrade", "--to", "m0005_audit_log"])
        .await;
    assert_eq!(db.applied().await.0, 5);
    db.run_ok(&["db", "upgrade"]).await;
}

async fn unknown_or_wrong_way_revisions_fail_in_one_line(db: TestDb) {
    db.run_ok(&["db", "init"]).await;
    let line = assert_one_line_failure(&db.run(&["db", "upgrade", "--to", "m9999_nope"]).await);
    assert!(line.contains("m9999_nope"), "{line}");
    let line = assert_one_line_failure(&db.run(&["db", "downgrade", "--to", "99"]).await);
    assert!(line.contains("99"), "{line}");
    db.run_ok(&["db", "downgrade", "--to", "1"]).await;
    let line = assert_one_line_failure(&db.run(&["db", "downgrade", "--to", "3"]).await);
    assert!(line.contains("upgrade"), "{line}");
    // Nothing changed by the refused commands.
    assert_eq!(db.applied().await.0, 1);
}

async fn check_reports_backend_version_and_latency(db: TestDb) {
    let out = db.run_ok(&["db", "check"]).await;
    let backend = db.backend.name();
    assert!(out.contains(&format!("backend: {backend}")), "{out}");
    assert!(out.contains("server version: "), "{out}");
    assert!(out.contains("latency: ") && out.contains(" ms"), "{out}");
}

async fn reset_needs_yes_and_empties_data(db: TestDb) {
    db.init_with_admin().await;
    let line = assert_one_line_failure(&db.run(&["db", "reset"]).await);
    assert!(line.contains("--yes"), "{line}");
    assert!(stdout(&db.run(&["users", "list"]).await).contains("1 user(s)"));
    db.run_ok(&["db", "reset", "--yes"]).await;
    assert!(stdout(&db.run(&["users", "list"]).await).contains("0 user(s)"));
    let (n, m) = db.applied().await;
    assert_eq!(n, m);
    assert_eq!(db.tables().await.len(), ALL_TABLES);
}

/// Run a command line `db backup` or `db restore` printed, as a shell would; it must succeed.
async fn run_printed(printed: &str) {
    // `-p` asks for a password on the terminal; the tests' MariaDB has none.
    let line = printed.trim().replace(" -p ", " ");
    let out = tokio::process::Command::new("sh")
        .args(["-c", &line])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        out.status.success(),
        "{line}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn backup_and_restore(db: TestDb) {
    db.init_with_admin().await;
    let second = [
        "admin",
        "create",
        "--email",
        "bo@example.com",
        "--password-stdin",
    ];
    assert_success(&db.cli(&second, &[], Some("Sup3r-Secret!")).await);
    let rows = db.run_ok(&["users", "list"]).await;
    assert!(rows.contains("2 user(s)"), "{rows}");
    let dir = db.dir.path().join("backups");
    let file = dir.join("gh.bak");
    let file = file.to_str().unwrap();
    let out = db.run_ok(&["db", "backup", file]).await;
    match db.backend {
        Backend::Sqlite => {
            // Online: taken while a server holds the database open.
            let server = db.app(&[]).await;
            let second = db.dir.path().join("second.bak");
            db.run_ok(&["db", "backup", second.to_str().unwrap()]).await;
            server.stop().await;
            // Refuses to overwrite.
            assert_one_line_failure(&db.run(&["db", "backup", file]).await);
            db.run_ok(&["db", "reset", "--yes"]).await;
            assert!(db.run_ok(&["users", "list"]).await.contains("0 user(s)"));
            db.run_ok(&["db", "restore", file]).await;
            assert_eq!(db.run_ok(&["users", "list"]).await, rows);
            // A file that is not a backup is refused and the database kept.
            let junk = db.dir.path().join("junk.bak");
            std::fs::write(&junk, b"not a database").unwrap();
            assert_one_line_failure(&db.run(&["db", "restore", junk.to_str().unwrap()]).await);
            assert_eq!(db.run_ok(&["users", "list"]).await, rows);
        }
        // A server database: the commands to run with the server's own tools, which work.
        Backend::Postgres | Backend::MySql => {
            let (dump, restore) = if db.backend == Backend::Postgres {
                ("pg_dump", "pg_restore")
            } else {
                ("mysqldump", "mysql ")
            };
            assert!(out.contains(dump) && out.contains(&db.name), "{out}");
            std::fs::create_dir_all(&dir).unwrap();
            run_printed(&out).await;
            assert!(std::fs::metadata(file).unwrap().len() > 0);
            db.run_ok(&["db", "reset", "--yes"]).await;
            assert!(db.run_ok(&["users", "list"]).await.contains("0 user(s)"));
            let printed = db.run_ok(&["db", "restore", file]).await;
            assert!(printed.contains(restore), "{printed}");
            run_printed(&printed).await;
            assert_eq!(db.run_ok(&["users", "list"]).await, rows);
            let (applied, total) = db.applied().await;
            assert_eq!(applied, total);
        }
    }
}

async fn serve_migrates_bootstraps_admin_and_stops_on_sigterm(db: TestDb) {
    let mut server = db
        .serve(&[
            ("ADMIN_USERNAME", "boot@example.com"),
            ("ADMIN_PASSWORD", "Bo0t-Strap!"),
            // On without a provider: the start must say so.
            ("OAUTH_ENABLED", "true"),
        ])
        .await;
    let mut log_pipe = server.child.stderr.take().unwrap();
    let status = server.terminate().await;
    assert!(status.success(), "exit {status:?}");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut log_pipe, &mut log)
        .await
        .unwrap();
    assert!(
        log.contains("OAUTH_ENABLED is true but no provider is configured"),
        "{log}"
    );
    assert!(!log.contains("Bo0t-Strap!"), "no secret in the log");
    let listed = stdout(&db.run(&["users", "list"]).await);
    let line = listed
        .lines()
        .find(|l| l.contains("boot@example.com"))
        .expect(&listed);
    assert!(line.contains("super_admin"), "{line}");
    assert_eq!(db.applied().await.0, db.applied().await.1);
}

per_backend!(
    init_status_and_round_trip,
    unknown_or_wrong_way_revisions_fail_in_one_line,
    check_reports_backend_version_and_latency,
    reset_needs_yes_and_empties_data,
    backup_and_restore,
    serve_migrates_bootstraps_admin_and_stops_on_sigterm,
);
