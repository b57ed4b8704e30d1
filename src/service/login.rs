//! Signing in, shared by every way of proving who you are (a password, a second factor): attempt reservation and lockout, a login's success, opening a session and minting its token pair, and the `Principal` a token stands for.

use std::sync::Arc;

use chrono::Duration;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::audit::audit_after;
use super::error::ServiceError;
use super::principals::Principals;
use super::views::{SharedUser, TokenPair, UserView};
use crate::bus::Eviction;
use crate::config::Config;
use crate::crypto::jwt::{AUDIENCE, Claims, JwtKeys};
use crate::crypto::tokens::{self, DeviceKey, RefreshSecret};
use crate::domain::accounts::{AccountState, Refusal};
use crate::domain::client::ClientInfo;
use crate::domain::permissions::Permission;
use crate::domain::roles::Role;
use crate::domain::sessions::retry_after_seconds;
use crate::store;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;
use crate::store::entities::{sessions as session_rows, users as user_rows};

/// How long the `mfa_token` between the first and the second factor lives.
const MFA_TOKEN_TTL: Duration = Duration::minutes(5);

/// `{"mfa_required": true, "mfa_token": "...", "methods": [...]}`: the first factor was right, now a second.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    /// Single-use, valid 5 minutes; send it to `POST /auth/mfa/verify`.
    pub mfa_token: String,
    pub methods: Vec<&'static str>,
}

/// What a sign-in answers: a token pair, or the MFA step.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(Box<TokenPair>),
    MfaRequired(MfaChallenge),
}

/// The caller behind a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub aal: String,
    /// The user, with its roles (highest first), as read when this call was authenticated.
    pub user: SharedUser,
}

impl Principal {
    /// The caller's highest built-in role.
    pub fn highest_role(&self) -> Option<Role> {
        Role::highest(self.user.roles.iter().map(String::as_str))
    }

    /// Whether any of the caller's current roles carries `permission`.
    pub fn allows(&self, permission: Permission) -> bool {
        self.user
            .roles
            .iter()
            .filter_map(|r| Role::parse(r))
            .any(|r| r.allows(permission))
    }
}

/// A new single-use secret of `user_id` for `purpose`, valid for `ttl`: the secret to hand
/// out (the database keeps its SHA-256).
pub(crate) async fn issue_secret(
    db: &DatabaseConnection,
    user_id: Uuid,
    purpose: store::one_time_tokens::Purpose,
    ttl: Duration,
) -> Result<String, ServiceError> {
    let secret = tokens::random_token(32);
    store::one_time_tokens::issue(
        db,
        user_id,
        purpose,
        tokens::sha256_hex(&secret),
        store::now() + ttl,
    )
    .await?;
    Ok(secret)
}

/// What `domain::accounts::may_log_in` needs to know of a user row.
pub(crate) fn account_state(user: &user_rows::Model) -> AccountState {
    AccountState {
        active: user.active,
        deleted: user.deleted_at.is_some(),
        email_verified: user.email_verified,
    }
}

impl From<Refusal> for ServiceError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Deleted => ServiceError::Unauthorized {
                code: "invalid_credentials",
                detail: "the email or password is wrong".into(),
            },
            Refusal::Disabled => ServiceError::Forbidden {
                code: "account_disabled",
                detail: "this account is disabled".into(),
            },
            Refusal::EmailNotVerified => ServiceError::Forbidden {
                code: "email_not_verified",
                detail: "verify your email address before logging in".into(),
            },
        }
    }
}

/// Settings of the flows, from configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub issuer: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub reuse_grace: Duration,
    pub max_attempts: u32,
    pub lockout: Duration,
    pub auto_login_on_register: bool,
    pub require_email_verification: bool,
    pub register_conceal_existing: bool,
}

