//! Gatehouse as an OpenID Provider: registered clients, the authorization request (checked before any redirect, exact redirect URIs, PKCE S256, `prompt`, `max_age`, consent), single-use authorization codes whose replay revokes what they issued, the token endpoint (code and refresh grants over our own sessions, so rotation and reuse detection are the ones of our refresh tokens), ID tokens, userinfo and RP-initiated logout.
//!
//! Protocol failures are [`ProtocolError`]s (RFC 6749 § 5.2 error codes), which the HTTP layer
//! answers as OAuth JSON errors or redirects, not problem documents.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use super::audit::{Revocation, audit_after, revoke_sessions};
use super::auth::Auth;
use super::error::ServiceError;
use super::login::{Login, Principal, account_state};
use crate::bus::Eviction;
use crate::crypto::jwt::Claims;
use crate::crypto::tokens;
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::domain::provider as rules;
use crate::store::audit::AuditEntry;
use crate::store::entities::{oidc_clients, sessions as session_rows, users as user_rows};
use crate::store::{self, StoreError};

/// How long an authorization code lives between the redirect and the token request.
const CODE_TTL: Duration = Duration::seconds(60);

/// A registered client as the admin API and the CLI show it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    /// Public clients (SPAs, native apps) have no secret and must use PKCE.
    pub public: bool,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Space-separated scopes the client may ask for.
    pub scopes: String,
    pub created_at: DateTime<Utc>,
}

impl ClientView {
    fn new(row: &oidc_clients::Model) -> Self {
        Self {
            client_id: row.client_id.clone(),
            name: row.name.clone(),
            public: row.public,
            first_party: row.first_party,
            redirect_uris: uris(&row.redirect_uris),
            post_logout_redirect_uris: uris(&row.post_logout_redirect_uris),
            scopes: row.scopes.clone(),
            created_at: row.created_at,
        }
    }
}

fn uris(json: &str) -> Vec<String> {
    serde_json::from_str(json).unwrap_or_default()
}

/// `{"clients": [...]}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

/// A client just registered: its secret is shown this once (confidential clients only).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: ClientView,
    pub client_secret: Option<String>,
}

/// What registering a client takes.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    pub name: String,
    /// Exact redirect URIs (https, or http on loopback/localhost).
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub first_party: bool,
    /// Space-separated; default `openid email profile roles offline_access`.
    #[serde(default)]
    pub scopes: Option<String>,
}

/// A consent a person gave a client, for the account page.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentView {
    pub client_id: String,
    pub client_name: String,
    pub scope: String,
    pub granted_at: DateTime<Utc>,
}

/// An OAuth 2.0 / OpenID Connect protocol error (RFC 6749 § 4.1.2.1 and § 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl ProtocolError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    fn grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }

    fn request(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    fn client() -> Self {
        Self::new(401, "invalid_client", "client authentication failed")
    }

    fn token() -> Self {
        Self::new(
            401,
            "invalid_token",
            "the access token is invalid or expired",
        )
    }
}

impl From<ServiceError> for ProtocolError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Unavailable(_) | ServiceError::Busy => {
                Self::new(503, "temporarily_unavailable", "try again shortly")
            }
            ServiceError::Internal(e) => {
                tracing::error!(error = %e, "OpenID provider failure");
                Self::new(500, "server_error", "internal error")
            }
            other => Self::new(500, "server_error", other.to_string()),
        }
    }
}

impl From<StoreError> for ProtocolError {
    fn from(err: StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AuthorizeRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub response_mode: Option<String>,
}

/// Why an authorization request failed: without a trustworthy client and redirect URI the
/// browser is told on a page; otherwise it goes back to the client with the error.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    Page(String),
    Redirect(String),
}

