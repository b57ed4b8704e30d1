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
use super::lockout::Counter;

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
        grant_role(txn, id, role, None).await?;
    }
    Ok(user)
}

/// Grant `role` to a user; `false` when it was already granted.
pub async fn grant_role<C: ConnectionTrait>(
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
pub async fn unlock<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<bool, StoreError> {
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

fn counter(id: Uuid) -> Counter<users::Entity> {
    Counter {
        failed: users::Column::FailedLogins,
        locked_until: users::Column::LockedUntil,
        row: Condition::all().add(users::Column::Id.eq(id)),
    }
}

/// Reserve one login attempt on the account before its password or code is checked.
pub async fn reserve_login_attempt<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    max: u32,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    counter(id).reserve(db, max, now).await
}

/// Give back a reserved attempt that was never judged.
pub async fn release_login_attempt<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), StoreError> {
    counter(id).release(db).await
}

/// After a failed check: lock the account until `until` if its failures reached `max`. `true`
/// when this call locked it.
pub async fn lock_if_exhausted<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    max: u32,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    counter(id).lock_if_exhausted(db, max, until).await
}

/// After a successful check: record the login, store an upgraded hash if given, and with
/// `clear_lock` clear the account's failures and lock. Returns the user as it now is.
pub async fn login_succeeded<C: ConnectionTrait>(
    db: &C,
    user: users::Model,
    now: DateTime<Utc>,
    new_hash: Option<String>,
    clear_lock: bool,
) -> Result<users::Model, StoreError> {
    let mut update =
        users::Entity::update_many().col_expr(users::Column::LastLoginAt, Expr::value(now));
    if clear_lock {
        update = update
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .col_expr(
                users::Column::LockedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
    }
    if let Some(hash) = &new_hash {
        update = update.col_expr(users::Column::PasswordHash, Expr::value(hash.clone()));
    }
    update
        .filter(users::Column::Id.eq(user.id))
        .exec(db)
        .await?;
    let (failed_logins, locked_until) = if clear_lock {
        (0, None)
    } else {
        (user.failed_logins, user.locked_until)
    };
    Ok(users::Model {
        failed_logins,
        locked_until,
        last_login_at: Some(now),
        password_hash: new_hash.or(user.password_hash),
        ..user
    })
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

/// Which accounts a listing shows (deleted ones never).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub role: Option<String>,
    /// Matched case-insensitively anywhere in the email or the name.
    pub q: Option<String>,
    pub active: Option<bool>,
}

/// `%`, `_` and `\` taken literally in a LIKE pattern.
fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of accounts in creation order (oldest first, then id), and how many match in all.
pub async fn page(
    db: &DatabaseConnection,
    filter: &ListFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<users::Model>, u64), StoreError> {
    use sea_orm::PaginatorTrait;
    use sea_orm::sea_query::{Func, LikeExpr, Query};
    let mut query = users::Entity::find().filter(users::Column::DeletedAt.is_null());
    if let Some(active) = filter.active {
        query = query.filter(users::Column::Active.eq(active));
    }
    if let Some(role) = &filter.role {
        query = query.filter(
            users::Column::Id.in_subquery(
                Query::select()
                    .column(user_roles::Column::UserId)
                    .from(user_roles::Entity)
                    .and_where(user_roles::Column::Role.eq(role.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = like_literal(&q.to_lowercase());
        query = query.filter(
            Condition::any()
                .add(
                    Expr::col((users::Entity, users::Column::EmailLower))
                        .like(LikeExpr::new(pattern.clone()).escape('\\')),
                )
                .add(
                    Expr::expr(Func::lower(Expr::col((users::Entity, users::Column::Name))))
                        .like(LikeExpr::new(pattern).escape('\\')),
                ),
        );
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_asc(users::Column::CreatedAt)
        .order_by_asc(users::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}

/// The changes a profile update may carry; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub name: Option<Option<String>>,
    pub metadata: Option<serde_json::Value>,
    pub active: Option<bool>,
}

/// Apply a profile change to a live (not deleted) account. `false` when there is none.
pub async fn update_profile<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    change: ProfileChange,
) -> Result<bool, StoreError> {
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::store::now()));
    if let Some(name) = change.name {
        update = update.col_expr(users::Column::Name, Expr::value(name));
    }
    if let Some(metadata) = change.metadata {
        update = update.col_expr(users::Column::Metadata, Expr::value(metadata));
    }
    if let Some(active) = change.active {
        update = update.col_expr(users::Column::Active, Expr::value(active));
    }
    let res = update
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Mark a live account deleted and disabled (its email stays taken). `false` when already gone.
pub async fn soft_delete<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::DeletedAt, Expr::value(now))
        .col_expr(users::Column::Active, Expr::value(false))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Remove an account row for good (its sessions, grants and tokens cascade; the audit log stays).
pub async fn purge<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<bool, StoreError> {
    Ok(users::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Make `roles` exactly the account's grants: drop the others, add the missing ones (only
/// those: a refused duplicate would abort a PostgreSQL transaction).
pub async fn replace_roles<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    roles: &[String],
    granted_by: Option<Uuid>,
) -> Result<(), StoreError> {
    user_roles::Entity::delete_many()
        .filter(user_roles::Column::UserId.eq(id))
        .filter(user_roles::Column::Role.is_not_in(roles.iter().cloned()))
        .exec(db)
        .await?;
    let held = roles_of(db, &[id]).await?.remove(&id).unwrap_or_default();
    for role in roles.iter().filter(|r| !held.contains(r)) {
        grant_role(db, id, role, granted_by).await?;
    }
    Ok(())
}

/// Inside a transaction, before any other statement: serialise every change that could remove
/// a `super_admin`, and return the live accounts holding the role. The lock is a write to the
/// `super_admin` row of the role catalogue that changes nothing: a row lock on PostgreSQL and
/// MySQL (a primary-key match, so no gap locks and no deadlocks), the write lock on SQLite.
/// Whoever comes second waits, then sees the first one's outcome.
pub async fn lock_super_admins<C: ConnectionTrait>(db: &C) -> Result<Vec<Uuid>, StoreError> {
    const SUPER_ADMIN: &str = "super_admin";
    super::entities::roles::Entity::update_many()
        .col_expr(
            super::entities::roles::Column::Rank,
            Expr::col(super::entities::roles::Column::Rank),
        )
        .filter(super::entities::roles::Column::Name.eq(SUPER_ADMIN))
        .exec(db)
        .await?;
    let holders: Vec<Uuid> = user_roles::Entity::find()
        .select_only()
        .column(user_roles::Column::UserId)
        .filter(user_roles::Column::Role.eq(SUPER_ADMIN))
        .into_tuple()
        .all(db)
        .await?;
    if holders.is_empty() {
        return Ok(holders);
    }
    Ok(users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.is_in(holders))
        .filter(users::Column::DeletedAt.is_null())
        .filter(users::Column::Active.eq(true))
        .into_tuple()
        .all(db)
        .await?)
}

/// Mark a live account's email verified.
pub async fn mark_verified<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::EmailVerified, Expr::value(true))
        .col_expr(users::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::DeletedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Keep an encrypted TOTP secret waiting for confirmation (replacing any earlier one).
pub async fn set_mfa_pending<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    sealed: Option<String>,
) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::MfaPendingSecret, Expr::value(sealed))
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Activate the pending secret as the TOTP secret, with `step` as the last accepted code.
/// `false` when nothing was pending or MFA is already on (a parallel confirm won).
pub async fn activate_mfa<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    sealed: String,
    step: i64,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::MfaSecret, Expr::value(sealed))
        .col_expr(
            users::Column::MfaPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(users::Column::MfaEnabled, Expr::value(true))
        .col_expr(users::Column::MfaLastStep, Expr::value(step))
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::store::now()))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::MfaEnabled.eq(false))
        .filter(users::Column::MfaPendingSecret.is_not_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Turn TOTP off and forget its secrets.
pub async fn disable_mfa<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::MfaEnabled, Expr::value(false))
        .col_expr(
            users::Column::MfaSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            users::Column::MfaPendingSecret,
            Expr::value(Option::<String>::None),
        )
        .col_expr(users::Column::MfaLastStep, Expr::value(Option::<i64>::None))
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::store::now()))
        .filter(users::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Accept a TOTP code of time step `step` only if it is later than the last accepted one:
/// `true` for exactly one caller per step (no replay, even in parallel).
pub async fn accept_totp_step<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    step: i64,
) -> Result<bool, StoreError> {
    let res = users::Entity::update_many()
        .col_expr(users::Column::MfaLastStep, Expr::value(step))
        .filter(users::Column::Id.eq(id))
        .filter(users::Column::MfaEnabled.eq(true))
        .filter(
            Condition::any()
                .add(users::Column::MfaLastStep.is_null())
                .add(users::Column::MfaLastStep.lt(step)),
        )
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Rows per `INSERT` of an import (19 parameters each: far inside every backend's limit).
const IMPORT_ROWS_PER_STATEMENT: usize = 500;

/// Insert accounts brought over from another system, each with its role names, in multi-row
/// statements, every column as given (run it inside a transaction, so each account is in with
/// its roles and TOTP secret, or not at all). A taken email is `StoreError::Conflict`.
pub async fn insert_imported<C: ConnectionTrait>(
    db: &C,
    accounts: &[(users::Model, Vec<String>)],
) -> Result<(), StoreError> {
    use super::instant;
    use sea_orm::sea_query::Query;
    let backend = db.get_database_backend();
    let now = crate::store::now();
    let maybe_instant = |at: Option<DateTime<Utc>>| -> sea_orm::Value {
        match (backend, at) {
            (_, Some(at)) => instant(backend, at),
            (sea_orm::DbBackend::MySql, None) => Option::<chrono::NaiveDateTime>::None.into(),
            (_, None) => Option::<DateTime<Utc>>::None.into(),
        }
    };
    for chunk in accounts.chunks(IMPORT_ROWS_PER_STATEMENT) {
        let mut insert = Query::insert();
        insert.into_table(users::Entity).columns([
            users::Column::Id,
            users::Column::Email,
            users::Column::EmailLower,
            users::Column::PasswordHash,
            users::Column::Name,
            users::Column::Active,
            users::Column::DeletedAt,
            users::Column::EmailVerified,
            users::Column::EmailVerifiedAt,
            users::Column::FailedLogins,
            users::Column::LockedUntil,
            users::Column::LastLoginAt,
            users::Column::MfaEnabled,
            users::Column::MfaSecret,
            users::Column::MfaPendingSecret,
            users::Column::MfaLastStep,
            users::Column::Metadata,
            users::Column::CreatedAt,
            users::Column::UpdatedAt,
        ]);
        for (u, _) in chunk {
            insert.values_panic([
                u.id.into(),
                u.email.clone().into(),
                u.email_lower.clone().into(),
                u.password_hash.clone().into(),
                u.name.clone().into(),
                u.active.into(),
                maybe_instant(u.deleted_at).into(),
                u.email_verified.into(),
                maybe_instant(u.email_verified_at).into(),
                u.failed_logins.into(),
                maybe_instant(u.locked_until).into(),
                maybe_instant(u.last_login_at).into(),
                u.mfa_enabled.into(),
                u.mfa_secret.clone().into(),
                u.mfa_pending_secret.clone().into(),
                u.mfa_last_step.into(),
                u.metadata.clone().into(),
                instant(backend, u.created_at).into(),
                instant(backend, u.updated_at).into(),
            ]);
        }
        db.execute(&insert).await?;
    }
    let grants: Vec<(Uuid, &String)> = accounts
        .iter()
        .flat_map(|(u, roles)| roles.iter().map(move |r| (u.id, r)))
        .collect();
    for chunk in grants.chunks(IMPORT_ROWS_PER_STATEMENT * 4) {
        let mut insert = Query::insert();
        insert.into_table(user_roles::Entity).columns([
            user_roles::Column::UserId,
            user_roles::Column::Role,
            user_roles::Column::GrantedAt,
        ]);
        for (id, role) in chunk {
            insert.values_panic([
                (*id).into(),
                (*role).clone().into(),
                instant(backend, now).into(),
            ]);
        }
        db.execute(&insert).await?;
    }
    Ok(())
}

/// Which of these email keys an account (deleted ones included) already holds.
pub async fn existing_emails<C: ConnectionTrait>(
    db: &C,
    keys: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for chunk in keys.chunks(IMPORT_ROWS_PER_STATEMENT) {
        let rows: Vec<String> = users::Entity::find()
            .select_only()
            .column(users::Column::EmailLower)
            .filter(users::Column::EmailLower.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Bring PostgreSQL's estimate of the users table up to date after a bulk insert: until
/// autovacuum gets to it, the planner takes a freshly filled table for empty and answers the
/// import's email look-ups with scans that grow with every batch.
pub async fn refresh_statistics<C: ConnectionTrait>(db: &C) -> Result<(), StoreError> {
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE users").await?;
    }
    Ok(())
}

/// Up to `limit` live (not deleted) accounts after `after` in id order (ids are time-ordered
/// UUID v7, so this is creation order), with their role names.
pub async fn export_page<C: ConnectionTrait>(
    db: &C,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<(users::Model, Vec<String>)>, StoreError> {
    let mut query = users::Entity::find().filter(users::Column::DeletedAt.is_null());
    if let Some(after) = after {
        query = query.filter(users::Column::Id.gt(after));
    }
    let rows = query
        .order_by_asc(users::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|u| u.id).collect();
    let mut roles = roles_of(db, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|u| {
            let r = roles.remove(&u.id).unwrap_or_default();
            (u, r)
        })
        .collect())
}
