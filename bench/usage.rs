//! Usage reports per second on PostgreSQL: single events (`POST /usage`, with an idempotency key each) and batches of 1,000 (`POST /usage/batch`), from concurrent clients for a fixed time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gatehouse::Gatehouse;
use gatehouse::config::{Config, Vars};
use sea_orm::sqlx::{self, Connection};
use serde_json::{Value, json};

/// The allocator the `gatehouse` binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECS: u64 = 6;
const CLIENTS: usize = 16;
const ROOT: &str = "bench-root@example.com";
const PASSWORD: &str = "Bench-Pass9!";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

fn event(user: &str, i: u64) -> Value {
    json!({
        "user_id": user, "service": "openai", "model": "gpt-4o-mini", "request_type": "chat",
        "tokens_used": i % 4096, "cost_micros": i % 100_000,
    })
}

/// Requests answered 201 per second by `CLIENTS` clients, each sending `make(n)` in turn.
async fn measure(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    make: impl Fn(u64) -> (String, Value) + Send + Sync + 'static,
) -> (f64, u64) {
    let make = Arc::new(make);
    let (ok, failed, next) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECS);
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, key) = (client.clone(), url.to_string(), key.to_string());
            let (make, ok, failed, next) = (make.clone(), ok.clone(), failed.clone(), next.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (idem, body) = make(next.fetch_add(1, Ordering::Relaxed));
                    let res = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("idempotency-key", idem)
                        .json(&body)
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == 201 => ok.fetch_add(1, Ordering::Relaxed),
                        _ => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let rate = ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}

async fn run() {
    let name = format!("gh_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let config = Config::from_vars(&Vars::from_pairs([
        ("DATABASE_URL", url.as_str()),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0"),
        ("PASSWORD_ARGON2_MEMORY_KIB", "1024"),
        ("PASSWORD_ARGON2_ITERATIONS", "1"),
    ]))
    .unwrap();
    let gh = Gatehouse::connect(config).await.expect("connect");
    gh.migrate().await.expect("migrate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gh.clone().serve(listener, std::future::pending()));

    let client = reqwest::Client::new();
    gh.accounts()
        .ensure_super_admin(ROOT, Some(PASSWORD))
        .await
        .unwrap();
    let call = |path: &str, token: Option<&str>, body: Option<Value>| {
        let mut req = match &body {
            Some(b) => client.post(format!("{base}{path}")).json(b),
            None => client.get(format!("{base}{path}")),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let login = call(
        "/api/v1/auth/login",
        None,
        Some(json!({"email": ROOT, "password": PASSWORD})),
    )
    .await;
    let root = login["access_token"].as_str().unwrap().to_string();
    let me = call("/api/v1/auth/me", Some(&root), None).await;
    let user = me["user"]["id"].as_str().unwrap().to_string();
    let created = call(
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({"name": "bench", "scopes": ["usage:write"]})),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();

    let u = user.clone();
    let (single, single_failed) =
        measure(&client, &format!("{base}/api/v1/usage"), &key, move |n| {
            (format!("single-{n}"), event(&u, n))
        })
        .await;
    let (batches, batch_failed) = measure(
        &client,
        &format!("{base}/api/v1/usage/batch"),
        &key,
        move |n| {
            let events: Vec<Value> = (0..1000).map(|i| event(&user, n * 1000 + i)).collect();
            (format!("batch-{n}"), json!({"events": events}))
        },
    )
    .await;
    drop(gh);
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    println!(
        "{:<48} {:>10.1} /s",
        "usage events, one per call (PostgreSQL)", single
    );
    println!(
        "{:<48} {:>10.1} /s ({:.1} calls/s)",
        "usage events, 1,000 per call (PostgreSQL)",
        batches * 1000.0,
        batches
    );
    if single_failed + batch_failed > 0 {
        println!("warning: {} calls failed", single_failed + batch_failed);
        std::process::exit(1);
    }
}
