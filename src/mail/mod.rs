//! Outgoing mail off the request path: a bounded queue drained by a background task that sends over SMTP (pooled, retried) or, without `SMTP_URL`, writes `.eml` files to the outbox.

pub mod templates;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::{Semaphore, mpsc};

use crate::config::{ConfigError, MailConfig};

/// Messages waiting beyond this are dropped (and logged): mail never slows a request.
const QUEUE: usize = 1024;
/// Messages sent at once.
const PARALLEL: usize = 4;
/// Attempts per message, with 1 s, 2 s, 4 s … between them.
const ATTEMPTS: u32 = 4;

/// One message, as the templates make it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

enum Delivery {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// The handle flows use to send mail. Cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    queue: mpsc::Sender<Mail>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

fn transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let host = parsed.host_str().ok_or("no host")?.to_string();
    let implicit_tls = parsed.scheme() == "smtps";
    let port = parsed
        .port()
        .unwrap_or(if implicit_tls { 465 } else { 587 });
    let params = TlsParameters::new(host.clone()).map_err(|e| e.to_string())?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(Duration::from_secs(10)))
        .tls(if implicit_tls {
            Tls::Wrapper(params)
        } else {
            Tls::Opportunistic(params)
        });
    if !parsed.username().is_empty() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        builder = builder.credentials(Credentials::new(
            decode(parsed.username()),
            decode(parsed.password().unwrap_or("")),
        ));
    }
    Ok(builder.build())
}

impl Mailer {
    /// Check the configuration and start the background sender (call inside a Tokio runtime).
    pub fn start(config: &MailConfig) -> Result<Self, ConfigError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| ConfigError::new("MAIL_FROM", format!("not a mailbox: {e}")))?;
        let delivery = match &config.smtp_url {
            // The error names the variable only: the URL may carry a password.
            Some(url) => Delivery::Smtp(transport(url.expose()).map_err(|_| {
                ConfigError::new("SMTP_URL", "is not a valid smtp:// or smtps:// URL")
            })?),
            None => Delivery::Outbox(config.outbox_dir.clone()),
        };
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(rx, Arc::new(delivery), from));
        Ok(Self { queue })
    }

    /// Queue a message; returns at once. A full queue drops it with a warning.
    pub fn send(&self, mail: Mail) {
        if let Err(e) = self.queue.try_send(mail) {
            metrics::counter!("gatehouse_mail_total", "outcome" => "dropped").increment(1);
            tracing::warn!(reason = %e, "mail queue full or closed; message dropped");
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Mail>, delivery: Arc<Delivery>, from: Mailbox) {
    let slots = Arc::new(Semaphore::new(PARALLEL));
    while let Some(mail) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (delivery, from) = (delivery.clone(), from.clone());
        tokio::spawn(async move {
            deliver(&delivery, &from, mail).await;
            drop(slot);
        });
    }
}

fn build(from: &Mailbox, mail: &Mail) -> Result<lettre::Message, String> {
    let to: Mailbox = mail.to.parse().map_err(|e| format!("recipient: {e}"))?;
    lettre::Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| e.to_string())
}

async fn deliver(delivery: &Delivery, from: &Mailbox, mail: Mail) {
    let message = match build(from, &mail) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "mail not sent: could not build the message");
            return;
        }
    };
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let outcome = match delivery {
            Delivery::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Delivery::Outbox(dir) => write_eml(dir, &message.formatted()).await,
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("gatehouse_mail_total", "outcome" => "sent").increment(1);
                tracing::info!(subject = %mail.subject, "mail sent");
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "mail not sent; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => {
                metrics::counter!("gatehouse_mail_total", "outcome" => "failed").increment(1);
                tracing::error!(error = %e, "mail not sent; giving up");
            }
        }
    }
}

/// One `.eml` file per message, written under a temporary name and renamed, so a reader never
/// sees half a message.
async fn write_eml(dir: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
        uuid::Uuid::now_v7()
    );
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    tokio::fs::rename(&tmp, dir.join(format!("{name}.eml")))
        .await
        .map_err(|e| e.to_string())
}
