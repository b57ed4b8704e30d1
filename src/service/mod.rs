//! Use cases: one type per area that runs a flow (check the rules, call the store, hash, audit) and speaks in `ServiceError`.

pub mod accounts;
pub mod api_keys;
pub mod auth;
pub mod caller;
pub mod introspection;
pub mod mfa;
pub mod users;
pub mod verification;
pub mod views;

use crate::crypto::password::HashError;
use crate::store::StoreError;

/// One entry of a validation failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

/// Everything a use case can answer besides success; the HTTP layer maps each variant once.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid input: {}", .0.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Validation(Vec<FieldError>),
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("not found")]
    NotFound,
    /// Not authenticated, or bad credentials or token.
    #[error("{detail}")]
    Unauthorized { code: &'static str, detail: String },
    /// Authenticated but not allowed.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },
    /// Too many failed logins: locked for `retry_after` more seconds.
    #[error("the account is locked; retry in {retry_after} s")]
    Locked { retry_after: u64 },
    /// Too many requests for this client: retry after `retry_after` seconds.
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Password hashing is saturated: retry shortly.
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error("{0}")]
    Unavailable(String),
    /// A feature this call needs is not configured on this server.
    #[error("{detail}")]
    NotConfigured { code: &'static str, detail: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Validation(vec![FieldError {
            field,
            code,
            message: message.into(),
        }])
    }
}

/// The `errors` entries for every policy rule `password` breaks (empty when it is acceptable).
pub(crate) fn password_errors(
    policy: &crate::domain::password_policy::PasswordPolicy,
    field: &'static str,
    password: &str,
    email: &str,
) -> Vec<FieldError> {
    policy
        .check(password, Some(email))
        .into_iter()
        .map(|v| FieldError {
            field,
            code: v.code,
            message: v.message,
        })
        .collect()
}

/// A page request: `page` from 1, `per_page` from 1 (default 50), capped at `MAX_PER_PAGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    pub const DEFAULT_PER_PAGE: u64 = 50;
    pub const MAX_PER_PAGE: u64 = 200;
    /// Far past any listing, and keeps every offset inside a signed 64-bit integer.
    pub const MAX_PAGE: u64 = 1_000_000;

    /// Validate a request's `page` and `per_page`; a `per_page` above the cap is lowered to it.
    pub fn new(page: Option<u64>, per_page: Option<u64>) -> Result<Self, ServiceError> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(Self::DEFAULT_PER_PAGE);
        let mut errors = Vec::new();
        if page == 0 || page > Self::MAX_PAGE {
            errors.push(FieldError {
                field: "page",
                code: "out_of_range",
                message: format!("must be between 1 and {}", Self::MAX_PAGE),
            });
        }
        if per_page == 0 {
            errors.push(FieldError {
                field: "per_page",
                code: "out_of_range",
                message: format!("must be between 1 and {}", Self::MAX_PER_PAGE),
            });
        }
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        Ok(Self {
            page,
            per_page: per_page.min(Self::MAX_PER_PAGE),
        })
    }

    pub fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

/// Checks shared by every way an account is made (register, `POST /users`): a valid email, a
/// password the policy accepts, a name of at most 200 characters. Returns the parsed email and
/// the trimmed name, or every broken rule at once.
pub(crate) fn check_new_account(
    policy: &crate::domain::password_policy::PasswordPolicy,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<(crate::domain::email::Email, Option<String>), ServiceError> {
    let mut errors = Vec::new();
    let parsed = crate::domain::email::Email::parse(email);
    if let Err(e) = &parsed {
        errors.push(FieldError {
            field: "email",
            code: e.code(),
            message: e.to_string(),
        });
    }
    errors.extend(password_errors(policy, "password", password, email.trim()));
    let name = check_name(name, &mut errors);
    match parsed {
        Ok(e) if errors.is_empty() => Ok((e, name)),
        _ => Err(ServiceError::Validation(errors)),
    }
}

/// A display name: trimmed, empty meaning none, at most 200 characters, no control characters.
pub(crate) fn check_name(name: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > 200) {
        errors.push(FieldError {
            field: "name",
            code: "too_long",
            message: "must be at most 200 characters".into(),
        });
    }
    if name.is_some_and(|n| n.chars().any(char::is_control)) {
        errors.push(FieldError {
            field: "name",
            code: "invalid_characters",
            message: "must not contain control characters".into(),
        });
    }
    name.map(str::to_string)
}

/// Append `entry` to the audit log outside any transaction, after what it records has happened:
/// a failure is logged, never returned, so it cannot undo or fail the flow.
pub(crate) async fn audit_after(
    db: &sea_orm::DatabaseConnection,
    entry: crate::store::audit::AuditEntry,
) {
    if let Err(e) = crate::store::audit::record(db, entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

/// A new account's details besides email and password.
#[derive(Debug, Clone, Default)]
pub(crate) struct AccountSpec {
    pub name: Option<String>,
    pub roles: Vec<String>,
    pub email_verified: bool,
    pub metadata: Option<serde_json::Value>,
    /// The account is made by its owner (register): the audit row names it as the actor.
    pub self_service: bool,
}

/// Hash the password, then insert the account with its roles and metadata and the audit row
/// `audit` (its `user_id` set to the new account) in one transaction. A taken email (checked
/// before hashing, and again by the unique index) is 409 `email_taken`.
pub(crate) async fn create_account(
    db: &sea_orm::DatabaseConnection,
    hasher: &crate::crypto::password::PasswordHasher,
    email: &crate::domain::email::Email,
    password: &str,
    spec: AccountSpec,
    audit: crate::store::audit::AuditEntry,
) -> Result<crate::store::entities::users::Model, ServiceError> {
    use crate::store;
    use sea_orm::TransactionTrait;
    let taken = || ServiceError::Conflict {
        code: "email_taken",
        detail: "an account with this email already exists".into(),
    };
    if store::users::find_by_email(db, email.key())
        .await?
        .is_some()
    {
        return Err(taken());
    }
    let hash = hasher.hash(password.to_string()).await?;
    let spec_self_service = spec.self_service;
    let txn = db.begin().await.map_err(StoreError::from)?;
    let new = store::users::NewUser {
        email: email.as_str().to_string(),
        email_lower: email.key().to_string(),
        password_hash: Some(hash),
        name: spec.name,
        roles: spec.roles,
        email_verified: spec.email_verified,
    };
    let user = match store::users::insert(&txn, new).await {
        Ok(u) => u,
        Err(StoreError::Conflict(_)) => return Err(taken()),
        Err(e) => return Err(e.into()),
    };
    if let Some(metadata) = spec.metadata {
        let change = store::users::ProfileChange {
            metadata: Some(metadata),
            ..Default::default()
        };
        store::users::update_profile(&txn, user.id, change).await?;
    }
    let audit = crate::store::audit::AuditEntry {
        user_id: Some(user.id),
        actor_id: if spec_self_service {
            Some(user.id)
        } else {
            audit.actor_id
        },
        ..audit
    };
    store::audit::record(&txn, audit).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(user)
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Conflict(m) => ServiceError::Conflict {
                code: "conflict",
                detail: m,
            },
            StoreError::NotFound => ServiceError::NotFound,
            StoreError::InvalidInput(m) => {
                tracing::debug!(error = %m, "the database refused a value");
                ServiceError::invalid(
                    "request",
                    "invalid_value",
                    "a value cannot be stored or searched as given",
                )
            }
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ServiceError::Busy,
            HashError::Failed(m) => ServiceError::Internal(m),
        }
    }
}
