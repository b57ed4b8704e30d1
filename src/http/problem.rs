//! RFC 9457 problem documents: the one mapping from service errors (and bare framework errors) to HTTP answers.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::service::{FieldError, ServiceError};

pub const PROBLEM_JSON: &str = "application/problem+json";
const DATABASE_UNAVAILABLE: &str = "database_unavailable";

/// Marks an answer that failed because the database could not be reached, so the database
/// circuit (`http::routed`) hears of it.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnavailable;

/// An error answer. `code` is the stable machine string clients branch on.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds for the `Retry-After` header.
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// Send `WWW-Authenticate: Bearer` (401 answers).
    #[serde(skip)]
    pub bearer_challenge: bool,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:gatehouse:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: Vec::new(),
            retry_after: None,
            bearer_challenge: status == StatusCode::UNAUTHORIZED,
        }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 503 `database_unavailable` with `Retry-After`.
    pub fn database_unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            DATABASE_UNAVAILABLE,
            "the database is not answering; retry shortly",
        )
        .retry_after(5)
    }

    /// The problem for a status produced outside our handlers (routing, body limit, timeout).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "this method is not allowed on this resource",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "payload_too_large",
                "the request body is too large (64 KiB; 1 MiB for a usage batch)",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("service_unavailable", "the server could not answer in time")
            }
            StatusCode::BAD_REQUEST => ("bad_request", "the request is malformed"),
            s if s.is_server_error() => ("internal_error", "an unexpected error occurred"),
            _ => ("error", "the request failed"),
        };
        Self::new(status, code, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if self.bearer_challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == DATABASE_UNAVAILABLE {
            res.extensions_mut().insert(DatabaseUnavailable);
        }
        res
    }
}

impl From<ServiceError> for Problem {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Validation(errors) => Problem {
                errors,
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "the request has invalid fields",
                )
            },
            ServiceError::Conflict { code, detail } => {
                Problem::new(StatusCode::CONFLICT, code, detail)
            }
            ServiceError::NotFound => Problem::for_status(StatusCode::NOT_FOUND),
            ServiceError::Unauthorized { code, detail } => {
                Problem::new(StatusCode::UNAUTHORIZED, code, detail)
            }
            ServiceError::Forbidden { code, detail } => {
                Problem::new(StatusCode::FORBIDDEN, code, detail)
            }
            ServiceError::Locked { retry_after } => Problem::new(
                StatusCode::LOCKED,
                "account_locked",
                "too many failed logins; the account is locked for a while",
            )
            .retry_after(retry_after),
            ServiceError::RateLimited { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; slow down",
            )
            .retry_after(retry_after),
            ServiceError::Busy => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                "the server is busy; retry shortly",
            )
            .retry_after(1),
            ServiceError::Unavailable(detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                Problem::database_unavailable()
            }
            ServiceError::BadRequest { code, detail } => {
                Problem::new(StatusCode::BAD_REQUEST, code, detail)
            }
            ServiceError::Upstream { code, detail } => {
                Problem::new(StatusCode::BAD_GATEWAY, code, detail).retry_after(5)
            }
            ServiceError::NotConfigured { code, detail } => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
            }
            ServiceError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

/// Turn any error answer that is not already JSON (router 404/405, body limit 413, timeouts) into a problem document.
pub(crate) fn for_bare_error(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json")
                || ct.starts_with(PROBLEM_JSON)
                // The hosted pages' own error pages.
                || ct.starts_with("text/html")
        });
    if is_json {
        return res;
    }
    let (parts, _) = res.into_parts();
    let mut out = Problem::for_status(status).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
