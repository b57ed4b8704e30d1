//! Where the database is (one URL, or `DB_*` parts that build one) and how the pool behaves.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::print::Lines;
use super::{ConfigError, MASK, Secret, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// Where the database is and how the pool behaves.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub backend: Backend,
    /// Full connection URL (may hold a password: print with [`DatabaseConfig::masked_url`]).
    pub url: Secret,
    /// For SQLite, the file (None for an in-memory database).
    pub sqlite_path: Option<PathBuf>,
    pub pool_size: u32,
    pub max_overflow: u32,
    pub pool_recycle: Duration,
    pub connect_timeout: Duration,
}

impl DatabaseConfig {
    /// Build from a URL with default pool settings (used by tests and embedders).
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        let (backend, sqlite_path) = parse_database_url(url)?;
        Ok(Self {
            backend,
            url: Secret::new(url),
            sqlite_path,
            pool_size: 10,
            max_overflow: 20,
            pool_recycle: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(5),
        })
    }

    /// The URL, then the pool settings (defaults: those of [`DatabaseConfig::from_url`]).
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let base = Self::from_url(&database_url(vars)?)?;
        Ok(Self {
            pool_size: vars.number("DB_POOL_SIZE", base.pool_size.into(), 1..=10_000)?,
            max_overflow: vars.number("DB_MAX_OVERFLOW", base.max_overflow.into(), 0..=10_000)?,
            pool_recycle: vars.seconds(
                "DB_POOL_RECYCLE",
                base.pool_recycle.as_secs(),
                1..=86_400 * 7,
            )?,
            connect_timeout: vars.seconds(
                "DB_CONNECT_TIMEOUT",
                base.connect_timeout.as_secs(),
                1..=600,
            )?,
            ..base
        })
    }

    pub fn max_connections(&self) -> u32 {
        self.pool_size + self.max_overflow
    }

    /// The URL with any password replaced by `********`.
    pub fn masked_url(&self) -> String {
        match Url::parse(self.url.expose()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some(MASK));
                u.to_string()
            }
            _ => self.url.expose().to_string(),
        }
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.value("DATABASE_URL", self.masked_url());
        out.value("DB_TYPE", self.backend.name());
        out.value("DB_POOL_SIZE", self.pool_size);
        out.value("DB_MAX_OVERFLOW", self.max_overflow);
        out.seconds("DB_POOL_RECYCLE", self.pool_recycle);
        out.seconds("DB_CONNECT_TIMEOUT", self.connect_timeout);
    }
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/gatehouse.db";

/// Split a database URL into its backend and, for SQLite, the file path.
pub fn parse_database_url(url: &str) -> Result<(Backend, Option<PathBuf>), ConfigError> {
    const VAR: &str = "DATABASE_URL";
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() {
            return Err(ConfigError::new(VAR, "sqlite URL has no file path"));
        }
        if path == ":memory:" {
            return Ok((Backend::Sqlite, None));
        }
        return Ok((Backend::Sqlite, Some(PathBuf::from(path))));
    }
    let parsed = Url::parse(url).map_err(|e| ConfigError::new(VAR, format!("not a URL: {e}")))?;
    let backend = match parsed.scheme() {
        "postgres" | "postgresql" => Backend::Postgres,
        "mysql" | "mariadb" => Backend::MySql,
        other => {
            return Err(ConfigError::new(
                VAR,
                format!("unsupported scheme {other:?}; expected sqlite, postgres or mysql"),
            ));
        }
    };
    if parsed.host_str().unwrap_or_default().is_empty() {
        return Err(ConfigError::new(VAR, "the URL has no host"));
    }
    if parsed.path().trim_matches('/').is_empty() {
        return Err(ConfigError::new(VAR, "the URL names no database"));
    }
    Ok((backend, None))
}

/// `DATABASE_URL`, else a URL built from `DB_TYPE` and the other `DB_*` parts, else the default.
fn database_url(vars: &Vars) -> Result<String, ConfigError> {
    if let Some(url) = vars.get("DATABASE_URL") {
        return Ok(url.to_string());
    }
    if vars.get("DB_TYPE").is_none() {
        return Ok(DEFAULT_DATABASE_URL.to_string());
    }
    let backend = vars.choice(
        "DB_TYPE",
        Backend::Sqlite,
        &[
            ("sqlite", Backend::Sqlite),
            ("postgres", Backend::Postgres),
            ("postgresql", Backend::Postgres),
            ("mysql", Backend::MySql),
            ("mariadb", Backend::MySql),
        ],
    )?;
    if backend == Backend::Sqlite {
        let path = vars.get("DB_PATH").unwrap_or("./data/gatehouse.db");
        return Ok(format!("sqlite://{path}"));
    }
    let (scheme, default_port) = match backend {
        Backend::Postgres => ("postgres", 5432),
        _ => ("mysql", 3306),
    };
    let host = vars.get("DB_HOST").unwrap_or("127.0.0.1");
    let port: u16 = vars.number("DB_PORT", default_port, 1..=65535)?;
    let database = vars
        .get("DB_DATABASE")
        .ok_or_else(|| ConfigError::new("DB_DATABASE", "required when DB_TYPE is not sqlite"))?;
    let mut url = Url::parse(&format!("{scheme}://placeholder"))
        .map_err(|e| ConfigError::new("DB_TYPE", e.to_string()))?;
    url.set_host(Some(host))
        .map_err(|e| ConfigError::new("DB_HOST", format!("invalid host {host:?}: {e}")))?;
    let _ = url.set_port(Some(port));
    if let Some(user) = vars.get("DB_USERNAME") {
        let _ = url.set_username(user);
    }
    if let Some(password) = vars.get("DB_PASSWORD") {
        let _ = url.set_password(Some(password));
    }
    url.set_path(database);
    Ok(url.to_string())
}
