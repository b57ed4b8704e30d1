//! Where mail goes: an SMTP server, or files in an outbox directory when none is set.

use std::path::PathBuf;

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp_url: Option<Secret>,
    pub outbox_dir: PathBuf,
    pub from: String,
}

impl MailConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            smtp_url: vars.secret_url("SMTP_URL", ["smtp", "smtps"])?,
            outbox_dir: PathBuf::from(vars.get("MAIL_OUTBOX_DIR").unwrap_or("./data/outbox")),
            from: vars.string("MAIL_FROM", "Gatehouse <no-reply@localhost>"),
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.secret("SMTP_URL", self.smtp_url.as_ref());
        out.value("MAIL_OUTBOX_DIR", self.outbox_dir.display());
        out.value("MAIL_FROM", &self.from);
    }
}
