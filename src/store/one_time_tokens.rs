//! Queries on single-use secrets (email verification, password reset, MFA login): stored as SHA-256 hashes, spent by one conditional UPDATE whose row count decides the winner.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::one_time_tokens;

/// Store a new token's hash for `user_id` and `purpose`, valid until `expires_at`.
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: &str,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    one_time_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.to_string()),
        token_hash: Set(token_hash),
        created_at: Set(crate::store::now()),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The unspent, unexpired token with this hash and purpose.
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    purpose: &str,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<one_time_tokens::Model>, StoreError> {
    Ok(one_time_tokens::Entity::find()
        .filter(one_time_tokens::Column::TokenHash.eq(token_hash))
        .filter(one_time_tokens::Column::Purpose.eq(purpose))
        .filter(one_time_tokens::Column::UsedAt.is_null())
        .filter(one_time_tokens::Column::ExpiresAt.gt(now))
        .one(db)
        .await?)
}

/// Spend a token: `true` for exactly one caller, however many race.
pub async fn spend<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = one_time_tokens::Entity::update_many()
        .col_expr(one_time_tokens::Column::UsedAt, Expr::value(now))
        .filter(one_time_tokens::Column::Id.eq(id))
        .filter(one_time_tokens::Column::UsedAt.is_null())
        .filter(one_time_tokens::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Spend every unspent token of a user for `purpose` (older links die with the one used).
pub async fn spend_all<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let res = one_time_tokens::Entity::update_many()
        .col_expr(one_time_tokens::Column::UsedAt, Expr::value(now))
        .filter(one_time_tokens::Column::UserId.eq(user_id))
        .filter(one_time_tokens::Column::Purpose.eq(purpose))
        .filter(one_time_tokens::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// When the user's newest token for `purpose` was issued.
pub async fn last_issued<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(one_time_tokens::Entity::find()
        .filter(one_time_tokens::Column::UserId.eq(user_id))
        .filter(one_time_tokens::Column::Purpose.eq(purpose))
        .order_by_desc(one_time_tokens::Column::CreatedAt)
        .one(db)
        .await?
        .map(|t| t.created_at))
}
