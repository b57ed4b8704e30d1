//! A private PostgreSQL cluster (`initdb`, then `postgres` as the `postgres` user when the tests
//! run as root, on a spare port), stopped with `pg_ctl stop -m immediate` and `kill -9`ed under
//! concurrent registrations while Gatehouse keeps running.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection as _};

use super::crash::{Crash, DbServer, quiet_crash, trial};
use super::procs::{Owned, RunAs, children_of, require, run, spare_port, wait_gone};
use crate::helpers::TestApp;

pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: RunAs,
    server: Option<Owned>,
}

impl PgCluster {
    /// `initdb` and start; `None` (skip) when PostgreSQL is not installed outside CI.
    pub async fn create() -> Option<PgCluster> {
        let initdb = require(&["initdb"], &["/usr/lib/postgresql/*/bin"])?;
        let bin = std::fs::canonicalize(&initdb)
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        let run_as = RunAs::unprivileged("postgres");
        let dir = tempfile::tempdir().unwrap();
        run_as.own(dir.path());
        let data = dir.path().join("data");
        run(
            run_as
                .command(&initdb)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data),
            "initdb",
        );
        let mut cluster = PgCluster {
            dir,
            bin,
            port: spare_port(),
            run_as,
            server: None,
        };
        cluster.start().await;
        let mut admin = sqlx::PgConnection::connect(&cluster.admin_url())
            .await
            .unwrap();
        sqlx::raw_sql("CREATE DATABASE gatehouse")
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        Some(cluster)
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl DbServer for PgCluster {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/gatehouse", self.port)
    }

    async fn crash(&mut self, how: Crash) {
        let mut server = self.server.take().expect("running");
        match how {
            Crash::Immediate => {
                run(
                    self.run_as
                        .command(&self.bin.join("pg_ctl"))
                        .args(["stop", "-m", "immediate", "-D"])
                        .arg(self.data()),
                    "pg_ctl stop -m immediate",
                );
                server
                    .exited(Duration::from_secs(10))
                    .await
                    .expect("postgres stopped");
            }
            Crash::Kill9 => {
                let children = children_of(server.pid());
                server.kill9().await;
                // Its backends notice the postmaster's death and exit; a new postmaster
                // cannot start while they hold the shared memory.
                wait_gone(&children, Duration::from_secs(10)).await;
            }
        }
    }

    async fn start(&mut self) -> Instant {
        assert!(self.server.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("log"))
            .unwrap();
        let mut cmd = self.run_as.command(&self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path())
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=80",
                "-c",
                "shared_buffers=16MB",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut server = Owned::spawn(cmd, "postgres");
        let started = Instant::now();
        loop {
            if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin_url()).await
                && sqlx::raw_sql("SELECT 1").execute(&mut c).await.is_ok()
            {
                let up = Instant::now();
                let _ = c.close().await;
                self.server = Some(server);
                return up;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("postgres exited ({status}):\n{}", self.log_tail());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "postgres did not start:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGQUIT is `-m immediate`: the postmaster takes its backends down with it.
            server.signal(libc::SIGQUIT);
            for _ in 0..500 {
                if let Ok(Some(_)) = server.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Gatehouse on a private cluster that is stopped with `-m immediate`, then `kill -9`ed, under
/// concurrent registrations: 503 at once while it is away, back within a second, and every
/// acknowledged registration stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_writes() {
    let _serial = super::serial().await;
    let Some(mut cluster) = PgCluster::create().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(&cluster.url(), dir.path(), &[]).await;
    trial(&mut cluster, &app, Crash::Immediate, "pg-immediate").await;
    trial(&mut cluster, &app, Crash::Kill9, "pg-kill9").await;
    quiet_crash(&mut cluster, &app).await;
    app.stop().await;
}
