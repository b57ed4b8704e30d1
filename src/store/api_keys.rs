//! Queries on service API keys: stored as SHA-256 hashes, revoked by a timestamp, found by hash.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::api_keys;

/// What a new key needs; the key itself is never stored, only its hash.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub key_prefix: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
    pub created_by: Option<Uuid>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Insert a key (run it inside a transaction).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewApiKey,
) -> Result<api_keys::Model, StoreError> {
    let id = Uuid::now_v7();
    let mut row = api_keys::ActiveModel {
        id: Set(id),
        name: Set(new.name),
        key_prefix: Set(new.key_prefix),
        key_hash: Set(new.key_hash),
        scopes: Set(serde_json::json!(new.scopes)),
        created_by: Set(new.created_by),
        created_at: Set(crate::store::now()),
        last_used_at: Set(None),
        expires_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    if let Some(at) = new.expires_at {
        // Written through `instant` so MariaDB keeps instants after 2038 (see there).
        api_keys::Entity::update_many()
            .col_expr(
                api_keys::Column::ExpiresAt,
                Expr::value(crate::store::instant(db.get_database_backend(), at)),
            )
            .filter(api_keys::Column::Id.eq(id))
            .exec(db)
            .await?;
        row.expires_at = Some(at);
    }
    Ok(row)
}

/// The key with this hash, whatever its state.
pub async fn find_by_hash(
    db: &DatabaseConnection,
    key_hash: &str,
) -> Result<Option<api_keys::Model>, StoreError> {
    Ok(api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(key_hash))
        .one(db)
        .await?)
}

/// One page of keys, newest first, and how many there are.
pub async fn page(
    db: &DatabaseConnection,
    offset: u64,
    limit: u64,
) -> Result<(Vec<api_keys::Model>, u64), StoreError> {
    let total = api_keys::Entity::find().count(db).await?;
    let rows = api_keys::Entity::find()
        .order_by_desc(api_keys::Column::CreatedAt)
        .order_by_desc(api_keys::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// Revoke a live key. `false` when there is no such key or it was already revoked.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = api_keys::Entity::update_many()
        .col_expr(api_keys::Column::RevokedAt, Expr::value(now))
        .filter(api_keys::Column::Id.eq(id))
        .filter(api_keys::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Record that a key was used at `now`.
pub async fn touch(
    db: &DatabaseConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Expr::value(now))
        .filter(api_keys::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
