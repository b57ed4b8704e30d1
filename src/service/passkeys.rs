//! Passkeys (WebAuthn through `webauthn-rs`): registering them on an account, signing in with a discoverable one (`aal2`), a passkey as the second step after a password, and listing, renaming and deleting them.
//!
//! Every ceremony's state is stored (`store::passkeys`, its id as a SHA-256, valid five
//! minutes) and taken once by whichever instance finishes it. webauthn-rs checks the
//! signature, origin, relying-party id, user verification, the sign counter and the backup
//! flags; a passkey's updated counter is written by compare-and-set, so one assertion is
//! never accepted twice.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Webauthn, WebauthnBuilder,
};

use super::audit::audit_after;
use super::error::ServiceError;
use super::login::{Gate, Login, account_state};
use super::views::TokenPair;
use crate::config::{ConfigError, WebauthnConfig};
use crate::crypto::tokens;
use crate::domain::accounts::may_log_in;
use crate::domain::client::ClientInfo;
use crate::domain::sessions::{REAUTHENTICATE_WITHIN, signed_in_recently};
use crate::service::login::Principal;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::{passkeys as passkey_rows, users as user_rows};
use crate::store::one_time_tokens::Purpose;
use crate::store::passkeys::{NewPasskey, Removal};
use crate::store::{self, StoreError};

/// How long a ceremony may take, from begin to finish.
const CEREMONY_TTL: Duration = Duration::minutes(5);
/// The longest name a passkey may have, in characters.
const NAME_MAX: usize = 64;

/// The kinds of ceremony, as stored.
const REGISTER: &str = "register";
const SIGN_IN: &str = "sign_in";
const SECOND_STEP: &str = "second_step";

/// What a `…/begin` answers: the ceremony's id (send it back to `…/finish`) and the options to
/// hand to `navigator.credentials.create()` or `.get()` (base64url for binary fields).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Ceremony {
    /// Single-use, valid 5 minutes.
    pub ceremony_id: String,
    /// `{"publicKey": {...}}` as WebAuthn's JSON form.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// A passkey as the API shows it (never its key).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasskeyView {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<passkey_rows::Model> for PasskeyView {
    fn from(p: passkey_rows::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// `{"passkeys": [...]}`, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasskeyList {
    pub passkeys: Vec<PasskeyView>,
}

#[derive(Clone)]
pub struct Passkeys {
    db: DatabaseConnection,
    login: Login,
    webauthn: Option<Arc<Webauthn>>,
}

fn invalid_ceremony() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_ceremony",
        detail: "the passkey ceremony is unknown, expired or already finished; start again".into(),
    }
}

fn refused() -> ServiceError {
    ServiceError::Unauthorized {
        code: "passkey_refused",
        detail: "the passkey was not accepted".into(),
    }
}

fn invalid_mfa_token() -> ServiceError {
    ServiceError::Unauthorized {
        code: "invalid_mfa_token",
        detail: "the MFA token is invalid, expired or already used; log in again".into(),
    }
}

fn credential_hash(raw_id: &[u8]) -> String {
    tokens::sha256_hex(&hex::encode(raw_id))
}

fn internal(what: &str, e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// A passkey's name: trimmed, 1 to 64 characters, no control characters.
fn valid_name(name: Option<&str>, default: &str) -> Result<String, ServiceError> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(default);
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "name",
            "invalid_name",
            format!("a passkey's name is 1 to {NAME_MAX} characters without control characters"),
        ));
    }
    Ok(name.to_string())
}

/// The relying party built from configuration; `None` when passkeys are off.
pub fn relying_party(config: &WebauthnConfig) -> Result<Option<Webauthn>, ConfigError> {
    let Some(rp_id) = config.rp_id.as_deref() else {
        return Ok(None);
    };
    let bad = |e: webauthn_rs::prelude::WebauthnError| {
        ConfigError::new(
            "WEBAUTHN_RP_ORIGINS",
            format!("webauthn-rs refused the relying party: {e}"),
        )
    };
    let mut origins = config.rp_origins.iter();
    let first: &Url = origins
        .next()
        .ok_or_else(|| ConfigError::new("WEBAUTHN_RP_ORIGINS", "no origin"))?;
    let mut builder = WebauthnBuilder::new(rp_id, first)
        .map_err(bad)?
        .rp_name(&config.rp_name)
        .timeout(CEREMONY_TTL.to_std().unwrap_or_default());
    for origin in origins {
        builder = builder.append_allowed_origin(origin);
    }
    builder.build().map(Some).map_err(bad)
}

