//! A database of its own for every test on each backend, dropped when the test ends, with the reads a test makes behind the API's back.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Output;

use gatehouse::store::entities::users;
use sea_orm::sqlx::{self, Connection as _};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement};

use super::{TestApp, assert_success, run_cli};

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306";
/// The signing secret every server and CLI run of the tests shares.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-1234";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// A database of its own for one test; dropped when the test ends.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub name: String,
    /// Working directory for the CLI and the SQLite file.
    pub dir: tempfile::TempDir,
}

fn unique_name() -> String {
    format!("gh_t_{}", uuid::Uuid::now_v7().simple())
}

impl Backend {
    const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    /// The name `GATEHOUSE_TEST_BACKENDS` and the test paths use.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    /// The server a backend's tests need: what it is, where, and how they sign in.
    fn server(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Backend::Sqlite => ("SQLite", "", ""),
            Backend::Postgres => ("PostgreSQL", "127.0.0.1:5432", "user postgres, trust"),
            Backend::MySql => ("MariaDB (or MySQL)", "127.0.0.1:3306", "root, no password"),
        }
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether this run tests `backend`: every backend unless `GATEHOUSE_TEST_BACKENDS` names the
/// ones to test (comma-separated; SQLite needs no server and is always among them). CI tests
/// every backend.
fn selected(backend: Backend) -> bool {
    let Ok(list) = std::env::var("GATEHOUSE_TEST_BACKENDS") else {
        return true;
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    let known = Backend::ALL.map(Backend::name);
    if let Some(bad) = names.iter().find(|n| !known.contains(n)) {
        panic!("GATEHOUSE_TEST_BACKENDS={list}: {bad:?} is not one of sqlite, postgres, mysql");
    }
    assert!(
        names.contains(&"sqlite"),
        "GATEHOUSE_TEST_BACKENDS={list} leaves out sqlite, which needs no server: name it too"
    );
    let skipped: Vec<&str> = known.into_iter().filter(|n| !names.contains(n)).collect();
    assert!(
        skipped.is_empty() || !ci(),
        "GATEHOUSE_TEST_BACKENDS={list} skips {skipped:?}, and CI tests every backend"
    );
    if !names.contains(&backend.name()) {
        announce_skipped(&list, &skipped);
        return false;
    }
    true
}

/// Say once, on the terminal (past the test harness, which keeps a passing test's output to
/// itself), which backends this run leaves out.
fn announce_skipped(list: &str, skipped: &[&str]) {
    use std::io::Write as _;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let paths: Vec<String> = skipped.iter().map(|n| format!("{n}::")).collect();
        let _ = writeln!(
            std::io::stderr(),
            "GATEHOUSE_TEST_BACKENDS={list}: the {} tests pass without running",
            paths.join(" and ")
        );
    });
}

/// A database server this run needs is not there: a failure that says how to go on.
fn server_missing(backend: Backend, err: impl std::fmt::Display) -> ! {
    let others: Vec<&str> = Backend::ALL
        .iter()
        .filter(|b| **b != backend && selected(**b))
        .map(|b| b.name())
        .collect();
    let (server, at, login) = backend.server();
    panic!(
        "{server} is not reachable at {at} ({err}). The {}:: tests need it ({login}): start it \
         (README, \"Run the tests\"), or leave them out: GATEHOUSE_TEST_BACKENDS={} cargo test",
        backend.name(),
        others.join(",")
    );
}

/// An admin connection to a database server, to create and drop the tests' databases.
enum Admin {
    Pg(sqlx::PgConnection),
    My(sqlx::MySqlConnection),
}

impl Admin {
    /// `None` for SQLite, which has no server; `Err` when the server is not there.
    async fn connect(backend: Backend) -> Result<Option<Admin>, sqlx::Error> {
        Ok(match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Admin::Pg(sqlx::PgConnection::connect(PG_ADMIN).await?)),
            Backend::MySql => Some(Admin::My(
                sqlx::MySqlConnection::connect(MYSQL_ADMIN).await?,
            )),
        })
    }

    async fn run(&mut self, sql: String) -> Result<(), sqlx::Error> {
        let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
        match self {
            Admin::Pg(c) => sql.execute(c).await.map(drop),
            Admin::My(c) => sql.execute(c).await.map(drop),
        }
    }
}

