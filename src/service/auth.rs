//! Authentication flows: register, login with race-proof lockout, access tokens checked against live sessions, refresh rotation with reuse detection, logout, sessions, password change.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Duration;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::mfa::MFA_LOGIN;
use super::verification::Verification;
use super::views::{SessionList, SessionView, TokenPair, UserView};
use super::{
    AccountSpec, ServiceError, audit_after, check_new_account, create_account, password_errors,
};
use crate::crypto::jwt::{AUDIENCE, Claims, JwtKeys};
use crate::crypto::password::PasswordHasher;
use crate::crypto::tokens::{self, RefreshSecret};
use crate::domain::email::Email;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::roles::Role;
use crate::domain::sessions::{
    RefreshMiss, SessionState, classify_refresh_miss, retry_after_seconds,
};
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{sessions as session_rows, users as user_rows};
use crate::store::{self, StoreError};

/// Where a request came from, as recorded on sessions and audit rows.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// `entry` with this client's IP address and user agent.
    pub fn stamp(&self, entry: AuditEntry) -> AuditEntry {
        AuditEntry {
            ip_address: self.ip.map(|ip| ip.to_string()),
            user_agent: self.user_agent.clone(),
            ..entry
        }
    }
}

/// The caller behind a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub aal: String,
    /// The user, with its roles (highest first), as read when this call was authenticated.
    pub user: UserView,
}

impl Principal {
    /// The caller's highest built-in role.
    pub fn highest_role(&self) -> Option<Role> {
        Role::highest(self.user.roles.iter().map(String::as_str))
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
}

/// What register returns: the user, and a token pair when auto-login is on.
#[derive(Debug, Clone)]
pub enum Registered {
    User(UserView),
    LoggedIn(TokenPair),
}

#[derive(Clone)]
pub struct Auth {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    jwt: Arc<JwtKeys>,
    refresh: RefreshSecret,
    settings: AuthSettings,
    verification: Verification,
}

/// How long the `mfa_token` between password and code lives.
const MFA_TOKEN_TTL: Duration = Duration::minutes(5);

/// `{"mfa_required": true, "mfa_token": "...", "methods": [...]}`: the password was right, now a second factor.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MfaChallenge {
    pub mfa_required: bool,
    /// Single-use, valid 5 minutes; send it to `POST /auth/mfa/verify`.
    pub mfa_token: String,
    pub methods: Vec<&'static str>,
}

/// What a password login answers.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum LoginOutcome {
    Tokens(TokenPair),
    MfaRequired(MfaChallenge),
}

fn invalid_credentials() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_credentials",
        detail: "the email or password is wrong".into(),
    }
}

fn invalid_token() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_token",
        detail: "the access token is invalid, expired or revoked".into(),
    }
}

fn invalid_refresh() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_refresh_token",
        detail: "the refresh token is invalid, expired or revoked".into(),
    }
}

impl Auth {
    pub fn new(
        db: DatabaseConnection,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        jwt: Arc<JwtKeys>,
        refresh: RefreshSecret,
        settings: AuthSettings,
        verification: Verification,
    ) -> Self {
        Self {
            db,
            hasher,
            policy,
            jwt,
            refresh,
            settings,
            verification,
        }
    }

    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    async fn audit(&self, entry: AuditEntry, client: &ClientInfo) {
        audit_after(&self.db, client.stamp(entry)).await;
    }

    async fn user_view(&self, user: user_rows::Model) -> Result<UserView, ServiceError> {
        let roles = store::users::roles_of(&self.db, &[user.id])
            .await?
            .remove(&user.id)
            .unwrap_or_default();
        Ok(UserView::new(user, roles))
    }

