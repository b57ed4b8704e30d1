//! The `gatehouse` binary on SQLite, as a process of its own: `kill -9`ed mid-write and
//! restarted on the same file (the file passes `PRAGMA integrity_check` and holds every
//! acknowledged write), and stopped with SIGTERM under load (every request in flight answered,
//! a clean exit).

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sqlx::{self, Connection as _};
use serde_json::json;

use super::crash::{Sample, send};
use super::procs::Owned;
use super::{ms, report};
use crate::helpers::{JWT_SECRET, PASSWORD};

const NEW_PASSWORD: &str = "Changed-Horse7";

/// `gatehouse serve` on `dir/gh.db`, as a child process.
struct Server {
    process: Owned,
    base: String,
}

impl Server {
    /// Start and wait until it listens; also how long that took.
    async fn start(dir: &Path, cheap_hashing: bool) -> (Server, Duration) {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.arg("serve").current_dir(dir).env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("gh.db").display()),
        )
        .env("JWT_SECRET", JWT_SECRET)
        .env("GATEHOUSE_BIND", "127.0.0.1:0")
        .env("RATE_LIMIT_LOGIN_PER_MINUTE", "100000,100000")
        .env("MAIL_OUTBOX_DIR", dir.join("outbox"))
        .env("RUST_LOG", "warn");
        if cheap_hashing {
            cmd.env("PASSWORD_ARGON2_MEMORY_KIB", "64")
                .env("PASSWORD_ARGON2_ITERATIONS", "1");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        cmd.stdout(std::process::Stdio::piped()).stderr(log);
        let started = Instant::now();
        let mut process = Owned::spawn(cmd, "gatehouse serve");
        let stdout = process.child.stdout.take().unwrap();
        // The first line names the address; the rest is read until the process ends.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(|l| l.ok()));
            for _ in lines {}
        });
        let line = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("gatehouse serve did not start within 60 s")
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "gatehouse serve exited:\n{}",
                    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
                )
            });
        let base = line
            .strip_prefix("gatehouse listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        (Server { process, base }, started.elapsed())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// `PRAGMA integrity_check` on the file, on a connection of its own.
async fn integrity(dir: &Path) -> String {
    let mut conn =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.join("gh.db").display()))
            .await
            .unwrap();
    let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    verdict
}

/// What the file holds: account emails, session ids, and the ids of revoked sessions.
async fn stored(dir: &Path) -> (HashSet<String>, HashSet<String>, HashSet<String>) {
    use gatehouse::store::entities::{sessions, users};
    use sea_orm::EntityTrait;
    let url = format!("sqlite://{}", dir.join("gh.db").display());
    let cfg = gatehouse::config::DatabaseConfig::from_url(&url).unwrap();
    let db = gatehouse::store::db::connect(&cfg).await.unwrap();
    let emails = users::Entity::find().all(&db).await.unwrap();
    let all = sessions::Entity::find().all(&db).await.unwrap();
    db.close().await.unwrap();
    (
        emails.into_iter().map(|u| u.email_lower).collect(),
        all.iter().map(|s| s.id.to_string()).collect(),
        all.iter()
            .filter(|s| s.revoked_at.is_some())
            .map(|s| s.id.to_string())
            .collect(),
    )
}

/// What the writers had acknowledged, by kind.
#[derive(Default)]
struct Acked {
    registered: Vec<String>,
    /// Sessions opened by a login: (email, session id).
    sessions: Vec<String>,
    password_changed: Vec<String>,
    logged_out: Vec<String>,
    samples: Vec<Sample>,
}

