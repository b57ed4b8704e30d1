//! One validated `Config` read from `.env` then the environment, so every later layer gets typed values and a bad variable fails at start with its name.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

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
        f.write_str("********")
    }
}

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

    pub fn max_connections(&self) -> u32 {
        self.pool_size + self.max_overflow
    }

    /// The URL with any password replaced by `********`.
    pub fn masked_url(&self) -> String {
        match Url::parse(self.url.expose()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("********"));
                u.to_string()
            }
            _ => self.url.expose().to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    HS256,
    EdDSA,
    ES256,
    RS256,
}

#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub secret: Option<Secret>,
    pub algorithm: JwtAlgorithm,
    pub private_key_file: Option<PathBuf>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub refresh_reuse_grace: Duration,
    pub max_login_attempts: u32,
    pub lockout: Duration,
    pub auto_login_on_register: bool,
    pub require_email_verification: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub require_classes: bool,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Threads that hash passwords (default: the number of cores).
    pub hash_workers: usize,
    /// Hash jobs allowed to wait for a worker before new ones get 503.
    pub hash_queue: usize,
}

impl PasswordConfig {
    /// The password policy these settings describe.
    pub fn policy(&self) -> crate::domain::password_policy::PasswordPolicy {
        crate::domain::password_policy::PasswordPolicy {
            min_length: self.min_length,
            require_classes: self.require_classes,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub backend: RateLimitBackend,
    pub redis_url: Option<Secret>,
    pub login_per_minute_ip_email: u32,
    pub login_per_minute_ip: u32,
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp_url: Option<Secret>,
    pub outbox_dir: PathBuf,
    pub from: String,
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub enabled: bool,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct BootstrapAdmin {
    pub email: String,
    pub password: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub bind: SocketAddr,
    pub public_url: Url,
    pub jwt: JwtConfig,
    pub auth: AuthConfig,
    pub password: PasswordConfig,
    pub rate_limit: RateLimitConfig,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_allowed_origins: Vec<String>,
    pub mail: MailConfig,
    /// 32 bytes, base64 in the environment.
    pub encryption_master_key: Option<Secret>,
    pub oauth: OAuthConfig,
    pub admin: Option<BootstrapAdmin>,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub request_timeout: Duration,
}

/// The variables as read: the environment over `.env` (loaded by the caller).
pub struct Vars(HashMap<String, String>);

impl Vars {
    /// Snapshot of the process environment.
    pub fn from_env() -> Self {
        Self(std::env::vars().collect())
    }

    /// An explicit set (tests, embedders).
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A set variable, trimmed; empty counts as unset.
    fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn parse<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(var, format!("invalid value {raw:?}: {e}"))),
        }
    }

