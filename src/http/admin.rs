//! Admin routes: the audit log, session clean-up and service API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Area;
use uuid::Uuid;

use super::extract::{Client, RequirePermission, RequireRole, perm, tier};
use super::json::{ApiJson, ApiQuery};
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::accounts;
use crate::service::views::{ApiKeyView, AuditView, CreatedApiKey, Page};
use crate::service::{Paging, ServiceError};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The user the event concerns.
    user_id: Option<Uuid>,
    /// Who acted.
    actor_id: Option<Uuid>,
    event: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive.
    until: Option<DateTime<Utc>>,
    page: Option<u64>,
    per_page: Option<u64>,
}

/// The audit log, newest first (admin and up, or an API key with `audit:read`).
#[utoipa::path(get, path = "/audit", tag = "admin", security(("bearer" = [])), params(AuditQuery), responses(
    (status = 200, body = Page<AuditView>),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `audit:read` (admin and up, or an API key scope)", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range, invalid_value", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn audit(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::AuditRead>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<axum::Json<Page<AuditView>>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    let query = accounts::AuditQuery {
        user_id: q.user_id,
        actor_id: q.actor_id,
        event: q.event,
        since: q.since,
        until: q.until,
    };
    Ok(axum::Json(gh.accounts().audit_log(query, paging).await?))
}

#[derive(Serialize, ToSchema)]
pub struct Cleaned {
    /// Rows removed: expired and revoked sessions, spent and expired one-time tokens.
    deleted: u64,
}

/// Delete expired and revoked sessions and spent one-time tokens (admin and up).
#[utoipa::path(post, path = "/admin/sessions/cleanup", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = Cleaned),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn cleanup(
    State(gh): State<Gatehouse>,
    RequireRole(who, ..): RequireRole<tier::Admin>,
    Client(client): Client,
) -> Result<axum::Json<Cleaned>, ServiceError> {
    let deleted = gh
        .accounts()
        .cleanup_sessions(Some((&who, &client)))
        .await?;
    Ok(axum::Json(Cleaned { deleted }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(example = "billing")]
    name: String,
    /// Any of `introspect`, `users:read`, `audit:read`, `usage:write`, `integrations:decrypt`.
    #[schema(example = json!(["users:read", "audit:read"]))]
    scopes: Vec<String>,
    /// RFC 3339; none means the key does not expire.
    #[schema(example = "2099-01-01T00:00:00Z")]
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub(super) page: Option<u64>,
    pub(super) per_page: Option<u64>,
}

/// Create a service API key (admin and up); the key is in this answer only.
#[utoipa::path(post, path = "/api-keys", tag = "admin", security(("bearer" = [])), request_body = CreateApiKeyRequest, responses(
    (status = 201, body = CreatedApiKey),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: invalid_length, invalid_characters, unknown_scope, empty, in_the_past", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn create_key(
    State(gh): State<Gatehouse>,
    RequireRole(who, ..): RequireRole<tier::Admin>,
    Client(client): Client,
    ApiJson(req): ApiJson<CreateApiKeyRequest>,
) -> Result<(StatusCode, axum::Json<CreatedApiKey>), ServiceError> {
    let key = gh
        .api_keys()
        .create(&who, &req.name, &req.scopes, req.expires_at, &client)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// Service API keys, newest first, without the keys themselves (admin and up).
#[utoipa::path(get, path = "/api-keys", tag = "admin", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, body = Page<ApiKeyView>),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn list_keys(
    State(gh): State<Gatehouse>,
    _: RequireRole<tier::Admin>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<axum::Json<Page<ApiKeyView>>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    Ok(axum::Json(gh.api_keys().list(paging).await?))
}

/// Revoke a service API key; it stops working at once (admin and up).
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: unknown, already revoked, or not a UUID", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn revoke_key(
    State(gh): State<Gatehouse>,
    RequireRole(who, ..): RequireRole<tier::Admin>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    let id = super::extract::path_id(&id)?;
    gh.api_keys().revoke(&who, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(audit))
        .routes(routes!(cleanup))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}
