//! Service API keys: `gh_` + 256 random bits, shown once and stored as a SHA-256 hash, limited to scopes, revoked at once.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::caller::ServiceKey;
use super::error::{FieldError, ServiceError};
use super::login::Principal;
use super::paging::Paging;
use super::views::{ApiKeyView, CreatedApiKey, Page};
use crate::crypto::tokens;
use crate::domain::client::ClientInfo;
use crate::domain::permissions::Permission;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::api_keys;
use crate::store::{self, StoreError};

/// What every key starts with: it tells keys from JWTs at a glance.
pub const KEY_PREFIX: &str = "gh_";
/// How many characters of a key are kept in clear, to recognise it in listings.
const SHOWN: usize = 10;
/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Clone)]
pub struct ApiKeys {
    db: DatabaseConnection,
}

fn invalid_key() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_api_key",
        detail: "the API key is invalid, expired or revoked".into(),
    }
}

impl ApiKeys {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Whether a bearer credential is an API key rather than a JWT.
    pub fn is_api_key(token: &str) -> bool {
        token.starts_with(KEY_PREFIX)
    }

    /// Make a key with `scopes`, optionally expiring; the answer is the only time the key is shown.
    pub async fn create(
        &self,
        actor: &Principal,
        name: &str,
        scopes: &[String],
        expires_at: Option<DateTime<Utc>>,
        client: &ClientInfo,
    ) -> Result<CreatedApiKey, ServiceError> {
        let mut errors = Vec::new();
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.push(FieldError {
                field: "name",
                code: "invalid_length",
                message: "must be 1 to 100 characters, none of them control characters".into(),
            });
        }
        let mut wanted: Vec<String> = Vec::new();
        for scope in scopes {
            match Permission::parse_scope(scope) {
                None => {
                    let known: Vec<_> = Permission::API_KEY_SCOPES.map(Permission::name).into();
                    errors.push(FieldError {
                        field: "scopes",
                        code: "unknown_scope",
                        message: format!("{scope:?} is not one of {}", known.join(", ")),
                    })
                }
                Some(p) if !wanted.iter().any(|w| w == p.name()) => {
                    wanted.push(p.name().to_string())
                }
                Some(_) => {}
            }
        }
        if scopes.is_empty() {
            errors.push(FieldError {
                field: "scopes",
                code: "empty",
                message: "give at least one scope".into(),
            });
        }
        if expires_at.is_some_and(|at| at <= store::now()) {
            errors.push(FieldError {
                field: "expires_at",
                code: "in_the_past",
                message: "must lie in the future".into(),
            });
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let key = format!("{KEY_PREFIX}{}", tokens::random_token(32));
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = store::api_keys::insert(
            &txn,
            store::api_keys::NewApiKey {
                name: name.to_string(),
                key_prefix: key.chars().take(SHOWN).collect(),
                key_hash: tokens::sha256_hex(&key),
                scopes: wanted.clone(),
                created_by: Some(actor.user_id),
                expires_at: expires_at.map(|at| chrono::SubsecRound::trunc_subsecs(at, 6)),
            },
        )
        .await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "api_key_created",
                actor_id: Some(actor.user_id),
                detail: serde_json::json!({"api_key_id": row.id, "name": row.name, "scopes": wanted}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(CreatedApiKey {
            id: row.id,
            name: row.name,
            scopes: wanted,
            key,
            prefix: row.key_prefix,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }

    /// Every key, newest first (revoked ones included, with `revoked_at`).
    pub async fn list(&self, paging: Paging) -> Result<Page<ApiKeyView>, ServiceError> {
        let (rows, total) =
            store::api_keys::page(&self.db, paging.offset(), paging.per_page).await?;
        Ok(Page::new(
            rows.into_iter().map(ApiKeyView::new).collect(),
            paging,
            total,
        ))
    }

    /// Revoke a key; it stops working on the next call. 404 when unknown or already revoked.
    pub async fn revoke(
        &self,
        actor: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::api_keys::revoke(&txn, id, store::now()).await? {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "api_key_revoked",
                actor_id: Some(actor.user_id),
                detail: serde_json::json!({"api_key_id": id}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// The live key behind a bearer credential; records its use.
    pub async fn authenticate(&self, key: &str) -> Result<ServiceKey, ServiceError> {
        let found = self.live(key).await?;
        let now = store::now();
        if found
            .last_used_at
            .is_none_or(|at| now.signed_duration_since(at) >= TOUCH_EVERY)
        {
            store::api_keys::touch(&self.db, found.id, now).await?;
        }
        Ok(ServiceKey {
            id: found.id,
            name: found.name,
            scopes: serde_json::from_value(found.scopes).unwrap_or_default(),
        })
    }

    /// A live key's row, without recording a use (for introspection).
    pub async fn live(&self, key: &str) -> Result<api_keys::Model, ServiceError> {
        if !Self::is_api_key(key) || key.len() > 128 {
            return Err(invalid_key());
        }
        let found = store::api_keys::find_by_hash(&self.db, &tokens::sha256_hex(key))
            .await?
            .ok_or_else(invalid_key)?;
        let now = store::now();
        if found.revoked_at.is_some() || found.expires_at.is_some_and(|at| at <= now) {
            return Err(invalid_key());
        }
        Ok(found)
    }
}
