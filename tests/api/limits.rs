//! Rate limits through HTTP: per IP + email and per IP, exact under parallel requests, one budget across two instances with Redis, and failing open when Redis is away.

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, Reply, TestApp, TestDb, count, race_with};

const REDIS: &str = "redis://127.0.0.1:6379";

async fn sqlite() -> TestDb {
    TestDb::create(Backend::Sqlite).await.expect("sqlite")
}

/// A server with these login limits ("per IP+email,per IP") that trusts 127.0.0.1 as a proxy.
async fn behind_proxy(db: &TestDb, per_minute: &str) -> TestApp {
    db.app(&[
        ("RATE_LIMIT_LOGIN_PER_MINUTE", per_minute),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await
}

impl TestApp {
    /// Log in as `email` from client address `ip` (the server trusts 127.0.0.1 as a proxy).
    async fn login_from(&self, ip: &str, email: &str) -> Reply {
        Reply::read(self.login_request(ip, email).send().await.unwrap()).await
    }

    fn login_request(&self, ip: &str, email: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": PASSWORD}))
    }
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
    let s = behind_proxy(&db, "3,5").await;
    s.register("ada@example.com").await;
    let ip = fresh_ip();
    for _ in 0..3 {
        assert_eq!(s.login_from(&ip, "ada@example.com").await.status, 200);
    }
    let res = s.login_from(&ip, "ada@example.com").await;
    assert_eq!(res.status, 429);
    let retry: u64 = res.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(res.body["code"], "rate_limited");
    // The same email from another address has its own budget; wrong passwords count too.
    assert_eq!(
        s.login_from(&fresh_ip(), "ada@example.com").await.status,
        200
    );
    // The address's own budget (5) covers every email: two more, then 429 for anyone.
    assert_eq!(s.login_from(&ip, "bob@example.com").await.status, 401);
    assert_eq!(s.login_from(&ip, "cy@example.com").await.status, 401);
    assert_eq!(s.login_from(&ip, "dee@example.com").await.status, 429);
    let metrics = s.get_public("/metrics").await.text;
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
    let s = db.app(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "4,1000")]).await;
    s.register("par@example.com").await;
    let results = s.race_logins(20, "par@example.com", PASSWORD).await;
    assert_eq!(count(&results, 200), 4, "{results:?}");
    assert_eq!(count(&results, 429), 16);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_is_limited_per_ip() {
    let db = sqlite().await;
    let s = behind_proxy(&db, "100,2").await;
    s.register("ref@example.com").await;
    let ip = fresh_ip();
    let mut pair = s.login_from(&fresh_ip(), "ref@example.com").await.pair();
    let refresh = |pair: &crate::helpers::Pair| {
        let req = s
            .client
            .post(s.url("/api/v1/auth/refresh"))
            .header("x-forwarded-for", ip.as_str())
            .json(&json!({"refresh_token": pair.refresh}));
        async move { Reply::read(req.send().await.unwrap()).await }
    };
    for _ in 0..2 {
        pair = refresh(&pair).await.pair();
    }
    assert_eq!(refresh(&pair).await.status, 429);
    s.stop().await;
}

/// Starting, finishing and exchanging an OAuth sign-in make the server call a provider or
/// spend a code: an IP gets the per-IP budget for them, then 429 with `Retry-After`, while
/// another IP is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_is_limited_per_ip() {
    let db = sqlite().await;
    let s = behind_proxy(&db, "100,3").await;
    let ip = fresh_ip();
    let exchange = |ip: String| {
        let req = s
            .client
            .post(s.url("/api/v1/auth/oauth/exchange"))
            .header("x-forwarded-for", ip)
            .json(&json!({"code": "not-a-code"}));
        async move { Reply::read(req.send().await.unwrap()).await }
    };
    let callback = |ip: String| {
        let req = s
            .client
            .get(s.url("/api/v1/auth/oauth/google/callback?code=x&state=y"))
            .header("x-forwarded-for", ip);
        async move { Reply::read(req.send().await.unwrap()).await }
    };
    for _ in 0..2 {
        assert_eq!(exchange(ip.clone()).await.problem(), (401, "invalid_code"));
    }
    assert_ne!(callback(ip.clone()).await.status, 429);
    let limited = exchange(ip.clone()).await;
    assert_eq!(limited.problem(), (429, "rate_limited"));
    assert!(!limited.header("retry-after").is_empty());
    assert_eq!(callback(ip.clone()).await.problem(), (429, "rate_limited"));
    assert_eq!(
        exchange(fresh_ip()).await.problem(),
        (401, "invalid_code"),
        "another client keeps its budget"
    );
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
    let a = db.app(&env).await;
    let b = db.app(&env).await;
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    a.register(&email).await;
    let ip = fresh_ip();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { &a } else { &b };
        statuses.push(s.login_from(&ip, &email).await.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429, 429, 429]);

    // Parallel requests split over both instances: still exactly the budget.
    let email = format!("{}@example.com", uuid::Uuid::new_v4());
    a.register(&email).await;
    let ip = fresh_ip();
    let results = race_with(16, |i| {
        let s = [&a, &b][i % 2];
        s.login_request(&ip, &email)
    })
    .await;
    assert_eq!(count(&results, 200), 4, "{results:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_redis_fails_open() {
    let db = sqlite().await;
    let s = db
        .app(&[
            ("RATE_LIMIT_BACKEND", "redis"),
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("RATE_LIMIT_LOGIN_PER_MINUTE", "1,1"),
        ])
        .await;
    s.register("open@example.com").await;
    for _ in 0..3 {
        let res = s.login_from("127.0.0.1", "open@example.com").await;
        assert_eq!(
            res.status, 200,
            "a limiter that is away never refuses logins"
        );
    }
    s.stop().await;
}
