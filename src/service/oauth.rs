//! Signing in through outside providers (Google, GitHub, any OpenID Connect issuer): starting a flow (state, nonce, PKCE), finishing it (the code exchanged, the ID token verified or GitHub's verified email read), then signing in, signing up or linking, and the one-time code the browser trades for tokens; users' linked identities.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, TokenResponse,
};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use url::Url;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::audit_after;
use super::error::ServiceError;
use super::login::{Gate, Login, LoginOutcome, Principal, account_state, issue_secret};
use super::new_account::{AccountSpec, create_account};
use crate::bus::Eviction;
use crate::config::{Config, GOOGLE_ISSUER, OAuthConfig};
use crate::crypto::password::PasswordHasher;
use crate::crypto::tokens;
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::domain::email::Email;
use crate::domain::oauth::{Decision, Vouched, allowed_redirect, decide};
use crate::domain::profile::DisplayName;
use crate::domain::roles::Role;
use crate::store::audit::AuditEntry;
use crate::store::entities::{oauth_identities, oauth_states, users as user_rows};
use crate::store::oauth::{NewIdentity, NewState, Unlink};
use crate::store::one_time_tokens::Purpose;
use crate::store::{self, StoreError};

/// How long a flow may take from `authorize` to `callback`.
pub const STATE_TTL: Duration = Duration::minutes(10);
/// How long the one-time code of a finished sign-in lives.
const EXCHANGE_TTL: Duration = Duration::minutes(2);
/// How long a signed-in user's link ticket lives.
const LINK_TTL: Duration = Duration::minutes(5);
/// Calls to providers give up after this.
const PROVIDER_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The ID token signatures accepted: every public-key algorithm (the crate's default is RS256
/// alone); never `none`, nor an HMAC keyed by the client secret.
const ID_TOKEN_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// `{name, display_name}` of an enabled provider.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    #[schema(example = "google")]
    pub name: String,
    #[schema(example = "Google")]
    pub display_name: String,
}

/// `{"providers": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

