//! Reading one variable, typed and checked, with an error that names it: the shapes every section shares.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, Secret};

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
    pub(super) fn get(&self, var: &str) -> Option<&str> {
        self.0.get(var).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A set variable as an owned string, or `default`.
    pub(super) fn string(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).to_string()
    }

    pub(super) fn parse<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
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

    /// A whole number in `range`, as whatever unsigned type the field has.
    pub(super) fn number<T: TryFrom<u64>>(
        &self,
        var: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<T, ConfigError> {
        let n: u64 = self.parse(var, default)?;
        match T::try_from(n) {
            Ok(value) if range.contains(&n) => Ok(value),
            _ => Err(ConfigError::new(
                var,
                format!("{n} is out of range ({range:?})"),
            )),
        }
    }

    /// A number of seconds in `range`.
    pub(super) fn seconds(
        &self,
        var: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(var, default, range).map(Duration::from_secs)
    }

    pub(super) fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
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

    /// One of `options` by name, case-insensitively.
    pub(super) fn choice<T: Copy>(
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

    /// An `http` or `https` URL, or `default`.
    pub(super) fn http_url(
        &self,
        var: &'static str,
        default: &str,
    ) -> Result<url::Url, ConfigError> {
        let raw = self.get(var).unwrap_or(default);
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => Ok(u),
            _ => Err(ConfigError::new(
                var,
                format!("{raw:?} is not an http(s) URL"),
            )),
        }
    }

    pub(super) fn secret(&self, var: &'static str) -> Option<Secret> {
        self.get(var).map(Secret::new)
    }

    /// A secret URL whose scheme must be `plain` or `tls` (as in `redis`, `rediss`).
    pub(super) fn secret_url(
        &self,
        var: &'static str,
        [plain, tls]: [&str; 2],
    ) -> Result<Option<Secret>, ConfigError> {
        let url = self.secret(var);
        if let Some(u) = &url
            && !(u.expose().starts_with(&format!("{plain}://"))
                || u.expose().starts_with(&format!("{tls}://")))
        {
            return Err(ConfigError::new(
                var,
                format!("must start with {plain}:// or {tls}://"),
            ));
        }
        Ok(url)
    }

    /// A comma-separated list (blank items skipped), each item read by `item` or refused as not `what`.
    pub(super) fn list<T>(
        &self,
        var: &'static str,
        what: &str,
        item: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(Vec::new());
        };
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| item(s).ok_or_else(|| ConfigError::new(var, format!("{s:?} is not {what}"))))
            .collect()
    }
}
