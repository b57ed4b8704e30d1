//! PostgreSQL LISTEN/NOTIFY for cache evictions: every instance listens on one channel, and any instance's change reaches them all.

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use super::StoreError;

/// The channel evictions travel on.
pub const CHANNEL: &str = "gatehouse_evict";

/// Send `payload` to every listener (after the change it describes has committed).
pub async fn publish(db: &DatabaseConnection, payload: &str) -> Result<(), StoreError> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), payload.into()],
    ))
    .await?;
    Ok(())
}

/// A listener on [`CHANNEL`], on a connection of its own to `url` (outside the pool, so it
/// takes no slot from the requests).
pub async fn listen(url: &str) -> Result<PgListener, StoreError> {
    let mut listener = PgListener::connect(url)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    listener
        .listen(CHANNEL)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(listener)
}
