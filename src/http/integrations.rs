//! `/me/integrations*` and `/users/{id}/integrations/{iid}/secret`: users store third-party API keys (sealed at rest, shown as a hint), and services with `integrations:decrypt` read them back.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Area;
use super::extract::{Client, CurrentUser, RequireServiceKey, path_id, perm};
use super::json::ApiJson;
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::integrations::{IntegrationList, IntegrationSecret, IntegrationView, NewKey};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationRequest {
    /// 1 to 64 letters, digits and `. _ - : /`.
    #[schema(example = "openai")]
    service: String,
    /// 8 to 4096 characters, no whitespace; stored encrypted, never shown again.
    #[schema(example = "sk-live-0123456789abcd")]
    api_key: String,
    /// At most 100 characters.
    #[schema(example = "production")]
    label: Option<String>,
}

/// Store a third-party API key for the caller: encrypted at rest (AES-256-GCM), shown only as a hint.
#[utoipa::path(post, path = "/me/integrations", tag = "integrations", security(("bearer" = [])), request_body = CreateIntegrationRequest, responses(
    (status = 201, body = IntegrationView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: service, api_key or label (invalid_length, invalid_characters, too_long)", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "encryption_not_configured: no ENCRYPTION_MASTER_KEY; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn create(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<CreateIntegrationRequest>,
) -> Result<(StatusCode, axum::Json<IntegrationView>), ServiceError> {
    let new = NewKey {
        service: req.service,
        api_key: req.api_key,
        label: req.label,
    };
    let created = gh.integrations().create(&who, new, &client).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// The caller's integrations, oldest first, with hints only.
#[utoipa::path(get, path = "/me/integrations", tag = "integrations", security(("bearer" = [])), responses(
    (status = 200, body = IntegrationList),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn list(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<IntegrationList>, ServiceError> {
    Ok(axum::Json(gh.integrations().list(&who).await?))
}

/// Delete one of the caller's integrations; the encrypted key goes with it.
#[utoipa::path(delete, path = "/me/integrations/{id}", tag = "integrations", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such integration of the caller, or not a UUID", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn delete(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    gh.integrations()
        .delete(&who, path_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's third-party key in clear, for a service API key with `integrations:decrypt`; every call is audited (`integration_decrypted`).
#[utoipa::path(get, path = "/users/{id}/integrations/{iid}/secret", tag = "integrations", security(("bearer" = [])), params(("id" = Uuid, Path), ("iid" = Uuid, Path)), responses(
    (status = 200, body = IntegrationSecret),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "service_key_required: a person's token (whatever the roles); insufficient_permission: a key without `integrations:decrypt`", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such integration of that user, or not a UUID", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "encryption_not_configured: no ENCRYPTION_MASTER_KEY; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn secret(
    State(gh): State<Gatehouse>,
    RequireServiceKey(key, ..): RequireServiceKey<perm::IntegrationsDecrypt>,
    Client(client): Client,
    Path((id, iid)): Path<(String, String)>,
) -> Result<axum::Json<IntegrationSecret>, ServiceError> {
    let secret = gh
        .integrations()
        .reveal(&key, path_id(&id)?, path_id(&iid)?, &client)
        .await?;
    Ok(axum::Json(secret))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(create, list))
        .routes(routes!(delete))
        .routes(routes!(secret))
}
