//! Token introspection (RFC 7662): whether an access token, refresh token or service API key is live right now, and what it stands for.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::api_keys::ApiKeys;
use super::auth::Auth;
use super::error::ServiceError;

/// The RFC 7662 answer: `{"active": false}` alone for anything not live, the claims otherwise.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    /// `access_token`, `refresh_token` or `api_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Space-separated scopes of an API key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The API key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<Uuid>,
    /// The user's roles now (not as issued).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aal: Option<String>,
}

/// Whether the error only means "not a live token" (as opposed to, say, the database being away).
fn dead(e: &ServiceError) -> bool {
    matches!(
        e,
        ServiceError::Unauthorized { .. } | ServiceError::NotFound
    )
}

/// Introspect any credential this server issues; never says why a token is inactive.
pub async fn introspect(
    auth: &Auth,
    keys: &ApiKeys,
    token: &str,
) -> Result<Introspection, ServiceError> {
    let token = token.trim();
    if ApiKeys::is_api_key(token) {
        return match keys.live(token).await {
            Ok(key) => Ok(Introspection {
                active: true,
                token_type: Some("api_key"),
                scope: Some(
                    serde_json::from_value::<Vec<String>>(key.scopes)
                        .unwrap_or_default()
                        .join(" "),
                ),
                client_id: Some(key.id),
                iat: Some(key.created_at.timestamp()),
                exp: key.expires_at.map(|at| at.timestamp()),
                ..Default::default()
            }),
            Err(e) if dead(&e) => Ok(Introspection::default()),
            Err(e) => Err(e),
        };
    }
    match auth.live_access(token).await {
        Ok((claims, _, user)) => {
            return Ok(Introspection {
                active: true,
                token_type: Some("access_token"),
                sub: Some(claims.sub),
                sid: Some(claims.sid),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                jti: Some(claims.jti),
                roles: Some(user.roles),
                aal: Some(claims.aal),
                ..Default::default()
            });
        }
        Err(e) if dead(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(match auth.live_refresh(token).await? {
        Some(session) => Introspection {
            active: true,
            token_type: Some("refresh_token"),
            sub: Some(session.user_id),
            sid: Some(session.id),
            exp: Some(session.expires_at.timestamp()),
            iat: Some(session.created_at.timestamp()),
            aal: Some(session.aal),
            ..Default::default()
        },
        None => Introspection::default(),
    })
}
