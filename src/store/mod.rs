//! Storage: sea-orm entities, migrations and every query — the only place SQL lives.

pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod billing;
pub mod circuit;
pub mod clients;
pub mod db;
pub mod entities;
mod error;
pub mod integrations;
mod lockout;
pub mod migrations;
pub mod notify;
pub mod oauth;
pub mod one_time_tokens;
pub mod passkeys;
pub mod recovery_codes;
pub mod roles;
pub mod schema;
pub mod sessions;
pub mod throttles;
pub mod usage;
pub mod users;

pub use error::StoreError;

/// The current time at the precision every backend stores (microseconds), so a value reads back
/// exactly as it was written and answers show the same instant before and after a round trip.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// A UTC instant as a query value for `backend`. MariaDB silently stores a `TIMESTAMP`-typed
/// parameter after 2038-01-19 as NULL, even in a `DATETIME(6)` column; the same instant sent as
/// a plain date-time is kept. Use this for any instant that may lie that far ahead.
pub fn instant(backend: sea_orm::DbBackend, at: chrono::DateTime<chrono::Utc>) -> sea_orm::Value {
    match backend {
        sea_orm::DbBackend::MySql => at.naive_utc().into(),
        _ => at.into(),
    }
}
