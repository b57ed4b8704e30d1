//! Queries on login sessions and one-time tokens that concern their whole lifetime (clean-up).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{oidc_codes, one_time_tokens, sessions};

const BATCH: u64 = 1000;

/// Delete the rows of `E` matching `cond`, `BATCH` ids per statement so a large backlog never holds long locks.
async fn delete_in_batches<E>(
    db: &DatabaseConnection,
    id: E::Column,
    cond: Condition,
) -> Result<u64, StoreError>
where
    E: EntityTrait,
{
    let mut deleted = 0;
    loop {
        let ids: Vec<Uuid> = E::find()
            .select_only()
            .column(id)
            .filter(cond.clone())
            .limit(BATCH)
            .into_tuple()
            .all(db)
            .await?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        deleted += E::delete_many()
            .filter(id.is_in(ids))
            .exec(db)
            .await?
            .rows_affected;
    }
}

/// Delete expired and revoked sessions, spent or expired one-time tokens and expired authorization codes. Returns how many rows were deleted.
pub async fn cleanup(db: &DatabaseConnection) -> Result<u64, StoreError> {
    let now = crate::store::now();
    let sessions = delete_in_batches::<sessions::Entity>(
        db,
        sessions::Column::Id,
        Condition::any()
            .add(sessions::Column::ExpiresAt.lte(now))
            .add(sessions::Column::RevokedAt.is_not_null()),
    )
    .await?;
    let tokens = delete_in_batches::<one_time_tokens::Entity>(
        db,
        one_time_tokens::Column::Id,
        Condition::any()
            .add(one_time_tokens::Column::ExpiresAt.lte(now))
            .add(one_time_tokens::Column::UsedAt.is_not_null()),
    )
    .await?;
    // Authorization codes of OpenID clients: kept while live, spent ones too (a replay
    // revokes what they issued), gone once expired.
    let codes = delete_in_batches::<oidc_codes::Entity>(
        db,
        oidc_codes::Column::Id,
        Condition::all().add(oidc_codes::Column::ExpiresAt.lte(now)),
    )
    .await?;
    Ok(sessions + tokens + codes)
}

/// What a new session records.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user_id: Uuid,
    pub salt: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub aal: String,
    pub expires_at: DateTime<Utc>,
    /// For a session issued to an OpenID client: the client's row id, the granted scope and
    /// when its person authenticated.
    pub oidc: Option<(Uuid, String, DateTime<Utc>)>,
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    new: NewSession,
) -> Result<sessions::Model, StoreError> {
    let now = crate::store::now();
    let (oidc_client_id, oidc_scope, auth_time) = match new.oidc {
        Some((client, scope, at)) => (Some(client), Some(scope), Some(at)),
        None => (None, None, None),
    };
    let row = sessions::Model {
        id: Uuid::now_v7(),
        user_id: new.user_id,
        refresh_generation: 0,
        salt: new.salt,
        ip_address: new.ip_address,
        user_agent: new.user_agent,
        aal: new.aal,
        created_at: now,
        last_used_at: now,
        refreshed_at: None,
        expires_at: new.expires_at,
        revoked_at: None,
        revoked_reason: None,
        oidc_client_id,
        oidc_scope,
        auth_time,
    };
    // Every column is known here, so nothing is read back: one statement on every backend.
    sessions::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(db)
        .await?;
    Ok(row)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<sessions::Model>, StoreError> {
    Ok(sessions::Entity::find_by_id(id).one(db).await?)
}

/// Move a live session from the generation `session` was read at to the next one. The rotated
/// session for the one caller that did, `None` for every other.
pub async fn rotate<C: ConnectionTrait>(
    db: &C,
    session: &sessions::Model,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<Option<sessions::Model>, StoreError> {
    let generation = session.refresh_generation;
    let res = sessions::Entity::update_many()
        .col_expr(
            sessions::Column::RefreshGeneration,
            Expr::value(generation + 1),
        )
        .col_expr(sessions::Column::RefreshedAt, Expr::value(now))
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .col_expr(sessions::Column::ExpiresAt, Expr::value(expires_at))
        .filter(sessions::Column::Id.eq(session.id))
        .filter(sessions::Column::RefreshGeneration.eq(generation))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then(|| sessions::Model {
        refresh_generation: generation + 1,
        refreshed_at: Some(now),
        last_used_at: now,
        expires_at,
        ..session.clone()
    }))
}

/// Record use at most once a minute per session.
pub async fn touch<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::LastUsedAt, Expr::value(now))
        .filter(sessions::Column::Id.eq(id))
        .filter(sessions::Column::LastUsedAt.lt(now - chrono::Duration::seconds(60)))
        .exec(db)
        .await?;
    Ok(())
}

/// Revoke live (unrevoked, unexpired) sessions of a user: one (`only`), all but one (`except`), or all. Returns how many.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    only: Option<Uuid>,
    except: Option<Uuid>,
    reason: &str,
) -> Result<u64, StoreError> {
    let now = crate::store::now();
    let mut q = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now));
    if let Some(id) = only {
        q = q.filter(sessions::Column::Id.eq(id));
    }
    if let Some(id) = except {
        q = q.filter(sessions::Column::Id.ne(id));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// End `user_id`'s live sessions issued to the OpenID client `client` (its row id).
pub async fn revoke_for_client<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    client: Uuid,
    reason: &str,
) -> Result<u64, StoreError> {
    let now = crate::store::now();
    Ok(sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(now))
        .col_expr(sessions::Column::RevokedReason, Expr::value(reason))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::OidcClientId.eq(client))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// A user's sessions that are neither revoked nor expired, newest first.
pub async fn list_live<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<sessions::Model>, StoreError> {
    Ok(sessions::Entity::find()
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .order_by_desc(sessions::Column::CreatedAt)
        .order_by_desc(sessions::Column::Id)
        .all(db)
        .await?)
}
