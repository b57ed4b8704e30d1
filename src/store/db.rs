//! Opening the connection pool for the configured backend (SQLite tuned for concurrent use), creating the database on `db init`, and the health probe.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sea_orm::sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, SqlxMySqlConnector,
    SqlxPostgresConnector, SqlxSqliteConnector, Statement,
};

use super::StoreError;
use super::circuit::Circuit;
use crate::config::{Backend, DatabaseConfig};

fn unavailable(cfg: &DatabaseConfig, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!(
        "cannot connect to the {} database at {}: {e}",
        cfg.backend.name(),
        cfg.masked_url()
    ))
}

fn sqlite_options(cfg: &DatabaseConfig) -> SqliteConnectOptions {
    // FULL: every commit syncs the WAL, so an acknowledged write (a session revoked, a password
    // changed) survives a power cut too, not only a crash of the process (docs/operations.md).
    let base = match &cfg.sqlite_path {
        Some(path) => SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
        None => SqliteConnectOptions::new().in_memory(true),
    };
    base.journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}

fn postgres_options(cfg: &DatabaseConfig) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(cfg.url.expose()).map_err(|e| unavailable(cfg, e))
}

fn mysql_options(cfg: &DatabaseConfig) -> Result<MySqlConnectOptions, StoreError> {
    Ok(MySqlConnectOptions::from_str(cfg.url.expose())
        .map_err(|e| unavailable(cfg, e))?
        .charset("utf8mb4"))
}

/// Open the pool. Fails with `Unavailable` (one readable line) when the server does not answer.
pub async fn connect(cfg: &DatabaseConfig) -> Result<DatabaseConnection, StoreError> {
    open(cfg, None).await
}

/// Open the pool with the circuit that watches it (what the server runs on): a pooled
/// connection found broken when it is taken makes the circuit check the database at once, and
/// PostgreSQL and MySQL keep one connection open even when idle, so that a database that goes
/// away while the server is quiet is noticed by the first request that takes it.
pub async fn connect_guarded(
    cfg: &DatabaseConfig,
) -> Result<(DatabaseConnection, Circuit), StoreError> {
    let circuit = Circuit::new(cfg)?;
    let db = open(cfg, Some(circuit.clone())).await?;
    Ok((db, circuit))
}

async fn open(
    cfg: &DatabaseConfig,
    circuit: Option<Circuit>,
) -> Result<DatabaseConnection, StoreError> {
    let max = cfg.max_connections();
    let min = match (&circuit, cfg.backend) {
        (Some(_), Backend::Postgres | Backend::MySql) => 1,
        _ => 0,
    };
    macro_rules! pool {
        ($opts:ty) => {{
            <$opts>::new()
                .max_connections(max)
                .min_connections(min)
                .acquire_timeout(cfg.connect_timeout)
                .max_lifetime(cfg.pool_recycle)
                .idle_timeout(Duration::from_secs(60))
                .test_before_acquire(false)
        }};
    }
    // A server's connection is pinged when taken: sqlx's own `test_before_acquire`, plus
    // telling the circuit (a broken idle connection is otherwise dropped silently and replaced
    // by a new one, and with the server gone, that new one is retried until
    // `DB_CONNECT_TIMEOUT`). A SQLite connection is a file handle with no server to lose, and
    // its ping, a round trip to the connection's thread, was three per login.
    macro_rules! server_pool {
        ($opts:ty) => {{
            let circuit = circuit.clone();
            pool!($opts).before_acquire(move |conn, _| {
                let circuit = circuit.clone();
                Box::pin(async move {
                    conn.ping().await.inspect_err(|_| {
                        if let Some(circuit) = &circuit {
                            circuit.suspect();
                        }
                    })?;
                    Ok(true)
                })
            })
        }};
    }
    let conn = match cfg.backend {
        Backend::Sqlite => {
            if let Some(dir) = cfg.sqlite_path.as_deref().and_then(|p| p.parent())
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    unavailable(cfg, format!("cannot create folder {}: {e}", dir.display()))
                })?;
            }
            let mut pool = pool!(SqlitePoolOptions);
            if cfg.sqlite_path.is_none() {
                // Every in-memory connection is its own database: keep exactly one, forever.
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            }
            let pool = pool
                .connect_with(sqlite_options(cfg))
                .await
                .map_err(|e| unavailable(cfg, e))?;
            SqlxSqliteConnector::from_sqlx_sqlite_pool(pool)
        }
        Backend::Postgres => {
            let opts = postgres_options(cfg)?;
            let pool = server_pool!(PgPoolOptions)
                .connect_with(opts)
                .await
                .map_err(|e| unavailable(cfg, e))?;
            SqlxPostgresConnector::from_sqlx_postgres_pool(pool)
        }
        Backend::MySql => {
            let opts = mysql_options(cfg)?;
            let pool = server_pool!(MySqlPoolOptions)
                .connect_with(opts)
                .await
                .map_err(|e| unavailable(cfg, e))?;
            SqlxMySqlConnector::from_sqlx_mysql_pool(pool)
        }
    };
    Ok(conn)
}

