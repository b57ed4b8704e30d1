//! Faults, each started and killed by the test that owns it: a private PostgreSQL cluster and a
//! private MariaDB stopped at once and `kill -9`ed under concurrent writes, Gatehouse itself
//! `kill -9`ed mid-write on SQLite and restarted on the same file, SIGTERM under load, a private
//! Redis killed while logins run, and the SMTP server down. Each asserts that every
//! acknowledged write is there afterwards and that nothing answers 500, and measures the time
//! to 503 and the time to recover; `bench/faults` prints those figures (the lines starting
//! with `FAULTS`).
//!
//! A server binary that is missing fails the test under `CI=true` and skips it otherwise. These
//! tests run one at a time ([`serial`]), so their timings are not measured against each other.

mod busy;
mod crash;
mod mariadb;
mod postgres;
mod procs;
mod redis;
mod smtp;
mod sqlite;

use std::time::Duration;

/// One fault test at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The median of some durations.
pub fn median(mut xs: Vec<Duration>) -> Duration {
    assert!(!xs.is_empty(), "no samples");
    xs.sort();
    xs[xs.len() / 2]
}

/// Milliseconds, for the report lines.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// One line of figures for `bench/faults`.
pub fn report(test: &str, figures: &[(&str, String)]) {
    let figures: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!("FAULTS {test}: {}", figures.join(" "));
}