impl AuthSettings {
    pub fn new(config: &Config, issuer: &str) -> Self {
        let seconds = |d: std::time::Duration| Duration::seconds(d.as_secs() as i64);
        Self {
            issuer: issuer.to_string(),
            access_ttl: seconds(config.jwt.access_token_ttl),
            refresh_ttl: seconds(config.jwt.refresh_token_ttl),
            reuse_grace: seconds(config.auth.refresh_reuse_grace),
            max_attempts: config.auth.max_login_attempts,
            lockout: seconds(config.auth.lockout),
            auto_login_on_register: config.auth.auto_login_on_register,
            require_email_verification: config.auth.require_email_verification,
            register_conceal_existing: config.auth.register_conceal_existing,
        }
    }
}

/// Whose lockout counter an attempt is reserved on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The account's own counter: attempts from clients it has never seen.
    Account(Uuid),
    /// An email with no account: counted and locked exactly as an account would be, so the
    /// answers tell nothing about which emails exist.
    NoAccount(String),
    /// A client holding a device token of the account: a small budget of its own, open while
    /// the account is locked for everyone else.
    Device(String),
}

/// Where a gate's counter is stored.
enum Counter {
    /// The account row.
    Account(Uuid),
    /// A `login_throttles` row, keyed by a hash.
    Throttle(String),
}

impl Gate {
    fn counter(&self) -> Counter {
        match self {
            Gate::Account(id) => Counter::Account(*id),
            Gate::NoAccount(email) => {
                Counter::Throttle(tokens::sha256_hex(&format!("email:{email}")))
            }
            Gate::Device(id) => Counter::Throttle(tokens::sha256_hex(&format!("device:{id}"))),
        }
    }
}

/// The sign-in mechanics every flow that authenticates a person shares. Cheap to clone.
#[derive(Clone)]
pub struct Login {
    db: DatabaseConnection,
    jwt: Arc<JwtKeys>,
    refresh: RefreshSecret,
    devices: DeviceKey,
    settings: AuthSettings,
    principals: Principals,
}

impl Login {
    pub fn new(
        db: DatabaseConnection,
        jwt: Arc<JwtKeys>,
        key_materials: &[&[u8]],
        settings: AuthSettings,
        principals: Principals,
    ) -> Self {
        Self {
            db,
            jwt,
            refresh: RefreshSecret::new(key_materials),
            devices: DeviceKey::new(key_materials),
            settings,
            principals,
        }
    }

    /// The cache of authenticated principals, evicted by every flow that changes one.
    pub fn principals(&self) -> &Principals {
        &self.principals
    }

