//! Use cases: one type per area that runs a flow (check the rules, call the store, hash, audit) and speaks in `ServiceError`.

pub mod accounts;
pub mod auth;
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
    /// Password hashing is saturated: retry shortly.
    #[error("the server is busy; retry shortly")]
    Busy,
    #[error("{0}")]
    Unavailable(String),
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

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => ServiceError::Unavailable(m),
            StoreError::Conflict(m) => ServiceError::Conflict {
                code: "conflict",
                detail: m,
            },
            StoreError::NotFound => ServiceError::NotFound,
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
