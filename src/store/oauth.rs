//! Queries on sign-in through outside providers: flows in progress (`oauth_states`, spent by one conditional UPDATE) and the identities linked to accounts (`oauth_identities`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{oauth_identities, oauth_states, passkeys, users};

/// A flow being started.
#[derive(Debug, Clone)]
pub struct NewState {
    pub state_hash: String,
    pub binder_hash: String,
    pub provider: String,
    pub redirect_uri: String,
    pub link_user_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_state<C: ConnectionTrait>(db: &C, new: NewState) -> Result<(), StoreError> {
    oauth_states::ActiveModel {
        id: Set(Uuid::now_v7()),
        state_hash: Set(new.state_hash),
        binder_hash: Set(new.binder_hash),
        provider: Set(new.provider),
        redirect_uri: Set(new.redirect_uri),
        link_user_id: Set(new.link_user_id),
        created_at: Set(crate::store::now()),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The unspent, unexpired flow with this state hash.
pub async fn find_live_state<C: ConnectionTrait>(
    db: &C,
    state_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<oauth_states::Model>, StoreError> {
    Ok(oauth_states::Entity::find()
        .filter(oauth_states::Column::StateHash.eq(state_hash))
        .filter(oauth_states::Column::UsedAt.is_null())
        .filter(oauth_states::Column::ExpiresAt.gt(now))
        .one(db)
        .await?)
}

/// Spend a flow's state: `true` for exactly one caller, however many race.
pub async fn spend_state<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::UsedAt, Expr::value(now))
        .filter(oauth_states::Column::Id.eq(id))
        .filter(oauth_states::Column::UsedAt.is_null())
        .filter(oauth_states::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Delete flows that expired before `before` (spent or not); how many went.
pub async fn delete_expired_states<C: ConnectionTrait>(
    db: &C,
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let res = oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// An identity at a provider, being linked to an account.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
}

/// Link `identity` to `user_id`. An identity already linked (to anyone) is `Conflict`.
pub async fn insert_identity<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    identity: NewIdentity,
) -> Result<oauth_identities::Model, StoreError> {
    Ok(oauth_identities::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        provider: Set(identity.provider),
        subject: Set(identity.subject),
        email: Set(identity.email),
        created_at: Set(crate::store::now()),
    }
    .insert(db)
    .await?)
}

/// The identity `subject` at `provider`, if linked.
pub async fn find_identity<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    subject: &str,
) -> Result<Option<oauth_identities::Model>, StoreError> {
    Ok(oauth_identities::Entity::find()
        .filter(oauth_identities::Column::Provider.eq(provider))
        .filter(oauth_identities::Column::Subject.eq(subject))
        .one(db)
        .await?)
}

/// A user's identities, oldest first.
pub async fn identities_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<oauth_identities::Model>, StoreError> {
    Ok(oauth_identities::Entity::find()
        .filter(oauth_identities::Column::UserId.eq(user_id))
        .order_by_asc(oauth_identities::Column::CreatedAt)
        .order_by_asc(oauth_identities::Column::Id)
        .all(db)
        .await?)
}

/// What unlinking an identity did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlink {
    Removed(oauth_identities::Model),
    /// No such identity of this user.
    NotFound,
    /// It is the account's last way to sign in (no password, no other identity, no passkey).
    LastWay,
}

/// Unlink identity `id` of `user_id` unless it is the account's last way to sign in. Run it in
/// a transaction: the user row is written first, so concurrent unlinks of one account take
/// turns and cannot together remove every way in.
pub async fn unlink_identity<C: ConnectionTrait>(
    txn: &C,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Unlink, StoreError> {
    users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::value(now))
        .filter(users::Column::Id.eq(user_id))
        .exec(txn)
        .await?;
    let Some(identity) = oauth_identities::Entity::find_by_id(id)
        .filter(oauth_identities::Column::UserId.eq(user_id))
        .one(txn)
        .await?
    else {
        return Ok(Unlink::NotFound);
    };
    let has_password = users::Entity::find_by_id(user_id)
        .filter(users::Column::PasswordHash.is_not_null())
        .count(txn)
        .await?
        > 0;
    let others = oauth_identities::Entity::find()
        .filter(oauth_identities::Column::UserId.eq(user_id))
        .filter(oauth_identities::Column::Id.ne(id))
        .count(txn)
        .await?;
    let passkeys = passkeys::Entity::find()
        .filter(passkeys::Column::UserId.eq(user_id))
        .count(txn)
        .await?;
    if !has_password && others == 0 && passkeys == 0 {
        return Ok(Unlink::LastWay);
    }
    oauth_identities::Entity::delete_by_id(id).exec(txn).await?;
    Ok(Unlink::Removed(identity))
}
