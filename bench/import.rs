//! `gatehouse users import` of 100,000 users through the built binary, on SQLite and PostgreSQL: users/s and the time against the 60-second limit (hashes are kept, so this measures parsing, checking and batched inserts).

use std::process::Command;
use std::time::Instant;

use sea_orm::sqlx::{self, Connection};
use serde_json::json;

const USERS: usize = 100_000;
const LIMIT_SECS: f64 = 60.0;

fn gatehouse(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", url)
        .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret-0")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run gatehouse");
    assert!(
        out.status.success(),
        "gatehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One line per user, in the FastAPI/MongoDB shape: a bcrypt hash (the same one: it is kept,
/// not recomputed), a role, a creation time and some metadata.
fn export_file(dir: &std::path::Path) -> std::path::PathBuf {
    let hash = bcrypt::hash("Bench-Pass9!", 4).unwrap();
    let roles = ["user", "user", "user", "moderator", "admin", "guest"];
    let mut text = String::with_capacity(USERS * 200);
    for i in 0..USERS {
        let doc = json!({
            "_id": {"$oid": format!("{i:024x}")},
            "email": format!("user{i}@example.com"),
            "passwordHash": hash,
            "role": roles[i % roles.len()],
            "createdAt": {"$date": format!("2024-01-01T00:00:{:02}.000Z", i % 60)},
            "metadata": {"plan": "free", "n": i},
        });
        text.push_str(&doc.to_string());
        text.push('\n');
    }
    let path = dir.join("users.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Import into a fresh database at `url`; the seconds it took.
fn measure(name: &str, url: &str, file: &std::path::Path) -> f64 {
    gatehouse(url, &["db", "init"]);
    let started = Instant::now();
    let out = gatehouse(
        url,
        &[
            "users",
            "import",
            file.to_str().unwrap(),
            "--format",
            "mongoexport",
        ],
    );
    let secs = started.elapsed().as_secs_f64();
    assert!(out.contains(&format!("{USERS} created")), "{name}: {out}");
    let ratio = secs / LIMIT_SECS;
    println!(
        "{:<48} {:>10.1} /s     {secs:>6.1} s ratio {ratio:>7.3} limit <= 1      {}",
        format!("users import, 100,000 users ({name})"),
        USERS as f64 / secs,
        if ratio <= 1.0 { "PASS" } else { "MISS" }
    );
    ratio
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let file = export_file(dir.path());
    let sqlite = format!("sqlite://{}", dir.path().join("import.db").display());
    let mut ok = measure("SQLite", &sqlite, &file) <= 1.0;

    let name = format!("gh_bench_import_{}", uuid::Uuid::now_v7().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    ok &= measure("PostgreSQL", &url, &file) <= 1.0;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .expect("PostgreSQL on 127.0.0.1:5432");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
    });
    if !ok {
        std::process::exit(1);
    }
}
