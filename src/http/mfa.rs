//! `/auth/mfa/*` routes: TOTP enrolment, confirmation, removal, and the second login step.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Client, CurrentUser};
use super::json::ApiJson;
use super::problem::Problem;
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::mfa::{RecoveryCodes, SecondFactor, TotpEnrollment};
use crate::service::views::TokenPair;

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    mfa_token: String,
    /// A 6-digit TOTP code…
    code: Option<String>,
    /// …or one of the recovery codes.
    recovery_code: Option<String>,
}

/// Start TOTP enrolment; not active until confirmed.
#[utoipa::path(post, path = "/auth/mfa/totp/enroll", tag = "mfa", security(("bearer" = [])), responses(
    (status = 200, body = TotpEnrollment), (status = 401, body = Problem),
    (status = 409, description = "mfa_already_enabled", body = Problem),
    (status = 503, description = "no ENCRYPTION_MASTER_KEY configured", body = Problem)))]
async fn enroll(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<TotpEnrollment>, ServiceError> {
    Ok(axum::Json(gh.mfa().enroll(&who).await?))
}

/// Activate TOTP with a current code; returns ten recovery codes, shown once.
#[utoipa::path(post, path = "/auth/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])), request_body = CodeRequest, responses(
    (status = 200, body = RecoveryCodes), (status = 409, description = "mfa_not_pending, mfa_already_enabled", body = Problem),
    (status = 422, description = "invalid_mfa_code", body = Problem)))]
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
    (status = 204), (status = 401, description = "invalid_credentials", body = Problem),
    (status = 403, description = "aal2_required", body = Problem)))]
async fn disable(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<StatusCode, ServiceError> {
    gh.mfa().disable(&who, &req.password, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The second login step: the `mfa_token` from login with a TOTP code or a recovery code.
#[utoipa::path(post, path = "/auth/mfa/verify", tag = "mfa", request_body = VerifyRequest, responses(
    (status = 200, description = "a token pair with aal2", body = TokenPair),
    (status = 401, description = "invalid_mfa_code, invalid_mfa_token", body = Problem),
    (status = 422, description = "neither or both of code and recovery_code", body = Problem),
    (status = 423, description = "account_locked", body = Problem)))]
async fn verify(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<axum::response::Response, ServiceError> {
    let factor = match (req.code, req.recovery_code) {
        (Some(code), None) => SecondFactor::Totp(code),
        (None, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => {
            return Err(ServiceError::invalid(
                "code",
                "required",
                "send exactly one of code and recovery_code",
            ));
        }
    };
    let pair = gh.mfa().verify(&req.mfa_token, factor, &client).await?;
    Ok(super::auth::signed_in(
        &gh,
        pair.device_token.clone(),
        axum::Json(pair),
    ))
}

pub(crate) fn routes() -> OpenApiRouter<Gatehouse> {
    OpenApiRouter::new()
        .routes(routes!(enroll))
        .routes(routes!(confirm))
        .routes(routes!(disable))
        .routes(routes!(verify))
}
