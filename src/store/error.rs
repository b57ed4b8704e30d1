//! The storage layer's one error type, classifying driver errors once (unavailable, conflict, not found, a value the database refuses) for the layers above.

use sea_orm::{DbErr, RuntimeErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer (down, unreachable, pool exhausted).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The database refused a value as given (SQLSTATE class 22, "data exception": a NUL in
    /// PostgreSQL text, a value out of range…): bad input, not a fault.
    #[error("invalid value: {0}")]
    InvalidInput(String),
    /// A migration revision that does not exist, or a move in the wrong direction.
    #[error("{0}")]
    Revision(String),
    #[error("{0}")]
    Io(String),
    #[error("database error: {0}")]
    Database(String),
}

fn sqlx_is_data_exception(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code.starts_with("22"))
}

/// The connection is gone or cannot be made: I/O, TLS or protocol failures, an exhausted or
/// closed pool, and the server's own "connection exception" (SQLSTATE class 08) and "shutting
/// down / starting up" answers (PostgreSQL 57P01–57P03, MariaDB's connection killed at
/// shutdown): the database is not there for this request, which is a 503, never a 500.
fn sqlx_is_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_)
        | E::Tls(_)
        | E::PoolTimedOut
        | E::PoolClosed
        | E::WorkerCrashed
        | E::Protocol(_) => true,
        E::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or_default();
            code.starts_with("08")
                || matches!(code, "57P01" | "57P02" | "57P03")
                || d.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|m| matches!(m.number(), 1053 | 1927))
        }
        _ => false,
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(msg)) = err.sql_err() {
            return StoreError::Conflict(msg);
        }
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                StoreError::Unavailable(err.to_string())
            }
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if sqlx_is_unavailable(e) =>
            {
                StoreError::Unavailable(err.to_string())
            }
            DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))
                if sqlx_is_data_exception(e) =>
            {
                StoreError::InvalidInput(err.to_string())
            }
            DbErr::RecordNotFound(_) => StoreError::NotFound,
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<sea_orm::sqlx::Error> for StoreError {
    fn from(err: sea_orm::sqlx::Error) -> Self {
        if sqlx_is_unavailable(&err) {
            StoreError::Unavailable(err.to_string())
        } else {
            StoreError::Database(err.to_string())
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        StoreError::Io(err.to_string())
    }
}
