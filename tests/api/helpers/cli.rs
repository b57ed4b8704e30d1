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

/// `gatehouse serve` in a process of its own (so `/metrics` counts only what it did) on a free
/// port, with this test's database (it migrates first); killed if still running when dropped.
pub struct ServerProcess {
    pub base: String,
    pub child: tokio::process::Child,
    client: reqwest::Client,
}

impl TestDb {
    /// Start `gatehouse serve` with this database and `extra_env`, and wait until `/ready`.
    pub async fn serve(&self, extra_env: &[(&str, &str)]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bind = format!("127.0.0.1:{port}");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.arg("serve")
            .current_dir(self.dir.path())
            .env_clear()
            .envs(self.env())
            .env("GATEHOUSE_BIND", &bind)
            .envs(extra_env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut server = ServerProcess {
            base: format!("http://{bind}"),
            child: cmd.spawn().expect("spawn gatehouse serve"),
            client: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if let Ok(r) = server.client.get(server.url("/ready")).send().await
                && r.status() == 200
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                let out = server.child.wait_with_output().await.unwrap();
                panic!("gatehouse serve exited ({status}): {}", stderr(&out));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("gatehouse serve never became ready at {}", server.base);
    }
}

impl ServerProcess {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST JSON; the status.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> u16 {
        let res = self.client.post(self.url(path)).json(&body).send().await;
        res.unwrap().status().as_u16()
    }

    /// The value of one series of `/metrics` (`name{labels}` as written there), 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.client.get(self.url("/metrics")).send().await;
        let text = text.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0, |v| v.trim().parse().unwrap())
    }

    /// Wait (up to 30 s) until the series reaches `value`.
    pub async fn wait_metric(&self, series: &str, value: u64) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = self.metric(series).await;
            if now >= value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{series} stayed at {now}, waited for {value}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then the exit status (it must stop within 20 s).
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops on SIGTERM")
            .unwrap()
    }
}