impl Passkeys {
    pub fn new(db: DatabaseConnection, login: Login, webauthn: Option<Webauthn>) -> Self {
        Self {
            db,
            login,
            webauthn: webauthn.map(Arc::new),
        }
    }

    fn webauthn(&self) -> Result<&Webauthn, ServiceError> {
        self.webauthn
            .as_deref()
            .ok_or_else(|| ServiceError::NotConfigured {
                code: "passkeys_not_configured",
                detail:
                    "passkeys need a domain: set GATEHOUSE_PUBLIC_URL (or WEBAUTHN_RP_ID) to one"
                        .into(),
            })
    }

    async fn user(&self, id: Uuid) -> Result<user_rows::Model, ServiceError> {
        store::users::find(&self.db, id)
            .await?
            .filter(|u| u.deleted_at.is_none())
            .ok_or(ServiceError::NotFound)
    }

    /// Store a ceremony's state and hand out its id.
    async fn begin(
        &self,
        kind: &str,
        user_id: Option<Uuid>,
        state: &impl Serialize,
        options: &impl Serialize,
    ) -> Result<Ceremony, ServiceError> {
        let id = tokens::random_token(32);
        let state = serde_json::to_string(state).map_err(|e| internal("ceremony state", e))?;
        store::passkeys::begin_ceremony(
            &self.db,
            tokens::sha256_hex(&id),
            kind,
            user_id,
            state,
            store::now() + CEREMONY_TTL,
        )
        .await?;
        Ok(Ceremony {
            ceremony_id: id,
            options: serde_json::to_value(options).map_err(|e| internal("ceremony options", e))?,
        })
    }

