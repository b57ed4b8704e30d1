//! Gatehouse: a self-hosted authentication and user-management server, and the library to embed it in an axum app.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gatehouse::Error> {
//! let config = gatehouse::config::Config::load()?;
//! let gh = gatehouse::Gatehouse::connect(config).await?;
//! gh.migrate().await?;
//! let app: axum::Router = axum::Router::new()
//!     .nest("/api/v1", gh.router())
//!     .with_state(gh.clone());
//! # let _ = app; Ok(()) }
//! ```

pub mod bus;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod limits;
pub mod mail;
pub mod service;
pub mod store;
pub mod telemetry;

pub use crate::domain::permissions::Permission;
pub use crate::http::extract::{CurrentUser, RequirePermission, RequireRole, perm, tier};
pub use crate::service::caller::{Caller, ServiceKey};
pub use crate::service::login::Principal;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::config::{Config, ConfigError, Secret};
use crate::crypto::password::PasswordHasher;
use crate::service::ServiceError;
use crate::service::accounts::Accounts;
use crate::service::api_keys::ApiKeys;
use crate::service::auth::Auth;
use crate::service::billing::Billing;
use crate::service::integrations::Integrations;
use crate::service::login::{AuthSettings, Login};
use crate::service::mfa::Mfa;
use crate::service::oauth::OAuth;
use crate::service::passkeys::Passkeys;
use crate::service::provider::Provider;
use crate::service::usage::Usage;
use crate::service::users::Users;
use crate::service::verification::Verification;
use crate::service::web::Web;
use crate::store::StoreError;

/// Anything that can stop Gatehouse from starting or a command from finishing; one human line each.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Service(#[from] ServiceError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Usage(String),
}

/// A running Gatehouse: configuration, database pool and services. Cheap to clone.
#[derive(Clone)]
pub struct Gatehouse {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: DatabaseConnection,
    circuit: store::circuit::Circuit,
    accounts: Accounts,
    auth: Auth,
    users: Users,
    api_keys: ApiKeys,
    limiter: limits::rate::RateLimiter,
    verification: Verification,
    mfa: Mfa,
    passkeys: Passkeys,
    web: Web,
    oauth: OAuth,
    provider: Provider,
    integrations: Integrations,
    usage: Usage,
    billing: Billing,
    openapi: OnceLock<String>,
}

impl Gatehouse {
    /// Connect to the configured database and build the services. Does not migrate.
    pub async fn connect(config: Config) -> Result<Self, Error> {
        let jwt_secret = crypto::keys::resolve_jwt_secret(&config)?;
        let (db, circuit) = store::db::connect_guarded(&config.database).await?;
        Self::with_connection(config, db, circuit, jwt_secret)
    }

