//! Queries of Gatehouse as an OpenID Provider: registered clients, remembered consents, and authorization codes (spent by one conditional UPDATE; a spent code still names the session it issued).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::{oidc_clients, oidc_codes, oidc_consents, sessions};

/// A client being registered.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub public: bool,
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: String,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewClient,
) -> Result<oidc_clients::Model, StoreError> {
    Ok(
        oidc_clients::ActiveModel {
            id: Set(Uuid::now_v7()),
            client_id: Set(new.client_id),
            name: Set(new.name),
            secret_hash: Set(new.secret_hash),
            public: Set(new.public),
            first_party: Set(new.first_party),
            redirect_uris: Set(serde_json::json!(new.redirect_uris).to_string()),
            post_logout_redirect_uris: Set(
                serde_json::json!(new.post_logout_redirect_uris).to_string()
            ),
            scopes: Set(new.scopes),
            created_at: Set(crate::store::now()),
        }
        .insert(db)
        .await?,
    )
}

/// Every client, oldest first.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<oidc_clients::Model>, StoreError> {
    Ok(oidc_clients::Entity::find()
        .order_by_asc(oidc_clients::Column::CreatedAt)
        .all(db)
        .await?)
}

/// The client with this public `client_id`.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    client_id: &str,
) -> Result<Option<oidc_clients::Model>, StoreError> {
    Ok(oidc_clients::Entity::find()
        .filter(oidc_clients::Column::ClientId.eq(client_id))
        .one(db)
        .await?)
}

pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> Result<Option<oidc_clients::Model>, StoreError> {
    Ok(oidc_clients::Entity::find_by_id(id).one(db).await?)
}

/// Delete a client and the sessions issued to it (its consents and codes go by cascade).
/// Whether it existed.
pub async fn delete<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<u64, StoreError> {
    sessions::Entity::delete_many()
        .filter(sessions::Column::OidcClientId.eq(id))
        .exec(db)
        .await?;
    Ok(oidc_clients::Entity::delete_by_id(id)
        .exec(db)
        .await?
        .rows_affected)
}

/// `user_id`'s consent to `client`, if any.
pub async fn consent<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    client: Uuid,
) -> Result<Option<oidc_consents::Model>, StoreError> {
    Ok(oidc_consents::Entity::find()
        .filter(oidc_consents::Column::UserId.eq(user_id))
        .filter(oidc_consents::Column::ClientId.eq(client))
        .one(db)
        .await?)
}

/// Remember `user_id`'s consent to `client` for `scope` (replacing an earlier one).
pub async fn save_consent<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    client: Uuid,
    scope: &str,
) -> Result<(), StoreError> {
    oidc_consents::Entity::delete_many()
        .filter(oidc_consents::Column::UserId.eq(user_id))
        .filter(oidc_consents::Column::ClientId.eq(client))
        .exec(db)
        .await?;
    oidc_consents::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        client_id: Set(client),
        scope: Set(scope.to_string()),
        granted_at: Set(crate::store::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// `user_id`'s consents with their clients, newest first.
pub async fn consents_of<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<(oidc_consents::Model, oidc_clients::Model)>, StoreError> {
    let consents = oidc_consents::Entity::find()
        .filter(oidc_consents::Column::UserId.eq(user_id))
        .order_by_desc(oidc_consents::Column::GrantedAt)
        .all(db)
        .await?;
    let mut out = Vec::with_capacity(consents.len());
    for c in consents {
        if let Some(client) = find_by_id(db, c.client_id).await? {
            out.push((c, client));
        }
    }
    Ok(out)
}

/// Forget `user_id`'s consent to `client`; how many rows went.
pub async fn revoke_consent<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    client: Uuid,
) -> Result<u64, StoreError> {
    Ok(oidc_consents::Entity::delete_many()
        .filter(oidc_consents::Column::UserId.eq(user_id))
        .filter(oidc_consents::Column::ClientId.eq(client))
        .exec(db)
        .await?
        .rows_affected)
}

/// An authorization code being issued.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code_hash: String,
    pub client: Uuid,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub aal: String,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_code<C: ConnectionTrait>(db: &C, new: NewCode) -> Result<(), StoreError> {
    oidc_codes::ActiveModel {
        id: Set(Uuid::now_v7()),
        code_hash: Set(new.code_hash),
        client_id: Set(new.client),
        user_id: Set(new.user_id),
        redirect_uri: Set(new.redirect_uri),
        scope: Set(new.scope),
        nonce: Set(new.nonce),
        code_challenge: Set(new.code_challenge),
        aal: Set(new.aal),
        auth_time: Set(new.auth_time),
        created_at: Set(crate::store::now()),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        session_id: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The code with this hash, spent or not.
pub async fn find_code<C: ConnectionTrait>(
    db: &C,
    code_hash: &str,
) -> Result<Option<oidc_codes::Model>, StoreError> {
    Ok(oidc_codes::Entity::find()
        .filter(oidc_codes::Column::CodeHash.eq(code_hash))
        .one(db)
        .await?)
}

/// Spend the live code with this hash issued to `client` (its row id): `true` for exactly one
/// caller, however many race.
pub async fn spend_code<C: ConnectionTrait>(
    db: &C,
    code_hash: &str,
    client: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let res = oidc_codes::Entity::update_many()
        .col_expr(oidc_codes::Column::UsedAt, Expr::value(now))
        .filter(oidc_codes::Column::CodeHash.eq(code_hash))
        .filter(oidc_codes::Column::ClientId.eq(client))
        .filter(oidc_codes::Column::UsedAt.is_null())
        .filter(oidc_codes::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Remember the session a spent code issued.
pub async fn code_issued<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    session: Uuid,
) -> Result<(), StoreError> {
    oidc_codes::Entity::update_many()
        .col_expr(oidc_codes::Column::SessionId, Expr::value(session))
        .filter(oidc_codes::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
