//! `/auth/oauth/*` and `/me/identities*`: sign-in through Google, GitHub and OpenID Connect providers (authorize, callback, the one-time code's exchange), and the caller's linked identities.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::Area;
use super::auth::{Cookie, LoginAnswer, signed_in};
use super::extract::path_id;
use super::extract::{Client, CurrentUser, cookie};
use super::json::{ApiJson, ApiQuery};
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::service::ServiceError;
use crate::service::login::LoginOutcome;
use crate::service::oauth::{CallbackParams, IdentityList, ProviderList, STATE_TTL};

/// The cookie that binds a sign-in flow to the browser that started it.
pub const BINDER_COOKIE: &str = "gatehouse_oauth";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// Where the browser goes at the end, with `?code=`, `?linked=` or `?error=`; must lie
    /// within `OAUTH_REDIRECT_ALLOWLIST`.
    redirect_uri: String,
    /// From `POST /me/identities/{provider}/link`: link to that signed-in account instead of
    /// signing in.
    link_ticket: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The `code` the callback put on the `redirect_uri`.
    code: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LinkRequest {
    /// Where the browser goes after linking (`?linked=<provider>` or `?error=`).
    #[schema(example = "https://app.example.com/settings")]
    redirect_uri: String,
}

/// `{"authorize_url": "..."}`.
#[derive(Serialize, ToSchema)]
pub struct LinkStart {
    /// Send the browser here (`GET /auth/oauth/{provider}/authorize` with a single-use ticket,
    /// valid 5 minutes).
    authorize_url: String,
}

fn found(location: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// The enabled sign-in providers.
#[utoipa::path(get, path = "/auth/oauth/providers", tag = "oauth", responses(
    (status = 200, body = ProviderList),
))]
async fn providers(State(gh): State<Gatehouse>) -> axum::Json<ProviderList> {
    axum::Json(gh.oauth().providers())
}

/// Start signing in at a provider: 302 to it, with state, nonce and PKCE (S256), and a
/// browser-binding cookie (`gatehouse_oauth`, HttpOnly, SameSite=Lax, 10 minutes).
#[utoipa::path(get, path = "/auth/oauth/{provider}/authorize", tag = "oauth", params(("provider" = String, Path), AuthorizeQuery), responses(
    (status = 302, description = "to the provider's authorization page", headers(("Location" = String), ("Set-Cookie" = String, description = "`gatehouse_oauth`: the browser binder"))),
    (status = 400, description = "invalid_query: no redirect_uri; redirect_uri_not_allowed: outside OAUTH_REDIRECT_ALLOWLIST; invalid_link_ticket", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such enabled provider", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited: the IP's OAuth budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 502, description = "provider_unavailable: its discovery document could not be read", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn authorize(
    State(gh): State<Gatehouse>,
    Path(provider): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AuthorizeQuery>,
) -> Result<Response, ServiceError> {
    // Each start and finish makes the server call the provider: the same IP budget as refresh.
    gh.limiter()
        .per_ip("oauth", client.ip)
        .await
        .into_result()?;
    let binder = cookie(&headers, BINDER_COOKIE);
    let started = gh
        .oauth()
        .start(
            &provider,
            &q.redirect_uri,
            binder.as_deref(),
            q.link_ticket.as_deref(),
        )
        .await?;
    let mut res = found(&started.location);
    let path = gh.oauth().cookie_path();
    let cookie = Cookie {
        name: BINDER_COOKIE,
        value: &started.binder,
        path: &path,
        max_age: STATE_TTL.num_seconds() as u64,
        same_site: "Lax",
    };
    cookie.set(&gh, &mut res);
    Ok(res)
}

