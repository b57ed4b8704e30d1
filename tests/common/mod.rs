//! Test harness: a fresh database per test on each backend, the CLI binary, an in-process server, and a cuttable TCP proxy.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use gatehouse::Gatehouse;
use gatehouse::config::{Config, Vars};
use sea_orm::sqlx::{self, Connection as _};
use tokio::net::{TcpListener, TcpStream};

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306";

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

fn server_missing(backend: Backend, err: impl std::fmt::Display) -> Option<TestDb> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{backend:?} is not reachable and CI=true: {err}");
    }
    eprintln!("SKIPPED: {backend:?} is not reachable ({err}); set CI=true to make this a failure");
    None
}

impl TestDb {
    /// A fresh, empty database; `None` when the server is missing outside CI.
    pub async fn create(backend: Backend) -> Option<TestDb> {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = unique_name();
        let url = match backend {
            Backend::Sqlite => format!(
                "sqlite://{}",
                dir.path().join("data").join("gh.db").display()
            ),
            Backend::Postgres => {
                let mut conn = match sqlx::PgConnection::connect(PG_ADMIN).await {
                    Ok(c) => c,
                    Err(e) => return server_missing(backend, e),
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await
                    .expect("create pg database");
                format!("postgres://postgres@127.0.0.1:5432/{name}")
            }
            Backend::MySql => {
                let mut conn = match sqlx::MySqlConnection::connect(MYSQL_ADMIN).await {
                    Ok(c) => c,
                    Err(e) => return server_missing(backend, e),
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
                    .execute(&mut conn)
                    .await
                    .expect("create mysql database");
                format!("mysql://root@127.0.0.1:3306/{name}")
            }
        };
        Some(TestDb {
            backend,
            url,
            name,
            dir,
        })
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("data").join("gh.db")
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
            (
                "JWT_SECRET".into(),
                "test-secret-test-secret-test-secret-1234".into(),
            ),
            ("RUST_LOG".into(), "warn".into()),
            // Cheap hashing: these tests are about plumbing, not cost.
            ("PASSWORD_ARGON2_MEMORY_KIB".into(), "64".into()),
            ("PASSWORD_ARGON2_ITERATIONS".into(), "1".into()),
        ]
    }

    /// A sea-orm connection for checks the CLI cannot make.
    pub async fn connect(&self) -> sea_orm::DatabaseConnection {
        let cfg = gatehouse::config::DatabaseConfig::from_url(&self.url).unwrap();
        gatehouse::store::db::connect(&cfg).await.expect("connect")
    }

    /// Table names in the database (migration bookkeeping excluded).
    pub async fn tables(&self) -> Vec<String> {
        use sea_orm::{ConnectionTrait, Statement};
        let db = self.connect().await;
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name AS t FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'".to_string(),
            Backend::Postgres => "SELECT tablename AS t FROM pg_tables WHERE schemaname='public'".to_string(),
            Backend::MySql => format!("SELECT CAST(table_name AS CHAR) AS t FROM information_schema.tables WHERE table_schema='{}'", self.name),
        };
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
        let mut names: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "t").unwrap())
            .filter(|t| t != "seaql_migrations")
            .collect();
        names.sort();
        db.close().await.unwrap();
        names
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

    /// Where servers of this test write mail when no `SMTP_URL` is set.
    pub fn outbox(&self) -> PathBuf {
        self.dir.path().join("outbox")
    }

    /// An in-process server on an ephemeral port (migrated).
    pub async fn server(&self, extra_env: &[(&str, &str)]) -> TestServer {
        TestServer::start(&self.url, self.dir.path(), extra_env).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (backend, name) = (self.backend, self.name.clone());
        if backend == Backend::Sqlite {
            return;
        }
        // Drop from a thread of its own: Drop may run inside a runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                match backend {
                    Backend::Postgres => {
                        if let Ok(mut c) = sqlx::PgConnection::connect(PG_ADMIN).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    }
                    Backend::MySql => {
                        if let Ok(mut c) = sqlx::MySqlConnection::connect(MYSQL_ADMIN).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS `{name}`"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    }
                    Backend::Sqlite => {}
                }
            })
        })
        .join();
    }
}

/// Run the binary with a clean configuration environment.
pub async fn run_cli(
    dir: &Path,
    base_env: &[(String, String)],
    args: &[&str],
    extra_env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args).current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in base_env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn gatehouse");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert a failed run: exit code 1 and one human line on stderr, no panic or backtrace.
pub fn assert_one_line_failure(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    lines[0].to_string()
}

