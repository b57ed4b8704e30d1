//! A database server crashed under concurrent writes and brought back, with Gatehouse running
//! throughout: the load, the measurements, and what every trial asserts.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

use super::{median, ms, report};
use crate::helpers::{PASSWORD, TestApp};

/// Tasks writing at once.
const WRITERS: usize = 6;
/// The bound the issue sets on a 503 once the server knows the database is unreachable.
const FAIL_FAST: Duration = Duration::from_millis(50);
/// The bound the issue sets on the first success after the database answers again.
const RECOVERY: Duration = Duration::from_secs(1);

/// How a database server goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The server's own abrupt stop (PostgreSQL `pg_ctl stop -m immediate`; MariaDB SIGTERM
    /// with `innodb_fast_shutdown=2`): no checkpoint, recovery at the next start.
    Immediate,
    /// `kill -9`.
    Kill9,
}

/// A database server a test owns.
pub trait DbServer {
    /// The server's name in reports.
    fn name(&self) -> &'static str;
    /// The URL Gatehouse uses.
    fn url(&self) -> String;
    /// Make it go away; returns once it is gone.
    async fn crash(&mut self, how: Crash);
    /// Start it again; returns the instant it first accepted a connection and ran a query.
    async fn start(&mut self) -> Instant;
}

/// One answer the load got.
#[derive(Debug, Clone)]
pub struct Sample {
    pub sent: Instant,
    pub done: Instant,
    /// 0 for no answer at all (the text is then in `code`).
    pub status: u16,
    pub code: String,
    pub retry_after: bool,
    pub email: String,
}

impl Sample {
    pub fn latency(&self) -> Duration {
        self.done - self.sent
    }
}

/// Registrations from [`WRITERS`] tasks, each as fast as answers come (10 ms apart after a
/// failure, so a dead database is not spun on).
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<Sample>>>,
}

impl Load {
    pub fn registrations(app: &TestApp, tag: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..WRITERS)
            .map(|w| {
                let (client, url, stop) = (
                    app.client.clone(),
                    app.url("/api/v1/auth/register"),
                    stop.clone(),
                );
                let tag = tag.to_string();
                tokio::spawn(async move {
                    let mut samples = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let email = format!("{tag}-{w}-{n}@example.com");
                        let sample =
                            send(&client, &url, json!({"email": email, "password": PASSWORD}))
                                .await;
                        let failed = sample.status != 201;
                        samples.push(Sample { email, ..sample });
                        if failed {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    samples
                })
            })
            .collect();
        Load { stop, tasks }
    }

    pub async fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.unwrap());
        }
        all
    }
}

/// POST `body` to `url` and time it.
pub async fn send(client: &reqwest::Client, url: &str, body: serde_json::Value) -> Sample {
    let sent = Instant::now();
    let (status, code, retry_after) = match client.post(url).json(&body).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let retry_after = res.headers().contains_key("retry-after");
            let body: serde_json::Value = res.json().await.unwrap_or_default();
            let code = body["code"].as_str().unwrap_or_default().to_string();
            (status, code, retry_after)
        }
        Err(e) => (0, format!("no answer: {e}"), false),
    };
    Sample {
        sent,
        done: Instant::now(),
        status,
        code,
        retry_after,
        email: String::new(),
    }
}

/// Every answer is a success or 503 `database_unavailable` with `Retry-After`: no 500, no
/// other failure, no dropped connection.
#[track_caller]
pub fn assert_no_bad_answer(samples: &[Sample], ok: u16) {
    for s in samples {
        assert!(
            s.status == ok
                || (s.status == 503 && s.code == "database_unavailable" && s.retry_after),
            "an answer other than {ok} or 503 database_unavailable + Retry-After: {s:?}"
        );
    }
}

/// The emails of every account in the database at `url`.
pub async fn stored_emails(url: &str) -> HashSet<String> {
    let cfg = gatehouse::config::DatabaseConfig::from_url(url).unwrap();
    let db = gatehouse::store::db::connect(&cfg).await.expect("connect");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT email_lower FROM users",
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "email_lower").unwrap())
        .collect()
}

/// Watch the circuit from now on; resolves to when it opened.
fn circuit_opens(app: &TestApp) -> tokio::task::JoinHandle<Instant> {
    let gh = app.gh.clone();
    tokio::spawn(async move {
        while !gh.database_circuit().is_open() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Instant::now()
    })
}

