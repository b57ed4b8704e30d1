//! A private Redis (`redis-server` on a spare port, nothing saved) holding the rate limits,
//! `kill -9`ed while logins run: limits fail open (every login answered, none refused), and
//! come back, without a restart, once Redis is there again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::crash::{Sample, send};
use super::procs::{Owned, require, spare_port};
use super::{median, ms, report};
use crate::helpers::{PASSWORD, TestApp};

struct Redis {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    server: Option<Owned>,
}

impl Redis {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start it; the instant it first answered PING.
    async fn start(&mut self) -> Instant {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        self.server = Some(Owned::spawn(cmd, "redis-server"));
        let started = Instant::now();
        loop {
            if let Ok(mut c) = self.connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Instant::now();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// Keys in the database (the limiter's budgets).
    async fn keys(&self) -> i64 {
        let mut c = self.connection().await.unwrap();
        redis::cmd("DBSIZE").query_async(&mut c).await.unwrap()
    }
}

/// Log in `n` times as a fresh account; the statuses.
async fn logins(app: &TestApp, email: &str, n: usize) -> Vec<u16> {
    app.register(email).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(app.login_with(email, PASSWORD).await.status.as_u16());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_while_logins_run_fails_open_and_comes_back() {
    let _serial = super::serial().await;
    let Some(bin) = require(&["redis-server"], &[]) else {
        return;
    };
    let mut redis = Redis {
        bin,
        dir: tempfile::tempdir().unwrap(),
        port: spare_port(),
        server: None,
    };
    redis.start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("gh.db").display());
    let app = TestApp::start(
        &db,
        dir.path(),
        &[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", &redis.url()),
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "5,100000"),
        ],
    )
    .await;
    // Limits hold while Redis is there: the sixth login is refused.
    assert_eq!(
        logins(&app, "before@example.com", 6).await,
        [200, 200, 200, 200, 200, 429]
    );
    assert!(redis.keys().await > 0);

    // Logins from four tasks, each as a fresh account (never over its budget).
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|w| {
            let (client, register, login, stop) = (
                app.client.clone(),
                app.url("/api/v1/auth/register"),
                app.url("/api/v1/auth/login"),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body =
                        json!({"email": format!("load-{w}-{n}@example.com"), "password": PASSWORD});
                    let r = send(&client, &register, body.clone()).await;
                    assert_eq!(r.status, 201, "{r:?}");
                    samples.push(send(&client, &login, body).await);
                }
                samples
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed = Instant::now();
    redis.server.take().unwrap().kill9().await;
    // Away: no budget is kept, so nothing is refused.
    assert_eq!(logins(&app, "away@example.com", 7).await, [200; 7]);
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(killed.elapsed())).await;

    let back = redis.start().await;
    // Limits are kept again once the limiter writes a budget.
    let kept = loop {
        if redis.keys().await > 0 {
            break Instant::now();
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no budget kept in Redis 10 s after it came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(
        logins(&app, "after@example.com", 6).await,
        [200, 200, 200, 200, 200, 429],
        "limits hold again, without a restart"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples: Vec<Sample> = Vec::new();
    for t in load {
        samples.extend(t.await.unwrap());
    }
    for s in &samples {
        assert_eq!(s.status, 200, "{s:?}");
    }
    let away: Vec<Duration> = samples
        .iter()
        .filter(|s| s.sent > killed && s.done < back)
        .map(Sample::latency)
        .collect();
    let up: Vec<Duration> = samples
        .iter()
        .filter(|s| s.done < killed || s.sent > kept)
        .map(Sample::latency)
        .collect();
    let slowest_away = away.iter().max().copied().unwrap_or_default();
    report(
        "redis kill -9",
        &[
            ("logins", samples.len().to_string()),
            ("logins_while_away", away.len().to_string()),
            ("login_median_ms_up", ms(median(up))),
            ("login_median_ms_away", ms(median(away.clone()))),
            ("login_slowest_ms_away", ms(slowest_away)),
            ("limits_back_after_ms", ms(kept - back)),
        ],
    );
    assert!(!away.is_empty(), "no login ran while Redis was away");
    assert!(
        kept - back < Duration::from_secs(5),
        "limits came back {:?} after Redis",
        kept - back
    );
    app.stop().await;
}
