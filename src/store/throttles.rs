//! Queries on lockout counters that belong to no account row (`login_throttles`): made on first use, judged by the same statements as an account's, cleared after a success and swept when stale.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
};

use super::StoreError;
use super::entities::login_throttles as rows;
use super::lockout::Counter;

fn counter(key_hash: &str) -> Counter<rows::Entity> {
    Counter {
        failed: rows::Column::FailedLogins,
        locked_until: rows::Column::LockedUntil,
        row: Condition::all().add(rows::Column::KeyHash.eq(key_hash)),
    }
}

/// Reserve an attempt on the counter `key_hash`, making it when it is new.
pub async fn reserve<C: ConnectionTrait>(
    db: &C,
    key_hash: &str,
    max: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let fresh = rows::ActiveModel {
        key_hash: Set(key_hash.to_string()),
        failed_logins: Set(0),
        locked_until: Set(None),
        updated_at: Set(now),
    };
    rows::Entity::insert(fresh)
        .on_conflict(
            OnConflict::column(rows::Column::KeyHash)
                .update_column(rows::Column::UpdatedAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    counter(key_hash).reserve(db, max, now).await
}

pub async fn release<C: ConnectionTrait>(db: &C, key_hash: &str) -> Result<(), StoreError> {
    counter(key_hash).release(db).await
}

pub async fn lock_if_exhausted<C: ConnectionTrait>(
    db: &C,
    key_hash: &str,
    max: u32,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    counter(key_hash).lock_if_exhausted(db, max, until).await
}

/// Until when the counter is locked, if it is.
pub async fn locked_until<C: ConnectionTrait>(
    db: &C,
    key_hash: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(rows::Entity::find_by_id(key_hash.to_string())
        .one(db)
        .await?
        .and_then(|r| r.locked_until))
}

/// Forget a counter (its owner signed in).
pub async fn clear<C: ConnectionTrait>(db: &C, key_hash: &str) -> Result<(), StoreError> {
    rows::Entity::delete_by_id(key_hash.to_string())
        .exec(db)
        .await?;
    Ok(())
}

/// Delete counters untouched since `before` whose lock (if any) has run out.
pub async fn sweep(db: &DatabaseConnection, before: DateTime<Utc>) -> Result<u64, StoreError> {
    let res = rows::Entity::delete_many()
        .filter(rows::Column::UpdatedAt.lt(before))
        .filter(
            Condition::any()
                .add(rows::Column::LockedUntil.is_null())
                .add(rows::Column::LockedUntil.lt(before)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}
