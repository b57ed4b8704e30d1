//! TOTP multi-factor authentication: enrol, confirm (with ten single-use recovery codes), disable, and the second login step that turns an `mfa_token` into an `aal2` session.

use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::audit_after;
use super::error::ServiceError;
use super::login::{Gate, Login, Principal, account_state};
use super::views::TokenPair;
use crate::bus::Eviction;
use crate::crypto::envelope::Envelope;
use crate::crypto::password::PasswordHasher;
use crate::crypto::{tokens, totp};
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::users as user_rows;
use crate::store::one_time_tokens::Purpose;
use crate::store::{self, StoreError};
/// How many recovery codes confirmation hands out.
const RECOVERY_CODES: usize = 10;

/// What enrolment shows once: the secret, the `otpauth://` URI and its QR code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// `{"recovery_codes": [...]}`, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// The second factor a login step presents.
#[derive(Debug, Clone)]
pub enum SecondFactor {
    Totp(String),
    RecoveryCode(String),
}

#[derive(Clone)]
pub struct Mfa {
    db: DatabaseConnection,
    login: Login,
    hasher: PasswordHasher,
    envelope: Option<Envelope>,
    issuer: String,
}

fn invalid_code() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_mfa_code",
        detail: "the code is wrong, expired or already used".into(),
    }
}

fn invalid_mfa_token() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_mfa_token",
        detail: "the MFA token is invalid, expired or already used; log in again".into(),
    }
}

/// A recovery code as stored: upper case, without separators, hashed.
fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    tokens::sha256_hex(&normal)
}

/// A fresh recovery code: 130 random bits in base32, as `XXXXX-XXXXX-XXXXX-XXXXX-XXXXX-X`.
fn recovery_code() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 26];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect();
    chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// What a TOTP secret's envelope is bound to: its user.
pub(crate) fn sealed_for(user: Uuid) -> String {
    format!("totp:{user}")
}

fn now_unix() -> u64 {
    store::now().timestamp().max(0) as u64
}

impl Mfa {
    pub fn new(
        db: DatabaseConnection,
        login: Login,
        hasher: PasswordHasher,
        envelope: Option<Envelope>,
        issuer: String,
    ) -> Self {
        Self {
            db,
            login,
            hasher,
            envelope,
            issuer,
        }
    }

    fn envelope(&self) -> Result<&Envelope, ServiceError> {
        self.envelope
            .as_ref()
            .ok_or_else(|| ServiceError::NotConfigured {
                code: "encryption_not_configured",
                detail: "ENCRYPTION_MASTER_KEY is not set, so TOTP secrets cannot be stored".into(),
            })
    }

    /// A user's TOTP secret from its envelope (bound to the user, so a copied value fails).
    fn open_secret(&self, sealed: &str, user: Uuid) -> Result<Vec<u8>, ServiceError> {
        self.envelope()?
            .open(sealed, &sealed_for(user))
            .map_err(|e| ServiceError::Internal(format!("TOTP secret of {user}: {e}")))
    }