impl TestDb {
    /// A fresh, empty database; `None` when `GATEHOUSE_TEST_BACKENDS` leaves `backend` out.
    /// A database server this run needs and cannot reach is a failure.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        if !selected(backend) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let name = unique_name();
        let url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}",
                dir.path().join("data").join("gh.db").display()
            ),
            Backend::Postgres => format!("postgres://postgres@127.0.0.1:5432/{name}"),
            Backend::MySql => format!("mysql://root@127.0.0.1:3306/{name}"),
        };
        match Admin::connect(backend).await {
            Ok(None) => {}
            Ok(Some(mut admin)) => admin
                .run(match backend {
                    Backend::Postgres => format!("CREATE DATABASE \"{name}\""),
                    _ => format!("CREATE DATABASE `{name}`"),
                })
                .await
                .unwrap_or_else(|e| panic!("create {backend:?} database: {e}")),
            Err(e) => server_missing(backend, e),
        }
        Some(TestDb {
            backend,
            url,
            name,
            dir,
        })
    }

    /// A URL to the same database through another host:port (for the proxy).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        self.url.replace(
            match self.backend {
                Backend::Postgres => "127.0.0.1:5432",
                Backend::MySql => "127.0.0.1:3306",
                Backend::Sqlite => return self.url.clone(),
            },
            &addr.to_string(),
        )
    }

    /// The base environment a CLI run or server needs for this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("DATABASE_URL".into(), self.url.clone()),
            ("JWT_SECRET".into(), JWT_SECRET.into()),
            ("RUST_LOG".into(), "warn".into()),
            // Cheap hashing: these tests are about plumbing, not cost.
            ("PASSWORD_ARGON2_MEMORY_KIB".into(), "64".into()),
            ("PASSWORD_ARGON2_ITERATIONS".into(), "1".into()),
        ]
    }

    /// A sea-orm connection for checks the API cannot make.
    pub async fn connect(&self) -> DatabaseConnection {
        let cfg = gatehouse::config::DatabaseConfig::from_url(&self.url).unwrap();
        gatehouse::store::db::connect(&cfg).await.expect("connect")
    }

    /// Every row of one raw query, on a connection of its own.
    pub async fn query(&self, sql: &str) -> Vec<sea_orm::QueryResult> {
        let db = self.connect().await;
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await.unwrap();
        rows
    }

    /// Run one raw statement, on a connection of its own.
    pub async fn execute(&self, sql: &str) {
        let db = self.connect().await;
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        db.close().await.unwrap();
    }

    /// Table names in the database (migration bookkeeping excluded).
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name AS t FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'".to_string(),
            Backend::Postgres => "SELECT tablename AS t FROM pg_tables WHERE schemaname='public'".to_string(),
            Backend::MySql => format!("SELECT CAST(table_name AS CHAR) AS t FROM information_schema.tables WHERE table_schema='{}'", self.name),
        };
        let mut names: Vec<String> = self
            .query(&sql)
            .await
            .iter()
            .map(|r| r.try_get::<String>("", "t").unwrap())
            .filter(|t| t != "seaql_migrations")
            .collect();
        names.sort();
        names
    }

    /// Every text or binary value in every table, as `(table.column, bytes)`: what a thief of
    /// the database would hold.
    pub async fn stored_values(&self) -> Vec<(String, Vec<u8>)> {
        let mut values = Vec::new();
        for table in self.tables().await {
            for row in self.query(&format!("SELECT * FROM {table}")).await {
                for column in row.column_names() {
                    let bytes = row
                        .try_get::<Option<String>>("", &column)
                        .map(|v| v.map(String::into_bytes))
                        .or_else(|_| row.try_get::<Option<Vec<u8>>>("", &column));
                    if let Ok(Some(bytes)) = bytes {
                        values.push((format!("{table}.{column}"), bytes));
                    }
                }
            }
        }
        values
    }

    /// The stored row of the account with this email (it must exist).
    pub async fn user(&self, email: &str) -> users::Model {
        let conn = self.connect().await;
        let user = gatehouse::store::users::find_by_email(&conn, email)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no account {email}"));
        conn.close().await.unwrap();
        user
    }

    /// Assert that the audit log holds at least one row of each of these events.
    pub async fn assert_audited(&self, events: &[&str]) {
        use gatehouse::store::entities::audit_log;
        let conn = self.connect().await;
        let rows = audit_log::Entity::find().all(&conn).await.unwrap();
        conn.close().await.unwrap();
        let logged: Vec<String> = rows.into_iter().map(|r| r.event).collect();
        for event in events {
            assert!(
                logged.iter().any(|e| e == event),
                "{event} not audited: {logged:?}"
            );
        }
    }

    /// Run the `gatehouse` binary in this test's directory with this database.
    pub async fn cli(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
        stdin: Option<&str>,
    ) -> Output {
        run_cli(self.dir.path(), &self.env(), args, extra_env, stdin).await
    }

    /// Run the binary with these arguments only (no extra environment, nothing on stdin).
    pub async fn run(&self, args: &[&str]) -> Output {
        self.cli(args, &[], None).await
    }

    /// Run the binary, assert that it succeeded, and return its standard output.
    pub async fn run_ok(&self, args: &[&str]) -> String {
        assert_success(&self.run(args).await)
    }

    /// Where servers of this test write mail when no `SMTP_URL` is set.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// An in-process server on an ephemeral port (migrated).
    pub async fn app(&self, extra_env: &[(&str, &str)]) -> TestApp {
        TestApp::start(&self.url, self.dir.path(), extra_env).await
    }

    /// An in-process server on `listener`, bound beforehand (see [`TestApp::start_on`]).
    pub async fn app_on(
        &self,
        extra_env: &[(&str, &str)],
        listener: tokio::net::TcpListener,
    ) -> TestApp {
        TestApp::start_on(&self.url, self.dir.path(), extra_env, listener).await
    }

    /// An in-process server whose public URL is its own address (see [`TestApp::start_public`]).
    pub async fn public_app(&self, extra_env: &[(&str, &str)]) -> TestApp {
        TestApp::start_public(&self.url, self.dir.path(), extra_env).await
    }

    /// An in-process server a test can wait out with [`TestApp::settle`].
    pub async fn settling_app(&self, extra_env: &[(&str, &str)]) -> TestApp {
        TestApp::start_settling(&self.url, self.dir.path(), extra_env).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (backend, name) = (self.backend, self.name.clone());
        let drop = match backend {
            Backend::Sqlite => return,
            Backend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            Backend::MySql => format!("DROP DATABASE IF EXISTS `{name}`"),
        };
        // Drop from a thread of its own: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(Some(mut admin)) = Admin::connect(backend).await {
                    let _ = admin.run(drop).await;
                }
            })
        })
        .join();
    }
}
