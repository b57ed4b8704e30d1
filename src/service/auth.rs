//! Authentication flows: register, login with race-proof lockout, access tokens checked against live sessions, refresh rotation with reuse detection, logout, sessions, password change.

use chrono::Duration;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::audit::{Revocation, revoke_sessions};
use super::error::{FieldError, ServiceError};
use super::login::{Gate, Login, Principal, account_state};
use super::new_account::{AccountSpec, Credentials, create_account};
use super::principals::{Principals, SessionFacts};
use super::verification::Verification;
use super::views::{SessionList, SessionView, SharedUser, TokenPair, UserView};
use crate::bus::Eviction;
use crate::crypto::jwt::{Claims, JwtKeys};
use crate::crypto::password::PasswordHasher;
use crate::crypto::tokens::{self, ParsedRefresh};
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::domain::email::Email;
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::roles::Role;
use crate::domain::sessions::{RefreshMiss, SessionState, classify_refresh_miss};
use crate::store::audit::AuditEntry;
use crate::store::entities::sessions as session_rows;
use crate::store::{self, StoreError};

/// A session's `last_used_at` is written at most this often.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// What register returns: the user, and a token pair when auto-login is on.
#[derive(Debug, Clone)]
pub enum Registered {
    User(UserView),
    LoggedIn(TokenPair),
    /// `AUTH_REGISTER_CONCEAL_EXISTING`: the same answer whether the email was free (a
    /// verification mail went out) or taken (its owner was told by mail).
    Pending,
}

#[derive(Clone)]
pub struct Auth {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    login: Login,
    verification: Verification,
}

