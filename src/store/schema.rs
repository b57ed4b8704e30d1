//! Moving the schema between revisions (status, upgrade, downgrade, reset) with revisions named by migration name or number.

use sea_orm::DatabaseConnection;
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
pub async fn status(db: &DatabaseConnection) -> Result<Vec<Revision>, StoreError> {
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

async fn applied_count(db: &DatabaseConnection) -> Result<usize, StoreError> {
    Ok(status(db).await?.iter().filter(|r| r.applied).count())
}

/// Apply pending migrations, all or up to `to`. Returns how many ran.
pub async fn upgrade(db: &DatabaseConnection, to: Option<&str>) -> Result<usize, StoreError> {
    let current = applied_count(db).await?;
    let target = match to {
        Some(rev) => resolve(rev)?,
        None => names().len(),
    };
    if target < current {
        return Err(StoreError::Revision(format!(
            "revision {} is below the current one ({current}); use `db downgrade --to`",
            to.unwrap_or_default()
        )));
    }
    let steps = target - current;
    if steps > 0 {
        Migrator::up(db, Some(steps as u32)).await?;
    }
    Ok(steps)
}

/// Revert migrations down to `to` (`0` = empty schema). Returns how many were reverted.
pub async fn downgrade(db: &DatabaseConnection, to: &str) -> Result<usize, StoreError> {
    let current = applied_count(db).await?;
    let target = resolve(to)?;
    if target > current {
        return Err(StoreError::Revision(format!(
            "revision {to} is above the current one ({current}); use `db upgrade --to`"
        )));
    }
    let steps = current - target;
    if steps > 0 {
        Migrator::down(db, Some(steps as u32)).await?;
    }
    Ok(steps)
}

/// Revert every applied migration (dropping all Gatehouse tables and data), then apply all again.
pub async fn reset(db: &DatabaseConnection) -> Result<(), StoreError> {
    Migrator::down(db, None).await?;
    Migrator::up(db, None).await?;
    Ok(())
}
