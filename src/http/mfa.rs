//! `/auth/mfa/*` routes: TOTP enrolment, confirmation, removal, and the second login step (a code, a recovery code or a passkey).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::Area;
use super::extract::{Client, CurrentUser};
use super::json::ApiJson;
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::mfa::{RecoveryCodes, SecondFactor, TotpEnrollment};
use crate::service::views::TokenPair;

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    #[schema(example = "123456")]
    code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    #[schema(example = "Correct-horse-1")]
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    mfa_token: String,
    /// A 6-digit TOTP code…
    #[schema(example = "123456")]
    code: Option<String>,
    /// …or one of the recovery codes…
    recovery_code: Option<String>,
    /// …or a passkey's answer to `POST /auth/mfa/webauthn/begin`.
    webauthn: Option<PasskeyAnswer>,
}

/// A passkey's answer in the second step.
#[derive(Deserialize, ToSchema)]
pub struct PasskeyAnswer {
    /// From `POST /auth/mfa/webauthn/begin`.
    ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as JSON.
    #[schema(value_type = Object)]
    credential: webauthn_rs::prelude::PublicKeyCredential,
}

/// Start TOTP enrolment; not active until confirmed.
#[utoipa::path(post, path = "/auth/mfa/totp/enroll", tag = "mfa", security(("bearer" = [])), responses(
    (status = 200, body = TotpEnrollment),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "mfa_already_enabled", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "encryption_not_configured: no ENCRYPTION_MASTER_KEY; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn enroll(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<TotpEnrollment>, ServiceError> {
    Ok(axum::Json(gh.mfa().enroll(&who).await?))
}

/// Activate TOTP with a current code; returns ten recovery codes, shown once.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest, responses(
    (status = 200, body = RecoveryCodes),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "mfa_not_pending, mfa_already_enabled", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: `errors[0].code` invalid_mfa_code", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "encryption_not_configured: no ENCRYPTION_MASTER_KEY; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn confirm(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<axum::Json<RecoveryCodes>, ServiceError> {
    Ok(axum::Json(
        gh.mfa().confirm(&who, &req.code, &client).await?,
    ))
}

/// Turn TOTP off: the password and an `aal2` session.
#[utoipa::path(delete, path = "/auth/mfa/totp", tag = "mfa", security(("bearer" = [])), request_body = PasswordRequest, responses(
    (status = 204),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized, invalid_token: no or bad bearer token; invalid_credentials: the password is wrong", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "aal2_required: the session did not pass MFA; user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "server_busy: the password-hashing queue is full; database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn disable(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.mfa().disable(&who, &req.password, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The second login step: the `mfa_token` from login with a TOTP code, a recovery code or a passkey.
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "mfa", request_body = VerifyRequest, responses(
    (status = 200, description = "a token pair with aal2", body = TokenPair),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_mfa_code: wrong, replayed or spent (counts toward lockout); invalid_mfa_token: unknown, expired or spent; invalid_ceremony, passkey_refused: the passkey answer (see /auth/webauthn/login/finish)", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 422, description = "validation_failed: not exactly one of code, recovery_code and webauthn", body = Problem, content_type = PROBLEM_JSON),
    (status = 423, description = "account_locked: too many failed logins or codes", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "encryption_not_configured: no ENCRYPTION_MASTER_KEY; database_unavailable (with Retry-After)", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn verify(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<axum::response::Response, ServiceError> {
    let pair = match (req.code, req.recovery_code, req.webauthn) {
        (Some(code), None, None) => {
            let factor = SecondFactor::Totp(code);
            gh.mfa().verify(&req.mfa_token, factor, &client).await?
        }
        (None, Some(code), None) => {
            let factor = SecondFactor::RecoveryCode(code);
            gh.mfa().verify(&req.mfa_token, factor, &client).await?
        }
        (None, None, Some(answer)) => {
            gh.passkeys()
                .second_step_finish(
                    &req.mfa_token,
                    &answer.ceremony_id,
                    &answer.credential,
                    &client,
                )
                .await?
        }
        _ => {
            return Err(ServiceError::invalid(
                "code",
                "required",
                "send exactly one of code, recovery_code and webauthn",
            ));
        }
    };
    Ok(super::auth::signed_in(
        &gh,
        pair.device_token.clone(),
        axum::Json(pair),
    ))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(enroll))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(verify))
}
