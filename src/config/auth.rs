//! Login and session rules: refresh-token reuse grace, lockout after failed logins, registration behaviour.

use std::time::Duration;

use super::print::Lines;
use super::{ConfigError, Vars};

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub refresh_reuse_grace: Duration,
    pub max_login_attempts: u32,
    pub lockout: Duration,
    pub auto_login_on_register: bool,
    pub require_email_verification: bool,
    /// Register answers the same whether or not the email is taken, and mails the owner.
    pub register_conceal_existing: bool,
}

impl AuthConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            refresh_reuse_grace: vars.seconds("AUTH_REFRESH_REUSE_GRACE_SECONDS", 10, 0..=3600)?,
            max_login_attempts: vars.number("AUTH_MAX_LOGIN_ATTEMPTS", 5, 1..=1000)?,
            lockout: Duration::from_secs(
                60 * vars.number::<u64>("AUTH_LOCKOUT_MINUTES", 15, 1..=60 * 24 * 30)?,
            ),
            auto_login_on_register: vars.bool("AUTH_AUTO_LOGIN_ON_REGISTER", false)?,
            require_email_verification: vars.bool("AUTH_REQUIRE_EMAIL_VERIFICATION", false)?,
            register_conceal_existing: conceal_existing(vars)?,
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.seconds("AUTH_REFRESH_REUSE_GRACE_SECONDS", self.refresh_reuse_grace);
        out.value("AUTH_MAX_LOGIN_ATTEMPTS", self.max_login_attempts);
        out.value("AUTH_LOCKOUT_MINUTES", self.lockout.as_secs() / 60);
        out.value("AUTH_AUTO_LOGIN_ON_REGISTER", self.auto_login_on_register);
        out.value(
            "AUTH_REQUIRE_EMAIL_VERIFICATION",
            self.require_email_verification,
        );
        out.value(
            "AUTH_REGISTER_CONCEAL_EXISTING",
            self.register_conceal_existing,
        );
    }
}

/// `AUTH_REGISTER_CONCEAL_EXISTING` only makes sense when nobody can sign in before proving the
/// address is theirs: otherwise the answer to the login that follows tells what register hid.
fn conceal_existing(vars: &Vars) -> Result<bool, ConfigError> {
    const VAR: &str = "AUTH_REGISTER_CONCEAL_EXISTING";
    let conceal = vars.bool(VAR, false)?;
    if conceal && !vars.bool("AUTH_REQUIRE_EMAIL_VERIFICATION", false)? {
        return Err(ConfigError::new(
            VAR,
            "needs AUTH_REQUIRE_EMAIL_VERIFICATION=true",
        ));
    }
    if conceal && vars.bool("AUTH_AUTO_LOGIN_ON_REGISTER", false)? {
        return Err(ConfigError::new(
            VAR,
            "cannot be combined with AUTH_AUTO_LOGIN_ON_REGISTER=true",
        ));
    }
    Ok(conceal)
}