/// Where the provider sends the browser back: 302 to the flow's `redirect_uri` with `?code=`
/// (a sign-in; trade it at `POST /auth/oauth/exchange`), `?linked=<provider>` (a link) or
/// `?error=` (`email_not_verified`, `account_not_verified`, `identity_in_use`,
/// `account_disabled`, `access_denied`, `invalid_id_token`, `provider_error`,
/// `provider_unavailable`, `conflict`).
#[utoipa::path(get, path = "/auth/oauth/{provider}/callback", tag = "oauth", params(("provider" = String, Path), CallbackQuery), responses(
    (status = 302, description = "to the redirect_uri given at authorize, with `code`, `linked` or `error`", headers(("Location" = String))),
    (status = 400, description = "invalid_state: missing, unknown, expired or already used; state_mismatch: this browser did not start the flow (binder cookie missing or wrong)", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such enabled provider", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited: the IP's OAuth budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn callback(
    State(gh): State<Gatehouse>,
    Path(provider): Path<String>,
    Client(client): Client,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<CallbackQuery>,
) -> Result<Response, ServiceError> {
    gh.limiter()
        .per_ip("oauth", client.ip)
        .await
        .into_result()?;
    let binder = cookie(&headers, BINDER_COOKIE);
    let params = CallbackParams {
        code: q.code,
        state: q.state,
        error: q.error,
    };
    let location = gh
        .oauth()
        .finish(&provider, params, binder.as_deref(), &client)
        .await?;
    Ok(found(&location))
}

/// Trade a sign-in's one-time code (single-use, valid 2 minutes) for a token pair, or the MFA
/// step when the account has a second factor, as `POST /auth/login` answers.
#[utoipa::path(post, path = "/auth/oauth/exchange", tag = "oauth", request_body = ExchangeRequest, responses(
    (status = 200, description = "a token pair, or `{mfa_required, mfa_token, methods}` when TOTP is on", body = LoginAnswer),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "invalid_code: unknown, expired or already used", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "account_disabled, email_not_verified", body = Problem, content_type = PROBLEM_JSON),
    (status = 429, description = "rate_limited: the IP's OAuth budget is spent", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait"))),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn exchange(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    ApiJson(req): ApiJson<ExchangeRequest>,
) -> Result<Response, ServiceError> {
    gh.limiter()
        .per_ip("oauth", client.ip)
        .await
        .into_result()?;
    let outcome = gh.oauth().exchange(&req.code, &client).await?;
    let device = match &outcome {
        LoginOutcome::Tokens(pair) => pair.device_token.clone(),
        LoginOutcome::MfaRequired(_) => None,
    };
    Ok(signed_in(&gh, device, axum::Json(outcome)))
}

/// The caller's linked identities, oldest first.
#[utoipa::path(get, path = "/me/identities", tag = "oauth", security(("bearer" = [])), responses(
    (status = 200, body = IdentityList),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn identities(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
) -> Result<axum::Json<IdentityList>, ServiceError> {
    Ok(axum::Json(gh.oauth().identities(&who).await?))
}

/// Unlink one of the caller's identities (never the account's last way to sign in).
#[utoipa::path(delete, path = "/me/identities/{id}", tag = "oauth", security(("bearer" = [])), params(("id" = uuid::Uuid, Path)), responses(
    (status = 204),
    (status = 400, description = "bad_request: the path is not valid UTF-8 once percent-decoded", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: malformed, unknown, or another user's", body = Problem, content_type = PROBLEM_JSON),
    (status = 409, description = "last_sign_in_method: the account has no password and no other identity", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn unlink(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Client(client): Client,
    Path(id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    gh.oauth().unlink(&who, path_id(&id)?, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start linking an identity at `provider` to the caller's account: the URL to send the
/// browser to.
#[utoipa::path(post, path = "/me/identities/{provider}/link", tag = "oauth", security(("bearer" = [])), params(("provider" = String, Path)), request_body = LinkRequest, responses(
    (status = 200, body = LinkStart),
    (status = 400, description = "malformed_json; invalid_body; redirect_uri_not_allowed: outside OAUTH_REDIRECT_ALLOWLIST", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized: no bearer token; invalid_token, invalid_api_key: bad, expired or revoked", body = Problem, content_type = PROBLEM_JSON, headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
    (status = 403, description = "user_required: a service API key on a route for people", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found: no such enabled provider", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON, headers(("Retry-After" = u64, description = "seconds to wait")))
))]
async fn link(
    State(gh): State<Gatehouse>,
    CurrentUser(who): CurrentUser,
    Path(provider): Path<String>,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<axum::Json<LinkStart>, ServiceError> {
    let authorize_url = gh
        .oauth()
        .link_ticket(&who, &provider, &req.redirect_uri)
        .await?;
    Ok(axum::Json(LinkStart { authorize_url }))
}

pub(crate) fn routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(providers))
        .routes(routes!(authorize))
        .routes(routes!(callback))
        .routes(routes!(exchange))
        .routes(routes!(identities))
        .routes(routes!(unlink))
        .routes(routes!(link))
}