    async fn user(&self, id: Uuid) -> Result<user_rows::Model, ServiceError> {
        store::users::find(&self.db, id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or(ServiceError::NotFound)
    }

    /// Start TOTP enrolment: a new secret, kept encrypted until a code confirms it.
    pub async fn enroll(&self, who: &Principal) -> Result<TotpEnrollment, ServiceError> {
        let user = self.user(who.user_id).await?;
        if user.mfa_enabled {
            return Err(ServiceError::Conflict {
                code: "mfa_already_enabled",
                detail: "TOTP is already on; disable it first to enrol again".into(),
            });
        }
        let secret = totp::new_secret();
        let (base32, uri, svg) = totp::enrolment(&secret, &self.issuer, &user.email)
            .ok_or_else(|| ServiceError::Internal("could not make a TOTP enrolment".into()))?;
        let sealed = self.envelope()?.seal(&secret, &sealed_for(user.id));
        store::users::set_mfa_pending(&self.db, user.id, Some(sealed)).await?;
        Ok(TotpEnrollment {
            secret: base32,
            otpauth_uri: uri,
            qr_svg: svg,
        })
    }

    /// Activate TOTP with a code from the app; returns ten recovery codes, shown this once.
    pub async fn confirm(
        &self,
        who: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> Result<RecoveryCodes, ServiceError> {
        let user = self.user(who.user_id).await?;
        let not_pending = || ServiceError::Conflict {
            code: "mfa_not_pending",
            detail: "start with POST /auth/mfa/totp/enroll".into(),
        };
        if user.mfa_enabled {
            return Err(ServiceError::Conflict {
                code: "mfa_already_enabled",
                detail: "TOTP is already on".into(),
            });
        }
        let sealed = user.mfa_pending_secret.clone().ok_or_else(not_pending)?;
        let secret = self.open_secret(&sealed, user.id)?;
        let step = totp::matching_step(&secret, code, now_unix()).ok_or_else(|| {
            ServiceError::invalid("code", "invalid_mfa_code", "the code is wrong or expired")
        })?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::users::activate_mfa(&txn, user.id, sealed, step as i64).await? {
            return Err(not_pending());
        }
        store::recovery_codes::replace(
            &txn,
            user.id,
            codes.iter().map(|c| recovery_hash(c)).collect(),
        )
        .await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "mfa_enabled",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.login.principals().evict(Eviction::User(user.id)).await;
        Ok(RecoveryCodes {
            recovery_codes: codes,
        })
    }

    /// Turn TOTP off: needs the password and a session that passed MFA (`aal2`).
    pub async fn disable(
        &self,
        who: &Principal,
        password: &str,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        if who.aal != "aal2" {
            return Err(ServiceError::Forbidden {
                code: "aal2_required",
                detail: "log in with your second factor first".into(),
            });
        }
        let user = self.user(who.user_id).await?;
        if !self
            .hasher
            .verify(password.to_string(), user.password_hash.clone())
            .await?
            .ok
        {
            return Err(ServiceError::Unauthorized {
                code: "invalid_credentials",
                detail: "the password is wrong".into(),
            });
        }
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        store::users::disable_mfa(&txn, user.id).await?;
        store::recovery_codes::delete_all(&txn, user.id).await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "mfa_disabled",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        self.login.principals().evict(Eviction::User(user.id)).await;
        Ok(())
    }

    /// The second login step: a TOTP code (each time step accepted once) or a recovery code
    /// (each once) with the `mfa_token` from login. Wrong codes count toward lockout.
    pub async fn verify(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let now = store::now();
        let pending = store::one_time_tokens::find_live(
            &self.db,
            Purpose::MfaLogin,
            &tokens::sha256_hex(mfa_token),
            now,
        )
        .await?
        .ok_or_else(invalid_mfa_token)?;
        let user = match self.user(pending.user_id).await {
            Err(ServiceError::NotFound) => return Err(invalid_mfa_token()),
            other => other?,
        };
        if may_log_in(account_state(&user), false).is_err() || !user.mfa_enabled {
            return Err(invalid_mfa_token());
        }
        let secret = match (&factor, user.mfa_secret.as_deref()) {
            (SecondFactor::Totp(_), Some(sealed)) => Some(self.open_secret(sealed, user.id)?),
            _ => None,
        };
        let gate = Gate::Account(user.id);
        self.login.reserve_attempt(&gate).await?;
        let accepted = match (&factor, secret) {
            (SecondFactor::Totp(code), Some(secret)) => {
                match totp::matching_step(&secret, code, now_unix()) {
                    Some(step) => {
                        store::users::accept_totp_step(&self.db, user.id, step as i64).await?
                    }
                    None => false,
                }
            }
            (SecondFactor::RecoveryCode(code), _) => {
                store::recovery_codes::spend(&self.db, user.id, &recovery_hash(code), now).await?
            }
            (SecondFactor::Totp(_), None) => false,
        };
        if !accepted {
            self.login
                .attempt_failed(&gate, Some(user.id), "mfa_failed", "wrong_code", client)
                .await?;
            return Err(invalid_code());
        }
        if !store::one_time_tokens::spend(&self.db, pending.id, now).await? {
            return Err(invalid_mfa_token());
        }
        if matches!(factor, SecondFactor::RecoveryCode(_)) {
            let entry = AuditEntry {
                event: "recovery_code_used",
                user_id: Some(user.id),
                actor_id: Some(user.id),
                ..Default::default()
            };
            audit_after(&self.db, client.stamp(entry)).await;
        }
        self.login
            .succeeded(&gate, user, None, "aal2", client)
            .await
    }
}
