//! Rate limits per key (client IP, IP + email): GCRA in process memory (governor) for one instance, or one atomic Lua script in Redis that every instance shares.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::{ConfigError, RateLimitBackend, RateLimitConfig};
use crate::crypto::tokens::sha256_hex;

/// The answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Over the limit: retry after this many seconds (at least 1).
    Limited {
        retry_after: u64,
    },
}

/// Over a limit: retry after `retry_after` seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: u64,
}

impl Verdict {
    /// `Ok` when allowed, else how long to wait.
    pub fn into_result(self) -> Result<(), Limited> {
        match self {
            Verdict::Allowed => Ok(()),
            Verdict::Limited { retry_after } => Err(Limited { retry_after }),
        }
    }
}

fn limited(bucket: &'static str, verdict: Verdict) -> Verdict {
    metrics::counter!("gatehouse_rate_limited_total", "bucket" => bucket).increment(1);
    verdict
}

/// GCRA in Redis, atomically: `KEYS[1]` holds the theoretical arrival time (ms). A quota of N per
/// minute spaces requests `60000 / N` ms apart with a burst of N. Returns 0 when allowed, else
/// the milliseconds to wait. Time comes from the Redis server, so instances agree.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
"#;

type Keyed = DefaultKeyedRateLimiter<String>;

enum Store {
    /// One keyed limiter per (bucket, quota), made on first use.
    Memory(Mutex<HashMap<(&'static str, u32), Arc<Keyed>>>),
    Redis {
        conn: redis::aio::ConnectionManager,
        script: redis::Script,
    },
}

/// The limiter every route shares. Cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    store: Arc<Store>,
    login_ip_email: u32,
    ip: u32,
}

impl RateLimiter {
    /// Build the configured backend. Redis is connected lazily: a Redis that is away at start or
    /// later makes checks fail open (logged), never fail a request.
    pub fn new(config: &RateLimitConfig) -> Result<Self, ConfigError> {
        let store = match config.backend {
            RateLimitBackend::Memory => Store::Memory(Mutex::new(HashMap::new())),
            RateLimitBackend::Redis => {
                let url = config.redis_url.as_ref().ok_or_else(|| {
                    ConfigError::new("REDIS_URL", "required for the redis backend")
                })?;
                let client = redis::Client::open(url.expose())
                    .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?;
                let settings = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(Duration::from_millis(500)))
                    .set_number_of_retries(1);
                let conn = redis::aio::ConnectionManager::new_lazy_with_config(client, settings)
                    .map_err(|e| ConfigError::new("REDIS_URL", e.to_string()))?;
                Store::Redis {
                    conn,
                    script: redis::Script::new(GCRA),
                }
            }
        };
        Ok(Self {
            store: Arc::new(store),
            login_ip_email: config.login_per_minute_ip_email,
            ip: config.login_per_minute_ip,
        })
    }

    /// A login attempt: the IP + email budget, then the IP budget.
    pub async fn login(&self, ip: Option<IpAddr>, email: &str) -> Verdict {
        let ip = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        // Every spelling of one address shares its budget.
        let email = crate::domain::email::Email::parse(email)
            .map_or_else(|_| email.trim().to_lowercase(), |e| e.key().to_string());
        match self
            .check("login", &format!("{ip}|{email}"), self.login_ip_email)
            .await
        {
            Verdict::Allowed => self.check("ip", &ip, self.ip).await,
            limited => limited,
        }
    }

    /// Any other limited call (refresh, password reset, resend): the IP budget of `bucket`.
    pub async fn per_ip(&self, bucket: &'static str, ip: Option<IpAddr>) -> Verdict {
        let ip = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        self.check(bucket, &ip, self.ip).await
    }

    /// Spend one unit of `key`'s budget of `per_minute` in `bucket`.
    pub async fn check(&self, bucket: &'static str, key: &str, per_minute: u32) -> Verdict {
        let Some(quota) = NonZeroU32::new(per_minute) else {
            return Verdict::Allowed;
        };
        match &*self.store {
            Store::Memory(limiters) => {
                let limiter = {
                    let mut map = limiters.lock().unwrap_or_else(|p| p.into_inner());
                    let limiter = map
                        .entry((bucket, per_minute))
                        .or_insert_with(|| Arc::new(Keyed::keyed(Quota::per_minute(quota))))
                        .clone();
                    // Forget keys whose budget is full again, so memory stays bounded.
                    if limiter.len() > 10_000 {
                        limiter.retain_recent();
                    }
                    limiter
                };
                match limiter.check_key(&key.to_string()) {
                    Ok(()) => Verdict::Allowed,
                    Err(not_until) => limited(
                        bucket,
                        Verdict::Limited {
                            retry_after: not_until
                                .wait_time_from(DefaultClock::default().now())
                                .as_secs()
                                .max(1),
                        },
                    ),
                }
            }
            Store::Redis { conn, script } => {
                let interval = (60_000 / u64::from(per_minute)).max(1);
                let mut conn = conn.clone();
                let wait: Result<u64, _> = script
                    // Hashed, so Redis holds no email addresses.
                    .key(format!("gatehouse:rl:{bucket}:{}", sha256_hex(key)))
                    .arg(interval)
                    .arg(60_000u64)
                    .invoke_async(&mut conn)
                    .await;
                match wait {
                    Ok(0) => Verdict::Allowed,
                    Ok(ms) => limited(
                        bucket,
                        Verdict::Limited {
                            retry_after: ms.div_ceil(1000).max(1),
                        },
                    ),
                    Err(e) => {
                        metrics::counter!("gatehouse_rate_limiter_errors_total").increment(1);
                        tracing::warn!(error = %e, bucket, "rate limiter unavailable; allowing the request");
                        Verdict::Allowed
                    }
                }
            }
        }
    }
}
