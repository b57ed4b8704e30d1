//! The machine side of Gatehouse as an OpenID Provider, at the server root: discovery, the token endpoint and userinfo (OAuth JSON errors, not problem documents), and the admin API of clients under `/api/v1/admin/clients`. The browser side (authorize, consent, logout) is a hosted page (`pages/provider.rs`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Area;
use super::extract::{Client, RequirePermission, perm};
use super::json::ApiJson;
use super::problem::{PROBLEM_JSON, Problem};
use crate::Gatehouse;
use crate::domain::provider::SCOPES;
use crate::service::ServiceError;
use crate::service::provider::{
    ClientCredentials, ClientList, CreatedClient, NewClient, ProtocolError, TokenRequest,
};

/// The paths of the protocol endpoints (the issuer is `GATEHOUSE_PUBLIC_URL`).
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const USERINFO_PATH: &str = "/oauth2/userinfo";
pub const LOGOUT_PATH: &str = "/oauth2/logout";

/// An OAuth error as RFC 6749 § 5.2 answers it, `WWW-Authenticate` on 401s.
fn oauth_error(err: ProtocolError, challenge: &'static str) -> Response {
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut res = (
        status,
        axum::Json(json!({"error": err.error, "error_description": err.description})),
    )
        .into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        let value = if challenge == "Bearer" {
            format!("Bearer error=\"{}\"", err.error)
        } else {
            challenge.to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    res
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "openid", responses(
    (status = 200, description = "provider metadata", content_type = "application/json")))]
async fn discovery(State(gh): State<Gatehouse>) -> impl IntoResponse {
    let op = gh.provider();
    let issuer = op.issuer();
    let at = |path: &str| format!("{issuer}{path}");
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(json!({
            "issuer": issuer,
            "authorization_endpoint": at(AUTHORIZE_PATH),
            "token_endpoint": at(TOKEN_PATH),
            "userinfo_endpoint": at(USERINFO_PATH),
            "end_session_endpoint": at(LOGOUT_PATH),
            "jwks_uri": at("/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [op.id_token_algorithm()],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": SCOPES,
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "azp", "email", "email_verified", "name", "updated_at", "roles"],
            "prompt_values_supported": ["none", "login", "consent"],
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })),
    )
}

/// The client's credentials: HTTP Basic (`client_secret_basic`), else the form's
/// `client_id`/`client_secret` (`client_secret_post`, or `none` for a public client).
fn credentials(
    headers: &HeaderMap,
    form: &TokenRequest,
) -> Result<ClientCredentials, ProtocolError> {
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let bad = || ProtocolError {
            status: 401,
            error: "invalid_client",
            description: "malformed Basic credentials".into(),
        };
        let raw = STANDARD.decode(auth.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        return Ok(ClientCredentials {
            client_id: decode(id).ok_or_else(bad)?,
            secret: Some(decode(secret).ok_or_else(bad)?),
            basic: true,
        });
    }
    let client_id = form.client_id.clone().ok_or(ProtocolError {
        status: 401,
        error: "invalid_client",
        description: "no client authentication".into(),
    })?;
    Ok(ClientCredentials {
        client_id,
        secret: form.client_secret.clone(),
        basic: false,
    })
}

/// The token endpoint: `authorization_code` and `refresh_token` grants
/// (`application/x-www-form-urlencoded`). Errors are RFC 6749 JSON errors.
#[utoipa::path(post, path = "/oauth2/token", tag = "openid", request_body(content = String, content_type = "application/x-www-form-urlencoded"), responses(
    (status = 200, description = "access_token, token_type, expires_in, refresh_token, id_token, scope", content_type = "application/json"),
    (status = 400, description = "invalid_request, invalid_grant, unsupported_grant_type", content_type = "application/json"),
    (status = 401, description = "invalid_client", content_type = "application/json"),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 500, description = "server_error", content_type = "application/json"),
    (status = 503, description = "temporarily_unavailable", content_type = "application/json")))]
async fn token(
    State(gh): State<Gatehouse>,
    Client(client): Client,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return oauth_error(
            ProtocolError {
                status: 400,
                error: "invalid_request",
                description: "send a form (application/x-www-form-urlencoded)".into(),
            },
            "",
        );
    };
    let creds = match credentials(&headers, &form) {
        Ok(c) => c,
        Err(e) => return oauth_error(e, "Basic realm=\"gatehouse\""),
    };
    let basic = creds.basic;
    match gh.provider().token(creds, form, &client).await {
        Ok(tokens) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            axum::Json(tokens),
        )
            .into_response(),
        Err(e) => oauth_error(
            e,
            if basic {
                "Basic realm=\"gatehouse\""
            } else {
                ""
            },
        ),
    }
}

