//! Rate limits through HTTP: per IP + email and per IP, exact under parallel requests, one budget across two instances with Redis, and failing open when Redis is away.

mod common;

use common::{Backend, TestDb, TestServer, count};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse9";
const REDIS: &str = "redis://127.0.0.1:6379";

async fn sqlite() -> TestDb {
    TestDb::create(Backend::Sqlite).await.expect("sqlite")
}

/// Log in as `email` from client address `ip` (the server trusts 127.0.0.1 as a proxy).
async fn login_from(s: &TestServer, ip: &str, email: &str) -> reqwest::Response {
    s.client
        .post(s.url("/api/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

async fn register(s: &TestServer, email: &str) {
    let res = s
        .client
        .post(s.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A client address no other test uses, so tests sharing one Redis never share a budget.
fn fresh_ip() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("10.{}.{}.{}", (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

fn redis_is_up() {
    let up = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
    assert!(
        up,
        "Redis must run on 127.0.0.1:6379 for these tests (see .ci/run)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_limited_per_ip_and_email_then_per_ip() {
    let db = sqlite().await;
    let s = db
        .server(&[
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "3,5"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ])
        .await;
    register(&s, "ada@example.com").await;
    let ip = fresh_ip();
    for _ in 0..3 {
        assert_eq!(login_from(&s, &ip, "ada@example.com").await.status(), 200);
    }
    let res = login_from(&s, &ip, "ada@example.com").await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    // The same email from another address has its own budget; wrong passwords count too.
    assert_eq!(
        login_from(&s, &fresh_ip(), "ada@example.com")
            .await
            .status(),
        200
    );
    // The address's own budget (5) covers every email: two more, then 429 for anyone.
    assert_eq!(login_from(&s, &ip, "bob@example.com").await.status(), 401);
    assert_eq!(login_from(&s, &ip, "cy@example.com").await.status(), 401);
    assert_eq!(login_from(&s, &ip, "dee@example.com").await.status(), 429);
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gatehouse_rate_limited_total{bucket=\"login\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_rate_limited_total{bucket=\"ip\"}"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_logins_get_exactly_the_budget() {
    let db = sqlite().await;
    let s = db
        .server(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "4,1000")])
        .await;
    register(&s, "par@example.com").await;
    let results = common::race_post(&s.client, 20, |_| {
        (
            s.url("/api/v1/auth/login"),
            json!({"email": "par@example.com", "password": PASSWORD}),
        )
    })
    .await;
    assert_eq!(count(&results, 200), 4, "{results:?}");
    assert_eq!(count(&results, 429), 16);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_is_limited_per_ip() {
    let db = sqlite().await;
    let s = db
        .server(&[
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "100,2"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ])
        .await;
    register(&s, "ref@example.com").await;
    let ip = fresh_ip();
    let mut pair: Value = login_from(&s, &fresh_ip(), "ref@example.com")
        .await
        .json()
        .await
        .unwrap();
    let refresh = |pair: &Value| {
        s.client
            .post(s.url("/api/v1/auth/refresh"))
            .header("x-forwarded-for", ip.as_str())
            .json(&json!({"refresh_token": pair["refresh_token"]}))
            .send()
    };
    for _ in 0..2 {
        let res = refresh(&pair).await.unwrap();
        assert_eq!(res.status(), 200);
        pair = res.json().await.unwrap();
    }
    assert_eq!(refresh(&pair).await.unwrap().status(), 429);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_budget_in_redis() {
    redis_is_up();
    let db = sqlite().await;
    let env = [
        ("RATE_LIMIT_BACKEND", "redis"),
        ("REDIS_URL", REDIS),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "4,1000"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let a = db.server(&env).await;
    let b = db.server(&env).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    register(&a, &email).await;
    let ip = fresh_ip();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        statuses.push(login_from(s, &ip, &email).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);

    // Parallel requests split over both instances: still exactly the budget.
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    register(&a, &email).await;
    let ip = fresh_ip();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url("/api/v1/auth/login")
            } else {
                b.url("/api/v1/auth/login")
            };
            let (client, barrier, ip, email) =
                (a.client.clone(), barrier.clone(), ip.clone(), email.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client
                    .post(url)
                    .header("x-forwarded-for", ip)
                    .json(&json!({"email": email, "password": PASSWORD}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 4);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_redis_fails_open() {
    let db = sqlite().await;
    let s = db
        .server(&[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "1,1"),
        ])
        .await;
    register(&s, "open@example.com").await;
    for _ in 0..3 {
        let res = login_from(&s, "127.0.0.1", "open@example.com").await;
        assert_eq!(
            res.status(),
            200,
            "a limiter that is away never refuses logins"
        );
    }
    s.stop().await;
}
