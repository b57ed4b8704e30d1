//! Queries on passkeys and on WebAuthn ceremonies in progress: a ceremony is taken by one conditional DELETE whose row count decides the winner, so it is spent once however many instances race; a passkey's counter moves by compare-and-set.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{oauth_identities, passkeys, users, webauthn_ceremonies};

/// A passkey to store.
pub struct NewPasskey {
    pub user_id: Uuid,
    pub credential_hash: String,
    pub name: String,
    pub credential: String,
}

/// Store a new passkey; `Conflict` when its credential is already registered (to anyone).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewPasskey,
) -> Result<passkeys::Model, StoreError> {
    Ok(passkeys::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(new.user_id),
        credential_hash: Set(new.credential_hash),
        name: Set(new.name),
        credential: Set(new.credential),
        created_at: Set(crate::store::now()),
        last_used_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// A user's passkeys, oldest first.
pub async fn of_user<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<passkeys::Model>, StoreError> {
    Ok(passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(user_id))
        .order_by_asc(passkeys::Column::CreatedAt)
        .order_by_asc(passkeys::Column::Id)
        .all(db)
        .await?)
}

/// How many passkeys a user has.
pub async fn count<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64, StoreError> {
    Ok(passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(user_id))
        .count(db)
        .await?)
}

/// The passkey whose credential id hashes to `credential_hash`.
pub async fn by_credential<C: ConnectionTrait>(
    db: &C,
    credential_hash: &str,
) -> Result<Option<passkeys::Model>, StoreError> {
    Ok(passkeys::Entity::find()
        .filter(passkeys::Column::CredentialHash.eq(credential_hash))
        .one(db)
        .await?)
}

/// Rename one of a user's passkeys; `None` when the user has no such passkey.
pub async fn rename<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<Option<passkeys::Model>, StoreError> {
    let res = passkeys::Entity::update_many()
        .col_expr(passkeys::Column::Name, Expr::value(name))
        .filter(passkeys::Column::Id.eq(id))
        .filter(passkeys::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if res.rows_affected == 0 {
        // MySQL counts only changed rows: the same name again is still a hit.
        return Ok(passkeys::Entity::find_by_id(id)
            .filter(passkeys::Column::UserId.eq(user_id))
            .one(db)
            .await?);
    }
    Ok(passkeys::Entity::find_by_id(id).one(db).await?)
}

/// What removing a passkey did.
pub enum Removal {
    NotFound,
    /// Refused: the account has no password, no linked identity and no other passkey.
    LastWay,
    Removed(passkeys::Model),
}

/// Remove one of a user's passkeys unless it is the account's last way to sign in. Run it in a
/// transaction: the user row is touched first, so concurrent removals of an account's last two
/// ways queue behind each other.
pub async fn remove<C: ConnectionTrait>(
    txn: &C,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Removal, StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    let Some(passkey) = passkeys::Entity::find_by_id(id)
        .filter(passkeys::Column::UserId.eq(user_id))
        .one(txn)
        .await?
    else {
        return Ok(Removal::NotFound);
    };
    let has_password = users::Entity::find_by_id(user_id)
        .filter(users::Column::PasswordHash.is_not_null())
        .count(txn)
        .await?
        > 0;
    let identities = oauth_identities::Entity::find()
        .filter(oauth_identities::Column::UserId.eq(user_id))
        .count(txn)
        .await?;
    let others = passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(user_id))
        .filter(passkeys::Column::Id.ne(id))
        .count(txn)
        .await?;
    if !has_password && identities == 0 && others == 0 {
        return Ok(Removal::LastWay);
    }
    passkeys::Entity::delete_by_id(id).exec(txn).await?;
    Ok(Removal::Removed(passkey))
}

/// Record a sign-in with a passkey: its credential as it now is (counter, backup state) and
/// when. Compare-and-set on the credential read before the check: `false` when another sign-in
/// moved it meanwhile (or the passkey is gone), so one counter value is never accepted twice.
pub async fn used<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    read: &str,
    credential: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = passkeys::Entity::update_many()
        .col_expr(passkeys::Column::Credential, Expr::value(credential))
        .col_expr(passkeys::Column::LastUsedAt, Expr::value(now))
        .filter(passkeys::Column::Id.eq(id))
        .filter(passkeys::Column::Credential.eq(read))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Store a ceremony in progress: `kind`, whose (if known) and webauthn-rs's state, found later
/// by the SHA-256 of its id.
pub async fn begin_ceremony<C: ConnectionTrait>(
    db: &C,
    ceremony_hash: String,
    kind: &str,
    user_id: Option<Uuid>,
    state: String,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    webauthn_ceremonies::ActiveModel {
        id: Set(Uuid::now_v7()),
        ceremony_hash: Set(ceremony_hash),
        kind: Set(kind.to_string()),
        user_id: Set(user_id),
        state: Set(state),
        created_at: Set(crate::store::now()),
        expires_at: Set(expires_at),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Take the live ceremony of `kind` with this hash: the ceremony for exactly one caller however
/// many race (a conditional DELETE), `None` when unknown, expired, of another kind or taken.
pub async fn take_ceremony<C: ConnectionTrait>(
    db: &C,
    ceremony_hash: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Option<webauthn_ceremonies::Model>, StoreError> {
    let Some(ceremony) = webauthn_ceremonies::Entity::find()
        .filter(webauthn_ceremonies::Column::CeremonyHash.eq(ceremony_hash))
        .filter(webauthn_ceremonies::Column::Kind.eq(kind))
        .filter(webauthn_ceremonies::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let res = webauthn_ceremonies::Entity::delete_many()
        .filter(webauthn_ceremonies::Column::Id.eq(ceremony.id))
        .filter(webauthn_ceremonies::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then_some(ceremony))
}

/// Delete ceremonies that expired before `now`; how many went.
pub async fn purge_ceremonies<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(webauthn_ceremonies::Entity::delete_many()
        .filter(webauthn_ceremonies::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