/// Claims about the person behind a client's access token (`Authorization: Bearer`).
#[utoipa::path(get, path = "/oauth2/userinfo", tag = "openid", security(("bearer" = [])), responses(
    (status = 200, description = "sub and the claims the scope releases", content_type = "application/json"),
    (status = 401, description = "invalid_token (WWW-Authenticate: Bearer)", content_type = "application/json")))]
async fn userinfo(State(gh): State<Gatehouse>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    match gh.provider().userinfo(bearer.trim()).await {
        Ok(claims) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(claims)).into_response(),
        Err(e) => oauth_error(e, "Bearer"),
    }
}

/// The same as `GET /oauth2/userinfo`.
#[utoipa::path(post, path = "/oauth2/userinfo", tag = "openid", security(("bearer" = [])), responses(
    (status = 200, description = "sub and the claims the scope releases", content_type = "application/json"),
    (status = 401, description = "invalid_token (WWW-Authenticate: Bearer)", content_type = "application/json")))]
async fn userinfo_post(state: State<Gatehouse>, headers: HeaderMap) -> Response {
    userinfo(state, headers).await
}

/// Register an OpenID client (super_admin: `clients:manage`); its secret is in this answer only.
#[utoipa::path(post, path = "/admin/clients", tag = "admin", security(("bearer" = [])), request_body = NewClient, responses(
    (status = 201, body = CreatedClient),
    (status = 400, description = "malformed_json; invalid_body: wrong types, missing or unknown fields, or not a JSON object", body = Problem, content_type = PROBLEM_JSON),
    (status = 413, description = "payload_too_large: the body is over 64 KiB", body = Problem, content_type = PROBLEM_JSON),
    (status = 415, description = "unsupported_media_type: send `Content-Type: application/json`", body = Problem, content_type = PROBLEM_JSON),
    (status = 401, description = "unauthorized, invalid_token", body = Problem, content_type = PROBLEM_JSON),
    (status = 403, description = "insufficient_permission: needs `clients:manage` (super_admin)", body = Problem, content_type = PROBLEM_JSON),
    (status = 422, description = "validation_failed: invalid, required, invalid_uri, unknown_scope", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON)
))]
async fn create_client(
    State(gh): State<Gatehouse>,
    RequirePermission(caller, ..): RequirePermission<perm::ClientsManage>,
    Client(client): Client,
    ApiJson(req): ApiJson<NewClient>,
) -> Result<(StatusCode, axum::Json<CreatedClient>), ServiceError> {
    let created = gh
        .provider()
        .clients()
        .create_client(req, caller.user_id(), &client)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Every registered OpenID client (never their secrets).
#[utoipa::path(get, path = "/admin/clients", tag = "admin", security(("bearer" = [])), responses(
    (status = 200, body = ClientList),
    (status = 401, description = "unauthorized, invalid_token", body = Problem, content_type = PROBLEM_JSON),
    (status = 403, description = "insufficient_permission: needs `clients:manage` (super_admin)", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON)
))]
async fn list_clients(
    State(gh): State<Gatehouse>,
    _: RequirePermission<perm::ClientsManage>,
) -> Result<axum::Json<ClientList>, ServiceError> {
    Ok(axum::Json(gh.provider().clients().list_clients().await?))
}

/// Delete an OpenID client, the sessions issued to it and its consents.
#[utoipa::path(delete, path = "/admin/clients/{client_id}", tag = "admin", security(("bearer" = [])), params(("client_id" = String, Path)), responses(
    (status = 204, description = "deleted"),
    (status = 401, description = "unauthorized, invalid_token", body = Problem, content_type = PROBLEM_JSON),
    (status = 403, description = "insufficient_permission: needs `clients:manage` (super_admin)", body = Problem, content_type = PROBLEM_JSON),
    (status = 404, description = "not_found", body = Problem, content_type = PROBLEM_JSON),
    (status = 503, description = "database_unavailable", body = Problem, content_type = PROBLEM_JSON)
))]
async fn delete_client(
    State(gh): State<Gatehouse>,
    RequirePermission(caller, ..): RequirePermission<perm::ClientsManage>,
    Client(client): Client,
    Path(client_id): Path<String>,
) -> Result<StatusCode, ServiceError> {
    gh.provider()
        .clients()
        .delete_client(&client_id, caller.user_id(), &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The protocol routes, at the server root.
pub fn routes() -> OpenApiRouter<Gatehouse> {
    OpenApiRouter::new()
        .routes(routes!(discovery))
        .routes(routes!(token))
        .routes(routes!(userinfo, userinfo_post))
}

/// The admin API of clients, each path under `prefix` (see `Area`).
pub(crate) fn admin_routes(prefix: &'static str) -> Area {
    Area::new(prefix)
        .routes(routes!(create_client, list_clients))
        .routes(routes!(delete_client))
}
