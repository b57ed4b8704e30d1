//! Processes a fault test starts and kills itself: finding a server binary (a failure under
//! `CI=true` when missing), a spare port, running as an unprivileged user when the tests run as
//! root, and signalling and reaping only the processes the test started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// The first of `names` found on `PATH` or in `dirs` (globs allowed); `None` (skip) when
/// missing, a failure under `CI=true`.
pub fn require(names: &[&str], dirs: &[&str]) -> Option<PathBuf> {
    let mut places: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in dirs {
        places.extend(glob_dirs(dir));
    }
    for name in names {
        for place in &places {
            let candidate = place.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    let what = names.join(" or ");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what} is not installed and CI=true: this fault test cannot run");
    }
    eprintln!("SKIPPED: {what} is not installed; set CI=true to make this a failure");
    None
}

/// `/usr/lib/postgresql/*/bin` → every matching directory, newest name last.
fn glob_dirs(pattern: &str) -> Vec<PathBuf> {
    let Some((head, tail)) = pattern.split_once("/*/") else {
        return vec![PathBuf::from(pattern)];
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(head)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join(tail))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.reverse();
    found
}

/// A TCP port nobody listens on right now.
pub fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whom a server runs as: `user` when the tests run as root (database servers refuse root),
/// else the current user.
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    ids: Option<(u32, u32)>,
}

impl RunAs {
    pub fn unprivileged(user: &str) -> RunAs {
        // SAFETY: plain libc calls; getpwnam's result is read at once, before any other call.
        unsafe {
            if libc::geteuid() != 0 {
                return RunAs { ids: None };
            }
            let name = std::ffi::CString::new(user).unwrap();
            let pw = libc::getpwnam(name.as_ptr());
            assert!(
                !pw.is_null(),
                "running as root, and there is no user {user} to run the server as"
            );
            RunAs {
                ids: Some(((*pw).pw_uid, (*pw).pw_gid)),
            }
        }
    }

    /// Give `path` (and what it holds) to this user.
    pub fn own(&self, path: &Path) {
        if let Some((uid, gid)) = self.ids {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            if path.is_dir() {
                for entry in std::fs::read_dir(path).unwrap() {
                    self.own(&entry.unwrap().path());
                }
            }
        }
    }

    /// A command that runs as this user.
    pub fn command(&self, program: &Path) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(program);
        if let Some((uid, gid)) = self.ids {
            cmd.uid(uid).gid(gid);
            cmd.env("HOME", "/tmp");
        }
        cmd
    }
}

/// Run a command to its end; panic with its output when it fails.
pub fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server process this test started; killed (`SIGKILL`) and reaped when dropped.
pub struct Owned {
    pub child: Child,
    what: String,
}

impl Owned {
    pub fn spawn(mut cmd: Command, what: &str) -> Owned {
        let child = cmd
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Owned {
            child,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child, which we have not reaped yet.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "signal {sig} to {}", self.what);
    }

    /// Wait (without blocking the runtime) until it has exited; its status, or `None` after
    /// `timeout`.
    pub async fn exited(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// `kill -9`, and wait until it is gone.
    pub async fn kill9(&mut self) {
        self.signal(libc::SIGKILL);
        self.exited(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{} survived SIGKILL", self.what));
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The processes whose parent is `pid` (read from `/proc`).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some((_, ppid)) = stat(child)
            && ppid == pid
        {
            out.push(child);
        }
    }
    out
}

/// A process's state letter and parent, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(char, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces, so split after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Wait until each of `pids` (orphans of a server this test killed) has exited, and
/// `kill -9` any still there after `timeout`.
pub async fn wait_gone(pids: &[i32], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let alive: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|&p| stat(p).is_some_and(|(s, _)| s != 'Z'))
            .collect();
        if alive.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in alive {
                // SAFETY: a process of the server this test started and killed.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