    /// The device id behind a device token presented for the account keyed `account`.
    pub fn device(&self, token: Option<&str>, account: &str) -> Option<String> {
        self.devices.verify(token?, account)
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    pub(crate) fn refresh_secret(&self) -> &RefreshSecret {
        &self.refresh
    }

    /// Reserve a login attempt on `gate` (docs/api.md, lockout under parallel logins). When
    /// every slot is held by checks still in flight (parallel logins, not a lock), wait for them
    /// briefly instead of answering 423.
    pub async fn reserve_attempt(&self, gate: &Gate) -> Result<(), ServiceError> {
        const WAIT: std::time::Duration = std::time::Duration::from_millis(20);
        let max = self.settings.max_attempts;
        let counter = gate.counter();
        for _ in 0..100 {
            let now = store::now();
            let reserved = match &counter {
                Counter::Account(id) => {
                    store::users::reserve_login_attempt(&self.db, *id, max, now).await?
                }
                Counter::Throttle(key) => {
                    store::throttles::reserve(&self.db, key, max, now).await?
                }
            };
            if reserved {
                return Ok(());
            }
            let until = match &counter {
                Counter::Account(id) => store::users::find(&self.db, *id)
                    .await?
                    .and_then(|u| u.locked_until),
                Counter::Throttle(key) => store::throttles::locked_until(&self.db, key).await?,
            }
            .filter(|until| *until > now);
            if until.is_some() {
                return Err(ServiceError::Locked {
                    retry_after: retry_after_seconds(until, now, self.settings.lockout),
                });
            }
            tokio::time::sleep(WAIT).await;
        }
        Err(ServiceError::Busy)
    }

    /// Give a reserved attempt back: the check ended without a verdict on the credentials.
    pub async fn release_attempt(&self, gate: &Gate) -> Result<(), ServiceError> {
        match gate.counter() {
            Counter::Account(id) => store::users::release_login_attempt(&self.db, id).await?,
            Counter::Throttle(key) => store::throttles::release(&self.db, &key).await?,
        }
        Ok(())
    }

    /// A reserved attempt failed (wrong password or code): lock the gate if that was the last
    /// allowed attempt, and audit `event` with `reason` (and the lock) on `user_id`'s history.
    pub async fn attempt_failed(
        &self,
        gate: &Gate,
        user_id: Option<Uuid>,
        event: &'static str,
        reason: &'static str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let until = store::now() + self.settings.lockout;
        let max = self.settings.max_attempts;
        let locked = match gate.counter() {
            Counter::Account(id) => {
                store::users::lock_if_exhausted(&self.db, id, max, until).await?
            }
            Counter::Throttle(key) => {
                store::throttles::lock_if_exhausted(&self.db, &key, max, until).await?
            }
        };
        let entry = AuditEntry {
            event,
            user_id,
            detail: serde_json::json!({ "reason": reason }),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        if locked && user_id.is_some() {
            let device = matches!(gate, Gate::Device(_));
            let entry = AuditEntry {
                event: if device {
                    "device_locked"
                } else {
                    "account_locked"
                },
                user_id,
                detail: serde_json::json!({"until": until}),
                ..Default::default()
            };
            audit_after(&self.db, client.stamp(entry)).await;
        }
        Ok(())
    }

    /// A fully authenticated login through `gate`, in one transaction: clear that gate's
    /// failures (a device's success leaves the account's lock for everyone else in place),
    /// record the login, store an upgraded hash if given, open a session at `aal`, and audit
    /// it; then hand the client a fresh device token.
    pub async fn succeeded(
        &self,
        gate: &Gate,
        user: user_rows::Model,
        new_hash: Option<String>,
        aal: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let now = store::now();
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let user = match gate.counter() {
            Counter::Account(_) => {
                store::users::login_succeeded(&txn, user, now, new_hash, true).await?
            }
            Counter::Throttle(key) => {
                store::throttles::clear(&txn, &key).await?;
                store::users::login_succeeded(&txn, user, now, new_hash, false).await?
            }
        };
        let device = self.devices.issue(&user.email_lower);
        let mut pair = self.open_session(&txn, user, aal, client).await?;
        let entry = AuditEntry {
            event: "login_succeeded",
            user_id: Some(pair.user.id),
            actor_id: Some(pair.user.id),
            detail: serde_json::json!({"session_id": pair.session_id, "aal": aal}),
            ..Default::default()
        };
        store::audit::record(&txn, client.stamp(entry)).await?;
        txn.commit().await.map_err(StoreError::from)?;
        // `last_login_at` is part of the user's view.
        self.principals.evict(Eviction::User(pair.user.id)).await;
        pair.device_token = Some(device);
        Ok(pair)
    }

    /// When the session `who` uses signed in (a client's session: when its person did), if it
    /// still exists.
    pub async fn signed_in_at(
        &self,
        who: &Principal,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, ServiceError> {
        Ok(store::sessions::find(&self.db, who.session_id)
            .await?
            .map(|s| s.auth_time.unwrap_or(s.created_at)))
    }

    /// The second steps a sign-in of this account asks for: none unless it has turned MFA on
    /// (TOTP, with its recovery codes), and then its passkeys too. A passkey alone does not make
    /// the password insufficient: MFA comes with recovery codes, a passkey does not, and an
    /// account whose only second factor was a lost passkey would be locked out for good (a
    /// passkey sign-in is `aal2` by itself).
    pub async fn second_factors(
        &self,
        user: &user_rows::Model,
    ) -> Result<Vec<&'static str>, ServiceError> {
        if !user.mfa_enabled {
            return Ok(Vec::new());
        }
        let mut methods = vec!["totp", "recovery_code"];
        if store::passkeys::count(&self.db, user.id).await? > 0 {
            methods.push("webauthn");
        }
        Ok(methods)
    }

    /// Half a login for an account with second factors (`methods`): the single-use `mfa_token`
    /// that `POST /auth/mfa/verify` finishes.
    pub async fn mfa_challenge(
        &self,
        user_id: Uuid,
        methods: Vec<&'static str>,
    ) -> Result<MfaChallenge, ServiceError> {
        let mfa_token = issue_secret(
            &self.db,
            user_id,
            store::one_time_tokens::Purpose::MfaLogin,
            MFA_TOKEN_TTL,
        )
        .await?;
        Ok(MfaChallenge {
            mfa_required: true,
            mfa_token,
            methods,
        })
    }

    /// Open a session for an authenticated user and return its first token pair.
    pub async fn start_session(
        &self,
        user: user_rows::Model,
        aal: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        self.open_session(&self.db, user, aal, client).await
    }

    /// [`start_session`](Self::start_session), written through `db` (a transaction of the
    /// caller's).
    async fn open_session<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user: user_rows::Model,
        aal: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let session = store::sessions::create(
            db,
            store::sessions::NewSession {
                user_id: user.id,
                salt: tokens::random_token(32),
                ip_address: client.ip.map(|ip| ip.to_string()),
                user_agent: client.user_agent.clone(),
                aal: aal.to_string(),
                expires_at: store::now() + self.settings.refresh_ttl,
                oidc: None,
            },
        )
        .await?;
        let roles = store::users::roles_of(db, &[user.id])
            .await?
            .remove(&user.id)
            .unwrap_or_default();
        self.pair(&session, 0, UserView::new(user, roles))
    }

    /// A new session for an OpenID client (`oidc`: the client's row id, the granted scope and
    /// when its person authenticated), written through `db` (the code exchange's transaction).
    pub(crate) async fn open_client_session<C: sea_orm::ConnectionTrait>(
        &self,
        db: &C,
        user_id: Uuid,
        aal: &str,
        client: &ClientInfo,
        oidc: (Uuid, String, chrono::DateTime<chrono::Utc>),
    ) -> Result<session_rows::Model, ServiceError> {
        Ok(store::sessions::create(
            db,
            store::sessions::NewSession {
                user_id,
                salt: tokens::random_token(32),
                ip_address: client.ip.map(|ip| ip.to_string()),
                user_agent: client.user_agent.clone(),
                aal: aal.to_string(),
                expires_at: store::now() + self.settings.refresh_ttl,
                oidc: Some(oidc),
            },
        )
        .await?)
    }

    /// The refresh token of `session`'s `generation`.
    pub(crate) fn refresh_token(&self, session: &session_rows::Model, generation: u64) -> String {
        self.refresh.token(&session.salt, session.id, generation)
    }

    /// An access token for `session` and the refresh token of its `generation`.
    pub fn pair(
        &self,
        session: &session_rows::Model,
        generation: u64,
        user: UserView,
    ) -> Result<TokenPair, ServiceError> {
        let now = store::now();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: AUDIENCE.to_string(),
            sub: user.id,
            sid: session.id,
            roles: user.roles.clone(),
            aal: session.aal.clone(),
            iat: now.timestamp(),
            exp: (now + self.settings.access_ttl).timestamp(),
            jti: Uuid::now_v7(),
        };
        let access_token = self
            .jwt
            .sign(&claims)
            .map_err(|e| ServiceError::Internal(format!("signing failed: {e}")))?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_ttl.num_seconds() as u64,
            refresh_token: self.refresh.token(&session.salt, session.id, generation),
            session_id: session.id,
            user,
            device_token: None,
        })
    }
}
