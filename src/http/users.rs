//! `/users*` and `/roles` routes: the users admin API under the RBAC rules (403 for a route above the caller's tier, 404 for a user it may not see).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Area;
use super::extract::{Client, CurrentUser, RequirePermission, RequireRole, path_id, perm, tier};
use super::json::{ApiJson, ApiQuery};
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::caller::Caller;
use crate::service::users::{NewUser, UserPatch, UserQuery};
use crate::service::views::{Page, RoleList, UserView};
use crate::service::{Paging, ServiceError};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    page: Option<u64>,
    /// At most 200 (larger values are lowered to 200).
    per_page: Option<u64>,
    /// Only users holding this role.
    role: Option<String>,
    /// Case-insensitive text searched in email and name.
    q: Option<String>,
    active: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    #[schema(example = "grace@example.com")]
    email: String,
    #[schema(example = "Correct-horse-1")]
    password: String,
    #[schema(example = "Grace")]
    name: Option<String>,
    /// Default `["user"]`; each must be below the caller's highest role (any for super_admin).
    #[schema(example = json!(["moderator"]))]
    roles: Option<Vec<String>>,
    #[serde(default)]
    email_verified: bool,
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(example = "Ada Lovelace", value_type = Option<String>)]
    name: Option<Option<String>>,
    /// Replaces the whole object.
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Value>,
    /// Managers only; `false` revokes every session at once.
    active: Option<bool>,
    /// Managers only, as `PUT /users/{id}/roles`.
    roles: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
pub struct RolesRequest {
    #[schema(example = json!(["moderator"]))]
    roles: Vec<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Remove the row for good and free the email (admin and up).
    #[serde(default)]
    purge: bool,
}

/// List users (moderator and up, or an API key with `users:read`).
#[utoipa::path(get, path = "/users", tag = "users", security(("bearer" = [])), params(ListQuery), responses(
    (status = 200, body = Page<UserView>),
    (status = 400, description = "invalid_query: a query parameter of the wrong type", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: needs `users:read` (moderator and up, or an API key scope)", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: page or per_page out of range, unknown_role, invalid_value", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn list(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::UsersRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<Page<UserView>>, ServiceError> {
    let paging = Paging::new(q.page, q.per_page)?;
    let query = UserQuery {
        role: q.role,
        q: q.q,
        active: q.active,
    };
    Ok(axum::Json(gh.users().list(query, paging).await?))
}

/// Create a user (admin and up).
#[utoipa::path(post, path = "/users", tag = "users", security(("bearer" = [])), request_body = CreateUserRequest, responses(
    (status = 201, body = UserView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), role_not_grantable, user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "email_taken", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn create(
    State(gh): State<Gatehouse>,
    RequireRole(who, ..): RequireRole<tier::Admin>,
    Client(client): Client,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<(StatusCode, axum::Json<UserView>), ServiceError> {
    let new = NewUser {
        email: req.email,
        password: req.password,
        name: req.name,
        roles: req.roles,
        email_verified: req.email_verified,
        metadata: req.metadata,
    };
    let user = gh.users().create(&who, new, &client).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Read a user: oneself, or anyone for moderator and up (404 otherwise).
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 200, body = UserView),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: an API key without `users:read`", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, not a UUID, or one the caller may not see", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn get_one(
    State(gh): State<Gatehouse>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<UserView>, ServiceError> {
    Ok(axum::Json(gh.users().get(&caller, path_id(&id)?).await?))
}

/// Update a user: name and metadata for oneself or a manager; `active` and roles for a manager.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = UpdateUserRequest, responses(
    (status = 200, body = UserView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, unknown fields, or not a JSON object; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "cannot_manage_user, role_not_grantable, cannot_lower_own_role, user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, not a UUID, or one the caller may not see", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "last_super_admin", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: name, metadata or roles", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn update(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateUserRequest>,
) -> Result<axum::Json<UserView>, ServiceError> {
    let patch = UserPatch {
        name: req.name,
        metadata: req.metadata,
        active: req.active,
        roles: req.roles,
    };
    let user = gh
        .users()
        .update(&who, path_id(&id)?, patch, &client)
        .await?;
    Ok(axum::Json(user))
}

/// Delete a user (a manager): soft delete, sessions revoked at once; `?purge=true` (admin and up) removes it for good.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path), DeleteQuery), responses(
    (status = 204),
    (status = 400, description = "invalid_query: `purge` is not a boolean; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "cannot_manage_user, insufficient_role (purge below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, not a UUID, or one the caller may not see", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "last_super_admin", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn delete(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<StatusCode, ServiceError> {
    gh.users()
        .delete(&who, path_id(&id)?, q.purge, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace a user's roles (a manager, granting only roles below its own).
#[utoipa::path(put, path = "/users/{id}/roles", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), request_body = RolesRequest, responses(
    (status = 200, body = UserView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "cannot_manage_user, role_not_grantable, cannot_lower_own_role, user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, not a UUID, or one the caller may not see", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "last_super_admin", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: unknown_role, empty", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn set_roles(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RolesRequest>,
) -> Result<axum::Json<UserView>, ServiceError> {
    let user = gh
        .users()
        .set_roles(&who, path_id(&id)?, req.roles, &client)
        .await?;
    Ok(axum::Json(user))
}

/// Clear a user's failed logins and lock (admin and up).
#[utoipa::path(post, path = "/users/{id}/unlock", tag = "users", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_role (below admin), user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such user, deleted, not a UUID, or one the caller may not see", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn unlock(
    State(gh): State<Gatehouse>,
    RequireRole(who, ..): RequireRole<tier::Admin>,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    gh.users().unlock(&who, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The role catalogue (any authenticated caller).
#[utoipa::path(get, path = "/roles", tag = "users", security(("bearer" = [])), responses(
    (status = 200, body = RoleList),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn roles(
    State(gh): State<Gatehouse>,
    _: Caller,
) -> Result<axum::Json<RoleList>, ServiceError> {
    Ok(axum::Json(gh.accounts().roles().await?))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(set_roles))
        .routes(routes!(unlock))
        .routes(routes!(roles))
}
