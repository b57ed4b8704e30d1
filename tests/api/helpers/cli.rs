//! The `gatehouse` binary run as a person would: a clean environment, a working directory, standard input, and the one-line failure it must give.

use std::path::Path;
use std::process::Output;

use super::TestDb;

/// Run the binary with a clean configuration environment.
pub async fn run_cli(
    dir: &Path,
    base_env: &[(String, String)],
    args: &[&str],
    extra_env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args).current_dir(dir).env_clear();
    for key in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in base_env {
        cmd.env(k, v);
    }
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn gatehouse");
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).await.unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert a successful run and return its standard output.
#[track_caller]
pub fn assert_success(o: &Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
}

/// Assert a failed run: exit code 1 and one human line on stderr, no panic or backtrace.
#[track_caller]
pub fn assert_one_line_failure(o: &Output) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}\nstdout: {}\nstderr: {err}",
        o.status,
        stdout(o)
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    lines[0].to_string()
}

impl TestDb {
    /// `db status`'s last line, "N of M applied", as (N, M).
    pub async fn applied(&self) -> (usize, usize) {
        let out = self.run_ok(&["db", "status"]).await;
        let line = out.lines().last().unwrap().to_string();
        let mut parts = line.split_whitespace();
        let n = parts.next().unwrap().parse().unwrap();
        parts.next();
        let m = parts.next().unwrap().parse().unwrap();
        (n, m)
    }

    /// `db init`, then `admin create root@example.com`.
    pub async fn init_with_admin(&self) {
        self.run_ok(&["db", "init"]).await;
        let o = self
            .cli(
                &[
                    "admin",
                    "create",
                    "--email",
                    "root@example.com",
                    "--password-stdin",
                ],
                &[],
                Some("Sup3r-Secret!"),
            )
            .await;
        assert_success(&o);
    }
}