    /// Take a ceremony of `kind` and read its state: once, by whoever finishes it first.
    async fn take<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        ceremony_id: &str,
    ) -> Result<(Option<Uuid>, T), ServiceError> {
        let ceremony = store::passkeys::take_ceremony(
            &self.db,
            &tokens::sha256_hex(ceremony_id),
            kind,
            store::now(),
        )
        .await?
        .ok_or_else(invalid_ceremony)?;
        let state = serde_json::from_str(&ceremony.state)
            .map_err(|e| internal("stored ceremony state", e))?;
        Ok((ceremony.user_id, state))
    }

    /// A refusal, audited on the account when it is known.
    async fn refuse(
        &self,
        user_id: Option<Uuid>,
        reason: &'static str,
        client: &ClientInfo,
    ) -> ServiceError {
        let entry = AuditEntry {
            event: "passkey_refused",
            user_id,
            detail: serde_json::json!({ "reason": reason }),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        refused()
    }

    /// Start registering a passkey on the caller's account (a discoverable one, so it can sign
    /// in without an email typed); the account's passkeys are excluded.
    pub async fn register_begin(&self, who: &Principal) -> Result<Ceremony, ServiceError> {
        let webauthn = self.webauthn()?;
        // A passkey outlives the session that adds it (a password change does not remove it):
        // only a recent sign-in may add one, not a session taken over later.
        let signed_in_at = self.login.signed_in_at(who).await?;
        if !signed_in_at.is_some_and(|at| signed_in_recently(at, store::now())) {
            return Err(ServiceError::Forbidden {
                code: "reauthentication_required",
                detail: format!(
                    "sign in again to add a passkey (a sign-in within the last {} minutes)",
                    REAUTHENTICATE_WITHIN.num_minutes()
                ),
            });
        }
        let user = self.user(who.user_id).await?;
        let exclude = store::passkeys::of_user(&self.db, user.id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.credential).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        let display = user.name.clone().unwrap_or_else(|| user.email.clone());
        let (options, state): (CreationChallengeResponse, PasskeyRegistration) = webauthn
            .start_passkey_registration(user.id, &user.email, &display, Some(exclude))
            .map_err(|e| internal("starting a passkey registration", e))?;
        // A passkey that can sign in without an email: ask the authenticator to keep it
        // (discoverable). webauthn-rs's passkey options leave that to the authenticator.
        let mut options =
            serde_json::to_value(&options).map_err(|e| internal("ceremony options", e))?;
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = "required".into();
        selection["requireResidentKey"] = true.into();
        self.begin(REGISTER, Some(user.id), &state, &options).await
    }

    /// Finish a registration the caller began: the authenticator's answer checked by
    /// webauthn-rs, the passkey stored under `name`.
    pub async fn register_finish(
        &self,
        who: &Principal,
        ceremony_id: &str,
        name: Option<&str>,
        credential: &RegisterPublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<PasskeyView, ServiceError> {
        let webauthn = self.webauthn()?;
        let name = valid_name(name, "Passkey")?;
        let (owner, state): (_, PasskeyRegistration) = self.take(REGISTER, ceremony_id).await?;
        if owner != Some(who.user_id) {
            return Err(invalid_ceremony());
        }
        let passkey = match webauthn.finish_passkey_registration(credential, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "a passkey registration was refused");
                return Err(self
                    .refuse(Some(who.user_id), "registration_invalid", client)
                    .await);
            }
        };
        let stored = serde_json::to_string(&passkey).map_err(|e| internal("passkey", e))?;
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = store::passkeys::insert(
            &txn,
            NewPasskey {
                user_id: who.user_id,
                credential_hash: credential_hash(passkey.cred_id().as_ref()),
                name,
                credential: stored,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::Conflict {
                code: "passkey_exists",
                detail: "this passkey is already registered".into(),
            },
            other => other.into(),
        })?;
        audit::record(
            &txn,
            client.stamp(own_passkey_event("passkey_registered", who, &row)),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(row.into())
    }

    /// Start a sign-in with a discoverable passkey: nobody is named, the authenticator offers
    /// the passkeys it holds for this relying party.
    pub async fn sign_in_begin(&self) -> Result<Ceremony, ServiceError> {
        let webauthn = self.webauthn()?;
        let (mut options, state): (RequestChallengeResponse, DiscoverableAuthentication) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| internal("starting a passkey sign-in", e))?;
        // A button asks for a passkey at once; autofill (conditional mediation) is the page's choice.
        options.mediation = None;
        self.begin(SIGN_IN, None, &state, &options).await
    }

    /// Check an assertion against a stored passkey and record its new counter; the passkey's
    /// row. Refusals are audited and answer `passkey_refused`.
    async fn accept(
        &self,
        passkey: passkey_rows::Model,
        check: impl FnOnce(&Passkey) -> Result<webauthn_rs::prelude::AuthenticationResult, String>,
        client: &ClientInfo,
    ) -> Result<passkey_rows::Model, ServiceError> {
        let mut key: Passkey =
            serde_json::from_str(&passkey.credential).map_err(|e| internal("stored passkey", e))?;
        let result = match check(&key) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "a passkey assertion was refused");
                return Err(self
                    .refuse(Some(passkey.user_id), "assertion_invalid", client)
                    .await);
            }
        };
        key.update_credential(&result);
        let now_stored = serde_json::to_string(&key).map_err(|e| internal("passkey", e))?;
        if !store::passkeys::used(
            &self.db,
            passkey.id,
            &passkey.credential,
            &now_stored,
            store::now(),
        )
        .await?
        {
            return Err(self
                .refuse(Some(passkey.user_id), "concurrent_use", client)
                .await);
        }
        Ok(passkey)
    }

    /// Finish a discoverable sign-in: the passkey the authenticator chose, checked, opens an
    /// `aal2` session (a passkey is possession and user verification at once). Counted in
    /// `gatehouse_passkey_sign_ins_total{outcome}`.
    pub async fn sign_in_finish(
        &self,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let outcome = self.finish_sign_in(ceremony_id, credential, client).await;
        let label = match &outcome {
            Ok(_) => "success",
            Err(ServiceError::Unauthorized { .. }) => "failure",
            Err(ServiceError::Forbidden { .. }) => "refused",
            Err(_) => "error",
        };
        metrics::counter!("gatehouse_passkey_sign_ins_total", "outcome" => label).increment(1);
        outcome
    }

    async fn finish_sign_in(
        &self,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let webauthn = self.webauthn()?;
        let (_, state): (_, DiscoverableAuthentication) = self.take(SIGN_IN, ceremony_id).await?;
        let Ok((user_id, raw_id)) = webauthn.identify_discoverable_authentication(credential)
        else {
            return Err(self.refuse(None, "no_user_handle", client).await);
        };
        let passkey =
            match store::passkeys::by_credential(&self.db, &credential_hash(raw_id)).await? {
                Some(p) if p.user_id == user_id => p,
                _ => return Err(self.refuse(None, "unknown_credential", client).await),
            };
        let user = match self.user(passkey.user_id).await {
            Ok(u) => u,
            Err(ServiceError::NotFound) => {
                return Err(self.refuse(None, "unknown_credential", client).await);
            }
            Err(e) => return Err(e),
        };
        let require_verified = self.login.settings().require_email_verification;
        may_log_in(account_state(&user), require_verified)?;
        let passkey = self
            .accept(
                passkey,
                |key| {
                    webauthn
                        .finish_discoverable_authentication(
                            credential,
                            state,
                            &[DiscoverableKey::from(key)],
                        )
                        .map_err(|e| e.to_string())
                },
                client,
            )
            .await?;
        self.signed_in(user, passkey, "sign_in", client).await
    }

    async fn signed_in(
        &self,
        user: user_rows::Model,
        passkey: passkey_rows::Model,
        via: &'static str,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let entry = AuditEntry {
            event: "passkey_sign_in",
            user_id: Some(user.id),
            actor_id: Some(user.id),
            detail: serde_json::json!({"passkey_id": passkey.id, "via": via}),
            ..Default::default()
        };
        audit_after(&self.db, client.stamp(entry)).await;
        self.login
            .succeeded(&Gate::Account(user.id), user, None, "aal2", client)
            .await
    }

    /// The second step after a password with a passkey: a ceremony for the account behind a
    /// live `mfa_token` (which stays unspent until the step finishes).
    pub async fn second_step_begin(&self, mfa_token: &str) -> Result<Ceremony, ServiceError> {
        let webauthn = self.webauthn()?;
        let pending = store::one_time_tokens::find_live(
            &self.db,
            Purpose::MfaLogin,
            &tokens::sha256_hex(mfa_token),
            store::now(),
        )
        .await?
        .ok_or_else(invalid_mfa_token)?;
        let keys: Vec<Passkey> = store::passkeys::of_user(&self.db, pending.user_id)
            .await?
            .iter()
            .filter_map(|p| serde_json::from_str(&p.credential).ok())
            .collect();
        if keys.is_empty() {
            return Err(ServiceError::Conflict {
                code: "no_passkeys",
                detail: "this account has no passkey; use another method".into(),
            });
        }
        let (options, state): (RequestChallengeResponse, PasskeyAuthentication) = webauthn
            .start_passkey_authentication(&keys)
            .map_err(|e| internal("starting a passkey step", e))?;
        self.begin(SECOND_STEP, Some(pending.user_id), &state, &options)
            .await
    }

    /// Finish the second step: the `mfa_token` and the ceremony must belong to the same
    /// account; the token is spent only when the passkey is accepted.
    pub async fn second_step_finish(
        &self,
        mfa_token: &str,
        ceremony_id: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<TokenPair, ServiceError> {
        let webauthn = self.webauthn()?;
        let now = store::now();
        let pending = store::one_time_tokens::find_live(
            &self.db,
            Purpose::MfaLogin,
            &tokens::sha256_hex(mfa_token),
            now,
        )
        .await?
        .ok_or_else(invalid_mfa_token)?;
        let (owner, state): (_, PasskeyAuthentication) =
            self.take(SECOND_STEP, ceremony_id).await?;
        if owner != Some(pending.user_id) {
            return Err(invalid_ceremony());
        }
        let user = match self.user(pending.user_id).await {
            Err(ServiceError::NotFound) => return Err(invalid_mfa_token()),
            other => other?,
        };
        if may_log_in(account_state(&user), false).is_err() {
            return Err(invalid_mfa_token());
        }
        let passkey = match store::passkeys::by_credential(
            &self.db,
            &credential_hash(credential.raw_id.as_ref()),
        )
        .await?
        {
            Some(p) if p.user_id == user.id => p,
            _ => {
                return Err(self
                    .refuse(Some(user.id), "unknown_credential", client)
                    .await);
            }
        };
        let passkey = self
            .accept(
                passkey,
                |_| {
                    webauthn
                        .finish_passkey_authentication(credential, &state)
                        .map_err(|e| e.to_string())
                },
                client,
            )
            .await?;
        if !store::one_time_tokens::spend(&self.db, pending.id, now).await? {
            return Err(invalid_mfa_token());
        }
        self.signed_in(user, passkey, "second_step", client).await
    }

    /// The caller's passkeys, oldest first.
    pub async fn list(&self, who: &Principal) -> Result<PasskeyList, ServiceError> {
        Ok(PasskeyList {
            passkeys: store::passkeys::of_user(&self.db, who.user_id)
                .await?
                .into_iter()
                .map(PasskeyView::from)
                .collect(),
        })
    }

    /// Rename one of the caller's passkeys.
    pub async fn rename(
        &self,
        who: &Principal,
        id: Uuid,
        name: &str,
        client: &ClientInfo,
    ) -> Result<PasskeyView, ServiceError> {
        let name = valid_name(Some(name), "")?;
        if name.is_empty() {
            return Err(ServiceError::invalid(
                "name",
                "invalid_name",
                "a passkey's name cannot be empty",
            ));
        }
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = store::passkeys::rename(&txn, who.user_id, id, &name)
            .await?
            .ok_or(ServiceError::NotFound)?;
        audit::record(
            &txn,
            client.stamp(own_passkey_event("passkey_renamed", who, &row)),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(row.into())
    }

    /// Delete one of the caller's passkeys; 409 `last_sign_in_method` when the account has no
    /// password, no linked identity and no other passkey.
    pub async fn delete(
        &self,
        who: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        match store::passkeys::remove(&txn, who.user_id, id, store::now()).await? {
            Removal::NotFound => return Err(ServiceError::NotFound),
            Removal::LastWay => {
                return Err(ServiceError::Conflict {
                    code: "last_sign_in_method",
                    detail: "this passkey is the account's only way to sign in; set a password, link an identity or add another passkey first".into(),
                });
            }
            Removal::Removed(row) => {
                audit::record(
                    &txn,
                    client.stamp(own_passkey_event("passkey_deleted", who, &row)),
                )
                .await?;
            }
        }
        txn.commit().await.map_err(StoreError::from)?;
        // `updated_at` is part of the user's view.
        self.login
            .principals()
            .evict(crate::bus::Eviction::User(who.user_id))
            .await;
        Ok(())
    }
}

/// The audit row of a change the caller made to one of their own passkeys.
fn own_passkey_event(
    event: &'static str,
    who: &Principal,
    row: &passkey_rows::Model,
) -> AuditEntry {
    AuditEntry {
        event,
        user_id: Some(who.user_id),
        actor_id: Some(who.user_id),
        detail: serde_json::json!({"passkey_id": row.id, "name": row.name}),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_defaulted() {
        assert_eq!(valid_name(Some("  Laptop "), "Passkey").unwrap(), "Laptop");
        assert_eq!(valid_name(None, "Passkey").unwrap(), "Passkey");
        assert_eq!(valid_name(Some("   "), "Passkey").unwrap(), "Passkey");
        assert!(valid_name(Some(&"x".repeat(65)), "Passkey").is_err());
        assert!(valid_name(Some("a\u{7}b"), "Passkey").is_err());
        assert_eq!(
            valid_name(Some(&"é".repeat(64)), "P")
                .unwrap()
                .chars()
                .count(),
            64
        );
    }
}