impl From<ServiceError> for AuthorizeError {
    fn from(err: ServiceError) -> Self {
        AuthorizeError::Page(ProtocolError::from(err).description)
    }
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct Checked {
    client: oidc_clients::Model,
    redirect_uri: String,
    scopes: Vec<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt_none: bool,
    prompt_login: bool,
    prompt_consent: bool,
    max_age: Option<i64>,
}

impl Checked {
    pub fn client_name(&self) -> &str {
        &self.client.name
    }

    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The client's redirect URI with `error` (and the state and issuer).
    fn error(&self, issuer: &str, error: &str, description: &str) -> AuthorizeError {
        AuthorizeError::Redirect(respond(
            &self.redirect_uri,
            issuer,
            self.state.as_deref(),
            &[("error", error), ("error_description", description)],
        ))
    }
}

/// `redirect_uri` with `pairs`, the `state` and `iss` (RFC 9207) in its query.
fn respond(
    redirect_uri: &str,
    issuer: &str,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> String {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        q.append_pair("iss", issuer);
    }
    url.to_string()
}

/// What the browser of a checked request does next.
#[derive(Debug, Clone)]
pub enum Next {
    /// Sign in (again, when `fresh`) on the hosted page, then come back.
    SignIn { fresh: bool },
    /// Ask the person to consent on the hosted page.
    Consent,
    /// Back to the client (with a code).
    Redirect(String),
}

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// Whether the secret came in an `Authorization: Basic` header.
    pub basic: bool,
}

/// A token request's form fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 § 5.1 with an OpenID Connect `id_token`).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub id_token: String,
    pub scope: String,
}

/// The ID token's claims.
#[derive(Debug, Clone, Serialize)]
struct IdClaims {
    iss: String,
    sub: Uuid,
    aud: String,
    azp: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    acr: String,
    amr: Vec<&'static str>,
    sid: Uuid,
    #[serde(flatten)]
    profile: serde_json::Map<String, serde_json::Value>,
}

/// Registering, listing and deleting clients (the admin API and `gatehouse clients`). Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    db: DatabaseConnection,
}