    fn with_connection(
        config: Config,
        db: DatabaseConnection,
        circuit: store::circuit::Circuit,
        jwt_secret: Option<Secret>,
    ) -> Result<Self, Error> {
        let hasher = PasswordHasher::new(&config.password)
            .map_err(|e| ConfigError::new("PASSWORD_ARGON2_MEMORY_KIB", e.to_string()))?;
        let policy = config.password.policy();
        let accounts = Accounts::new(db.clone(), hasher.clone(), policy);
        let principals = service::principals::Principals::new(&config, &db);
        principals.start();
        let users = Users::new(db.clone(), hasher.clone(), policy, principals.clone());
        let api_keys = ApiKeys::new(db.clone());
        let limiter = limits::rate::RateLimiter::new(&config.rate_limit)?;
        telemetry::handle();
        let issuer = config.public_url.as_str().trim_end_matches('/').to_string();
        let mut jwt = crypto::jwt::JwtKeys::new(&config.jwt, jwt_secret.as_ref(), &issuer)?;
        if let Some((label, pem)) = crypto::keys::resolve_oidc_key(&config)? {
            jwt = jwt.with_id_token_key(&label, pem)?;
        }
        let jwt = Arc::new(jwt);
        let settings = AuthSettings::new(&config, &issuer);
        let mailer = mail::Mailer::start(&config.mail)?;
        let verification = Verification::new(
            db.clone(),
            mailer,
            hasher.clone(),
            policy,
            issuer.clone(),
            principals.clone(),
        );
        let envelope = crypto::envelope::Envelope::from_config(&config)?;
        // Refresh and device tokens are keyed by the signing key's material (the HS256 secret or
        // the private key file's bytes), and open under every previous key too.
        let login = Login::new(
            db.clone(),
            jwt.clone(),
            &jwt.materials(),
            settings,
            principals.clone(),
        );
        let web = Web::new(db.clone(), login.clone(), &jwt.materials());
        let auth = Auth::new(
            db.clone(),
            hasher.clone(),
            policy,
            login.clone(),
            verification.clone(),
        );
        let provider = Provider::new(db.clone(), login.clone(), auth.clone());
        let integrations = Integrations::new(db.clone(), envelope.clone());
        let (usage, billing) = (Usage::new(db.clone()), Billing::new(db.clone()));
        let oauth =
            OAuth::new(db.clone(), login.clone(), hasher.clone(), &config).map_err(Error::Usage)?;
        let product = config.ui.product_name.clone();
        let relying_party = service::passkeys::relying_party(&config.webauthn)?;
        let passkeys = Passkeys::new(db.clone(), login.clone(), relying_party);
        let mfa = Mfa::new(db.clone(), login, hasher, envelope, product);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                circuit,
                accounts,
                auth,
                users,
                api_keys,
                limiter,
                verification,
                mfa,
                passkeys,
                web,
                oauth,
                provider,
                integrations,
                usage,
                billing,
                openapi: OnceLock::new(),
            }),
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Whether the database is known to be unreachable (see `store::circuit`).
    pub fn database_circuit(&self) -> &store::circuit::Circuit {
        &self.inner.circuit
    }

    pub fn accounts(&self) -> &Accounts {
        &self.inner.accounts
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub fn users(&self) -> &Users {
        &self.inner.users
    }

    pub fn api_keys(&self) -> &ApiKeys {
        &self.inner.api_keys
    }

    pub fn verification(&self) -> &Verification {
        &self.inner.verification
    }

    pub fn mfa(&self) -> &Mfa {
        &self.inner.mfa
    }

    /// The hosted pages' sessions, CSRF tokens and sign-in codes.
    pub fn passkeys(&self) -> &Passkeys {
        &self.inner.passkeys
    }

    pub fn web(&self) -> &Web {
        &self.inner.web
    }

    /// Sign-in through outside providers.
    pub fn oauth(&self) -> &OAuth {
        &self.inner.oauth
    }

    /// Gatehouse as an OpenID Provider: clients, authorization, tokens, userinfo, logout.
    pub fn provider(&self) -> &Provider {
        &self.inner.provider
    }

    pub fn integrations(&self) -> &Integrations {
        &self.inner.integrations
    }

    pub fn usage(&self) -> &Usage {
        &self.inner.usage
    }

    pub fn billing(&self) -> &Billing {
        &self.inner.billing
    }

    /// The rate limiter (memory or Redis, per `RATE_LIMIT_BACKEND`).
    pub fn limiter(&self) -> &limits::rate::RateLimiter {
        &self.inner.limiter
    }

    /// Apply every pending migration. Returns how many ran.
    pub async fn migrate(&self) -> Result<usize, Error> {
        Ok(store::schema::upgrade(self.db(), None).await?)
    }

    /// Start-up duties: make sure `ADMIN_USERNAME` is a super_admin when configured.
    pub async fn bootstrap(&self) -> Result<(), Error> {
        if let Some(admin) = &self.config().admin {
            let outcome = self
                .accounts()
                .ensure_super_admin(&admin.email, Some(admin.password.expose()))
                .await
                .map_err(|e| Error::Usage(format!("ADMIN_USERNAME/ADMIN_PASSWORD: {e}")))?;
            tracing::info!(email = %admin.email, ?outcome, "bootstrap super_admin ensured");
        }
        Ok(())
    }

    /// Whether the database answers within `timeout`, and how fast.
    pub async fn ping_database(&self, timeout: Duration) -> Result<Duration, StoreError> {
        store::db::ping(self.db(), timeout).await
    }

    /// Every contract route, to nest under `/api/v1` in a host app whose state is a `Gatehouse`.
    pub fn router(&self) -> axum::Router<Gatehouse> {
        self.router_at("")
    }

    /// The API's routes with `prefix` before each path (our server's, at `/api/v1`).
    pub(crate) fn router_at(&self, prefix: &'static str) -> axum::Router<Gatehouse> {
        http::api_routes(prefix).split_for_parts().0.route_layer(
            http::routed::RoutedLayer::guarded(self.database_circuit().clone()),
        )
    }

    /// The whole server (operations at the root, API under `/api/v1`, middleware), ready to serve.
    pub fn app(&self) -> axum::Router {
        http::app(self.clone())
    }

    /// The OpenAPI 3.1 document, rendered once.
    pub fn openapi_json(&self) -> String {
        self.inner
            .openapi
            .get_or_init(|| http::openapi_document().to_json().unwrap_or_default())
            .clone()
    }

    /// Serve on `listener` until `shutdown` resolves; in-flight requests finish first.
    /// Connections that send no complete request head within `HEADER_READ_TIMEOUT` (idle
    /// keep-alive ones included) are closed.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        use hyper_util::server::graceful::GracefulShutdown;
        use hyper_util::service::TowerToHyperService;
        use tower::ServiceExt;

        let app = self.app();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(http::HEADER_READ_TIMEOUT)
            // Room for heads past our own limits, so `http::edge` answers 414 and 431
            // as problem documents; hyper's bare answers only come beyond this. Its header
            // count stays at its default (100, above our `MAX_HEADERS`): a larger one moves
            // the parser's header array from the stack to the heap on every request.
            .max_buf_size(http::MAX_HEAD_BYTES * 4);
        let graceful = GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, do not spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let service = app.clone().map_request(
                move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req.map(axum::body::Body::new)
                },
            );
            let conn =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        self.inner
            .db
            .clone()
            .close()
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }
}

/// `docs/embedding.md`, compiled as a doctest so the example there stays true.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
pub struct EmbeddingGuide;
