//! Queries on single-use secrets (email verification, password reset, MFA login, sign-in codes, OAuth exchange codes and link tickets): stored as SHA-256 hashes, spent by one conditional UPDATE whose row count decides the winner.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::StoreError;
use super::entities::one_time_tokens;

/// What a single-use secret is for: the one list of purposes, as stored in `purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The link of a verification mail.
    VerifyEmail,
    /// The link of a password-reset mail.
    PasswordReset,
    /// The `mfa_token` between a right password and the second factor.
    MfaLogin,
    /// The code a hosted sign-in hands an app (`/login?redirect_to=`), exchanged for tokens.
    SignInCode,
    /// The one-time code an outside provider's sign-in hands the browser, for
    /// `POST /auth/oauth/exchange`.
    OAuthExchange,
    /// A signed-in user's ticket to start linking an outside identity.
    OAuthLink,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::PasswordReset => "password_reset",
            Purpose::MfaLogin => "mfa_login",
            Purpose::SignInCode => "sign_in_code",
            Purpose::OAuthExchange => "oauth_exchange",
            Purpose::OAuthLink => "oauth_link",
        }
    }
}

/// Store a new token's hash for `user_id` and `purpose`, valid until `expires_at`.
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: Purpose,
    token_hash: String,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    one_time_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_string()),
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
    purpose: Purpose,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<one_time_tokens::Model>, StoreError> {
    Ok(one_time_tokens::Entity::find()
        .filter(one_time_tokens::Column::TokenHash.eq(token_hash))
        .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
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

/// Find the live token with this hash and purpose and spend it: the token for exactly one
/// caller, however many race; `None` for an unknown, expired or spent one.
pub async fn take<C: ConnectionTrait>(
    db: &C,
    purpose: Purpose,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<one_time_tokens::Model>, StoreError> {
    let Some(token) = find_live(db, purpose, token_hash, now).await? else {
        return Ok(None);
    };
    Ok(spend(db, token.id, now).await?.then_some(token))
}

/// Spend every unspent token of a user for `purpose` (older links die with the one used).
pub async fn spend_all<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: Purpose,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let res = one_time_tokens::Entity::update_many()
        .col_expr(one_time_tokens::Column::UsedAt, Expr::value(now))
        .filter(one_time_tokens::Column::UserId.eq(user_id))
        .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
        .filter(one_time_tokens::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(res.rows_affected)
}

/// When the user's newest token for `purpose` was issued.
pub async fn last_issued<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(one_time_tokens::Entity::find()
        .filter(one_time_tokens::Column::UserId.eq(user_id))
        .filter(one_time_tokens::Column::Purpose.eq(purpose.as_str()))
        .order_by_desc(one_time_tokens::Column::CreatedAt)
        .one(db)
        .await?
        .map(|t| t.created_at))
}
