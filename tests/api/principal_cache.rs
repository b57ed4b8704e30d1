//! The principal cache keeps "revoked at once on every instance" on every backend and channel: two instances, each answering from memory, see logout, disable and role changes made on the other within 100 ms, and a dropped channel never lets a revoked session through.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{Backend, Pair, TestApp, TestDb, claims};

/// The shared Redis of the test machine (see .ci/run).
const REDIS: &str = "redis://127.0.0.1:6379";

/// An instance whose cache has a channel: NOTIFY on PostgreSQL, Redis pub/sub elsewhere.
async fn instance(db: &TestDb, redis: &str) -> TestApp {
    let s = match db.backend {
        Backend::Postgres => db.app(&[]).await,
        _ => db.app(&[("REDIS_URL", redis)]).await,
    };
    wait_until("the cache serves", || s.gh.auth().principals().serving()).await;
    s
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what}: timed out"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// B answers `token` from memory (the call after the one that filled it). A fill whose read
/// raced an eviction (here: the one A's login publishes) is dropped by design, so B may need
/// another call to cache it.
async fn cached_on(b: &TestApp, token: &str) {
    let c = claims(token);
    let sid = uuid::Uuid::parse_str(c["sid"].as_str().unwrap()).unwrap();
    let sub = uuid::Uuid::parse_str(c["sub"].as_str().unwrap()).unwrap();
    let cache = b.gh.auth().principals();
    for _ in 0..50 {
        assert_eq!(b.me(token).await.status, 200);
        if cache.session(sid).is_some() && cache.user(sub).is_some() {
            assert_eq!(b.me(token).await.status, 200);
            return;
        }
    }
    panic!("B never cached the principal");
}

/// How long after a change B's answer to `token` became `status`.
async fn time_until(b: &TestApp, token: &str, status: u16) -> Duration {
    let start = Instant::now();
    loop {
        if b.me(token).await.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "B never answered {status}"
        );
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn changes_on_one_instance_reach_the_other(db: TestDb) {
    let a = instance(&db, REDIS).await;
    let b = instance(&db, REDIS).await;
    let admin = a.admin().await;
    a.register("ada@example.com").await;
    let mut logout = Vec::new();
    for _ in 0..50 {
        let p: Pair = a.login("ada@example.com").await;
        cached_on(&b, &p.access).await;
        assert_eq!(a.logout(&p.access).await.status, 204);
        logout.push(time_until(&b, &p.access, 401).await);
    }
    let (_, token) = a.user_as(&admin, "bob@example.com", &["user"]).await;
    let bob = b.user_id(&token).await;
    let mut roles = Vec::new();
    for (i, role) in ["moderator", "user", "moderator", "user", "moderator"]
        .iter()
        .enumerate()
    {
        cached_on(&b, &token).await;
        let res = a
            .put(
                &format!("/api/v1/users/{bob}/roles"),
                &admin,
                json!({"roles": [role]}),
            )
            .await;
        assert_eq!(res.status, 200, "{i}: {}", res.body);
        let start = Instant::now();
        while b.me(&token).await.body["user"]["roles"][0] != *role {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "role never reached B"
            );
        }
        roles.push(start.elapsed());
    }
    cached_on(&b, &token).await;
    let res = a
        .patch(
            &format!("/api/v1/users/{bob}"),
            &admin,
            json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, 200);
    let disable = time_until(&b, &token, 401).await;
    let (logout, roles) = (median(logout), median(roles));
    eprintln!(
        "{:?}: median logout {logout:?}, role change {roles:?}, disable {disable:?}",
        db.backend
    );
    for (what, t) in [
        ("logout", logout),
        ("role change", roles),
        ("disable", disable),
    ] {
        assert!(
            t <= Duration::from_millis(100),
            "{what} took {t:?} to reach B"
        );
    }
    a.stop().await;
    b.stop().await;
}

per_backend!(
    changes_on_one_instance_reach_the_other,
    refreshes_on_one_instance_see_changes_on_the_other
);