    fn number(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let n: u64 = self.parse(var, default)?;
        if n < min || n > max {
            return Err(ConfigError::new(
                var,
                format!("{n} is out of range ({min}..={max})"),
            ));
        }
        Ok(n)
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::new(
                var,
                format!("expected true or false, got {other:?}"),
            )),
        }
    }

    fn choice<T: Copy>(
        &self,
        var: &'static str,
        default: T,
        options: &[(&str, T)],
    ) -> Result<T, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(raw))
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                ConfigError::new(
                    var,
                    format!(
                        "unknown value {raw:?}; expected one of {}",
                        names.join(", ")
                    ),
                )
            })
    }

    fn secret(&self, var: &'static str) -> Option<Secret> {
        self.get(var).map(Secret::new)
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

fn database_url(vars: &Vars) -> Result<String, ConfigError> {
    if let Some(url) = vars.get("DATABASE_URL") {
        return Ok(url.to_string());
    }
    let Some(db_type) = vars.get("DB_TYPE") else {
        return Ok(DEFAULT_DATABASE_URL.to_string());
    };
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
    let _ = db_type;
    if backend == Backend::Sqlite {
        let path = vars.get("DB_PATH").unwrap_or("./data/gatehouse.db");
        return Ok(format!("sqlite://{path}"));
    }
    let (scheme, default_port) = match backend {
        Backend::Postgres => ("postgres", 5432),
        _ => ("mysql", 3306),
    };
    let host = vars.get("DB_HOST").unwrap_or("127.0.0.1");
    let port = vars.number("DB_PORT", default_port, 1, 65535)?;
    let database = vars
        .get("DB_DATABASE")
        .ok_or_else(|| ConfigError::new("DB_DATABASE", "required when DB_TYPE is not sqlite"))?;
    let mut url = Url::parse(&format!("{scheme}://placeholder"))
        .map_err(|e| ConfigError::new("DB_TYPE", e.to_string()))?;
    url.set_host(Some(host))
        .map_err(|e| ConfigError::new("DB_HOST", format!("invalid host {host:?}: {e}")))?;
    let _ = url.set_port(Some(port as u16));
    if let Some(user) = vars.get("DB_USERNAME") {
        let _ = url.set_username(user);
    }
    if let Some(password) = vars.get("DB_PASSWORD") {
        let _ = url.set_password(Some(password));
    }
    url.set_path(database);
    Ok(url.to_string())
}

fn rate_limits(vars: &Vars) -> Result<(u32, u32), ConfigError> {
    const VAR: &str = "RATE_LIMIT_LOGIN_PER_MINUTE";
    let Some(raw) = vars.get(VAR) else {
        return Ok((10, 60));
    };
    let parse = |s: &str| -> Result<u32, ConfigError> {
        s.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                ConfigError::new(
                    VAR,
                    format!("expected N (per IP+email) or N,M (per IP+email, per IP), got {raw:?}"),
                )
            })
    };
    match raw.split_once(',') {
        Some((a, b)) => Ok((parse(a)?, parse(b)?)),
        None => {
            let n = parse(raw)?;
            Ok((n, n.saturating_mul(6)))
        }
    }
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

    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let url = database_url(vars)?;
        let mut database = DatabaseConfig::from_url(&url)?;
        database.pool_size = vars.number("DB_POOL_SIZE", 10, 1, 10_000)? as u32;
        database.max_overflow = vars.number("DB_MAX_OVERFLOW", 20, 0, 10_000)? as u32;
        database.pool_recycle =
            Duration::from_secs(vars.number("DB_POOL_RECYCLE", 3600, 1, 86_400 * 7)?);
        database.connect_timeout =
            Duration::from_secs(vars.number("DB_CONNECT_TIMEOUT", 5, 1, 600)?);

        let bind: SocketAddr =
            vars.parse("GATEHOUSE_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let public_url = match vars.get("GATEHOUSE_PUBLIC_URL") {
            None => Url::parse("http://127.0.0.1:8080").expect("static URL"),
            Some(raw) => {
                let u = Url::parse(raw).map_err(|e| {
                    ConfigError::new("GATEHOUSE_PUBLIC_URL", format!("not a URL: {e}"))
                })?;
                if !matches!(u.scheme(), "http" | "https") {
                    return Err(ConfigError::new(
                        "GATEHOUSE_PUBLIC_URL",
                        "must be an http or https URL",
                    ));
                }
                u
            }
        };

        let algorithm = vars.choice(
            "JWT_ALGORITHM",
            JwtAlgorithm::HS256,
            &[
                ("HS256", JwtAlgorithm::HS256),
                ("EdDSA", JwtAlgorithm::EdDSA),
                ("ES256", JwtAlgorithm::ES256),
                ("RS256", JwtAlgorithm::RS256),
            ],
        )?;
        let secret = vars.secret("JWT_SECRET");
        if let Some(s) = &secret
            && s.expose().len() < 32
        {
            return Err(ConfigError::new("JWT_SECRET", "must be at least 32 bytes"));
        }
        let private_key_file = vars.get("JWT_PRIVATE_KEY_FILE").map(PathBuf::from);
        if algorithm != JwtAlgorithm::HS256 && private_key_file.is_none() {
            return Err(ConfigError::new(
                "JWT_PRIVATE_KEY_FILE",
                "required when JWT_ALGORITHM is not HS256",
            ));
        }
        if let Some(path) = &private_key_file
            && !path.is_file()
        {
            return Err(ConfigError::new(
                "JWT_PRIVATE_KEY_FILE",
                format!("{} is not a readable file", path.display()),
            ));
        }
        let jwt = JwtConfig {
            secret,
            algorithm,
            private_key_file,
            access_token_ttl: Duration::from_secs(vars.number(
                "JWT_ACCESS_TOKEN_EXPIRES",
                900,
                10,
                86_400,
            )?),
            refresh_token_ttl: Duration::from_secs(vars.number(
                "JWT_REFRESH_TOKEN_EXPIRES",
                604_800,
                60,
                86_400 * 365,
            )?),
        };

        let auth = AuthConfig {
            refresh_reuse_grace: Duration::from_secs(vars.number(
                "AUTH_REFRESH_REUSE_GRACE_SECONDS",
                10,
                0,
                3600,
            )?),
            max_login_attempts: vars.number("AUTH_MAX_LOGIN_ATTEMPTS", 5, 1, 1000)? as u32,
            lockout: Duration::from_secs(
                60 * vars.number("AUTH_LOCKOUT_MINUTES", 15, 1, 60 * 24 * 30)?,
            ),
            auto_login_on_register: vars.bool("AUTH_AUTO_LOGIN_ON_REGISTER", false)?,
            require_email_verification: vars.bool("AUTH_REQUIRE_EMAIL_VERIFICATION", false)?,
        };

        let _hash_algo = vars.choice("PASSWORD_HASH", "argon2id", &[("argon2id", "argon2id")])?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hash_workers = vars.number("PASSWORD_HASH_WORKERS", cores as u64, 1, 1024)? as usize;
        let password = PasswordConfig {
            min_length: vars.number("PASSWORD_MIN_LENGTH", 8, 1, 128)? as usize,
            require_classes: vars.bool("PASSWORD_REQUIRE_CLASSES", true)?,
            argon2_memory_kib: vars.number(
                "PASSWORD_ARGON2_MEMORY_KIB",
                19_456,
                8,
                4 * 1024 * 1024,
            )? as u32,
            argon2_iterations: vars.number("PASSWORD_ARGON2_ITERATIONS", 2, 1, 100)? as u32,
            argon2_parallelism: vars.number("PASSWORD_ARGON2_PARALLELISM", 1, 1, 64)? as u32,
            hash_workers,
            hash_queue: vars.number(
                "PASSWORD_HASH_QUEUE",
                (hash_workers * 32) as u64,
                1,
                1_000_000,
            )? as usize,
        };

        let (per_ip_email, per_ip) = rate_limits(vars)?;
        let rl_backend = vars.choice(
            "RATE_LIMIT_BACKEND",
            RateLimitBackend::Memory,
            &[
                ("memory", RateLimitBackend::Memory),
                ("redis", RateLimitBackend::Redis),
            ],
        )?;
        let redis_url = vars.secret("REDIS_URL");
        if let Some(u) = &redis_url
            && !(u.expose().starts_with("redis://") || u.expose().starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis:// or rediss://",
            ));
        }
        if rl_backend == RateLimitBackend::Redis && redis_url.is_none() {
            return Err(ConfigError::new(
                "REDIS_URL",
                "required when RATE_LIMIT_BACKEND=redis",
            ));
        }
        let rate_limit = RateLimitConfig {
            backend: rl_backend,
            redis_url,
            login_per_minute_ip_email: per_ip_email,
            login_per_minute_ip: per_ip,
        };

        let trusted_proxies = match vars.get("TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(raw) => raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<IpNet>()
                        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            ConfigError::new(
                                "TRUSTED_PROXIES",
                                format!("{s:?} is not an IP or CIDR"),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let cors_allowed_origins = vars
            .get("CORS_ALLOWED_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s == "*" || Url::parse(s).is_ok() {
                            Ok(s.to_string())
                        } else {
                            Err(ConfigError::new(
                                "CORS_ALLOWED_ORIGINS",
                                format!("{s:?} is not an origin"),
                            ))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();

        let smtp_url = vars.secret("SMTP_URL");
        if let Some(u) = &smtp_url
            && !(u.expose().starts_with("smtp://") || u.expose().starts_with("smtps://"))
        {
            return Err(ConfigError::new(
                "SMTP_URL",
                "must start with smtp:// or smtps://",
            ));
        }
        let mail = MailConfig {
            smtp_url,
            outbox_dir: PathBuf::from(vars.get("MAIL_OUTBOX_DIR").unwrap_or("./data/outbox")),
            from: vars
                .get("MAIL_FROM")
                .unwrap_or("Gatehouse <no-reply@localhost>")
                .to_string(),
        };

        let encryption_master_key = vars.secret("ENCRYPTION_MASTER_KEY");
        if let Some(k) = &encryption_master_key {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(k.expose())
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(k.expose()))
                .map_err(|_| ConfigError::new("ENCRYPTION_MASTER_KEY", "is not valid base64"))?;
            if decoded.len() != 32 {
                return Err(ConfigError::new(
                    "ENCRYPTION_MASTER_KEY",
                    format!("must decode to 32 bytes, got {}", decoded.len()),
                ));
            }
        }

        let oauth = OAuthConfig {
            enabled: vars.bool("OAUTH_ENABLED", false)?,
            google_client_id: vars.get("GOOGLE_CLIENT_ID").map(str::to_string),
            google_client_secret: vars.secret("GOOGLE_CLIENT_SECRET"),
            github_client_id: vars.get("GITHUB_CLIENT_ID").map(str::to_string),
            github_client_secret: vars.secret("GITHUB_CLIENT_SECRET"),
        };

        let admin = match (vars.get("ADMIN_USERNAME"), vars.secret("ADMIN_PASSWORD")) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "ADMIN_PASSWORD",
                    "required when ADMIN_USERNAME is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "ADMIN_USERNAME",
                    "required when ADMIN_PASSWORD is set",
                ));
            }
            (Some(email), Some(password)) => {
                crate::domain::email::Email::parse(email).map_err(|e| {
                    ConfigError::new("ADMIN_USERNAME", format!("must be an email address: {e}"))
                })?;
                Some(BootstrapAdmin {
                    email: email.to_string(),
                    password,
                })
            }
        };

        let log_format = vars.choice(
            "LOG_FORMAT",
            LogFormat::Pretty,
            &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)],
        )?;
        let log_filter = vars.get("RUST_LOG").unwrap_or("info").to_string();
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;

        Ok(Self {
            database,
            bind,
            public_url,
            jwt,
            auth,
            password,
            rate_limit,
            trusted_proxies,
            cors_allowed_origins,
            mail,
            encryption_master_key,
            oauth,
            admin,
            log_format,
            log_filter,
            request_timeout: Duration::from_secs(vars.number(
                "GATEHOUSE_REQUEST_TIMEOUT",
                30,
                1,
                3600,
            )?),
        })
    }

    /// Where the development JWT key lives: beside the SQLite database.
    pub fn dev_jwt_key_path(&self) -> Option<PathBuf> {
        let db = self.database.sqlite_path.as_deref()?;
        Some(db.parent().unwrap_or(Path::new(".")).join("jwt_secret"))
    }

    /// The effective configuration, one `NAME=value` line each, secrets masked.
    pub fn render_masked(&self) -> String {
        fn mask(s: &Option<Secret>) -> &'static str {
            if s.is_some() { "********" } else { "(unset)" }
        }
        fn opt(s: &Option<String>) -> String {
            s.clone().unwrap_or_else(|| "(unset)".into())
        }
        let d = &self.database;
        let lines: Vec<(&str, String)> = vec![
            ("DATABASE_URL", d.masked_url()),
            ("DB_TYPE", d.backend.name().into()),
            ("DB_POOL_SIZE", d.pool_size.to_string()),
            ("DB_MAX_OVERFLOW", d.max_overflow.to_string()),
            ("DB_POOL_RECYCLE", d.pool_recycle.as_secs().to_string()),
            (
                "DB_CONNECT_TIMEOUT",
                d.connect_timeout.as_secs().to_string(),
            ),
            ("GATEHOUSE_BIND", self.bind.to_string()),
            ("GATEHOUSE_PUBLIC_URL", self.public_url.to_string()),
            (
                "GATEHOUSE_REQUEST_TIMEOUT",
                self.request_timeout.as_secs().to_string(),
            ),
            ("CORS_ALLOWED_ORIGINS", self.cors_allowed_origins.join(",")),
            (
                "JWT_SECRET",
                match (&self.jwt.secret, self.dev_jwt_key_path()) {
                    (Some(_), _) => "********".into(),
                    (None, Some(p)) if self.jwt.algorithm == JwtAlgorithm::HS256 => {
                        format!("(development key in {})", p.display())
                    }
                    _ => "(unset)".into(),
                },
            ),
            ("JWT_ALGORITHM", format!("{:?}", self.jwt.algorithm)),
            (
                "JWT_PRIVATE_KEY_FILE",
                opt(&self
                    .jwt
                    .private_key_file
                    .as_ref()
                    .map(|p| p.display().to_string())),
            ),
            (
                "JWT_ACCESS_TOKEN_EXPIRES",
                self.jwt.access_token_ttl.as_secs().to_string(),
            ),
            (
                "JWT_REFRESH_TOKEN_EXPIRES",
                self.jwt.refresh_token_ttl.as_secs().to_string(),
            ),
            (
                "AUTH_REFRESH_REUSE_GRACE_SECONDS",
                self.auth.refresh_reuse_grace.as_secs().to_string(),
            ),
            (
                "AUTH_MAX_LOGIN_ATTEMPTS",
                self.auth.max_login_attempts.to_string(),
            ),
            (
                "AUTH_LOCKOUT_MINUTES",
                (self.auth.lockout.as_secs() / 60).to_string(),
            ),
            (
                "AUTH_AUTO_LOGIN_ON_REGISTER",
                self.auth.auto_login_on_register.to_string(),
            ),
            (
                "AUTH_REQUIRE_EMAIL_VERIFICATION",
                self.auth.require_email_verification.to_string(),
            ),
            ("PASSWORD_MIN_LENGTH", self.password.min_length.to_string()),
            (
                "PASSWORD_REQUIRE_CLASSES",
                self.password.require_classes.to_string(),
            ),
            ("PASSWORD_HASH", "argon2id".into()),
            (
                "PASSWORD_ARGON2_MEMORY_KIB",
                self.password.argon2_memory_kib.to_string(),
            ),
            (
                "PASSWORD_ARGON2_ITERATIONS",
                self.password.argon2_iterations.to_string(),
            ),
            (
                "PASSWORD_ARGON2_PARALLELISM",
                self.password.argon2_parallelism.to_string(),
            ),
            (
                "PASSWORD_HASH_WORKERS",
                self.password.hash_workers.to_string(),
            ),
            ("PASSWORD_HASH_QUEUE", self.password.hash_queue.to_string()),
            (
                "RATE_LIMIT_BACKEND",
                match self.rate_limit.backend {
                    RateLimitBackend::Memory => "memory".into(),
                    RateLimitBackend::Redis => "redis".into(),
                },
            ),
            ("REDIS_URL", mask(&self.rate_limit.redis_url).into()),
            (
                "RATE_LIMIT_LOGIN_PER_MINUTE",
                format!(
                    "{},{}",
                    self.rate_limit.login_per_minute_ip_email, self.rate_limit.login_per_minute_ip
                ),
            ),
            (
                "TRUSTED_PROXIES",
                self.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("SMTP_URL", mask(&self.mail.smtp_url).into()),
            (
                "MAIL_OUTBOX_DIR",
                self.mail.outbox_dir.display().to_string(),
            ),
            ("MAIL_FROM", self.mail.from.clone()),
            (
                "ENCRYPTION_MASTER_KEY",
                mask(&self.encryption_master_key).into(),
            ),
            ("OAUTH_ENABLED", self.oauth.enabled.to_string()),
            ("GOOGLE_CLIENT_ID", opt(&self.oauth.google_client_id)),
            (
                "GOOGLE_CLIENT_SECRET",
                mask(&self.oauth.google_client_secret).into(),
            ),
            ("GITHUB_CLIENT_ID", opt(&self.oauth.github_client_id)),
            (
                "GITHUB_CLIENT_SECRET",
                mask(&self.oauth.github_client_secret).into(),
            ),
            (
                "ADMIN_USERNAME",
                opt(&self.admin.as_ref().map(|a| a.email.clone())),
            ),
            (
                "ADMIN_PASSWORD",
                if self.admin.is_some() {
                    "********"
                } else {
                    "(unset)"
                }
                .into(),
            ),
            (
                "LOG_FORMAT",
                match self.log_format {
                    LogFormat::Pretty => "pretty".into(),
                    LogFormat::Json => "json".into(),
                },
            ),
            ("RUST_LOG", self.log_filter.clone()),
        ];
        lines
            .into_iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }
}

