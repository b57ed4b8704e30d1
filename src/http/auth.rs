//! `/auth/*` routes: register, login, refresh, logout, the caller's user and sessions, password change, token introspection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::{Client, CurrentUser, DEVICE_COOKIE, DeviceCookie, RequirePermission, perm};
use super::json::{ApiJson, JsonOrForm};
use super::problem::Problem;
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::auth::{LoginOutcome, Registered};
use crate::service::introspection::{self, Introspection};
use crate::service::views::{SessionList, TokenPair, UserEnvelope};

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    email: String,
    password: String,
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    old_password: String,
    new_password: String,
}

/// Create an account (role `user`).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, description = "`{user}`, plus the token pair fields with AUTH_AUTO_LOGIN_ON_REGISTER", body = UserEnvelope),
    (status = 409, description = "email_taken", body = Problem),
    (status = 422, description = "validation_failed, one `errors` entry per broken rule", body = Problem)))]
async fn register(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Response, ServiceError> {
    Ok(
        match gh
            .auth()
            .register(&req.email, &req.password, req.name.as_deref(), &client)
            .await?
        {
            Registered::User(user) => {
                (StatusCode::CREATED, axum::Json(UserEnvelope { user })).into_response()
            }
            Registered::LoggedIn(pair) => (StatusCode::CREATED, axum::Json(pair)).into_response(),
            Registered::Pending => (
                StatusCode::ACCEPTED,
                axum::Json(serde_json::json!({
                    "status": "pending_verification",
                    "detail": "check your mailbox to finish signing up",
                })),
            )
                .into_response(),
        },
    )
}

/// Log in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "a token pair, or `{mfa_required, mfa_token, methods}` when TOTP is on", body = TokenPair),
    (status = 401, description = "invalid_credentials", body = Problem),
    (status = 403, description = "account_disabled, email_not_verified", body = Problem),
    (status = 423, description = "account_locked, with Retry-After", body = Problem),
    (status = 429, description = "rate_limited, with Retry-After", body = Problem),
    (status = 503, description = "server_busy, with Retry-After", body = Problem)))]
async fn login(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    DeviceCookie(device): DeviceCookie,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ServiceError> {
    gh.limiter()
        .login(client.ip, &req.email)
        .await
        .into_result()?;
    let outcome = gh
        .auth()
        .login(&req.email, &req.password, device.as_deref(), &client)
        .await?;
    let device = match &outcome {
        LoginOutcome::Tokens(pair) => pair.device_token.clone(),
        LoginOutcome::MfaRequired(_) => None,
    };
    Ok(signed_in(&gh, device, axum::Json(outcome)))
}

/// A sign-in's answer: `body`, with a fresh device token as an HttpOnly cookie when one was
/// issued. The client sends it back on its next logins to keep a budget of its own while the
/// account is locked for others.
pub(crate) fn signed_in(
    gh: &Gatehouse,
    device: Option<String>,
    body: impl IntoResponse,
) -> Response {
    let mut response = body.into_response();
    if let Some(token) = device {
        let secure = if gh.config().public_url.scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{DEVICE_COOKIE}={token}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict{secure}"
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, value);
        }
    }
    response
}

/// Spend a refresh token for a new pair.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenPair),
    (status = 401, description = "invalid_refresh_token, refresh_token_reused (the session is revoked)", body = Problem),
    (status = 429, description = "rate_limited, with Retry-After", body = Problem)))]
async fn refresh(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<axum::Json<TokenPair>, ServiceError> {
    gh.limiter()
        .per_ip("refresh", client.ip)
        .await
        .into_result()?;
    Ok(axum::Json(
        gh.auth().refresh(&req.refresh_token, &client).await?,
    ))
}

/// Revoke the current session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204), (status = 401, body = Problem)))]
async fn logout(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
) -> Result<StatusCode, ServiceError> {
    gh.auth().logout(&who, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every session of the caller.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])), responses((status = 204), (status = 401, body = Problem)))]
async fn logout_all(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
) -> Result<StatusCode, ServiceError> {
    gh.auth().logout_all(&who, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's user.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])), responses((status = 200, body = UserEnvelope), (status = 401, body = Problem)))]
async fn me(CurrentUser(who): CurrentUser) -> axum::Json<UserEnvelope> {
    axum::Json(UserEnvelope { user: who.user })
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = [])), responses((status = 200, body = SessionList), (status = 401, body = Problem)))]
async fn sessions(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<SessionList>, ServiceError> {
    Ok(axum::Json(gh.auth().sessions(&who).await?))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("bearer" = [])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn revoke_session(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    let id = Uuid::parse_str(&id).map_err(|_| ServiceError::NotFound)?;
    gh.auth().revoke_session(&who, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password; every other session is revoked.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn change_password(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.auth()
        .change_password(&who, &req.old_password, &req.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct TokenRequest {
    token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct EmailRequest {
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    token: String,
    new_password: String,
}

/// Confirm an email address with the token from the verification mail.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = TokenRequest, responses(
    (status = 204), (status = 401, description = "invalid_token: unknown, expired or already used", body = Problem)))]
async fn verify_email(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.verification().verify_email(&req.token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send the verification mail again (202 whether or not the account exists).
#[utoipa::path(post, path = "/auth/verify-email/resend", tag = "auth", request_body = EmailRequest, responses(
    (status = 202), (status = 429, description = "rate_limited", body = Problem)))]
async fn resend_verification(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<EmailRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.limiter().per_ip("mail", client.ip).await.into_result()?;
    gh.verification().resend(req.email, client);
    Ok(StatusCode::ACCEPTED)
}

/// Mail a password reset link (202 whether or not the account exists).
#[utoipa::path(post, path = "/auth/password-reset/request", tag = "auth", request_body = EmailRequest, responses(
    (status = 202), (status = 429, description = "rate_limited", body = Problem)))]
async fn request_reset(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<EmailRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.limiter().per_ip("mail", client.ip).await.into_result()?;
    gh.verification().request_reset(req.email, client);
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token from the reset mail; every session is revoked.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirmRequest, responses(
    (status = 204), (status = 401, description = "invalid_token: unknown, expired or already used", body = Problem),
    (status = 422, description = "the new password breaks the policy", body = Problem)))]
async fn confirm_reset(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<ResetConfirmRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.verification()
        .confirm_reset(&req.token, &req.new_password, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct IntrospectRequest {
    /// An access token, a refresh token or a `gh_` service API key.
    token: String,
    /// Accepted and ignored (RFC 7662): the token's shape says what it is.
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// Is this token live right now? (RFC 7662; JSON or form body.) For an admin or an API key with `introspect`.
#[utoipa::path(post, path = "/auth/introspect", tag = "auth", security(("bearer" = [])), request_body = IntrospectRequest, responses(
    (status = 200, description = "`{\"active\": false}` for anything expired, revoked, forged or unknown", body = Introspection),
    (status = 401, body = Problem), (status = 403, description = "insufficient_permission", body = Problem)))]
async fn introspect(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::Introspect>,
    JsonOrForm(req): JsonOrForm<IntrospectRequest>,
) -> Result<axum::Json<Introspection>, ServiceError> {
    Ok(axum::Json(
        introspection::introspect(gh.auth(), gh.api_keys(), &req.token).await?,
    ))
}

pub fn routes() -> OpenApiRouter<Gatehouse> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(me))
        .routes(routes!(sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(change_password))
        .routes(routes!(introspect))
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
}
