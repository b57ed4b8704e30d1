//! Queries on login sessions and one-time tokens that concern their whole lifetime (clean-up).

use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::StoreError;
use super::entities::{one_time_tokens, sessions};

const BATCH: u64 = 1000;

/// Delete expired and revoked sessions and spent or expired one-time tokens, `BATCH` rows per statement
/// so a large backlog never holds long locks. Returns how many rows were deleted.
pub async fn cleanup(db: &DatabaseConnection) -> Result<u64, StoreError> {
    let now = Utc::now();
    let mut deleted = 0;
    loop {
        let ids: Vec<Uuid> = sessions::Entity::find()
            .select_only()
            .column(sessions::Column::Id)
            .filter(
                Condition::any()
                    .add(sessions::Column::ExpiresAt.lte(now))
                    .add(sessions::Column::RevokedAt.is_not_null()),
            )
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        deleted += sessions::Entity::delete_many()
            .filter(sessions::Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
    }
    loop {
        let ids: Vec<Uuid> = one_time_tokens::Entity::find()
            .select_only()
            .column(one_time_tokens::Column::Id)
            .filter(
                Condition::any()
                    .add(one_time_tokens::Column::ExpiresAt.lte(now))
                    .add(one_time_tokens::Column::UsedAt.is_not_null()),
            )
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            break;
        }
        deleted += one_time_tokens::Entity::delete_many()
            .filter(one_time_tokens::Column::Id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
    }
    Ok(deleted)
}
