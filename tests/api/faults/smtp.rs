//! The SMTP server down: requests that send mail still answer at once, and the mail goes out
//! when the server is back. The server is a minimal SMTP sink of this test's own, so it can be
//! stopped and started again on the same port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::crash::send;
use super::procs::spare_port;
use super::{ms, report};
use crate::helpers::TestApp;

/// Accepts every message and keeps it; `stop` closes the port and every open connection.
struct Sink {
    received: Arc<Mutex<Vec<String>>>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Sink {
    async fn start(port: u16, received: Arc<Mutex<Vec<String>>>) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (inbox, conns) = (received.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let inbox = inbox.clone();
                conns.lock().unwrap().push(tokio::spawn(async move {
                    let _ = session(stream, inbox).await;
                }));
            }
        });
        tasks.lock().unwrap().push(accept);
        Sink { received, tasks }
    }

    /// Close the port and every connection, and wait until they are closed.
    async fn stop(&self) {
        // Until none is left: the accept loop may add a connection while it is being stopped.
        loop {
            let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
            if tasks.is_empty() {
                return;
            }
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// One SMTP conversation: enough of RFC 5321 for lettre.
async fn session(
    stream: tokio::net::TcpStream,
    inbox: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => write.write_all(b"250 sink\r\n").await?,
            "DATA" => {
                write.write_all(b"354 end with .\r\n").await?;
                let mut message = String::new();
                while let Some(l) = lines.next_line().await? {
                    if l == "." {
                        break;
                    }
                    message.push_str(&l);
                    message.push('\n');
                }
                inbox.lock().unwrap().push(message);
                write.write_all(b"250 queued\r\n").await?;
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => write.write_all(b"250 ok\r\n").await?,
        }
    }
    Ok(())
}

/// Wait until `sink` holds `n` messages; when it did.
async fn delivered(sink: &Sink, n: usize, within: Duration) -> Instant {
    let started = Instant::now();
    while sink.count() < n {
        assert!(
            started.elapsed() < within,
            "{} of {n} messages after {within:?}",
            sink.count()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Instant::now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_fails_no_request_and_the_mail_goes_out_when_it_returns() {
    let _serial = super::serial().await;
    let port = spare_port();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Sink::start(port, received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("gh.db").display());
    let smtp = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::start(&db, dir.path(), &[("SMTP_URL", &smtp)]).await;
    const WHILE_DOWN: usize = 5;
    // Each registration mails a verification link; then a reset link.
    for i in 0..=WHILE_DOWN {
        app.register(&format!("mail{i}@example.com")).await;
    }
    let reset = app.url("/api/v1/auth/password-reset/request");
    let s = send(&app.client, &reset, json!({"email": "mail0@example.com"})).await;
    assert_eq!(s.status, 202, "{s:?}");
    let before = WHILE_DOWN + 2;
    delivered(&sink, before, Duration::from_secs(10)).await;

    sink.stop().await;
    drop(sink);
    let mut slowest = Duration::ZERO;
    for i in 1..=WHILE_DOWN {
        let s = send(
            &app.client,
            &reset,
            json!({"email": format!("mail{i}@example.com")}),
        )
        .await;
        assert_eq!(s.status, 202, "{s:?}");
        slowest = slowest.max(s.latency());
    }
    // A registration (its verification mail) and a login do not care either.
    let started = Instant::now();
    app.register("while-down@example.com").await;
    app.login("while-down@example.com").await;
    slowest = slowest.max(started.elapsed());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        received.lock().unwrap().len(),
        before,
        "delivered while down"
    );

    let sink = Sink::start(port, received.clone()).await;
    let up = Instant::now();
    let all = delivered(&sink, before + WHILE_DOWN + 1, Duration::from_secs(15)).await;
    report(
        "smtp down",
        &[
            ("mails_while_down", (WHILE_DOWN + 1).to_string()),
            ("slowest_request_while_down_ms", ms(slowest)),
            ("all_delivered_after_back_ms", ms(all - up)),
        ],
    );
    let late = received.lock().unwrap()[before..].to_vec();
    for i in 1..=WHILE_DOWN {
        let to = format!("To: mail{i}@example.com");
        assert!(
            late.iter().any(|m| m.contains(&to) && m.contains("reset")),
            "no reset mail to mail{i} after the server came back: {late:?}"
        );
    }
    assert!(
        late.iter()
            .any(|m| m.contains("To: while-down@example.com"))
    );
    assert!(
        slowest < Duration::from_secs(1),
        "a request waited {slowest:?} for the mail"
    );
    app.stop().await;
}
