//! Email verification and password reset: single-use links sent by mail, answers that never tell whether an account exists, and a reset that revokes every session.

use chrono::Duration;
use sea_orm::{DatabaseConnection, TransactionTrait};

use super::audit::{Revocation, audit_after, revoke_sessions};
use super::error::{FieldError, ServiceError};
use super::login::account_state;
use super::principals::Principals;
use crate::bus::Eviction;
use crate::crypto::password::PasswordHasher;
use crate::crypto::tokens;
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::domain::email::Email;
use crate::domain::password_policy::PasswordPolicy;
use crate::mail::{Mailer, templates};
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::users as user_rows;
use crate::store::one_time_tokens::Purpose;
use crate::store::{self, StoreError};

/// How long links work, and how often a verification mail may be sent again.
const VERIFY_TTL: Duration = Duration::hours(24);
const RESET_TTL: Duration = Duration::hours(1);
const RESEND_EVERY: Duration = Duration::seconds(60);

fn invalid_link() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_token",
        detail: "the link is invalid, expired or already used".into(),
    }
}

#[derive(Clone)]
pub struct Verification {
    db: DatabaseConnection,
    mailer: Mailer,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    public_url: String,
    principals: Principals,
}

impl Verification {
    pub fn new(
        db: DatabaseConnection,
        mailer: Mailer,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        public_url: String,
        principals: Principals,
    ) -> Self {
        Self {
            db,
            mailer,
            hasher,
            policy,
            public_url,
            principals,
        }
    }

    /// Issue a verification link for `user` and queue the mail. Never fails the caller's flow:
    /// a database error is logged and no mail goes out.
    pub async fn send_verification(&self, user: &user_rows::Model, client: &ClientInfo) {
        let token = tokens::random_token(32);
        let expires = store::now() + VERIFY_TTL;
        let issued = store::one_time_tokens::issue(
            &self.db,
            user.id,
            Purpose::VerifyEmail,
            tokens::sha256_hex(&token),
            expires,
        )
        .await;
        if let Err(e) = issued {
            tracing::error!(error = %e, "could not issue a verification link");
            return;
        }
        self.mailer.send(templates::verify_email(
            &self.public_url,
            &user.email,
            &token,
        ));
        self.audit("verification_sent", user.id, client).await;
    }

    /// Someone tried to register `email`, which has an account: tell its owner by mail (never
    /// the client). The mail is only queued, so the answer does not wait for it.
    pub async fn tell_owner(&self, email: &Email, client: &ClientInfo) {
        let user = match store::users::find_by_email(&self.db, email.key()).await {
            Ok(Some(user)) if user.deleted_at.is_none() => user,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                return;
            }
        };
        self.mailer
            .send(templates::account_exists(&self.public_url, &user.email));
        self.audit("registration_with_existing_email", user.id, client)
            .await;
    }

    async fn audit(&self, event: &'static str, user_id: uuid::Uuid, client: &ClientInfo) {
        let entry = AuditEntry {
            event,
            user_id: Some(user_id),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
    }

    /// The live (not deleted) account with this email, if any.
    async fn account(&self, email: &str) -> Option<user_rows::Model> {
        let email = Email::parse(email).ok()?;
        match store::users::find_by_email(&self.db, email.key()).await {
            Ok(user) => user.filter(|u| may_log_in(account_state(u), false).is_ok()),
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                None
            }
        }
    }

    /// Confirm an email address with a verification link's token.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<(), ServiceError> {
        let now = store::now();
        let found = store::one_time_tokens::find_live(
            &self.db,
            Purpose::VerifyEmail,
            &tokens::sha256_hex(token),
            now,
        )
        .await?
        .ok_or_else(invalid_link)?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::one_time_tokens::spend(&txn, found.id, now).await? {
            return Err(invalid_link());
        }
        store::users::mark_verified(&txn, found.user_id, now).await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "email_verified",
                user_id: Some(found.user_id),
                actor_id: Some(found.user_id),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.principals.evict(Eviction::User(found.user_id)).await;
        Ok(())
    }

    /// Send the verification mail again, at most once a minute per account; nothing for unknown
    /// or already verified addresses. Runs after the answer, so timing tells nothing.
    pub fn resend(&self, email: String, client: ClientInfo) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(user) = this.account(&email).await else {
                return;
            };
            if user.email_verified {
                return;
            }
            match store::one_time_tokens::last_issued(&this.db, user.id, Purpose::VerifyEmail).await
            {
                Ok(Some(at)) if store::now() - at < RESEND_EVERY => {}
                Ok(_) => this.send_verification(&user, &client).await,
                Err(e) => tracing::error!(error = %e, "could not check earlier links"),
            }
        });
    }

    /// Mail a reset link when the account exists. Runs after the answer, so an unknown email
    /// answers in the same time as a known one.
    pub fn request_reset(&self, email: String, client: ClientInfo) {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(user) = this.account(&email).await else {
                return;
            };
            let token = tokens::random_token(32);
            let issued = store::one_time_tokens::issue(
                &this.db,
                user.id,
                Purpose::PasswordReset,
                tokens::sha256_hex(&token),
                store::now() + RESET_TTL,
            )
            .await;
            if let Err(e) = issued {
                tracing::error!(error = %e, "could not issue a reset link");
                return;
            }
            this.mailer.send(templates::password_reset(
                &this.public_url,
                &user.email,
                &token,
            ));
            this.audit("password_reset_requested", user.id, &client)
                .await;
        });
    }

    /// Set a new password with a reset link's token: the token and every older reset link die,
    /// every session is revoked, any lock is cleared, and the email counts as verified.
    pub async fn confirm_reset(
        &self,
        token: &str,
        new_password: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let now = store::now();
        let found = store::one_time_tokens::find_live(
            &self.db,
            Purpose::PasswordReset,
            &tokens::sha256_hex(token),
            now,
        )
        .await?
        .ok_or_else(invalid_link)?;
        let user = store::users::find(&self.db, found.user_id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or_else(invalid_link)?;
        ServiceError::check(FieldError::all(
            "new_password",
            self.policy.check(new_password, Some(&user.email)),
        ))?;
        let hash = self.hasher.hash(new_password.to_string()).await?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::one_time_tokens::spend(&txn, found.id, now).await? {
            return Err(invalid_link());
        }
        store::one_time_tokens::spend_all(&txn, user.id, Purpose::PasswordReset, now).await?;
        store::users::set_password(&txn, user.id, hash).await?;
        store::users::unlock(&txn, user.id).await?;
        store::users::mark_verified(&txn, user.id, now).await?;
        let which = Revocation::all(user.id, "password_reset");
        revoke_sessions(&txn, which, |revoked| {
            Some(client.stamp(AuditEntry {
                event: "password_reset",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                detail: serde_json::json!({"sessions_revoked": revoked}),
                ..Default::default()
            }))
        })
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.principals.evict(Eviction::UserSessions(user.id)).await;
        Ok(())
    }
}
