//! Queries on accounts and their role grants.

use std::collections::HashMap;

use chrono::DateTime;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{user_roles, users};

/// What a new account needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub email_lower: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
}

/// Insert a user and its role grants (run it inside a transaction). A taken email is `Conflict`.
pub async fn insert<C: ConnectionTrait>(txn: &C, new: NewUser) -> Result<users::Model, StoreError> {
    let now = crate::store::now();
    let id = Uuid::now_v7();
    let user = users::ActiveModel {
        id: Set(id),
        email: Set(new.email),
        email_lower: Set(new.email_lower),
        password_hash: Set(new.password_hash),
        name: Set(new.name),
        active: Set(true),
        deleted_at: Set(None),
        email_verified: Set(new.email_verified),
        email_verified_at: Set(new.email_verified.then_some(now)),
        failed_logins: Set(0),
        locked_until: Set(None),
        last_login_at: Set(None),
        mfa_enabled: Set(false),
        mfa_secret: Set(None),
        mfa_pending_secret: Set(None),
        mfa_last_step: Set(None),
        metadata: Set(serde_json::json!({})),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    for role in &new.roles {
        grant_in(txn, id, role, None).await?;
    }
    Ok(user)
}

async fn grant_in<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    role: &str,
    granted_by: Option<Uuid>,
) -> Result<bool, StoreError> {
    let res = user_roles::ActiveModel {
        user_id: Set(user_id),
        role: Set(role.to_string()),
        granted_at: Set(crate::store::now()),
        granted_by: Set(granted_by),
    }
    .insert(db)
    .await;
    match res.map_err(StoreError::from) {
        Ok(_) => Ok(true),
        // The grant exists already (the primary key refused a second one).
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Grant `role` to a user; `false` when it was already granted.
pub async fn grant_role(
    db: &DatabaseConnection,
    user_id: Uuid,
    role: &str,
    granted_by: Option<Uuid>,
) -> Result<bool, StoreError> {
    grant_in(db, user_id, role, granted_by).await
}

/// The account with this lower-cased email, deleted ones included.
pub async fn find_by_email<C: ConnectionTrait>(
    db: &C,
    email_lower: &str,
) -> Result<Option<users::Model>, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::EmailLower.eq(email_lower))
        .one(db)
        .await?)
}

/// Role names per user, for a batch of users (one query).
pub async fn roles_of<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<String>>, StoreError> {
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let rows = user_roles::Entity::find()
        .filter(user_roles::Column::UserId.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    for r in rows {
        out.entry(r.user_id).or_default().push(r.role);
    }
    Ok(out)
}

/// Accounts in creation order (deleted ones excluded), at most `limit`.
pub async fn list(db: &DatabaseConnection, limit: u64) -> Result<Vec<users::Model>, StoreError> {
    Ok(users::Entity::find()
        .filter(users::Column::DeletedAt.is_null())
        .order_by_asc(users::Column::CreatedAt)
        .order_by_asc(users::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Clear the failed-login counter and any lock. `false` when no such account.
pub async fn unlock(db: &DatabaseConnection, user_id: Uuid) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::FailedLogins, Expr::value(0))
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::store::now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The account with this id, deleted ones included.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<users::Model>, StoreError> {
    Ok(users::Entity::find_by_id(id).one(db).await?)
}

/// Reserve one login attempt before the password is checked: succeeds only while the account is
/// under `max` failures and not locked (an expired lock starts a fresh count). At most `max`
/// checks can therefore ever be in flight.
pub async fn reserve_login_attempt<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    max: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let lock_expired = Expr::col(users::Column::LockedUntil)
        .is_not_null()
        .and(Expr::col(users::Column::LockedUntil).lte(now));
    let res = users::Entity::update_many()
        .col_expr(
            users::Column::FailedLogins,
            Expr::case(lock_expired.clone(), Expr::value(1))
                .finally(Expr::col(users::Column::FailedLogins).add(1))
                .into(),
        )
        .col_expr(
            users::Column::LockedUntil,
            Expr::case(
                lock_expired.clone(),
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .finally(Expr::col(users::Column::LockedUntil))
            .into(),
        )
        .filter(users::Column::Id.eq(id))
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(users::Column::LockedUntil.is_null())
                        .add(users::Column::FailedLogins.lt(max as i32)),
                )
                .add(users::Column::LockedUntil.lte(now)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Give back a reserved attempt that was never checked (the hashing pool was full).
pub async fn release_login_attempt<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(
            users::Column::FailedLogins,
            Expr::col(users::Column::FailedLogins).sub(1),
        )
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::FailedLogins.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// After a failed check: lock the account until `until` if its failures reached `max`. `true` when this call locked it.
pub async fn lock_if_exhausted<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    max: u32,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::LockedUntil, Expr::value(until))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::FailedLogins.gte(max as i32))
        .filter(users::Column::LockedUntil.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// After a successful check: clear failures and lock, record the login, and store an upgraded hash if given.
pub async fn login_succeeded<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
    new_hash: Option<String>,
) -> Result<(), StoreError> {
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::FailedLogins, Expr::value(0))
        .col_expr(
            users::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(users::Column::LastLoginAt, Expr::value(now));
    if let Some(hash) = new_hash {
        update = update.col_expr(users::Column::PasswordHash, Expr::value(hash));
    }
    update.filter(users::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Replace the password hash.
pub async fn set_password<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    hash: String,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(hash))
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::store::now()))
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// An account and its role names, in one query.
pub async fn find_with_roles<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<(users::Model, Vec<String>)>, StoreError> {
    let mut rows = users::Entity::find_by_id(id)
        .find_with_related(user_roles::Entity)
        .all(db)
        .await?;
    Ok(rows
        .pop()
        .map(|(user, grants)| (user, grants.into_iter().map(|g| g.role).collect())))
}
