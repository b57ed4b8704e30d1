//! A private MariaDB (`mariadb-install-db`, then `mariadbd` as the `mysql` user when the tests
//! run as root, on a spare port and a socket of its own), stopped at once and `kill -9`ed under
//! concurrent registrations while Gatehouse keeps running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection as _};

use super::crash::{Crash, DbServer, quiet_crash, trial};
use super::procs::{Owned, RunAs, require, run, spare_port};
use crate::helpers::TestApp;

pub struct MariaDb {
    dir: tempfile::TempDir,
    mariadbd: PathBuf,
    port: u16,
    run_as: RunAs,
    server: Option<Owned>,
}

impl MariaDb {
    /// Install a data directory and start; `None` (skip) when MariaDB is not installed outside
    /// CI.
    pub async fn create() -> Option<MariaDb> {
        let install = require(&["mariadb-install-db", "mysql_install_db"], &[])?;
        let mariadbd = require(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/libexec"])?;
        let run_as = RunAs::unprivileged("mysql");
        let dir = tempfile::tempdir().unwrap();
        run_as.own(dir.path());
        run(
            run_as
                .command(&install)
                .arg("--no-defaults")
                .arg(format!("--datadir={}", dir.path().join("data").display()))
                .args([
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--skip-name-resolve",
                ]),
            "mariadb-install-db",
        );
        let mut db = MariaDb {
            dir,
            mariadbd,
            port: spare_port(),
            run_as,
            server: None,
        };
        db.start().await;
        let mut admin = sqlx::MySqlConnection::connect(&db.admin_url())
            .await
            .unwrap();
        sqlx::raw_sql("CREATE DATABASE gatehouse CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(db)
    }

    fn admin_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl DbServer for MariaDb {
    fn name(&self) -> &'static str {
        "mariadb"
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/gatehouse", self.port)
    }

    async fn crash(&mut self, how: Crash) {
        let mut server = self.server.take().expect("running");
        match how {
            Crash::Immediate => {
                // With innodb_fast_shutdown=2 a SIGTERM stops without flushing: InnoDB
                // recovers from its redo log at the next start, as after a crash.
                server.signal(libc::SIGTERM);
                server
                    .exited(Duration::from_secs(30))
                    .await
                    .expect("mariadbd stopped");
            }
            Crash::Kill9 => server.kill9().await,
        }
    }

    async fn start(&mut self) -> Instant {
        assert!(self.server.is_none(), "already running");
        let d = self.dir.path();
        let mut cmd = self.run_as.command(&self.mariadbd);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("error.log").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-grant-tables",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-fast-shutdown=2",
                "--max-connections=100",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut server = Owned::spawn(cmd, "mariadbd");
        let started = Instant::now();
        loop {
            if let Ok(mut c) = sqlx::MySqlConnection::connect(&self.admin_url()).await
                && sqlx::raw_sql("SELECT 1").execute(&mut c).await.is_ok()
            {
                let up = Instant::now();
                let _ = c.close().await;
                self.server = Some(server);
                return up;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("mariadbd exited ({status}):\n{}", self.log_tail());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mariadbd did not start:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Gatehouse on a private MariaDB that is stopped at once, then `kill -9`ed, under concurrent
/// registrations: 503 at once while it is away, back within a second, and every acknowledged
/// registration stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_under_writes() {
    let _serial = super::serial().await;
    let Some(mut db) = MariaDb::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(&db.url(), dir.path(), &[]).await;
    trial(&mut db, &app, Crash::Immediate, "my-immediate").await;
    trial(&mut db, &app, Crash::Kill9, "my-kill9").await;
    quiet_crash(&mut db, &app).await;
    app.stop().await;
}
