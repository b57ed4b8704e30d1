//! Authentication benchmarks on this machine, in one run: raw argon2id, logins/s, `/auth/me` alone and under login load, refreshes/s on PostgreSQL against `pgbench -N` with as many clients, memory with 100,000 cached sessions, and a bare axum server for scale. The server logs each request as production does (JSON, `RUST_LOG=info`). Each figure is printed with its ratio against its limit.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use gatehouse::Gatehouse;
use gatehouse::config::{Config, Vars};
use sea_orm::sqlx::{self, Connection};
use serde_json::{Value, json};

/// The allocator the `gatehouse` binary runs with (src/main.rs), so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PASSWORD: &str = "Bench-Pass9!";
const SECS: u64 = 6;
/// How many turns the figures measured against each other take.
const ROUNDS: u64 = 3;
const ACCOUNTS: usize = 8;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(run());
    std::process::exit(if ok { 0 } else { 1 });
}

/// argon2id verifications per second at the configured cost, one thread per core: into memory
/// each thread allocates once (as the server's hashing threads do), or with `allocating`,
/// through the argon2 crate's `verify_password`, which allocates and zeroes it on every call.
fn raw_verifies_per_sec(config: &Config, secs: u64, allocating: bool) -> f64 {
    let p = &config.password;
    let params = argon2::Params::new(
        p.argon2_memory_kib,
        p.argon2_iterations,
        p.argon2_parallelism,
        None,
    )
    .unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let hash = a
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ready = Arc::new(std::sync::Barrier::new(cores + 1));
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (stop, count, hash, a) = (stop.clone(), count.clone(), hash.clone(), a.clone());
            let ready = ready.clone();
            std::thread::Builder::new()
                .name("raw-argon2".into())
                .spawn(move || {
                    // Unless `allocating`: into memory allocated once per thread, as the server's
                    // hashing threads do, so the ratio measures the server and not the allocator.
                    let parsed = PasswordHash::new(&hash).unwrap();
                    let mut salt = [0u8; 64];
                    let salt = parsed.salt.unwrap().decode_b64(&mut salt).unwrap();
                    let expected = parsed.hash.unwrap();
                    let mut memory = vec![argon2::Block::default(); a.params().block_count()];
                    let mut out = vec![0u8; expected.len()];
                    ready.wait();
                    while !stop.load(Ordering::Relaxed) {
                        if allocating {
                            a.verify_password(PASSWORD.as_bytes(), &parsed).unwrap();
                        } else {
                            a.hash_password_into_with_memory(
                                PASSWORD.as_bytes(),
                                salt,
                                &mut out,
                                &mut memory,
                            )
                            .unwrap();
                            assert_eq!(out, expected.as_bytes());
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .unwrap()
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[derive(Default)]
struct Wrk {
    rps: f64,
    p99_ms: f64,
    errors: u64,
}

impl Wrk {
    /// Fold in one of `ROUNDS` turns: the mean rate, summed errors, the worst p99.
    fn add_round(&mut self, w: Wrk) {
        self.rps += w.rps / ROUNDS as f64;
        self.p99_ms = self.p99_ms.max(w.p99_ms);
        self.errors += w.errors;
    }
}

fn parse_ms(s: &str) -> f64 {
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(
    url: &str,
    connections: u32,
    threads: u32,
    secs: u64,
    script: Option<&Path>,
    headers: &[String],
) -> Wrk {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t",
        &threads.to_string(),
        "-c",
        &connections.to_string(),
        "-d",
        &format!("{secs}s"),
        "--latency",
        "--timeout",
        "5s",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if let Some(s) = script {
        cmd.args(["-s", s.to_str().unwrap()]);
    }
    let out = cmd.arg(url).output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut w = Wrk {
        rps: 0.0,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in text.lines() {
        let l = line.trim();
        if let Some(v) = l.strip_prefix("Requests/sec:") {
            w.rps = v.trim().parse().unwrap_or(0.0);
        } else if let Some(v) = l.strip_prefix("99%") {
            w.p99_ms = parse_ms(v.trim());
        } else if let Some(v) = l.strip_prefix("Non-2xx or 3xx responses:") {
            w.errors += v.trim().parse::<u64>().unwrap_or(0);
        } else if l.starts_with("Socket errors:") {
            w.errors += l
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    w
}

/// Load each of `targets` (URL, headers) in turn, `ROUNDS` times over, so that whatever else the
/// machine does drifts over all of them alike: each one's mean rate, summed errors, worst p99.
fn interleaved(targets: &[(String, Vec<String>)], cores: u32) -> Vec<Wrk> {
    let mut total: Vec<Wrk> = targets.iter().map(|_| Wrk::default()).collect();
    for _ in 0..ROUNDS {
        for ((url, headers), sum) in targets.iter().zip(&mut total) {
            sum.add_round(wrk(url, 64, cores, SECS / 2, None, headers));
        }
    }
    total
}

/// CPU seconds each of this process's threads has used so far, by thread id, and whether it is
/// one of the server's hashing threads.
fn thread_cpu() -> HashMap<String, (bool, f64)> {
    // SAFETY: sysconf only reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut threads = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return threads;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let time = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
        let hashing = stat[open + 1..close].starts_with("gatehouse-hash");
        let id = task.file_name().to_string_lossy().into_owned();
        threads.insert(id, (hashing, (time(11) + time(12)) / tick));
    }
    threads
}

/// The CPU seconds used between two `thread_cpu` readings: [hashing threads, all others].
/// A thread that ended in between is not counted.
fn cpu_between(
    before: &HashMap<String, (bool, f64)>,
    after: &HashMap<String, (bool, f64)>,
) -> [f64; 2] {
    let mut split = [0.0; 2];
    for (id, (hashing, secs)) in after {
        let earlier = before.get(id).map_or(0.0, |(_, s)| *s);
        split[usize::from(!hashing)] += secs - earlier;
    }
    split
}

/// Raw argon2id on every core and logins through the server (`url`, driven by `script`) in
/// turns of `SECS` each, `ROUNDS` times over, so the machine's drift cancels out of their ratio.
/// Also the CPU the server spent during the login turns: [hashing, everything else], seconds.
fn raw_and_logins(
    config: &Config,
    url: &str,
    script: &Path,
    cores: u32,
) -> ([f64; 2], Wrk, [f64; 2]) {
    let mut raw = [0.0; 2];
    let mut logins = Wrk::default();
    let mut cpu = [0.0; 2];
    // Logins before any is measured, as a running server has had them: the pool opens its
    // connections and each prepares its statements.
    wrk(url, cores * 4, cores, SECS / 2, Some(script), &[]);
    std::thread::sleep(Duration::from_millis(500));
    for round in 1..=ROUNDS {
        let mut this = [0.0; 2];
        for (allocating, rate) in [false, true].into_iter().zip(&mut this) {
            *rate = raw_verifies_per_sec(config, SECS, allocating);
        }
        let before = thread_cpu();
        let turn = wrk(url, cores * 4, cores, SECS, Some(script), &[]);
        // The logins wrk left in flight finish before argon2id is measured alone again.
        std::thread::sleep(Duration::from_millis(500));
        let [hashing, other] = cpu_between(&before, &thread_cpu());
        // Each turn's figures, so the machine's drift between turns shows.
        println!(
            "  turn {round}: raw argon2id {:.1}/s, logins {:.1}/s ({:.3}), hashing share {:.3}",
            this[0],
            turn.rps,
            turn.rps / this[0],
            hashing / (hashing + other)
        );
        for (sum, rate) in raw.iter_mut().zip(this) {
            *sum += rate / ROUNDS as f64;
        }
        logins.add_round(turn);
        cpu[0] += hashing;
        cpu[1] += other;
    }
    (raw, logins, cpu)
}

async fn start(config: Config) -> (Gatehouse, String) {
    let gh = Gatehouse::connect(config).await.expect("connect");
    gh.migrate().await.expect("migrate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gh.clone().serve(listener, std::future::pending()));
    (gh, base)
}

async fn hello() -> String {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn login(client: &reqwest::Client, base: &str) -> Value {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// This process's resident memory, MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Put `n` distinct sessions of distinct users in the principal cache; how many it holds.
fn fill_cache(gh: &Gatehouse, n: usize) -> u64 {
    use gatehouse::service::principals::SessionFacts;
    use gatehouse::service::views::UserView;
    let cache = gh.auth().principals();
    let now = chrono::Utc::now();
    for i in 0..n {
        let id = uuid::Uuid::now_v7();
        let user = UserView {
            id,
            email: format!("user{i}@example.com"),
            name: Some(format!("User {i}")),
            roles: vec!["user".into()],
            active: true,
            email_verified: true,
            mfa_enabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: Some(now),
            metadata: json!({}),
        };
        let facts = SessionFacts {
            user_id: id,
            aal: "aal1".into(),
            expires_at: now + chrono::Duration::hours(1),
            last_used_at: now,
        };
        cache.fill(
            cache.epoch(),
            uuid::Uuid::now_v7(),
            facts,
            &gatehouse::service::views::SharedUser::new(user),
        );
    }
    cache.len()
}

/// `pgbench -N` transactions per second on a fresh copy of its tables in `db`, with `clients`
/// clients, for the same time as the other loads.
fn pgbench(db: &str, clients: usize) -> f64 {
    let init = Command::new("pgbench")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-i",
            "-q",
            "-s",
            "1",
            db,
        ])
        .output()
        .expect("pgbench (PostgreSQL's client tools) on the PATH");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-N", "-c"])
        .arg(clients.to_string())
        .args(["-j", "2", "-T"])
        .arg(SECS.to_string())
        .arg(db)
        .output()
        .expect("pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l["tps = ".len()..].split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench output: {text}"))
}

fn line(
    name: &str,
    value: f64,
    unit: &str,
    ratio: f64,
    limit: f64,
    higher_is_better: bool,
) -> bool {
    let ok = if higher_is_better {
        ratio >= limit
    } else {
        ratio <= limit
    };
    println!(
        "{name:<48} {value:>10.1} {unit:<6} ratio {ratio:>7.3} limit {} {limit:<6} {}",
        if higher_is_better { ">=" } else { "<=" },
        if ok { "PASS" } else { "MISS" }
    );
    ok
}

/// The `/auth/me` row: its rate against the bare server's, measured in the same turns.
fn me_vs_hello(me: &Wrk, hello: &Wrk) -> bool {
    line(
        "GET /auth/me alone vs bare axum",
        me.rps,
        "/s",
        me.rps / hello.rps,
        0.5,
        true,
    )
}

/// The logins row: the server's logins/s against raw argon2id verifies/s on every core.
fn logins_vs_raw(logins: &Wrk, raw: f64) -> bool {
    line(
        "logins through the server",
        logins.rps,
        "/s",
        logins.rps / raw,
        0.95,
        true,
    )
}

async fn run() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = Config::from_vars(&Vars::from_pairs([
        ("DATABASE_URL", sqlite_url.as_str()),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0"),
        // One load generator on one IP: the per-client limits would measure the limiter.
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "100000000,100000000"),
        // One instance on SQLite: the principal cache needs no channel.
        ("AUTH_CACHE", "single-instance"),
        // The request log as docs/operations.md has production write it: a JSON line for each
        // request at the default level (`RUST_LOG=info`).
        ("LOG_FORMAT", "json"),
    ]))
    .unwrap();
    // The server's log, as the binary writes it (into a file here, where the binary has stderr;
    // about 100 MB for a whole run, removed with the rest of `dir`).
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    gatehouse::cli::log_to(&config, Arc::new(log));
    let rss_idle = rss_mib();
    println!(
        "gatehouse auth benchmark: {cores} cores, argon2id m={} KiB t={} p={}, {SECS} s per load",
        config.password.argon2_memory_kib,
        config.password.argon2_iterations,
        config.password.argon2_parallelism
    );

    let me_only = std::env::args().any(|a| a == "--me");
    let hello_base = hello().await;
    let (gh, base) = start(config.clone()).await;
    let client = reqwest::Client::new();
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = login(&client, &base).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Logins rotate over several accounts, as real traffic does (one account is capped at
    // AUTH_MAX_LOGIN_ATTEMPTS checks in flight by the lockout).
    for i in 1..ACCOUNTS {
        client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": format!("bench{i}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .unwrap();
    }
    let login_lua = dir.path().join("login.lua");
    std::fs::write(
        &login_lua,
        format!(
            r#"local n = 0
function request()
  n = n + 1
  local who = n % {ACCOUNTS}
  local email = "bench@example.com"
  if who > 0 then email = "bench" .. who .. "@example.com" end
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, '{{"email":"' .. email .. '","password":"{PASSWORD}"}}')
end
"#
        ),
    )
    .unwrap();
    let login_url = format!("{base}/api/v1/auth/login");
    let me_url = format!("{base}/api/v1/auth/me");
    let auth_header = vec![format!("Authorization: Bearer {token}")];

    if me_only {
        // `bash bench/run --me`: only what an authenticated call costs, against the same
        // server's unauthenticated /health and a bare axum server, for work on the request path.
        let targets = [
            (hello_base, vec![]),
            (format!("{base}/health"), vec![]),
            (me_url, auth_header),
        ];
        let [hello_w, health, me_alone] =
            tokio::task::spawn_blocking(move || interleaved(&targets, cores))
                .await
                .unwrap()
                .try_into()
                .unwrap_or_else(|_| unreachable!());
        println!("{:<48} {:>10.1} /s", "bare axum hello-world", hello_w.rps);
        println!(
            "{:<48} {:>10.1} /s ({:.3} of hello)",
            "GET /health (the middleware stack alone)",
            health.rps,
            health.rps / hello_w.rps
        );
        return me_vs_hello(&me_alone, &hello_w) && me_alone.errors == 0;
    }

    let ([raw, allocating], logins, [hashing, other]) = tokio::task::spawn_blocking({
        let (u, l) = (login_url.clone(), login_lua.clone());
        move || raw_and_logins(&config, &u, &l, cores)
    })
    .await
    .unwrap();
    println!("{:<48} {raw:>10.1} /s", "raw argon2id verifies (all cores)");
    println!(
        "{:<48} {allocating:>10.1} /s (logins {:.3} of it)",
        "  the same through argon2's verify_password",
        logins.rps / allocating
    );
    // What the logins row depends on besides argon2's speed: the share of the server's CPU its
    // hashing threads got, and the CPU a login costs outside hashing.
    let count = logins.rps * (SECS * ROUNDS) as f64;
    println!(
        "{:<48} {:>10.3}        (outside hashing {:.2} ms CPU per login)",
        "  hashing threads' share of the server's CPU",
        hashing / (hashing + other),
        other * 1000.0 / count
    );
    if std::env::args().any(|a| a == "--logins") {
        // `bash bench/run --logins`: only raw argon2id and the logins, for work on the login path.
        return logins_vs_raw(&logins, raw) && logins.errors == 0;
    }
    // The bare server and /auth/me in turns, so the machine's drift cancels out of the ratio.
    let targets = [(hello_base, vec![]), (me_url.clone(), auth_header.clone())];
    let [hello_w, me_alone] = tokio::task::spawn_blocking(move || interleaved(&targets, cores))
        .await
        .unwrap()
        .try_into()
        .unwrap_or_else(|_| unreachable!());
    // /auth/me while logins keep every core busy.
    let background = tokio::task::spawn_blocking({
        let (u, l) = (login_url.clone(), login_lua.clone());
        move || wrk(&u, cores * 4, cores, SECS + 2, Some(&l), &[])
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let me_loaded = tokio::task::spawn_blocking({
        let (u, h) = (me_url.clone(), auth_header.clone());
        move || wrk(&u, 8, 1, SECS, None, &h)
    })
    .await
    .unwrap();
    let background = background.await.unwrap();

    // Refreshes on PostgreSQL: each wrk connection follows its own chain of single-use tokens.
    let pg_name = format!("gh_bench_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE DATABASE \"{pg_name}\""
    )))
    .execute(&mut admin)
    .await
    .unwrap();
    let pg_url = format!("postgres://postgres@127.0.0.1:5432/{pg_name}");
    let pg_config = Config::from_vars(&Vars::from_pairs([
        ("DATABASE_URL", pg_url.as_str()),
        ("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0"),
        ("PASSWORD_ARGON2_MEMORY_KIB", "1024"),
        ("PASSWORD_ARGON2_ITERATIONS", "1"),
        ("RATE_LIMIT_LOGIN_PER_MINUTE", "100000000,100000000"),
    ]))
    .unwrap();
    let (pg_gh, pg_base) = start(pg_config).await;
    client
        .post(format!("{pg_base}/api/v1/auth/register"))
        .json(&json!({"email": "bench@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let chains = 16;
    let mut tokens = Vec::new();
    for _ in 0..chains {
        tokens.push(
            login(&client, &pg_base).await["refresh_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let refresh_lua = dir.path().join("refresh.lua");
    let list: Vec<String> = tokens.iter().map(|t| format!("\"{t}\"")).collect();
    std::fs::write(
        &refresh_lua,
        format!(
            r#"local tokens = {{{}}}
local n = 0
function setup(thread)
  n = n + 1
  thread:set("tok", tokens[n])
end
function request()
  return wrk.format("POST", "/api/v1/auth/refresh", {{["Content-Type"] = "application/json"}}, '{{"refresh_token":"' .. tok .. '"}}')
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then tok = t end
end
"#,
            list.join(", ")
        ),
    )
    .unwrap();
    let refreshes = tokio::task::spawn_blocking({
        let u = format!("{pg_base}/api/v1/auth/refresh");
        move || wrk(&u, chains, chains, SECS, Some(&refresh_lua), &[])
    })
    .await
    .unwrap();
    drop(pg_gh);
    // The database's own limit with as many clients: pgbench's simple-update transactions.
    let pgbench_tps = pgbench(&pg_name, chains as usize);
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{pg_name}\" WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;

    let rss_serving = rss_mib();
    let cached = fill_cache(&gh, 100_000);
    let rss_cached = rss_mib();
    println!(
        "{:<48} {rss_idle:>10.1} MiB",
        "RSS before the server started"
    );
    println!("{:<48} {rss_serving:>10.1} MiB", "RSS after the loads");
    println!(
        "{:<48} {rss_cached:>10.1} MiB ({cached} entries, +{:.1} MiB)",
        "RSS with 100,000 cached sessions",
        rss_cached - rss_serving
    );
    println!(
        "{:<48} {pgbench_tps:>10.1} /s",
        "pgbench -N, same client count"
    );

    println!("{:<48} {:>10.1} /s", "bare axum hello-world", hello_w.rps);
    println!(
        "{:<48} {:>10.1} /s",
        "logins while /auth/me was measured", background.rps
    );
    let mut ok = true;
    ok &= logins_vs_raw(&logins, raw);
    ok &= line(
        "GET /auth/me p99 while logins saturate the CPU",
        me_loaded.p99_ms,
        "ms",
        me_loaded.p99_ms,
        5.0,
        false,
    );
    ok &= me_vs_hello(&me_alone, &hello_w);
    ok &= line(
        "refreshes on PostgreSQL vs pgbench -N",
        refreshes.rps,
        "/s",
        refreshes.rps / pgbench_tps,
        0.5,
        true,
    );
    for (name, w) in [
        ("logins", &logins),
        ("me", &me_alone),
        ("me under load", &me_loaded),
        ("refreshes", &refreshes),
    ] {
        if w.errors > 0 {
            println!(
                "warning: {name}: {} non-2xx responses or socket errors",
                w.errors
            );
            ok = false;
        }
    }
    ok
}
