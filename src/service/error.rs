//! The one error type of the use cases: what a flow can answer besides success, mapped to problem documents once in `http::problem`.

use crate::crypto::password::HashError;
use crate::domain::Violation;
use crate::domain::permissions::Permission;
use crate::limits::rate::Limited;
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
    /// The request cannot be served as sent (a parameter outside what is allowed).
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// A server this call depends on (an outside sign-in provider) did not answer usefully.
    #[error("{detail}")]
    Upstream { code: &'static str, detail: String },
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

    /// 403 `insufficient_permission`: the caller lacks `permission`.
    pub fn missing_permission(permission: Permission) -> Self {
        ServiceError::Forbidden {
            code: "insufficient_permission",
            detail: format!("this needs the permission {permission}"),
        }
    }

    /// 422 with every broken rule, or `Ok` when there is none.
    pub fn check(errors: Vec<FieldError>) -> Result<(), ServiceError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(errors))
        }
    }
}

impl FieldError {
    /// A domain rule broken by `field`.
    pub fn new(field: &'static str, violation: Violation) -> Self {
        Self {
            field,
            code: violation.code,
            message: violation.message,
        }
    }

    /// Every rule `field` breaks.
    pub fn all(field: &'static str, violations: Vec<Violation>) -> Vec<Self> {
        violations
            .into_iter()
            .map(|v| Self::new(field, v))
            .collect()
    }
}

impl From<Limited> for ServiceError {
    fn from(l: Limited) -> Self {
        ServiceError::RateLimited {
            retry_after: l.retry_after,
        }
    }
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