#[cfg(test)]
mod pinned;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&Vars::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_are_sqlite_in_data_dir() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database.backend, Backend::Sqlite);
        assert_eq!(
            c.database.sqlite_path,
            Some(PathBuf::from("./data/gatehouse.db"))
        );
        assert_eq!(c.database.max_connections(), 30);
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.dev_jwt_key_path(),
            Some(PathBuf::from("./data/jwt_secret"))
        );
    }

    #[test]
    fn database_url_wins_over_db_parts() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://u:p@db:5432/gh"),
            ("DB_TYPE", "mysql"),
            ("DB_DATABASE", "other"),
        ])
        .unwrap();
        assert_eq!(c.database.backend, Backend::Postgres);
        assert_eq!(c.database.masked_url(), "postgres://u:********@db:5432/gh");
    }

    #[test]
    fn db_parts_build_a_url() {
        let c = cfg(&[
            ("DB_TYPE", "mysql"),
            ("DB_HOST", "db.internal"),
            ("DB_USERNAME", "gate"),
            ("DB_PASSWORD", "p@ss/word"),
            ("DB_DATABASE", "gatehouse"),
        ])
        .unwrap();
        assert_eq!(c.database.backend, Backend::MySql);
        assert_eq!(
            c.database.url.expose(),
            "mysql://gate:p%40ss%2Fword@db.internal:3306/gatehouse"
        );
        let c = cfg(&[("DB_TYPE", "sqlite"), ("DB_PATH", "/var/lib/gh/x.db")]).unwrap();
        assert_eq!(
            c.database.sqlite_path,
            Some(PathBuf::from("/var/lib/gh/x.db"))
        );
    }

    #[test]
    fn every_error_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DB_TYPE", "oracle")], "DB_TYPE"),
            (&[("DB_TYPE", "postgres")], "DB_DATABASE"),
            (&[("DATABASE_URL", "redis://x/1")], "DATABASE_URL"),
            (&[("DB_POOL_SIZE", "many")], "DB_POOL_SIZE"),
            (&[("DB_POOL_SIZE", "0")], "DB_POOL_SIZE"),
            (&[("DB_CONNECT_TIMEOUT", "-1")], "DB_CONNECT_TIMEOUT"),
            (&[("GATEHOUSE_BIND", "nowhere")], "GATEHOUSE_BIND"),
            (&[("JWT_SECRET", "short")], "JWT_SECRET"),
            (&[("JWT_ALGORITHM", "none")], "JWT_ALGORITHM"),
            (&[("JWT_ALGORITHM", "EdDSA")], "JWT_PRIVATE_KEY_FILE"),
            (
                &[("AUTH_AUTO_LOGIN_ON_REGISTER", "maybe")],
                "AUTH_AUTO_LOGIN_ON_REGISTER",
            ),
            (&[("RATE_LIMIT_BACKEND", "redis")], "REDIS_URL"),
            (
                &[("TRUSTED_PROXIES", "10.0.0.0/8,bogus")],
                "TRUSTED_PROXIES",
            ),
            (
                &[("ENCRYPTION_MASTER_KEY", "AAAA")],
                "ENCRYPTION_MASTER_KEY",
            ),
            (&[("ADMIN_USERNAME", "root")], "ADMIN_PASSWORD"),
            (
                &[("ADMIN_USERNAME", "root"), ("ADMIN_PASSWORD", "x")],
                "ADMIN_USERNAME",
            ),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("PASSWORD_HASH", "md5")], "PASSWORD_HASH"),
            (&[("SMTP_URL", "http://mail")], "SMTP_URL"),
        ];
        for (pairs, var) in cases {
            let err = cfg(pairs).expect_err(var);
            assert_eq!(err.var, *var, "{pairs:?} -> {err}");
            assert!(err.to_string().contains(var));
        }
    }

    #[test]
    fn print_config_masks_every_secret() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://gate:hunter2hunter2@db/gh"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef-secret"),
            ("SMTP_URL", "smtp://mailer:mailpass@smtp:25"),
            ("REDIS_URL", "redis://:redispass@r:6379"),
            ("ADMIN_USERNAME", "root@example.com"),
            ("ADMIN_PASSWORD", "AdminPass!1"),
            (
                "ENCRYPTION_MASTER_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            ),
        ])
        .unwrap();
        let out = c.render_masked();
        for secret in [
            "hunter2",
            "0123456789abcdef",
            "mailpass",
            "redispass",
            "AdminPass",
            "MDEy",
        ] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("ADMIN_USERNAME=root@example.com"));
        assert!(out.contains("JWT_SECRET=********"));
    }

    #[test]
    fn rate_limit_accepts_one_or_two_numbers() {
        let c = cfg(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "5")]).unwrap();
        assert_eq!(
            (
                c.rate_limit.login_per_minute_ip_email,
                c.rate_limit.login_per_minute_ip
            ),
            (5, 30)
        );
        let c = cfg(&[("RATE_LIMIT_LOGIN_PER_MINUTE", "5,100")]).unwrap();
        assert_eq!(c.rate_limit.login_per_minute_ip, 100);
    }
}
