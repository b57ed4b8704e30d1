//! Where the tests' mail goes and how they read it: an SMTP server of the tests' own (it keeps every message, and can go down and come back on its port) or the `.eml` outbox, quoted-printable decoding, and the token of a link.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How long a test waits for mail that must come.
const MAIL_WAIT: Duration = Duration::from_secs(10);

/// A small SMTP server on a free port of 127.0.0.1 that keeps every message it is given (the
/// DATA, dot-unstuffed), on a runtime of its own so that its connections are no task of the
/// server under test (see [`super::TestApp::settle`]). Stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Received>,
    runtime: Option<tokio::runtime::Runtime>,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

struct Received {
    messages: Mutex<Vec<String>>,
    count: watch::Sender<usize>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smtp-sink")
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .spawn(TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap()
            .unwrap();
        let mut sink = SmtpSink {
            port: listener.local_addr().unwrap().port(),
            received: Arc::new(Received {
                messages: Mutex::new(Vec::new()),
                count: watch::Sender::new(0),
            }),
            runtime: Some(runtime),
            running: None,
        };
        sink.serve(listener);
        sink
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, stopped) = oneshot::channel();
        let received = self.received.clone();
        let task = self.runtime.as_ref().unwrap().spawn(async move {
            let mut sessions = JoinSet::new();
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            sessions.spawn(session(stream, received.clone()));
                        }
                    }
                    _ = &mut stopped => break,
                }
            }
            drop(listener);
            // Every open connection ends here, before `stop` returns.
            sessions.shutdown().await;
        });
        self.running = Some((stop, task));
    }

    /// Go down: the port refuses connections and every open connection is closed.
    pub async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("the sink is running");
        let _ = stop.send(());
        task.await.unwrap();
    }

    /// Come back on the same port, keeping the messages received so far.
    pub async fn restart(&mut self) {
        assert!(self.running.is_none(), "the sink is running");
        let addr = ("127.0.0.1", self.port);
        let listener = self
            .runtime
            .as_ref()
            .unwrap()
            .spawn(async move { TcpListener::bind(addr).await })
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("bind the SMTP sink's port again: {e}"));
        self.serve(listener);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        self.received.messages.lock().unwrap().clone()
    }

    /// Wait (up to 10 s) until `n` messages have arrived, and return them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let mut count = self.received.count.subscribe();
        if tokio::time::timeout(MAIL_WAIT, count.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!(
                "expected {n} messages, got {}",
                self.received.messages.lock().unwrap().len()
            );
        }
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // A runtime may not be dropped inside another one: let it go without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One SMTP conversation (RFC 5321): greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
async fn session(stream: TcpStream, received: Arc<Received>) -> std::io::Result<()> {
    let (reader, mut out) = stream.into_split();
    let mut input = BufReader::new(reader);
    out.write_all(b"220 127.0.0.1 gatehouse test sink\r\n")
        .await?;
    let (mut sender, mut recipients) = (false, 0);
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line)
            .trim_end()
            .to_ascii_uppercase();
        let verb = command.split([' ', ':']).next().unwrap_or_default();
        let reply: &[u8] = match verb {
            "EHLO" => b"250-127.0.0.1\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "MAIL" => {
                (sender, recipients) = (true, 0);
                b"250 OK\r\n"
            }
            "RCPT" if sender => {
                recipients += 1;
                b"250 OK\r\n"
            }
            "RCPT" => b"503 5.5.1 MAIL first\r\n",
            "DATA" if recipients > 0 => {
                out.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let message = read_data(&mut input).await?;
                let mut messages = received.messages.lock().unwrap();
                messages.push(message);
                received.count.send_replace(messages.len());
                (sender, recipients) = (false, 0);
                b"250 OK\r\n"
            }
            "DATA" => b"503 5.5.1 RCPT first\r\n",
            "RSET" => {
                (sender, recipients) = (false, 0);
                b"250 OK\r\n"
            }
            "QUIT" => {
                out.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 5.5.2 not implemented\r\n",
        };
        out.write_all(reply).await?;
    }
}

/// The lines of a DATA section up to the lone `.`, with a doubled leading dot made single.
async fn read_data(
    input: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
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
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let found = read_eml_dir(dir);
        if found.len() >= n {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} messages in {}, got {}",
            dir.display(),
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
