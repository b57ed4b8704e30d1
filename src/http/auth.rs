//! `/auth/*` routes: register, login, refresh, logout, the caller's user and sessions, password change, token introspection.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AnyOfBuilder, OneOfBuilder, Ref, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::routes;

use super::Area;
use super::extract::{Client, CurrentUser, DEVICE_COOKIE, DeviceCookie, RequirePermission, perm};
use super::json::{ApiJson, JsonOrForm};
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::auth::{LoginOutcome, MfaChallenge, Registered};
use crate::service::introspection::{self, Introspection};
use crate::service::views::{SessionList, SharedUser, TokenPair, UserEnvelope};

/// A schema that is exactly one of `A` and `B` (`one_of`), or any of them.
fn either<A: ToSchema, B: ToSchema>(one_of: bool, description: &str) -> RefOr<Schema> {
    let (a, b) = (
        Ref::from_schema_name(A::name()),
        Ref::from_schema_name(B::name()),
    );
    if one_of {
        OneOfBuilder::new()
            .item(a)
            .item(b)
            .description(Some(description))
            .into()
    } else {
        AnyOfBuilder::new()
            .item(a)
            .item(b)
            .description(Some(description))
            .into()
    }
}

/// Registers `A` and `B` (and what they refer to) as components.
fn both_schemas<A: ToSchema, B: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((A::name().into(), A::schema()));
    A::schemas(schemas);
    schemas.push((B::name().into(), B::schema()));
    B::schemas(schemas);
}

/// What `POST /auth/login` answers (`LoginOutcome`, untagged): a token pair, or an MFA challenge
/// when TOTP is on.
pub struct LoginAnswer;

impl PartialSchema for LoginAnswer {
    fn schema() -> RefOr<Schema> {
        either::<TokenPair, MfaChallenge>(
            true,
            "A token pair, or `{mfa_required, mfa_token, methods}` when TOTP is on.",
        )
    }
}

impl ToSchema for LoginAnswer {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        both_schemas::<TokenPair, MfaChallenge>(schemas);
    }
}

/// What `POST /auth/register` answers: `{user}`, or with AUTH_AUTO_LOGIN_ON_REGISTER a token
/// pair, which carries `user` too (so it is any of the two, not one of them).
pub struct Registration;

impl PartialSchema for Registration {
    fn schema() -> RefOr<Schema> {
        either::<UserEnvelope, TokenPair>(
            false,
            "`{user}`, or a token pair (with `user`) when AUTH_AUTO_LOGIN_ON_REGISTER is on.",
        )
    }
}

impl ToSchema for Registration {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        both_schemas::<UserEnvelope, TokenPair>(schemas);
    }
}

/// `{"status": "pending_verification", "detail": "..."}`.
#[derive(serde::Serialize, ToSchema)]
pub struct RegistrationPending {
    status: &'static str,
    detail: &'static str,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "Correct-horse-1")]
    password: String,
    #[schema(example = "Ada")]
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "ada@example.com")]
    email: String,
    #[schema(example = "Correct-horse-1")]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(example = "Correct-horse-1")]
    old_password: String,
    #[schema(example = "Battery-staple-2")]
    new_password: String,
}

/// Create an account (role `user`).
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest, responses(
    (status = 201, description = "`{user}`; with AUTH_AUTO_LOGIN_ON_REGISTER a token pair (which carries `user` too)", body = Registration),
    (status = 202, description = "with AUTH_REGISTER_CONCEAL_EXISTING: the same answer whether the email was free (a verification mail went out) or taken (its owner was told by mail)", body = RegistrationPending),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "email_taken", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed, one `errors` entry per broken rule", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
            Registered::User(user) => (
                StatusCode::CREATED,
                axum::Json(UserEnvelope {
                    user: SharedUser::new(user),
                }),
            )
                .into_response(),
            Registered::LoggedIn(pair) => (StatusCode::CREATED, axum::Json(pair)).into_response(),
            Registered::Pending => (
                StatusCode::ACCEPTED,
                axum::Json(RegistrationPending {
                    status: "pending_verification",
                    detail: "check your mailbox to finish signing up",
                }),
            )
                .into_response(),
        },
    )
}

/// Log in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, responses(
    (status = 200, description = "a token pair, or `{mfa_required, mfa_token, methods}` when TOTP is on", body = LoginAnswer),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_credentials", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "account_disabled, email_not_verified (the password was right)", body = Problem, content_type = PROBLEM_JSON),
    (status = 423, description = "account_locked: too many failed logins", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 429, description = "rate_limited: the IP + email or the IP budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
        let cookie = Cookie {
            name: DEVICE_COOKIE,
            value: &token,
            path: "/",
            max_age: 31_536_000,
            same_site: "Strict",
        };
        cookie.set(gh, &mut response);
    }
    response
}

