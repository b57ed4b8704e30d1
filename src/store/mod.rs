//! Storage: sea-orm entities, migrations and every query — the only place SQL lives.

pub mod audit;
pub mod backup;
pub mod db;
pub mod entities;
mod error;
pub mod migrations;
pub mod roles;
pub mod schema;
pub mod sessions;
pub mod users;

pub use error::StoreError;

/// The current time at the precision every backend stores (microseconds), so a value reads back
/// exactly as it was written and answers show the same instant before and after a round trip.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