fn database_name(cfg: &DatabaseConfig) -> Result<String, StoreError> {
    let url = url::Url::parse(cfg.url.expose()).map_err(|e| StoreError::Database(e.to_string()))?;
    let name = url.path().trim_start_matches('/').to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(StoreError::Database(format!(
            "database name {name:?} must be letters, digits, '_' or '-'"
        )));
    }
    Ok(name)
}

/// Create the database itself if it does not exist yet (SQLite: the file and its folders).
pub async fn create_database_if_missing(cfg: &DatabaseConfig) -> Result<bool, StoreError> {
    match cfg.backend {
        Backend::Sqlite => {
            let existed = cfg.sqlite_path.as_deref().is_none_or(|p| p.exists());
            connect(cfg)
                .await?
                .close()
                .await
                .map_err(StoreError::from)?;
            Ok(!existed)
        }
        Backend::Postgres => {
            let name = database_name(cfg)?;
            let opts = PgConnectOptions::from_str(cfg.url.expose())
                .map_err(|e| unavailable(cfg, e))?
                .database("postgres");
            let mut conn = opts.connect().await.map_err(|e| unavailable(cfg, e))?;
            let exists: Option<(i32,)> =
                sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
                    .bind(&name)
                    .fetch_optional(&mut conn)
                    .await?;
            if exists.is_none() {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut conn)
                    .await?;
            }
            conn.close().await?;
            Ok(exists.is_none())
        }
        Backend::MySql => {
            let name = database_name(cfg)?;
            let mut url = url::Url::parse(cfg.url.expose()).map_err(|e| unavailable(cfg, e))?;
            url.set_path("");
            let opts =
                MySqlConnectOptions::from_str(url.as_str()).map_err(|e| unavailable(cfg, e))?;
            let mut conn = opts.connect().await.map_err(|e| unavailable(cfg, e))?;
            let exists: Option<(String,)> = sqlx::query_as(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            )
            .bind(&name)
            .fetch_optional(&mut conn)
            .await?;
            if exists.is_none() {
                sqlx::raw_sql(
                    sqlx::AssertSqlSafe(format!("CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")),
                )
                .execute(&mut conn)
                .await?;
            }
            conn.close().await?;
            Ok(exists.is_none())
        }
    }
}

/// What `db check` reports.
#[derive(Debug, Clone)]
pub struct DbProbe {
    pub backend: &'static str,
    pub server_version: String,
    pub latency: Duration,
}

/// Run a trivial query and time it.
pub async fn probe(db: &DatabaseConnection) -> Result<DbProbe, StoreError> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Sqlite => "SELECT sqlite_version() AS v",
        _ => "SELECT version() AS v",
    };
    let started = Instant::now();
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await?
        .ok_or(StoreError::NotFound)?;
    let latency = started.elapsed();
    let server_version: String = row.try_get("", "v")?;
    Ok(DbProbe {
        backend: match backend {
            DatabaseBackend::Sqlite => "sqlite",
            DatabaseBackend::Postgres => "postgres",
            _ => "mysql",
        },
        server_version,
        latency,
    })
}