    /// Create an account with the `user` role.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Registered, ServiceError> {
        let (email, name) = check_new_account(&self.policy, email, password, name)?;
        let spec = AccountSpec {
            name,
            roles: vec![Role::User.name().to_string()],
            self_service: true,
            ..Default::default()
        };
        let audit = client.stamp(AuditEntry {
            event: "user_registered",
            ..Default::default()
        });
        let user = create_account(&self.db, &self.hasher, &email, password, spec, audit).await?;
        self.verification.send_verification(&user, client).await;
        if self.settings.auto_login_on_register && !self.settings.require_email_verification {
            return Ok(Registered::LoggedIn(
                self.start_session(user, "aal1", client).await?,
            ));
        }
        Ok(Registered::User(UserView::new(
            user,
            vec![Role::User.name().to_string()],
        )))
    }

    /// Check email and password; lock after too many failures, even under parallel attempts.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let outcome = self.check_password(email, password, client).await;
        let label = match &outcome {
            Ok(LoginOutcome::Tokens(_)) => "success",
            Ok(LoginOutcome::MfaRequired(_)) => "mfa_required",
            Err(ServiceError::Unauthorized { .. }) => "failure",
            Err(ServiceError::Locked { .. }) => "locked",
            Err(ServiceError::Forbidden { .. }) => "refused",
            Err(_) => "error",
        };
        metrics::counter!("gatehouse_logins_total", "outcome" => label).increment(1);
        outcome
    }

    async fn check_password(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let user = match Email::parse(email) {
            Ok(e) => store::users::find_by_email(&self.db, e.key())
                .await?
                .filter(|u| u.deleted_at.is_none()),
            Err(_) => None,
        };
        let Some(user) = user.filter(|u| u.password_hash.is_some()) else {
            // Same cost as a wrong password, so the answer tells nothing about the account.
            self.hasher.verify(password.to_string(), None).await?;
            self.audit(
                AuditEntry {
                    event: "login_failed",
                    detail: serde_json::json!({"reason": "unknown_email"}),
                    ..Default::default()
                },
                client,
            )
            .await;
            return Err(invalid_credentials());
        };
        self.reserve_attempt(user.id).await?;
        let verified = match self
            .hasher
            .verify(password.to_string(), user.password_hash.clone())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                store::users::release_login_attempt(&self.db, user.id).await?;
                return Err(e.into());
            }
        };
        if !verified.ok {
            self.attempt_failed(user.id, "login_failed", client).await?;
            return Err(invalid_credentials());
        }
        // The right password on an account that may not log in: not a failure, not a login.
        let refusal = if !user.active {
            Some(ServiceError::Forbidden {
                code: "account_disabled",
                detail: "this account is disabled".into(),
            })
        } else if self.settings.require_email_verification && !user.email_verified {
            Some(ServiceError::Forbidden {
                code: "email_not_verified",
                detail: "verify your email address before logging in".into(),
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            store::users::release_login_attempt(&self.db, user.id).await?;
            return Err(refusal);
        }
        let new_hash = if verified.needs_rehash {
            self.hasher.hash(password.to_string()).await.ok()
        } else {
            None
        };
        if user.mfa_enabled {
            // Half a login: the password's slot is given back (earlier failures still count) and
            // the code step reserves its own.
            store::users::release_login_attempt(&self.db, user.id).await?;
            if let Some(hash) = new_hash {
                store::users::set_password(&self.db, user.id, hash).await?;
            }
            let mfa_token = tokens::random_token(32);
            store::one_time_tokens::issue(
                &self.db,
                user.id,
                MFA_LOGIN,
                tokens::sha256_hex(&mfa_token),
                crate::store::now() + MFA_TOKEN_TTL,
            )
            .await?;
            return Ok(LoginOutcome::MfaRequired(MfaChallenge {
                mfa_required: true,
                mfa_token,
                methods: vec!["totp", "recovery_code"],
            }));
        }
        Ok(LoginOutcome::Tokens(
            self.logged_in(user, new_hash, "aal1", client).await?,
        ))
    }

    /// A fully authenticated login: clear failures and lock, record it, store an upgraded hash
    /// if given, and open a session at `aal`.
    pub(crate) async fn logged_in(
        &self,
        user: user_rows::Model,
        new_hash: Option<String>,
        aal: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let now = crate::store::now();
        store::users::login_succeeded(&self.db, user.id, now, new_hash).await?;
        let user = user_rows::Model {
            failed_logins: 0,
            locked_until: None,
            last_login_at: Some(now),
            ..user
        };
        let pair = self.start_session(user, aal, client).await?;
        self.audit(
            AuditEntry {
                event: "login_succeeded",
                user_id: Some(pair.user.id),
                actor_id: Some(pair.user.id),
                detail: serde_json::json!({"session_id": pair.session_id, "aal": aal}),
                ..Default::default()
            },
            client,
        )
        .await;
        Ok(pair)
    }

    /// A reserved attempt failed (wrong password or code): lock the account if that was the
    /// last allowed one, and audit `event` (and the lock).
    pub(crate) async fn attempt_failed(
        &self,
        user_id: Uuid,
        event: &'static str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let until = crate::store::now() + self.settings.lockout;
        let locked =
            store::users::lock_if_exhausted(&self.db, user_id, self.settings.max_attempts, until)
                .await?;
        self.audit(
            AuditEntry {
                event,
                user_id: Some(user_id),
                detail: serde_json::json!({"reason": if event == "login_failed" { "wrong_password" } else { "wrong_code" }}),
                ..Default::default()
            },
            client,
        )
        .await;
        if locked {
            self.audit(
                AuditEntry {
                    event: "account_locked",
                    user_id: Some(user_id),
                    detail: serde_json::json!({"until": until}),
                    ..Default::default()
                },
                client,
            )
            .await;
        }
        Ok(())
    }

    /// Reserve a login attempt (see DESIGN.md, lockout). When every slot is held by checks still
    /// in flight (parallel logins, not a lock), wait for them briefly instead of answering 423.
    pub(crate) async fn reserve_attempt(&self, user_id: Uuid) -> Result<(), ServiceError> {
        const WAIT: std::time::Duration = std::time::Duration::from_millis(20);
        let max = self.settings.max_attempts;
        for _ in 0..100 {
            let now = crate::store::now();
            if store::users::reserve_login_attempt(&self.db, user_id, max, now).await? {
                return Ok(());
            }
            let until = store::users::find(&self.db, user_id)
                .await?
                .and_then(|u| u.locked_until)
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

    /// Open a session for an authenticated user and return its first token pair.
    pub async fn start_session(
        &self,
        user: user_rows::Model,
        aal: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let session = store::sessions::create(
            &self.db,
            store::sessions::NewSession {
                user_id: user.id,
                salt: tokens::random_token(32),
                ip_address: client.ip.map(|ip| ip.to_string()),
                user_agent: client.user_agent.clone(),
                aal: aal.to_string(),
                expires_at: crate::store::now() + self.settings.refresh_ttl,
            },
        )
        .await?;
        let view = self.user_view(user).await?;
        self.pair(&session, 0, view)
    }

    fn pair(
        &self,
        session: &session_rows::Model,
        generation: u64,
        user: UserView,
    ) -> Result<TokenPair, ServiceError> {
        let now = crate::store::now();
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
        })
    }

    /// The caller behind an access token, if its session is still live. The user and its roles
    /// are read now (beside the session, in parallel), so a role change takes effect on the next
    /// call whatever the token's `roles` claim says.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, ServiceError> {
        let (claims, session, user) = self.live_access(access_token).await?;
        let now = crate::store::now();
        if now.signed_duration_since(session.last_used_at) > Duration::seconds(60) {
            store::sessions::touch(&self.db, session.id, now).await?;
        }
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            aal: claims.aal,
            user,
        })
    }

    /// A valid access token's claims, its live session and its (live, active) user as it is now.
    pub async fn live_access(
        &self,
        access_token: &str,
    ) -> Result<(Claims, session_rows::Model, UserView), ServiceError> {
        let claims = self.jwt.verify(access_token).ok_or_else(invalid_token)?;
        let (session, user) = tokio::join!(
            store::sessions::find(&self.db, claims.sid),
            store::users::find_with_roles(&self.db, claims.sub)
        );
        let session = session?.ok_or_else(invalid_token)?;
        if session.user_id != claims.sub
            || session.revoked_at.is_some()
            || session.expires_at <= crate::store::now()
        {
            return Err(invalid_token());
        }
        let (user, roles) = user?
            .filter(|(u, _)| u.deleted_at.is_none() && u.active)
            .ok_or_else(invalid_token)?;
        Ok((claims, session, UserView::new(user, roles)))
    }

    /// A refresh token's live session, when the token is the session's current one.
    pub async fn live_refresh(
        &self,
        refresh_token: &str,
    ) -> Result<Option<session_rows::Model>, ServiceError> {
        let Some(presented) = tokens::parse_refresh(refresh_token) else {
            return Ok(None);
        };
        let Some(session) = store::sessions::find(&self.db, presented.session).await? else {
            return Ok(None);
        };
        let live = self.refresh.verify(&session.salt, &presented)
            && session.revoked_at.is_none()
            && session.expires_at > crate::store::now()
            && u64::try_from(session.refresh_generation).ok() == Some(presented.generation);
        Ok(live.then_some(session))
    }

    /// Spend a refresh token for the next pair (see DESIGN.md, refresh rotation).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let presented = tokens::parse_refresh(refresh_token).ok_or_else(invalid_refresh)?;
        let session = store::sessions::find(&self.db, presented.session)
            .await?
            .ok_or_else(invalid_refresh)?;
        if !self.refresh.verify(&session.salt, &presented) {
            return Err(invalid_refresh());
        }
        let generation = i64::try_from(presented.generation).map_err(|_| invalid_refresh())?;
        let now = crate::store::now();
        let won = store::sessions::rotate(
            &self.db,
            session.id,
            generation,
            now,
            now + self.settings.refresh_ttl,
        )
        .await?;
        let session = store::sessions::find(&self.db, session.id)
            .await?
            .ok_or_else(invalid_refresh)?;
        if !won {
            let state = SessionState {
                generation: session.refresh_generation as u64,
                refreshed_at: session.refreshed_at,
                revoked: session.revoked_at.is_some(),
                expires_at: session.expires_at,
            };
            match classify_refresh_miss(presented.generation, state, now, self.settings.reuse_grace)
            {
                RefreshMiss::Dead => return Err(invalid_refresh()),
                RefreshMiss::Grace => {}
                RefreshMiss::Replay => {
                    self.revoke_for_reuse(&session, presented.generation, client)
                        .await?;
                    return Err(ServiceError::Unauthorized {
                        code: "refresh_token_reused",
                        detail: "this refresh token was already used; the session has been revoked"
                            .into(),
                    });
                }
            }
        }
        let (user, roles) = store::users::find_with_roles(&self.db, session.user_id)
            .await?
            .filter(|(u, _)| u.deleted_at.is_none() && u.active)
            .ok_or_else(invalid_refresh)?;
        self.pair(
            &session,
            presented.generation + 1,
            UserView::new(user, roles),
        )
    }

    async fn revoke_for_reuse(
        &self,
        session: &session_rows::Model,
        generation: u64,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        store::sessions::revoke(
            &txn,
            session.user_id,
            Some(session.id),
            None,
            "refresh_token_reused",
        )
        .await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "refresh_token_reused",
                user_id: Some(session.user_id),
                detail: serde_json::json!({
                    "session_id": session.id,
                    "presented_generation": generation,
                    "current_generation": session.refresh_generation,
                }),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        metrics::counter!("gatehouse_refresh_reuse_total").increment(1);
        tracing::warn!(session_id = %session.id, "refresh token reuse: session revoked");
        Ok(())
    }

    async fn revoke_and_audit(
        &self,
        who: &Principal,
        only: Option<Uuid>,
        except: Option<Uuid>,
        reason: &'static str,
        client: &ClientInfo,
    ) -> Result<u64, ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let n = store::sessions::revoke(&txn, who.user_id, only, except, reason).await?;
        if n > 0 {
            audit::record(
                &txn,
                client.stamp(AuditEntry {
                    event: reason,
                    user_id: Some(who.user_id),
                    actor_id: Some(who.user_id),
                    detail: serde_json::json!({"sessions": n, "session_id": only.or(Some(who.session_id))}),
                    ..Default::default()
                }),
            )
            .await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(n)
    }

    /// Revoke the caller's current session.
    pub async fn logout(&self, who: &Principal, client: &ClientInfo) -> Result<(), ServiceError> {
        self.revoke_and_audit(who, Some(who.session_id), None, "logout", client)
            .await?;
        Ok(())
    }

    /// Revoke every session of the caller.
    pub async fn logout_all(
        &self,
        who: &Principal,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.revoke_and_audit(who, None, None, "logout_all", client)
            .await?;
        Ok(())
    }

    /// The caller's live sessions.
    pub async fn sessions(&self, who: &Principal) -> Result<SessionList, ServiceError> {
        let rows = store::sessions::list_live(&self.db, who.user_id, crate::store::now()).await?;
        let sessions: Vec<SessionView> = rows
            .into_iter()
            .map(|s| SessionView::new(s, who.session_id))
            .collect();
        Ok(SessionList {
            total: sessions.len(),
            sessions,
        })
    }

    /// Revoke one of the caller's live sessions (404 for anyone else's or an unknown id).
    pub async fn revoke_session(
        &self,
        who: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        if self
            .revoke_and_audit(who, Some(id), None, "session_revoked", client)
            .await?
            == 0
        {
            return Err(ServiceError::NotFound);
        }
        Ok(())
    }

    /// Change the caller's password; every other session is revoked.
    pub async fn change_password(
        &self,
        who: &Principal,
        old_password: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let user = store::users::find(&self.db, who.user_id)
            .await?
            .ok_or_else(invalid_token)?;
        let errors = password_errors(&self.policy, "new_password", new_password, &user.email);
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let verified = self
            .hasher
            .verify(old_password.to_string(), user.password_hash.clone())
            .await?;
        if !verified.ok {
            return Err(ServiceError::Unauthorized {
                code: "invalid_credentials",
                detail: "the current password is wrong".into(),
            });
        }
        let hash = self.hasher.hash(new_password.to_string()).await?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        store::users::set_password(&txn, user.id, hash).await?;
        let revoked = store::sessions::revoke(
            &txn,
            user.id,
            None,
            Some(who.session_id),
            "password_changed",
        )
        .await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "password_changed",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                detail: serde_json::json!({"sessions_revoked": revoked}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}

/// Lifetime helper used by start-up code.
pub fn seconds(d: std::time::Duration) -> Duration {
    Duration::seconds(d.as_secs() as i64)
}