/// A server running in this process.
pub struct TestServer {
    pub base: String,
    pub gh: Gatehouse,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start(url: &str, dir: &Path, extra_env: &[(&str, &str)]) -> TestServer {
        let mut pairs: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), url.into()),
            (
                "JWT_SECRET".into(),
                "test-secret-test-secret-test-secret-1234".into(),
            ),
            ("PASSWORD_ARGON2_MEMORY_KIB".into(), "64".into()),
            ("PASSWORD_ARGON2_ITERATIONS".into(), "1".into()),
            // Tests log in far more often than people do; tests/limits.rs sets real limits.
            ("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "100000,100000".into()),
            (
                "MAIL_OUTBOX_DIR".into(),
                dir.join("outbox").display().to_string(),
            ),
        ];
        pairs.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let config = Config::from_vars(&Vars::from_pairs(pairs)).expect("config");
        let gh = Gatehouse::connect(config).await.expect("connect");
        gh.migrate().await.expect("migrate");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = gh.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestServer {
            base,
            gh,
            client: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// A TCP forwarder that can be cut and restored, to take a database away from a running server.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    up: bool,
    conns: Vec<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            up: true,
            conns: Vec::new(),
        }));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !st.lock().unwrap().up {
                    drop(inbound);
                    continue;
                }
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                st.lock().unwrap().conns.push(handle);
            }
        });
        Proxy { addr, state }
    }

    /// Cut every open connection and refuse new ones.
    pub fn down(&self) {
        let mut s = self.state.lock().unwrap();
        s.up = false;
        for c in s.conns.drain(..) {
            c.abort();
        }
    }

    pub fn up(&self) {
        self.state.lock().unwrap().up = true;
    }
}

/// Generate one test per backend from `async fn name(db: TestDb)`.
#[macro_export]
macro_rules! per_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::common::TestDb::create($crate::common::Backend::Sqlite).await { super::$name(db).await }
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::common::TestDb::create($crate::common::Backend::Postgres).await { super::$name(db).await }
            })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = $crate::common::TestDb::create($crate::common::Backend::MySql).await { super::$name(db).await }
            })*
        }
    };
}

/// POST JSON from `n` tasks released at the same instant; `target(i)` names task i's URL and body.
/// Returns each answer's status and JSON body (Null when it has none), in task order.
pub async fn race_post(
    client: &reqwest::Client,
    n: usize,
    target: impl Fn(usize) -> (String, serde_json::Value),
) -> Vec<(u16, serde_json::Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (url, body) = target(i);
            let (client, barrier) = (client.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let res = client.post(url).json(&body).send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json().await.unwrap_or(serde_json::Value::Null))
            })
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// How many answers had `status`.
pub fn count(results: &[(u16, serde_json::Value)], status: u16) -> usize {
    results.iter().filter(|(s, _)| *s == status).count()
}

/// A real SMTP server (Python's standard `smtpd`) on a free port, keeping every message it
/// receives as a file; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

const SMTP_SERVER: &str = r#"
import asyncore, itertools, os, sys, warnings
warnings.filterwarnings("ignore")
import smtpd
class Sink(smtpd.SMTPServer):
    n = itertools.count()
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        path = os.path.join(sys.argv[2], "%05d.eml" % next(self.n))
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
asyncore.loop()
"#;

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new("python3")
            .args(["-W", "ignore", "-c", SMTP_SERVER, &port.to_string()])
            .arg(dir.path())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the test SMTP server");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpSink {
                    port,
                    dir,
                    _child: child,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the test SMTP server did not start");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        read_eml_dir(self.dir.path())
    }

    /// Wait (up to 10 s) until `n` messages have arrived, and return them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        wait_for_eml(self.dir.path(), n).await
    }
}

/// The `.eml` files of a directory, oldest first (names sort by time).
pub fn read_eml_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Wait (up to 10 s) until `dir` holds `n` messages.
pub async fn wait_for_eml(dir: &Path, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let found = read_eml_dir(dir);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} messages in {}, got {}",
        dir.display(),
        read_eml_dir(dir).len()
    );
}

/// A message with its quoted-printable parts decoded (soft line breaks joined, `=XX` bytes
/// restored), as a mail client shows it.
pub fn decode_qp(message: &str) -> String {
    let joined = message.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of the first link to `path` (e.g. `/verify-email`) in a message.
pub fn link_token(message: &str, path: &str) -> Option<String> {
    let message = &decode_qp(message);
    let at = message.find(&format!("{path}?token="))?;
    let rest = &message[at + path.len() + "?token=".len()..];
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}
