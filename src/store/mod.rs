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
