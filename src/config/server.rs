//! The values that sit directly on `Config` rather than in a section (where the server listens and is reached, whom it trusts, how it logs, the master key): read and checked here, printed by `Config::render_masked`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

pub(super) const LOG_FORMATS: &[(&str, LogFormat)] =
    &[("pretty", LogFormat::Pretty), ("json", LogFormat::Json)];

pub(super) fn bind(vars: &Vars) -> Result<SocketAddr, ConfigError> {
    vars.parse("GATEHOUSE_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))
}

pub(super) fn public_url(vars: &Vars) -> Result<Url, ConfigError> {
    const VAR: &str = "GATEHOUSE_PUBLIC_URL";
    let Some(raw) = vars.get(VAR) else {
        return Ok(Url::parse("http://127.0.0.1:8080").expect("static URL"));
    };
    let url = Url::parse(raw).map_err(|e| ConfigError::new(VAR, format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(VAR, "must be an http or https URL"));
    }
    Ok(url)
}

pub(super) fn request_timeout(vars: &Vars) -> Result<Duration, ConfigError> {
    vars.seconds("GATEHOUSE_REQUEST_TIMEOUT", 30, 1..=3600)
}

pub(super) fn cors_allowed_origins(vars: &Vars) -> Result<Vec<String>, ConfigError> {
    vars.list("CORS_ALLOWED_ORIGINS", "an origin", |s| {
        (s == "*" || Url::parse(s).is_ok()).then(|| s.to_string())
    })
}

/// Proxies whose `X-Forwarded-For` is believed: CIDRs or single addresses.
pub(super) fn trusted_proxies(vars: &Vars) -> Result<Vec<IpNet>, ConfigError> {
    vars.list("TRUSTED_PROXIES", "an IP or CIDR", |s| {
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .ok()
    })
}

pub(super) fn log_format(vars: &Vars) -> Result<LogFormat, ConfigError> {
    vars.choice("LOG_FORMAT", LogFormat::Pretty, LOG_FORMATS)
}

/// A `tracing` filter directive, checked here so that a typo fails at start with its variable's name.
pub(super) fn log_filter(vars: &Vars) -> Result<String, ConfigError> {
    let filter = vars.string("RUST_LOG", "info");
    tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| ConfigError::new("RUST_LOG", e.to_string()))?;
    Ok(filter)
}

/// A key that encrypts secrets at rest: base64 (standard or URL-safe) of exactly 32 bytes.
fn check_key(var: &'static str, key: &str) -> Result<(), ConfigError> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(key)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(key))
        .map_err(|_| ConfigError::new(var, "is not valid base64"))?;
    if decoded.len() != 32 {
        return Err(ConfigError::new(
            var,
            format!("must decode to 32 bytes, got {}", decoded.len()),
        ));
    }
    Ok(())
}

/// The key that seals secrets at rest.
pub(super) fn encryption_master_key(vars: &Vars) -> Result<Option<Secret>, ConfigError> {
    const VAR: &str = "ENCRYPTION_MASTER_KEY";
    let key = vars.secret(VAR);
    if let Some(k) = &key {
        check_key(VAR, k.expose())?;
    }
    Ok(key)
}

/// Older keys that still open secrets (comma-separated) while `gatehouse keys rotate` moves
/// them to the master key.
pub(super) fn encryption_read_keys(vars: &Vars) -> Result<Vec<Secret>, ConfigError> {
    const VAR: &str = "ENCRYPTION_READ_KEYS";
    let Some(all) = vars.secret(VAR) else {
        return Ok(Vec::new());
    };
    all.expose()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| check_key(VAR, k).map(|()| Secret::new(k)))
        .collect()
}