pub use super::login::{LoginOutcome, MfaChallenge};

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
        login: Login,
        verification: Verification,
    ) -> Self {
        Self {
            db,
            hasher,
            policy,
            login,
            verification,
        }
    }

    /// The cache of authenticated principals this instance keeps.
    pub fn principals(&self) -> &Principals {
        self.login.principals()
    }

    pub fn jwt(&self) -> &JwtKeys {
        self.login.jwt()
    }

    /// Create an account with the `user` role.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Registered, ServiceError> {
        let Credentials { email, name } = Credentials::parse(&self.policy, email, password, name)?;
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
        let conceal = self.login.settings().register_conceal_existing;
        let user = match create_account(&self.db, &self.hasher, &email, Some(password), spec, audit)
            .await
        {
            Err(ServiceError::Conflict { code, .. }) if conceal && code == "email_taken" => {
                // The work a new account costs, so the answer takes as long.
                self.hasher.hash(password.to_string()).await?;
                self.verification.tell_owner(&email, client).await;
                return Ok(Registered::Pending);
            }
            other => other?,
        };
        self.verification.send_verification(&user, client).await;
        if conceal {
            return Ok(Registered::Pending);
        }
        let settings = self.login.settings();
        if settings.auto_login_on_register && !settings.require_email_verification {
            return Ok(Registered::LoggedIn(
                self.login.start_session(user, "aal1", client).await?,
            ));
        }
        Ok(Registered::User(UserView::new(
            user,
            vec![Role::User.name().to_string()],
        )))
    }

    /// Check email and password; lock after too many failures, even under parallel attempts.
    /// An email without an account is counted and locked exactly as one with an account, and a
    /// client holding the account's device token (from an earlier sign-in) tries on a budget
    /// of its own, so nobody can lock the owner out by guessing.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let outcome = self.check_password(email, password, device, client).await;
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
        device: Option<&str>,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, ServiceError> {
        let key = match Email::parse(email) {
            Ok(e) => e.key().to_string(),
            Err(_) => email.trim().to_lowercase(),
        };
        let user = store::users::find_by_email(&self.db, &key)
            .await?
            .filter(|u| u.deleted_at.is_none() && u.password_hash.is_some());
        let gate = match (self.login.device(device, &key), &user) {
            (Some(device), Some(_)) => Gate::Device(device),
            (None, Some(user)) => Gate::Account(user.id),
            (_, None) => Gate::NoAccount(key),
        };
        self.login.reserve_attempt(&gate).await?;
        // Without an account this costs what a wrong password costs, and is never right.
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        let verified = match self.hasher.verify(password.to_string(), hash).await {
            Ok(v) => v,
            Err(e) => {
                self.login.release_attempt(&gate).await?;
                return Err(e.into());
            }
        };
        let user = match user {
            Some(user) if verified.ok => user,
            _ => {
                let (user_id, reason) = match &user {
                    Some(u) => (Some(u.id), "wrong_password"),
                    None => (None, "unknown_email"),
                };
                self.login
                    .attempt_failed(&gate, user_id, "login_failed", reason, client)
                    .await?;
                return Err(invalid_credentials());
            }
        };
        // The right password on an account that may not log in: not a failure, not a login.
        let require_verified = self.login.settings().require_email_verification;
        if let Err(refusal) = may_log_in(account_state(&user), require_verified) {
            self.login.release_attempt(&gate).await?;
            return Err(refusal.into());
        }
        let new_hash = if verified.needs_rehash {
            self.hasher.hash(password.to_string()).await.ok()
        } else {
            None
        };
        let methods = self.login.second_factors(&user).await?;
        if !methods.is_empty() {
            // Half a login: the password's slot is given back (earlier failures still count) and
            // the code step reserves its own.
            self.login.release_attempt(&gate).await?;
            if let Some(hash) = new_hash {
                store::users::set_password(&self.db, user.id, hash).await?;
            }
            return Ok(LoginOutcome::MfaRequired(
                self.login.mfa_challenge(user.id, methods).await?,
            ));
        }
        Ok(LoginOutcome::Tokens(Box::new(
            self.login
                .succeeded(&gate, user, new_hash, "aal1", client)
                .await?,
        )))
    }

    /// The caller behind an access token, if its session is still live. The token's own checks
    /// run on every call; the session and the user (with its roles) come from the principal
    /// cache when it holds them, else from the database (in parallel), so a revocation or role
    /// change takes effect on the next call whatever the token's claims say.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, ServiceError> {
        let claims = self.jwt().verify(access_token).ok_or_else(invalid_token)?;
        let now = store::now();
        let cache = self.principals();
        // Taken before anything is read, so nothing read here is cached over a later eviction.
        let epoch = cache.epoch();
        let cached = cache
            .session(claims.sid)
            .zip(cache.user(claims.sub))
            .filter(|(s, _)| s.user_id == claims.sub && s.expires_at > now);
        let (facts, user) = match cached {
            Some((session, user)) => ((*session).clone(), user),
            None => {
                // Boxed, here and for the touch below: the database's futures are large, and
                // inline they would make every call's future (cache hits too) as large.
                let (session, user) = Box::pin(self.live_session(&claims)).await?;
                let user = SharedUser::new(user);
                let facts = SessionFacts {
                    user_id: session.user_id,
                    aal: session.aal,
                    expires_at: session.expires_at,
                    last_used_at: session.last_used_at,
                };
                cache.fill(epoch, claims.sid, facts.clone(), &user);
                (facts, user)
            }
        };
        if now.signed_duration_since(facts.last_used_at) > TOUCH_EVERY {
            Box::pin(store::sessions::touch(&self.db, claims.sid, now)).await?;
            cache.touched(epoch, claims.sid, &facts, now);
        }
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            aal: claims.aal.clone(),
            user,
        })
    }

    /// A valid access token's claims, its live session and its (live, active) user as it is
    /// now, read from the database (introspection never answers from the cache).
    pub async fn live_access(
        &self,
        access_token: &str,
    ) -> Result<(Claims, session_rows::Model, UserView), ServiceError> {
        let claims = self.jwt().verify(access_token).ok_or_else(invalid_token)?;
        let (session, user) = self.live_session(&claims).await?;
        Ok(((*claims).clone(), session, user))
    }

    /// The session `claims` name and its user, read now, when both are live.
    async fn live_session(
        &self,
        claims: &Claims,
    ) -> Result<(session_rows::Model, UserView), ServiceError> {
        let (session, user) = tokio::join!(
            store::sessions::find(&self.db, claims.sid),
            store::users::find_with_roles(&self.db, claims.sub)
        );
        let session = session?.ok_or_else(invalid_token)?;
        if session.user_id != claims.sub
            || session.revoked_at.is_some()
            || session.expires_at <= store::now()
        {
            return Err(invalid_token());
        }
        let (user, roles) = user?
            .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
            .ok_or_else(invalid_token)?;
        Ok((session, UserView::new(user, roles)))
    }

    /// The session a refresh token names, when the token is well formed and its MAC matches
    /// (whatever its generation): the preamble of refresh and of introspection.
    async fn presented(
        &self,
        refresh_token: &str,
    ) -> Result<Option<(ParsedRefresh, session_rows::Model)>, ServiceError> {
        let Some(presented) = tokens::parse_refresh(refresh_token) else {
            return Ok(None);
        };
        let Some(session) = store::sessions::find(&self.db, presented.session).await? else {
            return Ok(None);
        };
        let genuine = self
            .login
            .refresh_secret()
            .verify(&session.salt, &presented);
        Ok(genuine.then_some((presented, session)))
    }

    /// A refresh token's live session, when the token is the session's current one.
    pub async fn live_refresh(
        &self,
        refresh_token: &str,
    ) -> Result<Option<session_rows::Model>, ServiceError> {
        let Some((presented, session)) = self.presented(refresh_token).await? else {
            return Ok(None);
        };
        let live = session.revoked_at.is_none()
            && session.expires_at > store::now()
            && u64::try_from(session.refresh_generation).ok() == Some(presented.generation);
        Ok(live.then_some(session))
    }

    /// Spend a refresh token for the next pair (docs/api.md, refresh rules). The winner of
    /// a rotation reads the session once; only a lost race reads it again to classify the miss.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let (session, generation) = self.rotate(refresh_token, client, None).await?;
        self.next_pair(&session, generation).await
    }

    /// Rotate the session a refresh token names, with the same rules and reuse detection for
    /// our own sessions (`for_client` `None`) and for those issued to an OpenID client (its row
    /// id): a token of the other kind is refused. The rotated session and the generation of the
    /// refresh token to hand out.
    pub(crate) async fn rotate(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
        for_client: Option<Uuid>,
    ) -> Result<(session_rows::Model, u64), ServiceError> {
        let (presented, read) = self
            .presented(refresh_token)
            .await?
            .filter(|(_, s)| s.oidc_client_id == for_client)
            .ok_or_else(invalid_refresh)?;
        if u64::try_from(read.refresh_generation).ok() != Some(presented.generation) {
            // Not the current generation: lost a race or replayed, no rotation to try.
            return self.refresh_missed(presented, read, client).await;
        }
        let now = store::now();
        let expires = now + self.login.settings().refresh_ttl;
        let Some(session) = store::sessions::rotate(&self.db, &read, now, expires).await? else {
            let session = store::sessions::find(&self.db, read.id)
                .await?
                .ok_or_else(invalid_refresh)?;
            return self.refresh_missed(presented, session, client).await;
        };
        Ok((session, presented.generation + 1))
    }

    /// A refresh that did not win the rotation (`session` as read after it lost): inside the grace window after a parallel
    /// rotation it still gets a pair; a replay revokes the session; anything else is 401.
    async fn refresh_missed(
        &self,
        presented: ParsedRefresh,
        session: session_rows::Model,
        client: &ClientInfo,
    ) -> Result<(session_rows::Model, u64), ServiceError> {
        let state = SessionState {
            generation: session.refresh_generation as u64,
            refreshed_at: session.refreshed_at,
            revoked: session.revoked_at.is_some(),
            expires_at: session.expires_at,
        };
        let grace = self.login.settings().reuse_grace;
        match classify_refresh_miss(presented.generation, state, store::now(), grace) {
            RefreshMiss::Dead => Err(invalid_refresh()),
            RefreshMiss::Grace => Ok((session, presented.generation + 1)),
            RefreshMiss::Replay => {
                self.revoke_for_reuse(&session, presented.generation, client)
                    .await?;
                Err(ServiceError::Unauthorized {
                    code: "refresh_token_reused",
                    detail: "this refresh token was already used; the session has been revoked"
                        .into(),
                })
            }
        }
    }

    /// The pair a refresh answers: the user as it is now (from the principal cache, which every
    /// change to a user evicts, else read and remembered), the refresh token of `generation`.
    async fn next_pair(
        &self,
        session: &session_rows::Model,
        generation: u64,
    ) -> Result<TokenPair, ServiceError> {
        let cache = self.principals();
        let epoch = cache.epoch();
        let user = match cache.user(session.user_id) {
            Some(user) => (*user).clone(),
            None => {
                let (user, roles) = store::users::find_with_roles(&self.db, session.user_id)
                    .await?
                    .filter(|(u, _)| may_log_in(account_state(u), false).is_ok())
                    .ok_or_else(invalid_refresh)?;
                let user = SharedUser::new(UserView::new(user, roles));
                cache.fill_user(epoch, &user);
                (*user).clone()
            }
        };
        self.login.pair(session, generation, user)
    }

    async fn revoke_for_reuse(
        &self,
        session: &session_rows::Model,
        generation: u64,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let which = Revocation {
            only: Some(session.id),
            ..Revocation::all(session.user_id, "refresh_token_reused")
        };
        revoke_sessions(&self.db, which, |_| {
            Some(client.stamp(AuditEntry {
                event: "refresh_token_reused",
                user_id: Some(session.user_id),
                detail: serde_json::json!({
                    "session_id": session.id,
                    "presented_generation": generation,
                    "current_generation": session.refresh_generation,
                }),
                ..Default::default()
            }))
        })
        .await?;
        self.principals().evict(Eviction::Session(session.id)).await;
        metrics::counter!("gatehouse_refresh_reuse_total").increment(1);
        tracing::warn!(session_id = %session.id, "refresh token reuse: session revoked");
        Ok(())
    }

    /// End the caller's own sessions (`only` one, or all), audited as `reason` when any ended.
    async fn end_own_sessions(
        &self,
        who: &Principal,
        only: Option<Uuid>,
        reason: &'static str,
        client: &ClientInfo,
    ) -> Result<u64, ServiceError> {
        let which = Revocation {
            only,
            ..Revocation::all(who.user_id, reason)
        };
        let n = revoke_sessions(&self.db, which, |n| {
            (n > 0).then(|| {
                client.stamp(AuditEntry {
                    event: reason,
                    user_id: Some(who.user_id),
                    actor_id: Some(who.user_id),
                    detail: serde_json::json!({"sessions": n, "session_id": only.or(Some(who.session_id))}),
                    ..Default::default()
                })
            })
        })
        .await?;
        let eviction = match only {
            Some(session) => Eviction::Session(session),
            None => Eviction::UserSessions(who.user_id),
        };
        self.principals().evict(eviction).await;
        Ok(n)
    }

    /// Revoke the caller's current session.
    pub async fn logout(&self, who: &Principal, client: &ClientInfo) -> Result<(), ServiceError> {
        self.end_own_sessions(who, Some(who.session_id), "logout", client)
            .await?;
        Ok(())
    }

    /// Revoke every session of the caller.
    pub async fn logout_all(
        &self,
        who: &Principal,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        self.end_own_sessions(who, None, "logout_all", client)
            .await?;
        Ok(())
    }

    /// The caller's live sessions.
    pub async fn sessions(&self, who: &Principal) -> Result<SessionList, ServiceError> {
        let rows = store::sessions::list_live(&self.db, who.user_id, store::now()).await?;
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
            .end_own_sessions(who, Some(id), "session_revoked", client)
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
        ServiceError::check(FieldError::all(
            "new_password",
            self.policy.check(new_password, Some(&user.email)),
        ))?;
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
        let which = Revocation {
            except: Some(who.session_id),
            ..Revocation::all(user.id, "password_changed")
        };
        revoke_sessions(&txn, which, |revoked| {
            Some(client.stamp(AuditEntry {
                event: "password_changed",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                detail: serde_json::json!({"sessions_revoked": revoked}),
                ..Default::default()
            }))
        })
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.principals()
            .evict(Eviction::UserSessions(user.id))
            .await;
        Ok(())
    }
}