/// An HttpOnly cookie to set on an answer (`Secure` when the public URL is https).
pub(crate) struct Cookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    pub max_age: u64,
    pub same_site: &'a str,
}

impl Cookie<'_> {
    pub(crate) fn set(&self, gh: &Gatehouse, response: &mut Response) {
        let secure = if gh.config().public_url.scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        let Cookie {
            name,
            value,
            path,
            max_age,
            same_site,
        } = self;
        let cookie = format!(
            "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
        );
        if let Ok(value) = axum::http::HeaderValue::from_str(&cookie) {
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, value);
        }
    }
}

/// Spend a refresh token for a new pair.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, responses(
    (status = 200, body = TokenPair),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_refresh_token; refresh_token_reused (the session is revoked)", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 429, description = "rate_limited: the IP's refresh budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])), responses(
    (status = 204),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn logout(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
) -> Result<StatusCode, ServiceError> {
    gh.auth().logout(&who, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke every session of the caller.
#[utoipa::path(post, path = "/auth/logout-all", tag = "auth", security(("bearer" = [])), responses(
    (status = 204),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn logout_all(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
) -> Result<StatusCode, ServiceError> {
    gh.auth().logout_all(&who, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's user.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = UserEnvelope),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn me(CurrentUser(who): CurrentUser) -> axum::Json<UserEnvelope> {
    axum::Json(UserEnvelope { user: who.user })
}

/// The caller's live sessions.
#[utoipa::path(get, path = "/auth/sessions", tag = "auth", security(("bearer" = [])), responses(
    (status = 200, body = SessionList),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn sessions(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<SessionList>, ServiceError> {
    Ok(axum::Json(gh.auth().sessions(&who).await?))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(delete, path = "/auth/sessions/{id}", tag = "auth", security(("bearer" = [])), params(("id" = Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: malformed, unknown, revoked or expired, or another user's", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn revoke_session(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    let id = super::extract::path_id(&id)?;
    gh.auth().revoke_session(&who, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change the caller's password; every other session is revoked.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth", security(("bearer" = [])), request_body = ChangePasswordRequest, responses(
    (status = 204),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized, invalid_token: no or bad bearer token; invalid_credentials: the old password is wrong", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: the new password breaks the policy", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
    #[schema(example = "ada@example.com")]
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetConfirmRequest {
    token: String,
    #[schema(example = "Battery-staple-2")]
    new_password: String,
}

/// Confirm an email address with the token from the verification mail.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = TokenRequest, responses(
    (status = 204),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_token: unknown, expired or already used", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
    (status = 202),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited: the IP's mail budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
    (status = 202),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited: the IP's mail budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
    (status = 204),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_token: unknown, expired or already used", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 422, description = "validation_failed: the new password breaks the policy", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
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
pub struct CodeRequest {
    /// The `code` a hosted sign-in (`/login?redirect_to=`) appended to the app's address.
    code: String,
}

/// Exchange the one-time code of a hosted sign-in for a token pair (a new session of the user,
/// at the level of the sign-in's own session). The code works once, for one minute.
#[utoipa::path(post, path = "/auth/code/exchange", tag = "auth", request_body = CodeRequest, responses(
    (status = 200, body = TokenPair),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_code: unknown, expired or already used, or its sign-in session has ended", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 429, description = "rate_limited: the IP's exchange budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn exchange_code(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<axum::Json<TokenPair>, ServiceError> {
    gh.limiter()
        .per_ip("code_exchange", client.ip)
        .await
        .into_result()?;
    Ok(axum::Json(
        gh.web().exchange_code(&req.code, &client).await?,
    ))
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
#[utoipa::path(post, path = "/auth/introspect", tag = "auth", security(("bearer" = [])), request_body(content((IntrospectRequest = "application/json"), (IntrospectRequest = "application/x-www-form-urlencoded"))), responses(
    (status = 200, description = "`{\"active\": false}` for anything expired, revoked, forged or unknown", body = Introspection),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object (or a form without `token`)", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send JSON or an `application/x-www-form-urlencoded` form", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "insufficient_permission: neither a role nor an API key scope with `introspect`", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn introspect(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::Introspect>,
    JsonOrForm(req): JsonOrForm<IntrospectRequest>,
) -> Result<axum::Json<Introspection>, ServiceError> {
    Ok(axum::Json(
        introspection::introspect(gh.auth(), gh.api_keys(), &req.token).await?,
    ))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
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
        .routes(routes!(exchange_code))
}
