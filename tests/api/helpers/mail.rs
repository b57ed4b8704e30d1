//! Where the tests' mail goes and how they read it: a real SMTP server (Python's `smtpd`) or the `.eml` outbox, quoted-printable decoding, and the token of a link.

use std::path::{Path, PathBuf};

/// A real SMTP server (Python's standard `smtpd`) on a free port, keeping every message it
/// receives as a file; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

const SMTP_SERVER: &str = r#"
import asyncore, itertools, os, sys, warnings
warnings.filterwarnings("ignore")
import smtpd
class Sink(smtpd.SMTPServer):
    n = itertools.count()
    def process_message(self, peer, mailfrom, rcpttos, data, **kw):
        path = os.path.join(sys.argv[2], "%05d.eml" % next(self.n))
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
Sink(("127.0.0.1", int(sys.argv[1])), None, decode_data=False)
asyncore.loop()
"#;

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new("python3")
            .args(["-W", "ignore", "-c", SMTP_SERVER, &port.to_string()])
            .arg(dir.path())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs the test SMTP server");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return SmtpSink {
                    port,
                    dir,
                    _child: child,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the test SMTP server did not start");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        read_eml_dir(self.dir.path())
    }

    /// Wait (up to 10 s) until `n` messages have arrived, and return them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        wait_for_eml(self.dir.path(), n).await
    }
}

/// The `.eml` files of a directory, oldest first (names sort by time).
pub fn read_eml_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Wait (up to 10 s) until `dir` holds `n` messages.
pub async fn wait_for_eml(dir: &Path, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let found = read_eml_dir(dir);
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} messages in {}, got {}",
        dir.display(),
        read_eml_dir(dir).len()
    );
}

/// A message with its quoted-printable parts decoded (soft line breaks joined, `=XX` bytes
/// restored), as a mail client shows it.
pub fn decode_qp(message: &str) -> String {
    let joined = message.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of the first link to `path` (e.g. `/verify-email`) in a message.
pub fn link_token(message: &str, path: &str) -> Option<String> {
    let message = &decode_qp(message);
    let at = message.find(&format!("{path}?token="))?;
    let rest = &message[at + path.len() + "?token=".len()..];
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect(),
    )
}
