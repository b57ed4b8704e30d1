//! Moving the schema between revisions (status, upgrade, downgrade, reset) with revisions named by migration name or number.

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, Statement,
    TransactionTrait,
};
use sea_orm_migration::{MigrationStatus, MigratorTrait};

use super::StoreError;
use super::migrations::Migrator;

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub number: usize,
    pub name: String,
    pub applied: bool,
}

/// Every migration this binary knows, in order, with its state in `db`.
pub async fn status(db: &impl ConnectionTrait) -> Result<Vec<Revision>, StoreError> {
    let list = Migrator::get_migration_with_status(db).await?;
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, m)| Revision {
            number: i + 1,
            name: m.name().to_string(),
            applied: m.status() == MigrationStatus::Applied,
        })
        .collect())
}

/// Names of all migrations, in order.
pub fn names() -> Vec<String> {
    Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

/// How many migrations are applied at revision `rev`: `0`, a number `1..=N`, or a migration name.
pub fn resolve(rev: &str) -> Result<usize, StoreError> {
    let names = names();
    let rev = rev.trim();
    if let Ok(n) = rev.parse::<usize>()
        && n <= names.len()
    {
        return Ok(n);
    }
    if let Some(pos) = names.iter().position(|n| n == rev) {
        return Ok(pos + 1);
    }
    Err(StoreError::Revision(format!(
        "unknown revision {rev:?}; use 0..={} or one of: {}",
        names.len(),
        names.join(", ")
    )))
}

async fn applied_count(db: &impl ConnectionTrait) -> Result<usize, StoreError> {
    Ok(status(db).await?.iter().filter(|r| r.applied).count())
}

/// Apply pending migrations, all or up to `to`. Returns how many ran (0 when another instance
/// applied them while this one waited for the schema lock).
pub async fn upgrade(db: &DatabaseConnection, to: Option<&str>) -> Result<usize, StoreError> {
    let target = match to {
        Some(rev) => resolve(rev)?,
        None => names().len(),
    };
    with_schema_lock(db, async |txn| {
        let current = applied_count(txn).await?;
        if target < current {
            return Err(StoreError::Revision(format!(
                "revision {} is below the current one ({current}); use `db downgrade --to`",
                to.unwrap_or_default()
            )));
        }
        let steps = target - current;
        if steps > 0 {
            Migrator::up(txn, Some(steps as u32)).await?;
        }
        Ok(steps)
    })
    .await
}

/// Revert migrations down to `to` (`0` = empty schema). Returns how many were reverted.
pub async fn downgrade(db: &DatabaseConnection, to: &str) -> Result<usize, StoreError> {
    let target = resolve(to)?;
    with_schema_lock(db, async |txn| {
        let current = applied_count(txn).await?;
        if target > current {
            return Err(StoreError::Revision(format!(
                "revision {to} is above the current one ({current}); use `db upgrade --to`"
            )));
        }
        let steps = current - target;
        if steps > 0 {
            Migrator::down(txn, Some(steps as u32)).await?;
        }
        Ok(steps)
    })
    .await
}

/// Name of the MySQL lock, and key of the PostgreSQL advisory lock, that schema moves hold.
const SCHEMA_LOCK: &str = "gatehouse_schema";
const SCHEMA_LOCK_KEY: i64 = 0x6761_7465_6873_6d61; // "gatehsma"
/// Longest a schema move waits for another instance's to finish.
const SCHEMA_LOCK_WAIT_SECS: u32 = 300;

/// Run `work` on one connection that holds the schema lock, so instances started together
/// migrate one after another: the second waits, then finds nothing pending. On PostgreSQL the
/// lock is transaction-scoped and the whole move is one transaction (all of it lands or none);
/// on MySQL it is a named lock (its DDL commits as it goes); SQLite's own write lock serialises
/// writers to its file.
async fn with_schema_lock<T>(
    db: &DatabaseConnection,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let txn = db.begin().await?;
    let backend = txn.get_database_backend();
    let one = |sql: String| Statement::from_string(backend, sql);
    match backend {
        DatabaseBackend::Postgres => {
            txn.execute_raw(one(format!(
                "SET LOCAL lock_timeout = '{SCHEMA_LOCK_WAIT_SECS}s'"
            )))
            .await?;
            txn.execute_raw(one(format!(
                "SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"
            )))
            .await?;
        }
        DatabaseBackend::MySql => {
            let got = txn
                .query_one_raw(one(format!(
                    "SELECT GET_LOCK('{SCHEMA_LOCK}', {SCHEMA_LOCK_WAIT_SECS}) AS got"
                )))
                .await?
                .and_then(|row| row.try_get::<Option<i64>>("", "got").ok().flatten());
            if got != Some(1) {
                return Err(StoreError::Revision(format!(
                    "another instance has been changing the schema for {SCHEMA_LOCK_WAIT_SECS} s; \
                     try again when it is done"
                )));
            }
        }
        _ => {}
    }
    let outcome = work(&txn).await;
    if backend == DatabaseBackend::MySql {
        // Named locks belong to the connection, which goes back to the pool.
        txn.execute_raw(one(format!("SELECT RELEASE_LOCK('{SCHEMA_LOCK}')")))
            .await?;
    }
    match outcome {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            txn.rollback().await?;
            Err(e)
        }
    }
}

/// Revert every applied migration (dropping all Gatehouse tables and data), then apply all again.
pub async fn reset(db: &DatabaseConnection) -> Result<(), StoreError> {
    with_schema_lock(db, async |txn| {
        Migrator::down(txn, None).await?;
        Migrator::up(txn, None).await?;
        Ok(())
    })
    .await
}