impl Clients {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Register a client; its secret (confidential clients) is in the answer only.
    pub async fn create_client(
        &self,
        new: NewClient,
        actor: Option<Uuid>,
        client: &ClientInfo,
    ) -> Result<CreatedClient, ServiceError> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ServiceError::invalid(
                "name",
                "invalid",
                "give the client a name of 1 to 200 characters",
            ));
        }
        if new.redirect_uris.is_empty() {
            return Err(ServiceError::invalid(
                "redirect_uris",
                "required",
                "register at least one redirect URI",
            ));
        }
        for (field, list) in [
            ("redirect_uris", &new.redirect_uris),
            ("post_logout_redirect_uris", &new.post_logout_redirect_uris),
        ] {
            for uri in list {
                if let Some(problem) = rules::redirect_uri_problem(uri) {
                    return Err(ServiceError::invalid(
                        field,
                        "invalid_uri",
                        format!("{uri} {problem}"),
                    ));
                }
            }
        }
        let scopes = rules::client_scopes(new.scopes.as_deref().unwrap_or(rules::DEFAULT_SCOPES))
            .map_err(|m| ServiceError::invalid("scopes", "unknown_scope", m))?;
        let secret = (!new.public).then(|| tokens::random_token(32));
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = store::clients::insert(
            &txn,
            store::clients::NewClient {
                client_id: format!("ghc_{}", tokens::random_token(16)),
                name,
                secret_hash: secret.as_deref().map(tokens::sha256_hex),
                public: new.public,
                first_party: new.first_party,
                redirect_uris: new.redirect_uris,
                post_logout_redirect_uris: new.post_logout_redirect_uris,
                scopes,
            },
        )
        .await?;
        store::audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "oidc_client_created",
                actor_id: actor,
                detail: serde_json::json!({"client_id": row.client_id, "name": row.name, "public": row.public, "first_party": row.first_party}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(CreatedClient {
            client: ClientView::new(&row),
            client_secret: secret,
        })
    }

    pub async fn list_clients(&self) -> Result<ClientList, ServiceError> {
        Ok(ClientList {
            clients: store::clients::list(&self.db)
                .await?
                .iter()
                .map(ClientView::new)
                .collect(),
        })
    }

    /// Delete a client, the sessions issued to it, its consents and codes.
    pub async fn delete_client(
        &self,
        client_id: &str,
        actor: Option<Uuid>,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let row = store::clients::find(&self.db, client_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        store::clients::delete(&txn, row.id).await?;
        store::audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "oidc_client_deleted",
                actor_id: actor,
                detail: serde_json::json!({"client_id": row.client_id, "name": row.name}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// Gatehouse as an OpenID Provider. Cheap to clone.
#[derive(Clone)]
pub struct Provider {
    db: DatabaseConnection,
    login: Login,
    auth: Auth,
    issuer: String,
    clients: Clients,
}

impl Provider {
    pub fn new(db: DatabaseConnection, login: Login, auth: Auth) -> Self {
        let issuer = login.settings().issuer.clone();
        Self {
            clients: Clients::new(db.clone()),
            db,
            login,
            auth,
            issuer,
        }
    }

    /// The registered clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The algorithm ID tokens are signed with.
    pub fn id_token_algorithm(&self) -> &'static str {
        self.login.jwt().id_token_algorithm().unwrap_or("RS256")
    }

    // ---- consents ------------------------------------------------------------------------

    pub async fn consents(&self, user_id: Uuid) -> Result<Vec<ConsentView>, ServiceError> {
        Ok(store::clients::consents_of(&self.db, user_id)
            .await?
            .into_iter()
            .map(|(c, client)| ConsentView {
                client_id: client.client_id,
                client_name: client.name,
                scope: c.scope,
                granted_at: c.granted_at,
            })
            .collect())
    }

    /// Forget `who`'s consent to `client_id` and end the sessions issued to it for them.
    pub async fn revoke_consent(
        &self,
        who: &Principal,
        client_id: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let row = store::clients::find(&self.db, client_id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let n = store::clients::revoke_consent(&txn, who.user_id, row.id).await?;
        if n == 0 {
            return Err(ServiceError::NotFound);
        }
        store::sessions::revoke_for_client(&txn, who.user_id, row.id, "consent_revoked").await?;
        store::audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "oidc_consent_revoked",
                user_id: Some(who.user_id),
                actor_id: Some(who.user_id),
                detail: serde_json::json!({"client_id": row.client_id}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.login
            .principals()
            .evict(Eviction::UserSessions(who.user_id))
            .await;
        Ok(())
    }

    // ---- authorization -------------------------------------------------------------------

    /// Check an authorization request. Until the client and its exact redirect URI are known
    /// the error is for a page; after that it goes back to the client.
    pub async fn check(&self, req: &AuthorizeRequest) -> Result<Checked, AuthorizeError> {
        let page = |m: &str| AuthorizeError::Page(m.to_string());
        let client_id = req
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| page("The request names no client (client_id)."))?;
        let client = store::clients::find(&self.db, client_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| page("The application that sent you here is not registered."))?;
        let redirect_uri = req
            .redirect_uri
            .as_deref()
            .filter(|r| uris(&client.redirect_uris).iter().any(|u| u == r))
            .ok_or_else(|| {
                page("The application sent you here with a return address it has not registered.")
            })?
            .to_string();
        let mut checked = Checked {
            client,
            redirect_uri,
            scopes: Vec::new(),
            state: req.state.clone(),
            nonce: req.nonce.clone().filter(|n| !n.is_empty()),
            code_challenge: req.code_challenge.clone().filter(|c| !c.is_empty()),
            prompt_none: false,
            prompt_login: false,
            prompt_consent: false,
            max_age: None,
        };
        let fail = |c: &Checked, error: &str, description: &str| {
            Err(c.error(&self.issuer, error, description))
        };
        if req.response_type.as_deref() != Some("code") {
            return fail(
                &checked,
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is supported",
            );
        }
        if req.response_mode.as_deref().is_some_and(|m| m != "query") {
            return fail(
                &checked,
                "invalid_request",
                "only response_mode=query is supported",
            );
        }
        match rules::granted_scopes(req.scope.as_deref().unwrap_or(""), &checked.client.scopes) {
            Some(scopes) => checked.scopes = scopes,
            None => return fail(&checked, "invalid_scope", "the scope must include openid"),
        }
        match (
            &checked.code_challenge,
            req.code_challenge_method.as_deref(),
        ) {
            (None, _) if checked.client.public => {
                return fail(
                    &checked,
                    "invalid_request",
                    "public clients must use PKCE (code_challenge with code_challenge_method=S256)",
                );
            }
            (Some(c), Some("S256")) if rules::is_s256_challenge(c) => {}
            (Some(_), _) => {
                return fail(
                    &checked,
                    "invalid_request",
                    "code_challenge_method must be S256 with a 43-character challenge",
                );
            }
            (None, _) => {}
        }
        for p in req.prompt.as_deref().unwrap_or("").split_whitespace() {
            match p {
                "none" => checked.prompt_none = true,
                "login" => checked.prompt_login = true,
                "consent" => checked.prompt_consent = true,
                "select_account" => {}
                _ => return fail(&checked, "invalid_request", "unknown prompt value"),
            }
        }
        if checked.prompt_none && (checked.prompt_login || checked.prompt_consent) {
            return fail(
                &checked,
                "invalid_request",
                "prompt=none cannot be combined",
            );
        }
        if let Some(raw) = req.max_age.as_deref().filter(|m| !m.is_empty()) {
            match raw.parse::<i64>() {
                Ok(n) if n >= 0 => checked.max_age = Some(n),
                _ => {
                    return fail(
                        &checked,
                        "invalid_request",
                        "max_age must be a number of seconds",
                    );
                }
            }
        }
        Ok(checked)
    }

    /// When `who` (signed in on the hosted pages, if at all) authenticated.
    async fn auth_time(&self, who: &Principal) -> Result<DateTime<Utc>, ServiceError> {
        Ok(self
            .login
            .signed_in_at(who)
            .await?
            .unwrap_or_else(store::now))
    }

    /// What a checked request needs next. `fresh` is true when the browser has just signed in
    /// for this request (so `prompt=login` is satisfied).
    pub async fn decide(
        &self,
        checked: &Checked,
        who: Option<&Principal>,
        fresh: bool,
    ) -> Result<Next, AuthorizeError> {
        let Some(who) = who else {
            if checked.prompt_none {
                return Err(checked.error(&self.issuer, "login_required", "not signed in"));
            }
            return Ok(Next::SignIn { fresh: false });
        };
        let auth_time = self.auth_time(who).await?;
        if rules::must_sign_in_again(
            checked.prompt_login && !fresh,
            checked.max_age,
            auth_time,
            store::now(),
        ) {
            if checked.prompt_none {
                return Err(checked.error(
                    &self.issuer,
                    "login_required",
                    "a fresh sign-in is needed",
                ));
            }
            return Ok(Next::SignIn { fresh: true });
        }
        if !checked.client.first_party {
            let consent = store::clients::consent(&self.db, who.user_id, checked.client.id)
                .await
                .map_err(ServiceError::from)?;
            let covered = consent.is_some_and(|c| rules::consent_covers(&c.scope, &checked.scopes));
            if !covered || checked.prompt_consent {
                if checked.prompt_none {
                    return Err(checked.error(
                        &self.issuer,
                        "consent_required",
                        "the user has not consented",
                    ));
                }
                return Ok(Next::Consent);
            }
        }
        Ok(Next::Redirect(
            self.issue_code(checked, who, auth_time).await?,
        ))
    }

    /// The person's answer on the consent page: remembered and on with a code, or the client
    /// hears `access_denied`.
    pub async fn consent(
        &self,
        checked: &Checked,
        who: &Principal,
        allow: bool,
        client: &ClientInfo,
    ) -> Result<String, AuthorizeError> {
        if !allow {
            return Err(checked.error(&self.issuer, "access_denied", "the user declined"));
        }
        let scope = checked.scopes.join(" ");
        store::clients::save_consent(&self.db, who.user_id, checked.client.id, &scope)
            .await
            .map_err(ServiceError::from)?;
        let entry = AuditEntry {
            event: "oidc_consent_granted",
            user_id: Some(who.user_id),
            actor_id: Some(who.user_id),
            detail: serde_json::json!({"client_id": checked.client.client_id, "scope": scope}),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        let auth_time = self.auth_time(who).await?;
        Ok(self.issue_code(checked, who, auth_time).await?)
    }

    /// A single-use code for `checked`, in the client's redirect URI.
    async fn issue_code(
        &self,
        checked: &Checked,
        who: &Principal,
        auth_time: DateTime<Utc>,
    ) -> Result<String, ServiceError> {
        let code = tokens::random_token(32);
        store::clients::insert_code(
            &self.db,
            store::clients::NewCode {
                code_hash: tokens::sha256_hex(&code),
                client: checked.client.id,
                user_id: who.user_id,
                redirect_uri: checked.redirect_uri.clone(),
                scope: checked.scopes.join(" "),
                nonce: checked.nonce.clone(),
                code_challenge: checked.code_challenge.clone(),
                aal: who.aal.clone(),
                auth_time,
                expires_at: store::now() + CODE_TTL,
            },
        )
        .await?;
        Ok(respond(
            &checked.redirect_uri,
            &self.issuer,
            checked.state.as_deref(),
            &[("code", &code)],
        ))
    }

    // ---- token endpoint ------------------------------------------------------------------

    /// The client the credentials authenticate.
    async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<oidc_clients::Model, ProtocolError> {
        let row = store::clients::find(&self.db, &creds.client_id)
            .await?
            .ok_or_else(ProtocolError::client)?;
        let ok = match (&row.secret_hash, &creds.secret) {
            (Some(hash), Some(secret)) => {
                tokens::constant_time_eq(&tokens::sha256_hex(secret), hash)
            }
            // A public client sends no secret (PKCE stands in for it).
            (None, None) => row.public,
            _ => false,
        };
        if ok {
            Ok(row)
        } else {
            Err(ProtocolError::client())
        }
    }

    /// Answer a token request.
    pub async fn token(
        &self,
        creds: ClientCredentials,
        req: TokenRequest,
        client: &ClientInfo,
    ) -> Result<TokenResponse, ProtocolError> {
        let row = self.authenticate_client(&creds).await?;
        match req.grant_type.as_deref() {
            Some("authorization_code") => self.code_grant(&row, req, client).await,
            Some("refresh_token") => self.refresh_grant(&row, req, client).await,
            Some(_) => Err(ProtocolError::new(
                400,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )),
            None => Err(ProtocolError::request("grant_type is missing")),
        }
    }

    async fn code_grant(
        &self,
        row: &oidc_clients::Model,
        req: TokenRequest,
        client: &ClientInfo,
    ) -> Result<TokenResponse, ProtocolError> {
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| ProtocolError::request("code is missing"))?;
        let hash = tokens::sha256_hex(code);
        let bad = || ProtocolError::grant("the code is invalid, expired or already used");
        let now = store::now();
        // Write first (SQLite cannot upgrade a read lock while another writer commits).
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::clients::spend_code(&txn, &hash, row.id, now).await? {
            drop(txn);
            // Unknown, expired, another client's, or spent already: a replay revokes what the
            // code issued (RFC 6749 § 4.1.2).
            let spent = store::clients::find_code(&self.db, &hash)
                .await?
                .filter(|c| c.client_id == row.id && c.used_at.is_some());
            if let Some(code) = spent
                && let Some(session) = code.session_id
            {
                self.revoke_replayed(code.user_id, session, &row.client_id, client)
                    .await?;
            }
            return Err(bad());
        }
        let found = store::clients::find_code(&txn, &hash)
            .await?
            .ok_or_else(bad)?;
        if req.redirect_uri.as_deref() != Some(found.redirect_uri.as_str()) {
            txn.commit().await.map_err(StoreError::from)?;
            return Err(ProtocolError::grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        let pkce_ok = match (&found.code_challenge, req.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) => rules::pkce_s256_matches(verifier, challenge),
            (None, None) => !row.public,
            _ => false,
        };
        if !pkce_ok {
            txn.commit().await.map_err(StoreError::from)?;
            return Err(ProtocolError::grant(
                "the PKCE code_verifier does not match",
            ));
        }
        let Some((user, roles)) = store::users::find_with_roles(&txn, found.user_id)
            .await?
            .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
        else {
            txn.commit().await.map_err(StoreError::from)?;
            return Err(ProtocolError::grant("the account may not sign in"));
        };
        let session = self
            .login
            .open_client_session(
                &txn,
                user.id,
                &found.aal,
                client,
                (row.id, found.scope.clone(), found.auth_time),
            )
            .await?;
        store::clients::code_issued(&txn, found.id, session.id).await?;
        store::audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "oidc_tokens_issued",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                detail: serde_json::json!({"client_id": row.client_id, "session_id": session.id, "grant": "authorization_code", "scope": found.scope}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.respond_tokens(row, &session, 0, &user, roles, found.nonce)
    }

    /// A replayed code: end the session it issued.
    async fn revoke_replayed(
        &self,
        user_id: Uuid,
        session: Uuid,
        client_id: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let which = Revocation {
            only: Some(session),
            ..Revocation::all(user_id, "authorization_code_replayed")
        };
        revoke_sessions(&self.db, which, |_| {
            Some(client.stamp(AuditEntry {
                event: "oidc_code_replayed",
                user_id: Some(user_id),
                detail: serde_json::json!({"client_id": client_id, "session_id": session}),
                ..Default::default()
            }))
        })
        .await?;
        self.login
            .principals()
            .evict(Eviction::Session(session))
            .await;
        tracing::warn!(session_id = %session, "authorization code replayed: session revoked");
        Ok(())
    }

    async fn refresh_grant(
        &self,
        row: &oidc_clients::Model,
        req: TokenRequest,
        client: &ClientInfo,
    ) -> Result<TokenResponse, ProtocolError> {
        let token = req
            .refresh_token
            .as_deref()
            .ok_or_else(|| ProtocolError::request("refresh_token is missing"))?;
        let (session, generation) = self
            .auth
            .rotate(token, client, Some(row.id))
            .await
            .map_err(|e| match e {
                ServiceError::Unauthorized { detail, .. } => ProtocolError::grant(&detail),
                other => other.into(),
            })?;
        let (user, roles) = store::users::find_with_roles(&self.db, session.user_id)
            .await?
            .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
            .ok_or_else(|| ProtocolError::grant("the account may not sign in"))?;
        let entry = AuditEntry {
            event: "oidc_tokens_issued",
            user_id: Some(user.id),
            actor_id: Some(user.id),
            detail: serde_json::json!({"client_id": row.client_id, "session_id": session.id, "grant": "refresh_token"}),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        self.respond_tokens(row, &session, generation, &user, roles, None)
    }

    /// The claims a scope releases about `user`.
    fn profile(
        user: &user_rows::Model,
        roles: &[String],
        scope: &str,
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        let has = |s: &str| scope.split_whitespace().any(|x| x == s);
        if has("email") {
            out.insert("email".into(), user.email.clone().into());
            out.insert("email_verified".into(), user.email_verified.into());
        }
        if has("profile") {
            if let Some(name) = &user.name {
                out.insert("name".into(), name.clone().into());
            }
            out.insert("updated_at".into(), user.updated_at.timestamp().into());
        }
        if has("roles") {
            out.insert("roles".into(), serde_json::json!(roles));
        }
        out
    }

    fn respond_tokens(
        &self,
        row: &oidc_clients::Model,
        session: &session_rows::Model,
        generation: u64,
        user: &user_rows::Model,
        roles: Vec<String>,
        nonce: Option<String>,
    ) -> Result<TokenResponse, ProtocolError> {
        let settings = self.login.settings();
        let now = store::now();
        let scope = session.oidc_scope.clone().unwrap_or_default();
        let access = Claims {
            iss: self.issuer.clone(),
            aud: row.client_id.clone(),
            sub: user.id,
            sid: session.id,
            roles: roles.clone(),
            aal: session.aal.clone(),
            iat: now.timestamp(),
            exp: (now + settings.access_ttl).timestamp(),
            jti: Uuid::now_v7(),
        };
        let access_token = self
            .login
            .jwt()
            .sign(&access)
            .map_err(|e| ServiceError::Internal(format!("signing failed: {e}")))?;
        let id = IdClaims {
            iss: self.issuer.clone(),
            sub: user.id,
            aud: row.client_id.clone(),
            azp: row.client_id.clone(),
            exp: (now + settings.access_ttl).timestamp(),
            iat: now.timestamp(),
            auth_time: session.auth_time.unwrap_or(session.created_at).timestamp(),
            nonce,
            acr: session.aal.clone(),
            amr: rules::amr(&session.aal),
            sid: session.id,
            profile: Self::profile(user, &roles, &scope),
        };
        let id_token = self
            .login
            .jwt()
            .sign_id_token(&id)
            .ok_or_else(|| ServiceError::Internal("no key signs ID tokens".into()))?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: settings.access_ttl.num_seconds() as u64,
            refresh_token: self.login.refresh_token(session, generation),
            id_token,
            scope,
        })
    }

    // ---- userinfo and logout -------------------------------------------------------------

    /// The claims about the person behind a client's access token, as its scope allows.
    pub async fn userinfo(&self, access_token: &str) -> Result<serde_json::Value, ProtocolError> {
        let claims = self
            .login
            .jwt()
            .verify_client_token(access_token)
            .ok_or_else(ProtocolError::token)?;
        let session = store::sessions::find(&self.db, claims.sid)
            .await?
            .filter(|s| {
                s.user_id == claims.sub && s.revoked_at.is_none() && s.expires_at > store::now()
            })
            .ok_or_else(ProtocolError::token)?;
        // The token's audience must be the client the session was issued to.
        match session.oidc_client_id {
            Some(id) => store::clients::find_by_id(&self.db, id).await?,
            None => None,
        }
        .filter(|c| c.client_id == claims.aud)
        .ok_or_else(ProtocolError::token)?;
        let (user, roles) = store::users::find_with_roles(&self.db, claims.sub)
            .await?
            .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
            .ok_or_else(ProtocolError::token)?;
        let mut out = Self::profile(&user, &roles, session.oidc_scope.as_deref().unwrap_or(""));
        out.insert("sub".into(), user.id.to_string().into());
        Ok(serde_json::Value::Object(out))
    }

    /// RP-initiated logout: end the browser's page session (`who`) and the client session the
    /// `id_token_hint` names; where to send the browser, when the client registered it.
    pub async fn logout(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
        who: Option<&Principal>,
        client: &ClientInfo,
    ) -> Result<Option<String>, ServiceError> {
        let hint = id_token_hint.and_then(|t| self.login.jwt().verify_id_token_hint(t));
        let hinted_client = hint
            .as_ref()
            .and_then(|h| h.get("aud"))
            .and_then(|a| a.as_str().map(str::to_string));
        let client_id = hinted_client.or_else(|| client_id.map(str::to_string));
        if let Some(who) = who {
            self.auth.logout(who, client).await?;
        }
        if let Some(h) = &hint {
            let sid = h
                .get("sid")
                .and_then(|s| s.as_str())
                .and_then(|s| Uuid::try_parse(s).ok());
            let sub = h
                .get("sub")
                .and_then(|s| s.as_str())
                .and_then(|s| Uuid::try_parse(s).ok());
            if let (Some(sid), Some(sub)) = (sid, sub) {
                let which = Revocation {
                    only: Some(sid),
                    ..Revocation::all(sub, "logout")
                };
                revoke_sessions(&self.db, which, |n| {
                    (n > 0).then(|| {
                        client.stamp(AuditEntry {
                            event: "logout",
                            user_id: Some(sub),
                            actor_id: Some(sub),
                            detail: serde_json::json!({"sessions": n, "session_id": sid, "client_id": client_id}),
                            ..Default::default()
                        })
                    })
                })
                .await?;
                self.login.principals().evict(Eviction::Session(sid)).await;
            }
        }
        let (Some(client_id), Some(target)) = (client_id, post_logout_redirect_uri) else {
            return Ok(None);
        };
        let Some(row) = store::clients::find(&self.db, &client_id).await? else {
            return Ok(None);
        };
        if !uris(&row.post_logout_redirect_uris)
            .iter()
            .any(|u| u == target)
        {
            return Ok(None);
        }
        let mut url = Url::parse(target).map_err(|_| ServiceError::NotFound)?;
        if let Some(state) = state {
            url.query_pairs_mut().append_pair("state", state);
        }
        Ok(Some(url.to_string()))
    }
}
