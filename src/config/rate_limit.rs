//! How many login attempts a client may make per minute, and where those counts are kept (memory or Redis).

use super::print::Lines;
use super::{ConfigError, Secret, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitBackend {
    Memory,
    Redis,
}

const BACKENDS: &[(&str, RateLimitBackend)] = &[
    ("memory", RateLimitBackend::Memory),
    ("redis", RateLimitBackend::Redis),
];

#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub backend: RateLimitBackend,
    pub redis_url: Option<Secret>,
    pub login_per_minute_ip_email: u32,
    pub login_per_minute_ip: u32,
}

impl RateLimitConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let (login_per_minute_ip_email, login_per_minute_ip) = login_per_minute(vars)?;
        let backend = vars.choice("RATE_LIMIT_BACKEND", RateLimitBackend::Memory, BACKENDS)?;
        let redis_url = vars.secret_url("REDIS_URL", ["redis", "rediss"])?;
        if backend == RateLimitBackend::Redis && redis_url.is_none() {
            return Err(ConfigError::new(
                "REDIS_URL",
                "required when RATE_LIMIT_BACKEND=redis",
            ));
        }
        Ok(Self {
            backend,
            redis_url,
            login_per_minute_ip_email,
            login_per_minute_ip,
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.choice("RATE_LIMIT_BACKEND", BACKENDS, self.backend);
        out.secret("REDIS_URL", self.redis_url.as_ref());
        out.value(
            "RATE_LIMIT_LOGIN_PER_MINUTE",
            format!(
                "{},{}",
                self.login_per_minute_ip_email, self.login_per_minute_ip
            ),
        );
    }
}

/// `N` (per IP+email; per IP is then 6N) or `N,M` (per IP+email, per IP).
fn login_per_minute(vars: &Vars) -> Result<(u32, u32), ConfigError> {
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
