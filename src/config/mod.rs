//! One validated `Config` read from `.env` then the environment, so every later layer gets typed values and a bad variable fails at start with its name.
//!
//! Each section reads, checks and prints its own variables (`database`, `jwt`, `auth`, `password`, `rate_limit`,
//! `mail`, `oauth`, `admin`, `ui`, `webauthn`); `server` reads the values that sit directly on `Config`; `vars` (reading) and
//! `print` (`--print-config` lines) hold the shapes they share.

mod admin;
mod auth;
mod cache;
mod database;
mod jwt;
mod mail;
mod oauth;
mod password;
mod print;
mod rate_limit;
mod server;
mod ui;
mod vars;
mod webauthn;

#[cfg(test)]
mod pinned;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

pub use admin::BootstrapAdmin;
pub use auth::AuthConfig;
pub use cache::{CacheConfig, CacheMode};
pub use database::{Backend, DEFAULT_DATABASE_URL, DatabaseConfig, parse_database_url};
pub use jwt::{JwtAlgorithm, JwtConfig};
pub use mail::MailConfig;
pub use oauth::{GOOGLE_ISSUER, OAuthConfig, OidcProviderConfig};
pub use password::PasswordConfig;
pub use rate_limit::{RateLimitBackend, RateLimitConfig};
pub use server::LogFormat;
pub use ui::UiConfig;
pub use vars::Vars;
pub use webauthn::WebauthnConfig;

use print::Lines;

/// A configuration problem, always naming the variable at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl ConfigError {
    pub fn new(var: &'static str, message: impl Into<String>) -> Self {
        Self {
            var,
            message: message.into(),
        }
    }
}

/// What a secret shows instead of its value.
const MASK: &str = "********";

/// A value that must never be printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    pub cache: CacheConfig,
    pub password: PasswordConfig,
    pub rate_limit: RateLimitConfig,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_allowed_origins: Vec<String>,
    pub mail: MailConfig,
    /// 32 bytes, base64 in the environment.
    pub encryption_master_key: Option<Secret>,
    /// Older keys that only open values (`ENCRYPTION_READ_KEYS`), during a key rotation.
    pub encryption_read_keys: Vec<Secret>,
    pub oauth: OAuthConfig,
    pub admin: Option<BootstrapAdmin>,
    pub ui: UiConfig,
    pub webauthn: WebauthnConfig,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub request_timeout: Duration,
}

impl Config {
    /// Load `.env` from the working directory (without overriding the environment), then read.
    pub fn load() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => {
                return Err(ConfigError::new(
                    "DOTENV",
                    format!(".env is malformed: {e}"),
                ));
            }
        }
        Self::from_vars(&Vars::from_env())
    }

    /// Every section in turn (the order decides which of several bad variables is reported).
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let database = DatabaseConfig::from_vars(vars)?;
        let bind = server::bind(vars)?;
        let public_url = server::public_url(vars)?;
        let ui = UiConfig::from_vars(vars, &public_url)?;
        Ok(Self {
            database,
            bind,
            jwt: JwtConfig::from_vars(vars)?,
            auth: AuthConfig::from_vars(vars)?,
            cache: CacheConfig::from_vars(vars)?,
            password: PasswordConfig::from_vars(vars)?,
            rate_limit: RateLimitConfig::from_vars(vars)?,
            trusted_proxies: server::trusted_proxies(vars)?,
            cors_allowed_origins: server::cors_allowed_origins(vars)?,
            mail: MailConfig::from_vars(vars)?,
            encryption_master_key: server::encryption_master_key(vars)?,
            encryption_read_keys: server::encryption_read_keys(vars)?,
            oauth: OAuthConfig::from_vars(vars, &public_url)?,
            admin: BootstrapAdmin::from_vars(vars)?,
            webauthn: WebauthnConfig::from_vars(vars, &public_url, &ui.product_name)?,
            ui,
            public_url,
            log_format: server::log_format(vars)?,
            log_filter: server::log_filter(vars)?,
            request_timeout: server::request_timeout(vars)?,
        })
    }

    /// Where the development JWT key lives: beside the SQLite database.
    pub fn dev_jwt_key_path(&self) -> Option<PathBuf> {
        let db = self.database.sqlite_path.as_deref()?;
        Some(db.parent().unwrap_or(Path::new(".")).join("jwt_secret"))
    }

    /// The effective configuration, one `NAME=value` line each, secrets masked.
    pub fn render_masked(&self) -> String {
        let mut out = Lines::default();
        self.database.render(&mut out);
        out.value("GATEHOUSE_BIND", self.bind);
        out.value("GATEHOUSE_PUBLIC_URL", &self.public_url);
        out.seconds("GATEHOUSE_REQUEST_TIMEOUT", self.request_timeout);
        out.list("CORS_ALLOWED_ORIGINS", &self.cors_allowed_origins);
        self.jwt
            .render(self.dev_jwt_key_path().as_deref(), &mut out);
        self.auth.render(&mut out);
        self.cache.render(&mut out);
        self.password.render(&mut out);
        self.rate_limit.render(&mut out);
        out.list("TRUSTED_PROXIES", &self.trusted_proxies);
        self.mail.render(&mut out);
        out.secret("ENCRYPTION_MASTER_KEY", self.encryption_master_key.as_ref());
        out.secret("ENCRYPTION_READ_KEYS", self.encryption_read_keys.first());
        self.oauth.render(&mut out);
        BootstrapAdmin::render(self.admin.as_ref(), &mut out);
        self.ui.render(&mut out);
        self.webauthn.render(&mut out);
        out.choice("LOG_FORMAT", server::LOG_FORMATS, self.log_format);
        out.value("RUST_LOG", &self.log_filter);
        out.finish()
    }
}
