//! The HTTP layer: routers per area, the middleware stack, problem documents and the OpenAPI document generated from the routes.

pub mod admin;
pub mod auth;
pub mod billing;
mod edge;
pub mod extract;
pub mod integrations;
pub mod json;
pub mod mfa;
pub mod oauth;
pub mod ops;
pub(crate) mod pages;
pub mod passkeys;
pub mod problem;
pub mod provider;
pub(crate) mod routed;
pub mod users;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::Gatehouse;

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The one route that takes more: a usage batch (up to 1,000 events).
pub const BATCH_PATH: &str = "/api/v1/usage/batch";
/// Request bodies of [`BATCH_PATH`] above this are refused with 413.
pub const BATCH_BODY_LIMIT: usize = 1024 * 1024;
/// A connection that sends no complete request head within this is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest request target (path and query) answered; longer is 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request head (all header names and values) answered; larger is 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields answered; more is 431 (a problem document up to hyper's own limit of 100).
pub const MAX_HEADERS: usize = 64;

#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Self-hosted authentication and user management"),
    components(schemas(problem::Problem, crate::service::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Liveness, readiness, keys, documentation"),
        (name = "auth", description = "Register, login, tokens and sessions"),
        (name = "mfa", description = "TOTP multi-factor authentication; the second login step"),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, sign-in without a password, the caller's list"),
        (name = "oauth", description = "Sign-in through Google, GitHub and OpenID Connect providers; linked identities"),
        (name = "users", description = "Users and roles (RBAC)"),
        (name = "admin", description = "Audit log, session clean-up, service API keys"),
        (name = "integrations", description = "Third-party API keys of users, encrypted at rest"),
        (name = "usage", description = "Metered usage reported by services"),
        (name = "billing", description = "Billing periods and records"),
        (name = "openid", description = "Gatehouse as an OpenID Provider: discovery, token endpoint, userinfo (OAuth JSON errors, not problem documents)")
    )
)]
struct ApiDoc;

/// The API's routes, documented, each path registered under `prefix`: `/api/v1` in our server
/// (so its router needs no nesting, whose prefix stripping rebuilds every request's URI), none
/// for a host app that nests [`Gatehouse::router`](crate::Gatehouse::router) itself.
pub(crate) struct Area {
    prefix: &'static str,
    router: OpenApiRouter<Gatehouse>,
}

impl Area {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            router: OpenApiRouter::new(),
        }
    }

    /// As [`OpenApiRouter::routes`], under this area's prefix.
    pub fn routes(
        mut self,
        (schemas, mut paths, method_router): UtoipaMethodRouter<Gatehouse>,
    ) -> Self {
        if !self.prefix.is_empty() {
            paths.paths = std::mem::take(&mut paths.paths)
                .into_iter()
                .map(|(path, item)| (format!("{}{path}", self.prefix), item))
                .collect();
        }
        self.router = self.router.routes((schemas, paths, method_router));
        self
    }
}

/// Every contract route of the API under `prefix`, with its OpenAPI description.
pub(crate) fn api_routes(prefix: &'static str) -> OpenApiRouter<Gatehouse> {
    [
        auth::routes(prefix),
        mfa::routes(prefix),
        passkeys::routes(prefix),
        oauth::routes(prefix),
        users::routes(prefix),
        admin::routes(prefix),
        integrations::routes(prefix),
        billing::routes(prefix),
        provider::admin_routes(prefix),
    ]
    .into_iter()
    .fold(OpenApiRouter::new(), |all, area| all.merge(area.router))
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token, or a gh_ service API key")
                    .build(),
            ),
        );
    }
}

/// The complete OpenAPI document: root operations plus `/api/v1`.
pub(crate) fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::<Gatehouse>::with_openapi(ApiDoc::openapi())
        .merge(ops::routes())
        .merge(provider::routes())
        .merge(api_routes(API_PREFIX))
        .split_for_parts();
    doc
}

/// The whole server: operations at the root, the API under `/api/v1`, and the middleware stack.
pub(crate) fn app(gh: Gatehouse) -> Router {
    let config = gh.config();
    let cors = if config.cors_allowed_origins.is_empty() {
        None
    } else if config.cors_allowed_origins.iter().any(|o| o == "*") {
        Some(CorsLayer::permissive())
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
            .collect();
        // Listed, not `*`: per the Fetch standard a wildcard does not cover `Authorization`.
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods(tower_http::cors::Any)
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::ACCEPT,
                    HeaderName::from_static("x-request-id"),
                ])
                .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
                .max_age(Duration::from_secs(600)),
        )
    };
    let mut root = OpenApiRouter::<Gatehouse>::new().merge(ops::routes());
    // The OpenID Provider signs people in and asks their consent on the hosted pages: with the
    // pages off it is off too, discovery included.
    if config.ui.enabled {
        root = root.merge(provider::routes());
    }
    let (ops, _) = root.split_for_parts();
    // The API's routes carry their own layer (metrics and the circuit: `Gatehouse::router_at`).
    let router = Router::new()
        .merge(ops)
        .merge(pages::routes(&gh))
        .route_layer(routed::RoutedLayer::metrics())
        .merge(gh.router_at(API_PREFIX))
        .fallback(|| async { problem::Problem::for_status(StatusCode::NOT_FOUND) })
        .with_state(gh.clone());
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };

    // Panics are caught inside the edge, so the edge's log line and headers cover them too.
    router.layer(CatchPanicLayer::new()).layer(edge::EdgeLayer {
        timeout: config.request_timeout,
        hsts: config.public_url.scheme() == "https",
    })
}