/// One account's life, each step only after the previous one was acknowledged: register, log
/// in, change the password, log out. Stops at the first step that is not acknowledged.
async fn account_life(client: &reqwest::Client, server: &str, email: &str, acked: &Mutex<Acked>) {
    let post = |path: &str| format!("{server}/api/v1{path}");
    let s = send(
        client,
        &post("/auth/register"),
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    let ok = s.status == 201;
    acked.lock().unwrap().samples.push(s);
    if !ok {
        return;
    }
    acked.lock().unwrap().registered.push(email.to_string());

    let sent = Instant::now();
    let Ok(res) = client
        .post(post("/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
    else {
        acked.lock().unwrap().samples.push(no_answer(sent));
        return;
    };
    let status = res.status().as_u16();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    acked
        .lock()
        .unwrap()
        .samples
        .push(answer(sent, status, &body));
    if status != 200 {
        return;
    }
    let session = body["session_id"].as_str().unwrap().to_string();
    let access = body["access_token"].as_str().unwrap().to_string();
    acked.lock().unwrap().sessions.push(session.clone());

    for (path, payload) in [
        (
            "/auth/change-password",
            Some(json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD})),
        ),
        ("/auth/logout", None),
    ] {
        let sent = Instant::now();
        let mut req = client.post(post(path)).bearer_auth(&access);
        if let Some(p) = payload {
            req = req.json(&p);
        }
        let Ok(res) = req.send().await else {
            acked.lock().unwrap().samples.push(no_answer(sent));
            return;
        };
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let mut a = acked.lock().unwrap();
        a.samples.push(answer(sent, status, &body));
        if status != 204 {
            return;
        }
        if path == "/auth/logout" {
            a.logged_out.push(session.clone());
        } else {
            a.password_changed.push(email.to_string());
        }
    }
}

fn answer(sent: Instant, status: u16, body: &serde_json::Value) -> Sample {
    Sample {
        sent,
        done: Instant::now(),
        status,
        code: body["code"].as_str().unwrap_or_default().to_string(),
        retry_after: false,
        email: String::new(),
    }
}

fn no_answer(sent: Instant) -> Sample {
    Sample {
        sent,
        done: Instant::now(),
        status: 0,
        code: "no answer".into(),
        retry_after: false,
        email: String::new(),
    }
}

/// `kill -9` the server while accounts are being registered, logged in, given a new password
/// and logged out; restart it on the same file. The file is intact, and every acknowledged
/// registration, session, password change and logout is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_killed_mid_write_restarts_with_every_acknowledged_write() {
    let _serial = super::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _) = Server::start(dir.path(), true).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::new();
    let writers: Vec<_> = (0..6)
        .map(|w| {
            let (client, base, acked, stop) = (
                client.clone(),
                server.base.clone(),
                acked.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    account_life(&client, &base, &format!("k{w}-{n}@example.com"), &acked).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed = Instant::now();
    server.process.kill9().await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let verdict = integrity(dir.path()).await;
    let (server, restart) = Server::start(dir.path(), true).await;
    let a = std::mem::take(&mut *acked.lock().unwrap());

    // Nothing but successes before the kill; no 500 at all; unanswered only at the kill.
    for s in &a.samples {
        assert!(
            matches!(s.status, 200 | 201 | 204) || (s.status == 0 && s.done >= killed),
            "{s:?}"
        );
    }
    let (users, sessions, revoked) = stored(dir.path()).await;
    let canonical = |id: &String| uuid::Uuid::parse_str(id).unwrap().to_string();
    let lost_users: Vec<&String> = a
        .registered
        .iter()
        .filter(|e| !users.contains(*e))
        .collect();
    let lost_sessions: Vec<&String> = a
        .sessions
        .iter()
        .filter(|s| !sessions.contains(&canonical(s)))
        .collect();
    let lost_logouts: Vec<&String> = a
        .logged_out
        .iter()
        .filter(|s| !revoked.contains(&canonical(s)))
        .collect();
    // An acknowledged password change: the new password works, after the restart.
    let mut lost_changes = Vec::new();
    for email in &a.password_changed {
        let res = client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap();
        if res.status() != 200 {
            lost_changes.push(email.clone());
        }
    }
    report(
        "sqlite kill -9 gatehouse",
        &[
            ("requests", a.samples.len().to_string()),
            ("registered", a.registered.len().to_string()),
            ("sessions", a.sessions.len().to_string()),
            ("password_changes", a.password_changed.len().to_string()),
            ("logouts", a.logged_out.len().to_string()),
            (
                "lost",
                (lost_users.len() + lost_sessions.len() + lost_logouts.len() + lost_changes.len())
                    .to_string(),
            ),
            ("integrity_check", verdict.clone()),
            ("restart_ms", ms(restart)),
        ],
    );
    assert_eq!(verdict, "ok");
    assert!(!a.logged_out.is_empty(), "no account got through its life");
    assert!(lost_users.is_empty(), "registrations lost: {lost_users:?}");
    assert!(lost_sessions.is_empty(), "sessions lost: {lost_sessions:?}");
    assert!(lost_logouts.is_empty(), "logouts lost: {lost_logouts:?}");
    assert!(
        lost_changes.is_empty(),
        "password changes lost: {lost_changes:?}"
    );
    drop(server);
}

/// SIGTERM while registrations (with the real hashing cost) are in flight: every request the
/// server had taken is answered, nothing fails, the process exits 0, and every acknowledged
/// registration is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_every_request_in_flight() {
    let _serial = super::serial().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _) = Server::start(dir.path(), false).await;
    let client = reqwest::Client::new();
    let signalled: Arc<Mutex<Option<Instant>>> = Arc::default();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, url, signalled) = (
                client.clone(),
                server.url("/api/v1/auth/register"),
                signalled.clone(),
            );
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for n in 0.. {
                    let email = format!("t{w}-{n}@example.com");
                    let s =
                        send(&client, &url, json!({"email": email, "password": PASSWORD})).await;
                    let refused = s.status == 0;
                    samples.push(Sample { email, ..s });
                    // After the signal, a refused connection means the server has stopped
                    // taking requests.
                    if refused && signalled.lock().unwrap().is_some() {
                        break;
                    }
                    if refused {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                samples
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let at = Instant::now();
    *signalled.lock().unwrap() = Some(at);
    server.process.signal(libc::SIGTERM);
    let status = server
        .process
        .exited(Duration::from_secs(30))
        .await
        .expect("still running 30 s after SIGTERM");
    let drained = at.elapsed();
    let mut samples = Vec::new();
    for w in writers {
        samples.extend(w.await.unwrap());
    }
    // Taken before the signal (sent more than 100 ms earlier: read by then), answered after it.
    let in_flight: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent + Duration::from_millis(100) < at && s.done > at)
        .collect();
    let acknowledged: Vec<&str> = samples
        .iter()
        .filter(|s| s.status == 201)
        .map(|s| s.email.as_str())
        .collect();
    let (server, _) = Server::start(dir.path(), false).await;
    let (users, _, _) = stored(dir.path()).await;
    let lost: Vec<&&str> = acknowledged
        .iter()
        .filter(|e| !users.contains(**e))
        .collect();
    report(
        "sqlite SIGTERM under load",
        &[
            ("requests", samples.len().to_string()),
            ("in_flight_at_signal", in_flight.len().to_string()),
            ("acknowledged", acknowledged.len().to_string()),
            ("found", (acknowledged.len() - lost.len()).to_string()),
            ("drain_ms", ms(drained)),
            (
                "exit_code",
                status.code().map_or("none".into(), |c| c.to_string()),
            ),
        ],
    );
    assert!(status.success(), "exit {status}");
    for s in &samples {
        assert!(
            s.status == 201 || (s.status == 0 && s.sent + Duration::from_millis(100) >= at),
            "{s:?}"
        );
    }
    assert!(
        !in_flight.is_empty(),
        "no request was in flight at the signal"
    );
    assert!(
        in_flight.iter().all(|s| s.status == 201),
        "in flight at SIGTERM and not answered: {in_flight:?}"
    );
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    drop(server);
}
