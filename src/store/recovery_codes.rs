//! Queries on MFA recovery codes: stored as SHA-256 hashes, each spent once by a conditional UPDATE.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::StoreError;
use super::entities::recovery_codes;

/// Replace a user's recovery codes with these hashes (run it inside a transaction).
pub async fn replace<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    hashes: Vec<String>,
) -> Result<(), StoreError> {
    delete_all(db, user_id).await?;
    let now = crate::store::now();
    for hash in hashes {
        recovery_codes::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            code_hash: Set(hash),
            created_at: Set(now),
            used_at: Set(None),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

/// Remove every recovery code of a user.
pub async fn delete_all<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<(), StoreError> {
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Spend the user's unused code with this hash: `true` for exactly one caller.
pub async fn spend<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    code_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = recovery_codes::Entity::update_many()
        .col_expr(recovery_codes::Column::UsedAt, Expr::value(now))
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .filter(recovery_codes::Column::CodeHash.eq(code_hash))
        .filter(recovery_codes::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}