/// Crash `server` under concurrent registrations, measure, bring it back, measure, and check
/// that every acknowledged registration is stored.
pub async fn trial<S: DbServer>(server: &mut S, app: &TestApp, how: Crash, tag: &str) {
    let load = Load::registrations(app, tag);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let opens = circuit_opens(app);
    let killed = Instant::now();
    server.crash(how).await;
    let opened = tokio::time::timeout(Duration::from_secs(15), opens)
        .await
        .expect("the circuit did not open")
        .unwrap();

    // Once open: what a client waits for its 503, and for /ready.
    let mut fast = Vec::new();
    for i in 0..20 {
        let s = send(
            &app.client,
            &app.url("/api/v1/auth/register"),
            json!({"email": format!("{tag}-probe-{i}@example.com"), "password": PASSWORD}),
        )
        .await;
        assert_eq!(
            (s.status, s.code.as_str(), s.retry_after),
            (503, "database_unavailable", true),
            "{s:?}"
        );
        fast.push(s.latency());
    }
    let mut ready = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let res = app.get_public("/ready").await;
        ready.push(started.elapsed());
        assert_eq!(res.status, 503, "{}", res.body);
        assert_eq!(res.body["checks"]["database"]["status"], "unavailable");
    }
    assert_eq!(app.get_public("/health").await.status, 200);
    // Down for a second at least, under load.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(killed.elapsed())).await;

    let back = server.start().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let samples = load.stop().await;

    assert_no_bad_answer(&samples, 201);
    let first_503 = samples
        .iter()
        .filter(|s| s.status == 503)
        .map(|s| s.done)
        .min()
        .expect("no 503 while the database was down");
    let slowest_503 = samples
        .iter()
        .filter(|s| s.status == 503)
        .map(Sample::latency)
        .max()
        .unwrap();
    let first_ok = samples
        .iter()
        .filter(|s| s.status == 201 && s.sent >= back)
        .map(|s| s.done)
        .min()
        .expect("no registration succeeded after the database came back");
    let late_failures: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.status != 201 && s.sent >= back + RECOVERY)
        .collect();
    let acknowledged: Vec<&str> = samples
        .iter()
        .filter(|s| s.status == 201)
        .map(|s| s.email.as_str())
        .collect();
    let before = samples
        .iter()
        .filter(|s| s.status == 201 && s.done < killed)
        .count();
    let stored = stored_emails(&server.url()).await;
    let lost: Vec<&&str> = acknowledged
        .iter()
        .filter(|e| !stored.contains(**e))
        .collect();
    let (fast_median, ready_median) = (median(fast), median(ready));
    let recovery = first_ok - back;
    report(
        &format!("{} {how:?}", server.name()),
        &[
            ("requests", samples.len().to_string()),
            ("acknowledged", acknowledged.len().to_string()),
            ("acknowledged_before_crash", before.to_string()),
            ("found", (acknowledged.len() - lost.len()).to_string()),
            ("circuit_open_after_crash_ms", ms(opened - killed)),
            (
                "first_503_after_crash_ms",
                ms(first_503.saturating_duration_since(killed)),
            ),
            ("slowest_503_ms", ms(slowest_503)),
            ("fail_fast_median_ms", ms(fast_median)),
            ("ready_median_ms", ms(ready_median)),
            ("recovery_ms", ms(recovery)),
        ],
    );
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(before > 0, "nothing was written before the crash");
    assert!(
        fast_median < FAIL_FAST,
        "503 took {fast_median:?} (median) once the circuit was open"
    );
    assert!(
        ready_median < FAIL_FAST,
        "/ready took {ready_median:?} (median) once the circuit was open"
    );
    assert!(
        slowest_503 < app.gh.config().database.connect_timeout,
        "a request waited {slowest_503:?} for its 503"
    );
    assert!(
        recovery < RECOVERY,
        "the first success came {recovery:?} after the database answered"
    );
    assert!(
        late_failures.is_empty(),
        "failures a second after the database answered: {late_failures:?}"
    );
    assert_eq!(app.get_public("/ready").await.status, 200);
}

/// A quiet server: nothing in flight when the database is `kill -9`ed. The first request finds
/// its pooled connection broken and answers 503 at once, not after `DB_CONNECT_TIMEOUT`; once
/// the database is back, requests succeed again.
pub async fn quiet_crash<S: DbServer>(server: &mut S, app: &TestApp) {
    let register = app.url("/api/v1/auth/register");
    let body = |n: &str| json!({"email": format!("quiet-{n}@example.com"), "password": PASSWORD});
    assert_eq!(
        send(&app.client, &register, body("before")).await.status,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.crash(Crash::Kill9).await;
    let first = send(&app.client, &register, body("down")).await;
    assert_eq!(
        (first.status, first.code.as_str(), first.retry_after),
        (503, "database_unavailable", true),
        "{first:?}"
    );
    let back = server.start().await;
    let mut attempt = 0;
    let recovered = loop {
        attempt += 1;
        let s = send(&app.client, &register, body(&format!("after-{attempt}"))).await;
        if s.status == 201 {
            break s.done - back;
        }
        assert_eq!(s.status, 503, "{s:?}");
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not back after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    report(
        &format!("{} quiet Kill9", server.name()),
        &[
            ("first_request_503_ms", ms(first.latency())),
            ("recovery_ms", ms(recovered)),
        ],
    );
    assert!(
        first.latency() < Duration::from_secs(1),
        "the first request after the crash waited {:?}",
        first.latency()
    );
    assert!(recovered < RECOVERY, "back after {recovered:?}");
}
