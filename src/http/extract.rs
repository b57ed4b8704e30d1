//! Extractors every route shares: `CurrentUser` (a bearer token of a live session) and `Client` (IP and user agent).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::Gatehouse;
use crate::limits::client_ip::client_ip;
use crate::service::ServiceError;
use crate::service::auth::{ClientInfo, Principal};

/// The authenticated caller. Rejects with 401 unless the bearer token is a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl<S> FromRequestParts<S> for CurrentUser
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gh = Gatehouse::from_ref(state);
        let token = bearer(parts).ok_or_else(|| {
            Problem::from(ServiceError::Unauthorized {
                code: "unauthorized",
                detail: "send Authorization: Bearer <access_token>".into(),
            })
        })?;
        Ok(CurrentUser(gh.auth().authenticate(token).await?))
    }
}

/// Where the request came from.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S> FromRequestParts<S> for Client
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gh = Gatehouse::from_ref(state);
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| {
                let forwarded = parts
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .filter_map(|v| v.to_str().ok());
                client_ip(peer.ip(), forwarded, &gh.config().trusted_proxies)
            });
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}