/// An identity at a provider, linked to the caller's account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityView {
    pub id: Uuid,
    #[schema(example = "google")]
    pub provider: String,
    /// The provider's stable id of the account there (`sub`; GitHub's numeric user id).
    pub subject: String,
    pub email: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `{"identities": [...]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdentityList {
    pub identities: Vec<IdentityView>,
}

impl From<oauth_identities::Model> for IdentityView {
    fn from(m: oauth_identities::Model) -> Self {
        Self {
            id: m.id,
            provider: m.provider,
            subject: m.subject,
            email: m.email,
            created_at: m.created_at,
        }
    }
}

/// A started flow: where to send the browser, and the binder its cookie must hold.
#[derive(Debug, Clone)]
pub struct Started {
    pub location: String,
    pub binder: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// A client made from a discovery document: authorization URL set, token and userinfo URLs
/// as the document gives them.
type OidcClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// How a provider is spoken to.
enum Kind {
    /// OpenID Connect: discovery document and keys read on first use, kept, and read again
    /// when an ID token names a key they do not hold.
    Oidc {
        issuer: IssuerUrl,
        metadata: RwLock<Option<Arc<CoreProviderMetadata>>>,
    },
    /// GitHub's OAuth 2.0 apps: no ID token; the account and its emails come from its API.
    GitHub {
        auth_url: openidconnect::AuthUrl,
        token_url: openidconnect::TokenUrl,
        api_url: Url,
    },
}

struct Provider {
    name: String,
    display_name: String,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    kind: Kind,
}

/// What a provider vouched for at the end of a flow.
struct Vouch {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

/// Why a flow ended without a sign-in: the `error` the browser is sent back with.
#[derive(Debug)]
enum Refused {
    Code(&'static str),
    /// A failure of ours (the database): answered as a problem, not a redirect.
    Fault(ServiceError),
}

impl From<ServiceError> for Refused {
    fn from(e: ServiceError) -> Self {
        Refused::Fault(e)
    }
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Fault(e.into())
    }
}

/// `?error=provider_unavailable` (logged with `what` went wrong).
fn unavailable(provider: &str, what: impl std::fmt::Display) -> Refused {
    tracing::warn!(provider, error = %what, "the sign-in provider could not be reached");
    Refused::Code("provider_unavailable")
}

/// `?error=provider_error` (logged with `what` the provider answered).
fn provider_error(provider: &str, what: impl std::fmt::Display) -> Refused {
    tracing::warn!(provider, error = %what, "the sign-in provider refused or answered nonsense");
    Refused::Code("provider_error")
}

fn invalid_state() -> ServiceError {
    ServiceError::BadRequest {
        code: "invalid_state",
        detail: "this sign-in is unknown, expired or already finished; start again".into(),
    }
}

fn invalid_code() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_code",
        detail: "the code is unknown, expired or already used".into(),
    }
}

/// Sign-in through outside providers. Cheap to clone.
#[derive(Clone)]
pub struct OAuth {
    db: DatabaseConnection,
    login: Login,
    hasher: PasswordHasher,
    http: reqwest::Client,
    providers: Arc<Vec<Provider>>,
    allowlist: Arc<Vec<Url>>,
    /// `GATEHOUSE_PUBLIC_URL` without a trailing slash.
    public_base: String,
}

fn providers(config: &OAuthConfig) -> Vec<Provider> {
    if !config.enabled {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let (Some(id), Some(secret)) = (&config.google_client_id, &config.google_client_secret) {
        out.push(Provider {
            name: "google".into(),
            display_name: "Google".into(),
            client_id: id.clone(),
            client_secret: secret.expose().to_string(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            kind: Kind::Oidc {
                issuer: IssuerUrl::new(GOOGLE_ISSUER.into()).expect("a static URL"),
                metadata: RwLock::new(None),
            },
        });
    }
    if let (Some(id), Some(secret)) = (&config.github_client_id, &config.github_client_secret) {
        out.push(Provider {
            name: "github".into(),
            display_name: "GitHub".into(),
            client_id: id.clone(),
            client_secret: secret.expose().to_string(),
            scopes: vec!["read:user".into(), "user:email".into()],
            kind: Kind::GitHub {
                auth_url: openidconnect::AuthUrl::from_url(config.github_auth_url.clone()),
                token_url: openidconnect::TokenUrl::from_url(config.github_token_url.clone()),
                api_url: config.github_api_url.clone(),
            },
        });
    }
    for p in &config.providers {
        // An issuer is compared as written, without the slash `Url` adds to a bare host.
        let issuer = match p.issuer.path() {
            "/" => p.issuer.as_str().trim_end_matches('/').to_string(),
            _ => p.issuer.to_string(),
        };
        out.push(Provider {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.expose().to_string(),
            scopes: p.scopes.clone(),
            kind: Kind::Oidc {
                issuer: IssuerUrl::new(issuer).expect("checked when configured"),
                metadata: RwLock::new(None),
            },
        });
    }
    out
}

impl OAuth {
    pub fn new(
        db: DatabaseConnection,
        login: Login,
        hasher: PasswordHasher,
        config: &Config,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            // Following redirects would let a provider's answer point this server anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(PROVIDER_TIMEOUT)
            .timeout(PROVIDER_TIMEOUT)
            .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for sign-in providers: {e}"))?;
        Ok(Self {
            db,
            login,
            hasher,
            http,
            providers: Arc::new(providers(&config.oauth)),
            allowlist: Arc::new(config.oauth.redirect_allowlist.clone()),
            public_base: config.public_url.as_str().trim_end_matches('/').to_string(),
        })
    }

    /// The enabled providers, presets first.
    pub fn providers(&self) -> ProviderList {
        ProviderList {
            providers: self
                .providers
                .iter()
                .map(|p| ProviderView {
                    name: p.name.clone(),
                    display_name: p.display_name.clone(),
                })
                .collect(),
        }
    }

    fn provider(&self, name: &str) -> Result<&Provider, ServiceError> {
        self.providers
            .iter()
            .find(|p| p.name == name)
            .ok_or(ServiceError::NotFound)
    }

    /// The URL the provider sends the browser back to.
    fn callback_url(&self, provider: &str) -> RedirectUrl {
        RedirectUrl::new(format!(
            "{}/api/v1/auth/oauth/{provider}/callback",
            self.public_base
        ))
        .expect("the public URL is a URL")
    }

    /// The path under which the binder cookie is sent (authorize and callback).
    pub fn cookie_path(&self) -> String {
        let path = Url::parse(&self.public_base)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        format!("{path}/api/v1/auth/oauth")
    }

    fn redirect_uri(&self, raw: &str) -> Result<Url, ServiceError> {
        allowed_redirect(&self.allowlist, raw).ok_or_else(|| ServiceError::BadRequest {
            code: "redirect_uri_not_allowed",
            detail: "redirect_uri must be an http(s) URL within OAUTH_REDIRECT_ALLOWLIST".into(),
        })
    }

    /// The provider's discovery document and keys: kept after the first read, read again
    /// when `refresh` (an ID token named a key they do not hold).
    async fn metadata(
        &self,
        provider: &Provider,
        refresh: bool,
    ) -> Result<Arc<CoreProviderMetadata>, String> {
        let Kind::Oidc { issuer, metadata } = &provider.kind else {
            return Err("not an OpenID Connect provider".into());
        };
        if !refresh && let Some(m) = metadata.read().await.as_ref() {
            return Ok(m.clone());
        }
        let fresh = CoreProviderMetadata::discover_async(issuer.clone(), &self.http)
            .await
            .map_err(|e| error_chain(&e))?;
        let fresh = Arc::new(fresh);
        *metadata.write().await = Some(fresh.clone());
        Ok(fresh)
    }

    /// Start a flow at `provider`: the provider's authorization URL (state, nonce, PKCE S256)
    /// and the browser binder to set as a cookie (the one the browser has, or a new one). A
    /// `link_ticket` from [`OAuth::link_ticket`] makes it link to that signed-in account.
    pub async fn start(
        &self,
        provider: &str,
        redirect_uri: &str,
        binder: Option<&str>,
        link_ticket: Option<&str>,
    ) -> Result<Started, ServiceError> {
        let provider = self.provider(provider)?;
        let redirect = self.redirect_uri(redirect_uri)?;
        let link_user_id = match link_ticket {
            None => None,
            Some(ticket) => Some(self.spend_link_ticket(ticket).await?),
        };
        let binder = binder
            .filter(|b| {
                b.len() == 43
                    && b.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            })
            .map_or_else(|| tokens::random_token(32), str::to_string);
        let state = tokens::random_token(32);
        let (challenge, _) = pkce(&binder, &state);
        let location = match &provider.kind {
            Kind::Oidc { .. } => {
                let metadata = self.metadata(provider, false).await.map_err(|e| {
                    tracing::warn!(provider = %provider.name, error = %e, "discovery failed");
                    ServiceError::Upstream {
                        code: "provider_unavailable",
                        detail: format!(
                            "{} cannot be reached; try again later",
                            provider.display_name
                        ),
                    }
                })?;
                let client = self.oidc_client(provider, &metadata);
                let (state_for, nonce) = (state.clone(), nonce(&binder, &state));
                let mut req = client.authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    move || CsrfToken::new(state_for),
                    move || Nonce::new(nonce),
                );
                for scope in provider.scopes.iter().filter(|s| *s != "openid") {
                    req = req.add_scope(Scope::new(scope.clone()));
                }
                req.set_pkce_challenge(challenge).url().0
            }
            Kind::GitHub {
                auth_url,
                token_url,
                ..
            } => {
                let client =
                    oauth2::basic::BasicClient::new(ClientId::new(provider.client_id.clone()))
                        .set_auth_uri(auth_url.clone())
                        .set_token_uri(token_url.clone())
                        .set_redirect_uri(self.callback_url(&provider.name));
                let state_for = state.clone();
                let mut req = client.authorize_url(move || CsrfToken::new(state_for));
                for scope in &provider.scopes {
                    req = req.add_scope(Scope::new(scope.clone()));
                }
                req.set_pkce_challenge(challenge).url().0
            }
        };
        store::oauth::insert_state(
            &self.db,
            NewState {
                state_hash: tokens::sha256_hex(&state),
                binder_hash: tokens::sha256_hex(&binder),
                provider: provider.name.clone(),
                redirect_uri: redirect.to_string(),
                link_user_id,
                expires_at: store::now() + STATE_TTL,
            },
        )
        .await?;
        Ok(Started {
            location: location.to_string(),
            binder,
        })
    }

    fn oidc_client(&self, provider: &Provider, metadata: &CoreProviderMetadata) -> OidcClient {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.clone())),
        )
        .set_redirect_uri(self.callback_url(&provider.name))
    }

    /// Finish a flow at the callback: the location to send the browser to, with `?code=` (a
    /// sign-in), `?linked=<provider>` (a link) or `?error=`. A missing, unknown, spent or
    /// expired state, or a browser without the flow's binder, has nowhere safe to go back to:
    /// 400.
    pub async fn finish(
        &self,
        provider: &str,
        params: CallbackParams,
        binder: Option<&str>,
        client: &ClientInfo,
    ) -> Result<String, ServiceError> {
        let provider = self.provider(provider)?;
        let now = store::now();
        let state = params.state.clone().ok_or_else(invalid_state)?;
        let flow = store::oauth::find_live_state(&self.db, &tokens::sha256_hex(&state), now)
            .await?
            .filter(|f| f.provider == provider.name)
            .ok_or_else(invalid_state)?;
        let binder = binder
            .filter(|b| tokens::sha256_hex(b) == flow.binder_hash)
            .ok_or_else(|| ServiceError::BadRequest {
                code: "state_mismatch",
                detail: "this sign-in was started in another browser (or its cookie is gone); start again".into(),
            })?;
        if !store::oauth::spend_state(&self.db, flow.id, now).await? {
            return Err(invalid_state());
        }
        let mut back = Url::parse(&flow.redirect_uri)
            .map_err(|e| ServiceError::Internal(format!("a stored redirect_uri: {e}")))?;
        let outcome = self
            .complete(provider, &flow, params, binder, &state, client)
            .await;
        let (key, value) = match outcome {
            Ok(pair) => pair,
            Err(Refused::Code(code)) => ("error", code.to_string()),
            Err(Refused::Fault(e)) => return Err(e),
        };
        back.query_pairs_mut().append_pair(key, &value);
        Ok(back.to_string())
    }

    /// Everything after the state checked out: the provider's word, then the account.
    async fn complete(
        &self,
        provider: &Provider,
        flow: &oauth_states::Model,
        params: CallbackParams,
        binder: &str,
        state: &str,
        client: &ClientInfo,
    ) -> Result<(&'static str, String), Refused> {
        if let Some(error) = params.error {
            tracing::info!(provider = %provider.name, %error, "the provider ended the sign-in");
            return Err(Refused::Code(if error == "access_denied" {
                "access_denied"
            } else {
                "provider_error"
            }));
        }
        let code = params
            .code
            .ok_or_else(|| provider_error(&provider.name, "no code in the callback"))?;
        let vouch = match &provider.kind {
            Kind::Oidc { .. } => self.oidc_vouch(provider, code, binder, state).await?,
            Kind::GitHub {
                token_url, api_url, ..
            } => {
                self.github_vouch(provider, token_url, api_url, code, binder, state)
                    .await?
            }
        };
        match flow.link_user_id {
            Some(user_id) => self.link_signed_in(provider, user_id, vouch, client).await,
            None => self.sign_in(provider, vouch, client).await,
        }
    }

    async fn oidc_vouch(
        &self,
        provider: &Provider,
        code: String,
        binder: &str,
        state: &str,
    ) -> Result<Vouch, Refused> {
        let name = &provider.name;
        let metadata = self
            .metadata(provider, false)
            .await
            .map_err(|e| unavailable(name, e))?;
        let client = self.oidc_client(provider, &metadata);
        let (_, verifier) = pkce(binder, state);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| provider_error(name, e))?
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| token_refused(name, e))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| provider_error(name, "no ID token in the token response"))?;
        let nonce = Nonce::new(nonce(binder, state));
        let claims: CoreIdTokenClaims = match id_token.claims(&id_token_checks(&client), &nonce) {
            Ok(claims) => claims.clone(),
            // A key the cached set does not hold: the provider may have rotated its keys.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let fresh = self
                    .metadata(provider, true)
                    .await
                    .map_err(|e| unavailable(name, e))?;
                let client = self.oidc_client(provider, &fresh);
                id_token
                    .claims(&id_token_checks(&client), &nonce)
                    .map_err(|e| rejected_token(name, e))?
                    .clone()
            }
            Err(e) => return Err(rejected_token(name, e)),
        };
        let mut vouch = Vouch {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
        };
        // Providers that keep the ID token small (as the spec's default does for the code flow)
        // give the email at the userinfo endpoint.
        if vouch.email.is_none()
            && let Ok(request) = client.user_info(
                AccessToken::new(response.access_token().secret().clone()),
                Some(claims.subject().clone()),
            )
        {
            let info: CoreUserInfoClaims = request
                .request_async(&self.http)
                .await
                .map_err(|e| provider_error(name, error_chain(&e)))?;
            vouch.email = info.email().map(|e| e.as_str().to_string());
            vouch.email_verified = info.email_verified().unwrap_or(false);
            if vouch.name.is_none() {
                vouch.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_string());
            }
        }
        Ok(vouch)
    }

    async fn github_vouch(
        &self,
        provider: &Provider,
        token_url: &openidconnect::TokenUrl,
        api_url: &Url,
        code: String,
        binder: &str,
        state: &str,
    ) -> Result<Vouch, Refused> {
        let name = &provider.name;
        let client = oauth2::basic::BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_client_secret(ClientSecret::new(provider.client_secret.clone()))
            .set_token_uri(token_url.clone())
            .set_redirect_uri(self.callback_url(name))
            .set_auth_type(oauth2::AuthType::RequestBody);
        let (_, verifier) = pkce(binder, state);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| token_refused(name, e))?;
        let token = response.access_token().secret();
        let api = api_url.as_str().trim_end_matches('/');
        let user: GitHubUser = self.github_get(name, &format!("{api}/user"), token).await?;
        let emails: Vec<GitHubEmail> = self
            .github_get(name, &format!("{api}/user/emails"), token)
            .await?;
        let primary = emails.into_iter().find(|e| e.primary);
        Ok(Vouch {
            subject: user.id.to_string(),
            email_verified: primary.as_ref().is_some_and(|e| e.verified),
            email: primary.map(|e| e.email).or(user.email),
            name: user.name.or(Some(user.login)),
        })
    }

    async fn github_get<T: serde::de::DeserializeOwned>(
        &self,
        provider: &str,
        url: &str,
        token: &str,
    ) -> Result<T, Refused> {
        let res = self
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| unavailable(provider, error_chain(&e)))?;
        if !res.status().is_success() {
            return Err(provider_error(
                provider,
                format!("{url} answered {}", res.status()),
            ));
        }
        res.json()
            .await
            .map_err(|e| provider_error(provider, error_chain(&e)))
    }

    /// A sign-in (no one signed in): sign in, link by verified email, or sign up.
    async fn sign_in(
        &self,
        provider: &Provider,
        vouch: Vouch,
        client: &ClientInfo,
    ) -> Result<(&'static str, String), Refused> {
        let linked = store::oauth::find_identity(&self.db, &provider.name, &vouch.subject).await?;
        let email = vouch.email.as_deref().and_then(|e| Email::parse(e).ok());
        let account = match (&linked, &email) {
            (None, Some(email)) => store::users::find_by_email(&self.db, email.key())
                .await?
                .filter(|u| u.deleted_at.is_none()),
            _ => None,
        };
        let decision = decide(Vouched {
            linked: linked.is_some(),
            email_verified: vouch.email_verified && email.is_some(),
            account_with_email: account.as_ref().map(|u| u.email_verified),
        });
        let identity = NewIdentity {
            provider: provider.name.clone(),
            subject: vouch.subject.clone(),
            email: vouch.email.clone(),
        };
        let user = match decision {
            Decision::Refuse(code) => return Err(Refused::Code(code)),
            Decision::SignIn => {
                let identity = linked.expect("decided on a linked identity");
                let user = store::users::find(&self.db, identity.user_id)
                    .await?
                    .ok_or(Refused::Code("account_disabled"))?;
                audit_after(&self.db, identity_audit(client, "oauth_sign_in", &identity)).await;
                user
            }
            Decision::LinkByEmail => {
                let user = account.expect("decided on an account");
                self.link(&user, identity, client).await?;
                user
            }
            Decision::SignUp => {
                let email = email.expect("decided on a verified email");
                let spec = AccountSpec {
                    name: vouch
                        .name
                        .as_deref()
                        .and_then(|n| DisplayName::parse(Some(n)).ok().flatten()),
                    roles: vec![Role::User.name().to_string()],
                    email_verified: true,
                    self_service: true,
                    identity: Some(identity),
                    ..Default::default()
                };
                let audit = client.stamp(AuditEntry {
                    event: "oauth_sign_up",
                    detail: serde_json::json!({"provider": provider.name}),
                    ..Default::default()
                });
                match create_account(&self.db, &self.hasher, &email, None, spec, audit).await {
                    Ok(user) => user,
                    // The same email or identity signed up meanwhile (two tabs): sign in again.
                    Err(ServiceError::Conflict { .. }) => return Err(Refused::Code("conflict")),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let require_verified = self.login.settings().require_email_verification;
        if let Err(refusal) = may_log_in(account_state(&user), require_verified) {
            return Err(Refused::Code(refusal_code(refusal)));
        }
        let code = issue_secret(&self.db, user.id, Purpose::OAuthExchange, EXCHANGE_TTL).await?;
        Ok(("code", code))
    }

    /// Link `identity` to `user` with its audit row, in one transaction.
    async fn link(
        &self,
        user: &user_rows::Model,
        identity: NewIdentity,
        client: &ClientInfo,
    ) -> Result<(), Refused> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = match store::oauth::insert_identity(&txn, user.id, identity).await {
            Ok(row) => row,
            Err(StoreError::Conflict(_)) => return Err(Refused::Code("identity_in_use")),
            Err(e) => return Err(e.into()),
        };
        let entry = identity_audit(client, "oauth_linked", &row);
        store::audit::record(&txn, entry).await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// A signed-in user's link: the identity joins their account (whatever its email says).
    async fn link_signed_in(
        &self,
        provider: &Provider,
        user_id: Uuid,
        vouch: Vouch,
        client: &ClientInfo,
    ) -> Result<(&'static str, String), Refused> {
        match store::oauth::find_identity(&self.db, &provider.name, &vouch.subject).await? {
            Some(existing) if existing.user_id == user_id => {}
            Some(_) => return Err(Refused::Code("identity_in_use")),
            None => {
                let user = store::users::find(&self.db, user_id)
                    .await?
                    .ok_or(Refused::Code("account_disabled"))?;
                let identity = NewIdentity {
                    provider: provider.name.clone(),
                    subject: vouch.subject,
                    email: vouch.email,
                };
                self.link(&user, identity, client).await?;
            }
        }
        Ok(("linked", provider.name.clone()))
    }

    /// Trade a sign-in's one-time code for a token pair, or the MFA step when the account has a
    /// second factor (as `POST /auth/login` answers).
    pub async fn exchange(
        &self,
        code: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let token = store::one_time_tokens::take(
            &self.db,
            Purpose::OAuthExchange,
            &tokens::sha256_hex(code),
            store::now(),
        )
        .await?
        .ok_or_else(invalid_code)?;
        let user = store::users::find(&self.db, token.user_id)
            .await?
            .ok_or_else(invalid_code)?;
        let require_verified = self.login.settings().require_email_verification;
        may_log_in(account_state(&user), require_verified)?;
        let methods = self.login.second_factors(&user).await?;
        if !methods.is_empty() {
            return Ok(LoginOutcome::MfaRequired(
                self.login.mfa_challenge(user.id, methods).await?,
            ));
        }
        let pair = self
            .login
            .succeeded(&Gate::Account(user.id), user, None, "aal1", client)
            .await?;
        Ok(LoginOutcome::Tokens(Box::new(pair)))
    }

    /// A signed-in user's ticket to link an identity at `provider`: the URL of
    /// `GET /auth/oauth/{provider}/authorize` to send the browser to (valid 5 minutes, once).
    pub async fn link_ticket(
        &self,
        who: &Principal,
        provider: &str,
        redirect_uri: &str,
    ) -> Result<String, ServiceError> {
        let provider = self.provider(provider)?;
        self.redirect_uri(redirect_uri)?;
        let ticket = issue_secret(&self.db, who.user_id, Purpose::OAuthLink, LINK_TTL).await?;
        let mut url = Url::parse(&format!(
            "{}/api/v1/auth/oauth/{}/authorize",
            self.public_base, provider.name
        ))
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("link_ticket", &ticket);
        Ok(url.to_string())
    }

    async fn spend_link_ticket(&self, ticket: &str) -> Result<Uuid, ServiceError> {
        let token = store::one_time_tokens::take(
            &self.db,
            Purpose::OAuthLink,
            &tokens::sha256_hex(ticket),
            store::now(),
        )
        .await?
        .ok_or_else(|| ServiceError::BadRequest {
            code: "invalid_link_ticket",
            detail: "the link ticket is unknown, expired or already used".into(),
        })?;
        Ok(token.user_id)
    }

    /// The caller's linked identities, oldest first.
    pub async fn identities(&self, who: &Principal) -> Result<IdentityList, ServiceError> {
        Ok(IdentityList {
            identities: store::oauth::identities_of(&self.db, who.user_id)
                .await?
                .into_iter()
                .map(IdentityView::from)
                .collect(),
        })
    }

    /// Unlink one of the caller's identities; 409 when it is the account's last way to sign in.
    pub async fn unlink(
        &self,
        who: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let now = store::now();
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        match store::oauth::unlink_identity(&txn, who.user_id, id, now).await? {
            Unlink::NotFound => return Err(ServiceError::NotFound),
            Unlink::LastWay => {
                return Err(ServiceError::Conflict {
                    code: "last_sign_in_method",
                    detail: "this is the account's only way to sign in; set a password or link another identity first".into(),
                });
            }
            Unlink::Removed(identity) => {
                let entry = identity_audit(client, "oauth_unlinked", &identity);
                store::audit::record(&txn, entry).await?;
            }
        }
        txn.commit().await.map_err(StoreError::from)?;
        // `updated_at` is part of the user's view.
        self.login
            .principals()
            .evict(Eviction::User(who.user_id))
            .await;
        Ok(())
    }
}

#[derive(Deserialize)]
struct GitHubUser {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

/// The audit row of `event` on an identity, by and about its own account.
fn identity_audit(
    client: &ClientInfo,
    event: &'static str,
    identity: &oauth_identities::Model,
) -> AuditEntry {
    client.stamp(AuditEntry {
        event,
        user_id: Some(identity.user_id),
        actor_id: Some(identity.user_id),
        detail: serde_json::json!({"provider": identity.provider, "identity_id": identity.id}),
        ..Default::default()
    })
}

/// The PKCE pair of a flow: the verifier is derived from the browser's binder and the state,
/// so nothing stored yields it; the crate makes the S256 challenge.
fn pkce(binder: &str, state: &str) -> (PkceCodeChallenge, PkceCodeVerifier) {
    let verifier = PkceCodeVerifier::new(tokens::derived_token(
        "gatehouse-oauth-pkce",
        &[binder, state],
    ));
    (
        PkceCodeChallenge::from_code_verifier_sha256(&verifier),
        verifier,
    )
}

/// What an ID token must pass: signed by a key of the provider's set with a public-key
/// algorithm, for this client, from this issuer, unexpired (the nonce is given per call).
fn id_token_checks(client: &OidcClient) -> openidconnect::core::CoreIdTokenVerifier<'_> {
    client.id_token_verifier().set_allowed_algs(ID_TOKEN_ALGS)
}

/// The flow's OpenID Connect nonce, derived as the verifier is.
fn nonce(binder: &str, state: &str) -> String {
    tokens::derived_token("gatehouse-oauth-nonce", &[binder, state])
}

/// A code exchange that failed: the provider unreachable, or refusing.
fn token_refused<RE, T>(provider: &str, e: RequestTokenError<RE, T>) -> Refused
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::Request(e) => unavailable(provider, error_chain(&e)),
        other => provider_error(provider, error_chain(&other)),
    }
}

/// `?error=invalid_id_token`: the ID token failed a check (signature, issuer, audience, nonce, expiry).
fn rejected_token(provider: &str, e: ClaimsVerificationError) -> Refused {
    tracing::warn!(provider, error = %e, "an ID token was refused");
    Refused::Code("invalid_id_token")
}

fn refusal_code(refusal: crate::domain::accounts::Refusal) -> &'static str {
    use crate::domain::accounts::Refusal;
    match refusal {
        Refusal::Deleted | Refusal::Disabled => "account_disabled",
        Refusal::EmailNotVerified => "email_not_verified",
    }
}

/// An error with its causes, for the log.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