/// A bounded liveness check for `/ready`.
pub async fn ping(db: &DatabaseConnection, timeout: Duration) -> Result<Duration, StoreError> {
    let started = Instant::now();
    match tokio::time::timeout(timeout, db.ping()).await {
        Ok(Ok(())) => Ok(started.elapsed()),
        Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
        Err(_) => Err(StoreError::Unavailable(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// How to open one connection outside the pool, with the pool's own settings: what the
/// database circuit (`store::circuit`) probes with, so a probe neither waits for a pooled
/// connection nor retries a refused one.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Sqlite(Box<SqliteConnectOptions>),
    Postgres(Box<PgConnectOptions>),
    MySql(Box<MySqlConnectOptions>),
}

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// A fresh connection ran `SELECT 1`, in this long.
    Up(Duration),
    /// The server answered but refused the connection (too many connections, a bad password):
    /// it is reachable, so the circuit must not refuse requests on its account.
    Answered(String),
    /// No connection: refused, reset, or the server says it is starting up or shutting down.
    Down(String),
    /// No answer at all within the time given.
    TimedOut(Duration),
}

impl Target {
    pub(crate) fn new(cfg: &DatabaseConfig) -> Result<Self, StoreError> {
        Ok(match cfg.backend {
            // Never create the file from a probe.
            Backend::Sqlite => {
                Target::Sqlite(Box::new(sqlite_options(cfg).create_if_missing(false)))
            }
            Backend::Postgres => Target::Postgres(Box::new(postgres_options(cfg)?)),
            Backend::MySql => Target::MySql(Box::new(mysql_options(cfg)?)),
        })
    }

    /// Open a connection of its own, run `SELECT 1` and close it, all within `timeout`.
    pub(crate) async fn probe(&self, timeout: Duration) -> Reach {
        async fn once<C: sqlx::Connection>(
            opts: &<C as sqlx::Connection>::Options,
        ) -> Result<(), sqlx::Error>
        where
            for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
        {
            let mut conn = opts.connect().await?;
            sqlx::raw_sql("SELECT 1").execute(&mut conn).await?;
            conn.close().await
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(timeout, async {
            match self {
                Target::Sqlite(o) => once::<sqlx::SqliteConnection>(o).await,
                Target::Postgres(o) => once::<sqlx::PgConnection>(o).await,
                Target::MySql(o) => once::<sqlx::MySqlConnection>(o).await,
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => Reach::Up(started.elapsed()),
            Ok(Err(e)) if unreachable(&e) => Reach::Down(e.to_string()),
            Ok(Err(e)) => Reach::Answered(e.to_string()),
            Err(_) => Reach::TimedOut(timeout),
        }
    }
}

/// A connection attempt that shows the server is not there: no connection (refused, reset, a
/// broken handshake), or the server saying it is starting up or shutting down (PostgreSQL
/// 57P01–57P03, MySQL 1053). Any other answer, "too many connections" included (MySQL's is
/// SQLSTATE 08004), comes from a server that is there.
fn unreachable(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    match e {
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => true,
        E::Database(d) => {
            matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
                || d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|m| m.number() == 1053)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database error with only an SQLSTATE.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SQLSTATE {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn coded(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Coded(code)))
    }

    #[test]
    fn only_an_absent_or_stopping_server_is_unreachable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(unreachable(&sqlx::Error::Io(refused)));
        for stopping in ["57P01", "57P02", "57P03"] {
            assert!(unreachable(&coded(stopping)), "{stopping}");
        }
        // Too many connections (PostgreSQL, MySQL), a bad password: the server is there.
        for answered in ["53300", "08004", "28P01", "28000"] {
            assert!(!unreachable(&coded(answered)), "{answered}");
        }
        assert!(!unreachable(&sqlx::Error::Configuration("bad url".into())));
    }

    #[test]
    fn stopping_and_lost_connections_are_unavailable_not_internal() {
        for code in ["57P01", "57P02", "57P03", "08006", "08S01"] {
            assert!(
                matches!(StoreError::from(coded(code)), StoreError::Unavailable(_)),
                "{code}"
            );
        }
        assert!(matches!(
            StoreError::from(coded("42P01")),
            StoreError::Database(_)
        ));
    }
}
