//! Passkey routes: registering one (`/auth/webauthn/register/*`, signed in), signing in with a discoverable one (`/auth/webauthn/login/*`), the passkey second step's begin (`/auth/mfa/webauthn/begin`; it finishes at `/auth/mfa/verify`), and the caller's list (`/me/passkeys`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Area;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::extract::path_id;
use super::extract::{Client, CurrentUser};
use super::json::ApiJson;
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::passkeys::{Ceremony, PasskeyList, PasskeyView};
use crate::service::views::TokenPair;

#[derive(Deserialize, ToSchema)]
pub struct RegisterFinish {
    /// From `…/register/begin`.
    ceremony_id: String,
    /// What to call the passkey (1 to 64 characters; `Passkey` when absent).
    #[schema(example = "Laptop")]
    name: Option<String>,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as JSON (base64url
    /// for binary fields).
    #[schema(value_type = Object)]
    credential: RegisterPublicKeyCredential,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginFinish {
    /// From `…/login/begin`.
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    #[schema(value_type = Object)]
    credential: PublicKeyCredential,
}

#[derive(Deserialize, ToSchema)]
pub struct SecondStepBegin {
    /// The `mfa_token` a password login answered.
    mfa_token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct Rename {
    #[schema(example = "Work laptop")]
    name: String,
}

/// Start registering a passkey on the caller's account: options for `navigator.credentials.create()`.
#[utoipa::path(post, path = "/auth/webauthn/register/begin", tag = "passkeys", security(("bearer" = [])), responses(
    (status = 200, body = Ceremony),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people; reauthentication_required: the session signed in more than 10 minutes ago", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "passkeys_not_configured: the public URL has no domain; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn register_begin(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<Ceremony>, ServiceError> {
    Ok(axum::Json(gh.passkeys().register_begin(&who).await?))
}

/// Finish a registration: the authenticator's answer, checked, becomes a passkey of the caller.
#[utoipa::path(post, path = "/auth/webauthn/register/finish", tag = "passkeys", security(("bearer" = [])), request_body = RegisterFinish, responses(
    (status = 201, body = PasskeyView),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, a credential that is not WebAuthn's JSON", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_ceremony: unknown, expired, finished or another user's; passkey_refused: the attestation failed its checks (origin, challenge, user verification); unauthorized, invalid_token", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "passkey_exists: this credential is already registered", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: `errors[0].code` invalid_name", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "passkeys_not_configured; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn register_finish(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<RegisterFinish>,
) -> Result<(StatusCode, axum::Json<PasskeyView>), ServiceError> {
    let view = gh
        .passkeys()
        .register_finish(
            &who,
            &req.ceremony_id,
            req.name.as_deref(),
            &req.credential,
            &client,
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Start a sign-in with a discoverable passkey (no email): options for `navigator.credentials.get()`.
#[utoipa::path(post, path = "/auth/webauthn/login/begin", tag = "passkeys", responses(
    (status = 200, body = Ceremony),
    (status = 429, description = "rate_limited: too many sign-ins from this address", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "passkeys_not_configured; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn login_begin(
    State(gh): State<Gatehouse>,
    Client(client): Client,
) -> Result<axum::Json<Ceremony>, ServiceError> {
    gh.limiter()
        .per_ip("passkey", client.ip)
        .await
        .into_result()?;
    Ok(axum::Json(gh.passkeys().sign_in_begin().await?))
}

/// Finish a passkey sign-in: a token pair with `aal2`.
#[utoipa::path(post, path = "/auth/webauthn/login/finish", tag = "passkeys", request_body = LoginFinish, responses(
    (status = 200, description = "a token pair with aal2", body = TokenPair),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, a credential that is not WebAuthn's JSON", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_ceremony: unknown, expired or already finished (a replayed assertion); passkey_refused: unknown or deleted credential, wrong origin, bad signature, counter or backup flags", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "account_disabled, email_not_verified", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "passkeys_not_configured; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn login_finish(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginFinish>,
) -> Result<axum::response::Response, ServiceError> {
    gh.limiter()
        .per_ip("passkey", client.ip)
        .await
        .into_result()?;
    let pair = gh
        .passkeys()
        .sign_in_finish(&req.ceremony_id, &req.credential, &client)
        .await?;
    Ok(super::auth::signed_in(
        &gh,
        pair.device_token.clone(),
        axum::Json(pair),
    ))
}

/// The second login step with a passkey: options for the `mfa_token`'s account; send the
/// answer to `POST /auth/mfa/verify` as `webauthn`.
#[utoipa::path(post, path = "/auth/mfa/webauthn/begin", tag = "mfa", request_body = SecondStepBegin, responses(
    (status = 200, body = Ceremony),
    (status = 400, description = "malformed_json; invalid_body", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_mfa_token: unknown, expired or spent", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 409, description = "no_passkeys: the account has none", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "passkeys_not_configured; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn second_step_begin(
    State(gh): State<Gatehouse>,
    ApiJson(req): ApiJson<SecondStepBegin>,
) -> Result<axum::Json<Ceremony>, ServiceError> {
    Ok(axum::Json(
        gh.passkeys().second_step_begin(&req.mfa_token).await?,
    ))
}

/// The caller's passkeys, oldest first.
#[utoipa::path(get, path = "/me/passkeys", tag = "passkeys", security(("bearer" = [])), responses(
    (status = 200, body = PasskeyList),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn list(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<PasskeyList>, ServiceError> {
    Ok(axum::Json(gh.passkeys().list(&who).await?))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(patch, path = "/me/passkeys/{id}", tag = "passkeys", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), request_body = Rename, responses(
    (status = 200, body = PasskeyView),
    (status = 400, description = "malformed_json; invalid_body; bad_request: the path is not valid UTF-8", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: malformed, unknown, or another user's", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: `errors[0].code` invalid_name", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn rename(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Rename>,
) -> Result<axum::Json<PasskeyView>, ServiceError> {
    Ok(axum::Json(
        gh.passkeys()
            .rename(&who, path_id(&id)?, &req.name, &client)
            .await?,
    ))
}

/// Delete one of the caller's passkeys (never the account's last way to sign in).
#[utoipa::path(delete, path = "/me/passkeys/{id}", tag = "passkeys", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: malformed, unknown, or another user's", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "last_sign_in_method: the account has no password, no linked identity and no other passkey", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn delete(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    gh.passkeys().delete(&who, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(register_begin))
        .routes(routes!(register_finish))
        .routes(routes!(login_begin))
        .routes(routes!(login_finish))
        .routes(routes!(second_step_begin))
        .routes(routes!(list))
        .routes(routes!(rename, delete))
}