/// A refresh answers with the user from the instance's cache: a role change or a disable made
/// on A shows in, or stops, the next refresh on B, though B has cached the user.
async fn refreshes_on_one_instance_see_changes_on_the_other(db: TestDb) {
    let a = instance(&db, REDIS).await;
    let b = instance(&db, REDIS).await;
    let admin = a.admin().await;
    let (bob, _) = a.user_as(&admin, "bob@example.com", &["user"]).await;
    let mut refresh = a.login("bob@example.com").await.refresh;
    let sub = uuid::Uuid::parse_str(&bob).unwrap();
    for role in ["moderator", "user", "moderator"] {
        // B holds Bob's view in memory before the change.
        for _ in 0..50 {
            let res = b.refresh(&refresh).await;
            assert_eq!(res.status, 200, "{}", res.body);
            refresh = res.pair().refresh;
            if b.gh.auth().principals().user(sub).is_some() {
                break;
            }
        }
        assert!(
            b.gh.auth().principals().user(sub).is_some(),
            "B never cached Bob"
        );
        let res = a
            .put(
                &format!("/api/v1/users/{bob}/roles"),
                &admin,
                json!({"roles": [role]}),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = b.refresh(&refresh).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["user"]["roles"][0], role, "{}", res.body);
        let pair = res.pair();
        assert_eq!(claims(&pair.access)["roles"][0], role);
        refresh = pair.refresh;
    }
    let res = a
        .patch(
            &format!("/api/v1/users/{bob}"),
            &admin,
            json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(b.refresh(&refresh).await.status, 401);
    a.stop().await;
    b.stop().await;
}

/// A private Redis on a spare port, killed and restarted by the test.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (see .ci/run)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        OwnRedis { port, child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Revoke on A while B's channel is gone: B must refuse, then serve from memory again once the
/// channel is back.
async fn revoked_while_the_channel_is_down(
    a: &TestApp,
    b: &TestApp,
    drop_channel: impl AsyncFnOnce(),
) {
    a.register("ada@example.com").await;
    let p = a.login("ada@example.com").await;
    cached_on(b, &p.access).await;
    drop_channel().await;
    wait_until("B notices the channel is gone", || {
        !b.gh.auth().principals().serving()
    })
    .await;
    assert_eq!(a.logout(&p.access).await.status, 204);
    assert_eq!(
        b.me(&p.access).await.status,
        401,
        "a revoked session got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_never_lets_a_revoked_session_through() {
    let Some(db) = TestDb::create(Backend::Sqlite).await else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Some(OwnRedis::start(port));
    let url = format!("redis://127.0.0.1:{port}");
    let a = instance(&db, &url).await;
    let b = instance(&db, &url).await;
    revoked_while_the_channel_is_down(&a, &b, async || redis.as_mut().unwrap().kill()).await;
    // Back without a restart of either instance.
    let again = OwnRedis::start(redis.take().unwrap().port);
    wait_until("B serves again", || b.gh.auth().principals().serving()).await;
    let p = a.login("ada@example.com").await;
    cached_on(&b, &p.access).await;
    assert_eq!(a.logout(&p.access).await.status, 204);
    assert!(time_until(&b, &p.access, 401).await <= Duration::from_secs(1));
    drop(again);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_listener_never_lets_a_revoked_session_through() {
    let Some(db) = TestDb::create(Backend::Postgres).await else {
        return;
    };
    let a = instance(&db, REDIS).await;
    let b = instance(&db, REDIS).await;
    let name = db.name.clone();
    let terminate = async || {
        // Both instances' listeners: whichever is B's goes.
        let rows = db
            .query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND query ILIKE 'LISTEN%'"
            ))
            .await;
        assert!(!rows.is_empty(), "no listener found");
    };
    revoked_while_the_channel_is_down(&a, &b, terminate).await;
    wait_until("B listens again", || b.gh.auth().principals().serving()).await;
    wait_until("A listens again", || a.gh.auth().principals().serving()).await;
    let p = a.login("ada@example.com").await;
    cached_on(&b, &p.access).await;
    assert_eq!(a.logout(&p.access).await.status, 204);
    assert!(time_until(&b, &p.access, 401).await <= Duration::from_secs(1));
    a.stop().await;
    b.stop().await;
}
