//! Extractors every route shares, and that host apps use too: `Caller` (an access token or a service API key), `CurrentUser`, `RequireRole<R>`, `RequirePermission<P>`, and `Client` (IP and user agent).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use gatehouse::{CurrentUser, Gatehouse, RequirePermission, RequireRole, perm, tier};
//!
//! async fn reports(RequireRole(who, ..): RequireRole<tier::Moderator>) -> String {
//!     format!("reports for {}", who.user_id)
//! }
//! async fn profile(CurrentUser(who): CurrentUser) -> String {
//!     who.user_id.to_string()
//! }
//! async fn directory(_: RequirePermission<perm::UsersRead>) -> &'static str {
//!     "people or services with users:read"
//! }
//! fn app(gh: Gatehouse) -> Router {
//!     Router::new()
//!         .nest("/api/v1", gh.router())
//!         .route("/reports", get(reports))
//!         .route("/profile", get(profile))
//!         .route("/directory", get(directory))
//!         .with_state(gh)
//! }
//! ```

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::problem::Problem;
use crate::Gatehouse;
use crate::domain::client::ClientInfo;
pub use crate::domain::permissions::{PermissionMarker, perm};
use crate::domain::roles::Role;
use crate::limits::client_ip::client_ip;
use crate::service::ServiceError;
use crate::service::api_keys::ApiKeys;
use crate::service::caller::{Caller, ServiceKey};
use crate::service::login::Principal;

/// More than one `Authorization` header.
struct DuplicateAuthorization;

impl From<DuplicateAuthorization> for Problem {
    fn from(_: DuplicateAuthorization) -> Self {
        Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "duplicate_authorization",
            "send one Authorization header",
        )
    }
}

/// The bearer credential, if one was sent. Two `Authorization` headers are a 400: which one
/// counts would be a guess, and proxies disagree about it.
fn bearer(parts: &Parts) -> Result<Option<&str>, DuplicateAuthorization> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if parts.headers.contains_key(header::AUTHORIZATION) {
            Err(DuplicateAuthorization)
        } else {
            Ok(None)
        };
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty());
    Ok(token)
}

/// Any authenticated caller: `Authorization: Bearer <access token>` of a live session, or
/// `Bearer gh_…` of a live service API key. Checked once per request, then remembered.
impl<S> FromRequestParts<S> for Caller
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let gh = Gatehouse::from_ref(state);
        let token = bearer(parts)?.ok_or_else(|| {
            Problem::from(ServiceError::Unauthorized {
                code: "unauthorized",
                detail: "send Authorization: Bearer <access_token or API key>".into(),
            })
        })?;
        let caller = if ApiKeys::is_api_key(token) {
            // Boxed: a database lookup's future would make every user's call's future as large.
            Caller::Service(Box::pin(gh.api_keys().authenticate(token)).await?)
        } else {
            let who = gh.auth().authenticate(token).await?;
            tracing::Span::current().record("user_id", tracing::field::display(who.user_id));
            Caller::User(who)
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The authenticated person. 401 unless the bearer token is a valid access token of a live
/// session; 403 `user_required` for a service API key.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Principal);

impl<S> FromRequestParts<S> for CurrentUser
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::User(who) => Ok(CurrentUser(who)),
            Caller::Service(_) => Err(ServiceError::Forbidden {
                code: "user_required",
                detail: "this route needs a user's access token, not an API key".into(),
            }
            .into()),
        }
    }
}

/// A role tier for [`RequireRole`].
pub trait Tier: Send + Sync + 'static {
    const ROLE: Role;
}

/// The role tiers, for `RequireRole<tier::Admin>` and the like.
pub mod tier {
    use super::{Role, Tier};

    macro_rules! tiers {
        ($($name:ident => $role:ident),* $(,)?) => {$(
            #[doc = concat!("`", stringify!($role), "` or higher.")]
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Tier for $name {
                const ROLE: Role = Role::$role;
            }
        )*};
    }

    tiers!(SuperAdmin => SuperAdmin, Admin => Admin, Moderator => Moderator, User => User, Guest => Guest);
}

/// A person whose highest current role is at least `R`; 403 `insufficient_role` otherwise.
#[derive(Debug, Clone)]
pub struct RequireRole<R: Tier>(pub Principal, pub PhantomData<R>);

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
    R: Tier,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(who) = CurrentUser::from_request_parts(parts, state).await?;
        if who.highest_role() >= Some(R::ROLE) {
            Ok(RequireRole(who, PhantomData))
        } else {
            Err(ServiceError::Forbidden {
                code: "insufficient_role",
                detail: format!("this needs the role {} or higher", R::ROLE.name()),
            }
            .into())
        }
    }
}

/// A caller (person or service key) holding permission `P`, through a role or as a key scope;
/// 403 `insufficient_permission` otherwise.
#[derive(Debug, Clone)]
pub struct RequirePermission<P: PermissionMarker>(pub Caller, pub PhantomData<P>);

impl<S, P> FromRequestParts<S> for RequirePermission<P>
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
    P: PermissionMarker,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.allows(P::PERMISSION) {
            Ok(RequirePermission(caller, PhantomData))
        } else {
            Err(ServiceError::missing_permission(P::PERMISSION).into())
        }
    }
}

/// A service API key carrying scope `P`: 403 `service_key_required` for a person (whatever
/// their roles), 403 `insufficient_permission` for a key without the scope. For routes only a
/// service may call, such as reporting usage or opening a user's integration key.
#[derive(Debug, Clone)]
pub struct RequireServiceKey<P: PermissionMarker>(pub ServiceKey, pub PhantomData<P>);

impl<S, P> FromRequestParts<S> for RequireServiceKey<P>
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
    P: PermissionMarker,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::User(_) => Err(ServiceError::Forbidden {
                code: "service_key_required",
                detail: format!(
                    "this route needs a service API key with the scope {}",
                    P::PERMISSION
                ),
            }
            .into()),
            caller @ Caller::Service(_) if !caller.allows(P::PERMISSION) => {
                Err(ServiceError::missing_permission(P::PERMISSION).into())
            }
            Caller::Service(key) => Ok(RequireServiceKey(key, PhantomData)),
        }
    }
}

/// The name of the cookie that carries a device token (OWASP "device cookies").
pub const DEVICE_COOKIE: &str = "gatehouse_device";

/// The value of the first cookie called `name` the request sends, if any.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_string())
}

/// The device token a client sends back in its `gatehouse_device` cookie, if any.
#[derive(Debug, Clone, Default)]
pub struct DeviceCookie(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for DeviceCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(DeviceCookie(cookie(&parts.headers, DEVICE_COOKIE)))
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

/// A path (or form) id; anything that is not a UUID names no resource (404).
pub(crate) fn path_id(raw: &str) -> Result<uuid::Uuid, ServiceError> {
    uuid::Uuid::parse_str(raw).map_err(|_| ServiceError::NotFound)
}
