//! The per-instance cache of authenticated principals: whether it runs, how many sessions it holds, and how long an entry may live without being confirmed.

use std::time::Duration;

use super::print::Lines;
use super::{ConfigError, Vars};

/// When the cache serves authenticated calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// On when evictions reach every instance (PostgreSQL LISTEN/NOTIFY, or Redis pub/sub with
    /// `REDIS_URL`); off otherwise, so several instances never disagree about a revocation.
    Auto,
    /// Never: every call reads the session and the user.
    Off,
    /// On without a channel: the operator declares this the only instance on the database.
    SingleInstance,
}

const MODES: &[(&str, CacheMode)] = &[
    ("auto", CacheMode::Auto),
    ("off", CacheMode::Off),
    ("single-instance", CacheMode::SingleInstance),
];

#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub mode: CacheMode,
    pub max_entries: u64,
    /// An entry is read again from the database after this long, whatever was heard.
    pub ttl: Duration,
}

impl CacheConfig {
    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            mode: vars.choice("AUTH_CACHE", CacheMode::Auto, MODES)?,
            max_entries: vars.number("AUTH_CACHE_MAX_ENTRIES", 100_000, 1..=10_000_000)?,
            ttl: vars.seconds("AUTH_CACHE_TTL_SECONDS", 60, 1..=3600)?,
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.choice("AUTH_CACHE", MODES, self.mode);
        out.value("AUTH_CACHE_MAX_ENTRIES", self.max_entries);
        out.seconds("AUTH_CACHE_TTL_SECONDS", self.ttl);
    }
}
