//! Third-party API keys of users: sealed under `ENCRYPTION_MASTER_KEY` before they reach the database, shown to their owner only as a hint, opened only for a service key with `integrations:decrypt` (and audited then), and the start-up check that the configured key opens what is stored.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::caller::ServiceKey;
use super::error::{FieldError, ServiceError};
use super::login::Principal;
use crate::crypto::envelope::Envelope;
use crate::domain::billing;
use crate::domain::client::ClientInfo;
use crate::store::audit::{self, AuditEntry};
use crate::store::entities::integrations;
use crate::store::integrations::{NewIntegration, Sealed, SealedKind};
use crate::store::{self, StoreError};

/// An integration as its owner sees it: never the key, only its last characters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationView {
    pub id: Uuid,
    #[schema(example = "openai")]
    pub service: String,
    pub label: Option<String>,
    /// `…` and the key's last four characters.
    #[schema(example = "…abcd")]
    pub key_hint: String,
    #[schema(example = "active")]
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl IntegrationView {
    fn new(r: integrations::Model) -> Self {
        Self {
            id: r.id,
            service: r.service,
            label: r.label,
            key_hint: r.key_hint,
            status: r.status,
            created_at: r.created_at,
        }
    }
}

/// `{"integrations": [...], "total": n}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
    pub total: usize,
}

/// A decrypted third-party key, for a service allowed to use it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IntegrationSecret {
    pub id: Uuid,
    pub user_id: Uuid,
    pub service: String,
    pub api_key: String,
}

/// What a user sends to store a key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub service: String,
    pub api_key: String,
    pub label: Option<String>,
}

/// What an envelope is bound to, so a value copied to another row does not open.
pub(crate) fn context(kind: SealedKind, user_id: Uuid, id: Uuid) -> String {
    match kind {
        SealedKind::Integration => format!("integration:{user_id}:{id}"),
        SealedKind::Totp | SealedKind::PendingTotp => super::mfa::sealed_for(user_id),
    }
}

#[derive(Clone)]
pub struct Integrations {
    db: DatabaseConnection,
    envelope: Option<Envelope>,
}

impl Integrations {
    pub fn new(db: DatabaseConnection, envelope: Option<Envelope>) -> Self {
        Self { db, envelope }
    }

    fn envelope(&self) -> Result<&Envelope, ServiceError> {
        self.envelope
            .as_ref()
            .ok_or_else(|| ServiceError::NotConfigured {
                code: "encryption_not_configured",
                detail: "ENCRYPTION_MASTER_KEY is not set, so integration keys cannot be stored"
                    .into(),
            })
    }

    /// Store a key for `who`, sealed; the answer shows only its hint.
    pub async fn create(
        &self,
        who: &Principal,
        new: NewKey,
        client: &ClientInfo,
    ) -> Result<IntegrationView, ServiceError> {
        let mut errors = Vec::new();
        let service = billing::name(new.service.trim(), 64)
            .map_err(|v| errors.push(FieldError::new("service", v)))
            .ok();
        let api_key = billing::integration_key(&new.api_key)
            .map_err(|v| errors.push(FieldError::new("api_key", v)))
            .ok();
        let label = match crate::domain::profile::DisplayName::parse(new.label.as_deref()) {
            Ok(Some(l)) if l.as_str().chars().count() > 100 => {
                errors.push(FieldError {
                    field: "label",
                    code: "too_long",
                    message: "must be at most 100 characters".into(),
                });
                None
            }
            Ok(l) => l.map(|l| l.into_string()),
            Err(v) => {
                errors.push(FieldError::new("label", v));
                None
            }
        };
        ServiceError::check(errors)?;
        let (Some(service), Some(api_key)) = (service, api_key) else {
            return Err(ServiceError::Internal("validated fields missing".into()));
        };
        let envelope = self.envelope()?;
        let id = Uuid::now_v7();
        let sealed = envelope.seal(
            api_key.as_bytes(),
            &context(SealedKind::Integration, who.user_id, id),
        );
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        let row = store::integrations::insert(
            &txn,
            NewIntegration {
                id,
                user_id: who.user_id,
                service,
                label,
                key_ciphertext: sealed,
                key_hint: billing::key_hint(api_key),
            },
        )
        .await?;
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "integration_created",
                user_id: Some(who.user_id),
                actor_id: Some(who.user_id),
                detail: serde_json::json!({"integration_id": row.id, "service": row.service}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(IntegrationView::new(row))
    }

    /// The caller's integrations, oldest first (hints only).
    pub async fn list(&self, who: &Principal) -> Result<IntegrationList, ServiceError> {
        let rows = store::integrations::for_user(&self.db, who.user_id).await?;
        Ok(IntegrationList {
            total: rows.len(),
            integrations: rows.into_iter().map(IntegrationView::new).collect(),
        })
    }

    /// Delete one of the caller's integrations, ciphertext and all; 404 when it is not theirs.
    pub async fn delete(
        &self,
        who: &Principal,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<(), ServiceError> {
        let txn = self.db.begin().await.map_err(StoreError::from)?;
        if !store::integrations::delete(&txn, who.user_id, id).await? {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            &txn,
            client.stamp(AuditEntry {
                event: "integration_deleted",
                user_id: Some(who.user_id),
                actor_id: Some(who.user_id),
                detail: serde_json::json!({"integration_id": id}),
                ..Default::default()
            }),
        )
        .await?;
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Open a user's key for a service key; the audit row is written before the key is handed
    /// out, so no decryption goes unrecorded.
    pub async fn reveal(
        &self,
        key: &ServiceKey,
        user_id: Uuid,
        id: Uuid,
        client: &ClientInfo,
    ) -> Result<IntegrationSecret, ServiceError> {
        let envelope = self.envelope()?;
        let row = store::integrations::find(&self.db, user_id, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let plain = envelope
            .open(
                &row.key_ciphertext,
                &context(SealedKind::Integration, user_id, id),
            )
            .map_err(|e| ServiceError::Internal(format!("integration {id}: {e}")))?;
        let api_key = String::from_utf8(plain)
            .map_err(|_| ServiceError::Internal(format!("integration {id}: not UTF-8")))?;
        // One statement, before the key leaves: if the row cannot be written, nothing is shown.
        audit::record(
            &self.db,
            client.stamp(AuditEntry {
                event: "integration_decrypted",
                user_id: Some(user_id),
                detail: serde_json::json!({
                    "integration_id": id,
                    "service": row.service,
                    "api_key_id": key.id,
                    "api_key_name": key.name,
                }),
                ..Default::default()
            }),
        )
        .await?;
        Ok(IntegrationSecret {
            id,
            user_id,
            service: row.service,
            api_key,
        })
    }

    /// Seal every value under the master key again, `batch` at a time, at most `max_batches`
    /// batches (all when `None`). Safe while servers run with the same keys: each value is
    /// replaced only if it is still the one read. Safe to stop at any point and run again: what
    /// is not yet under the master key is what is left to do.
    pub async fn rotate(
        &self,
        batch: u64,
        max_batches: Option<u64>,
        mut progress: impl FnMut(&Rotation),
    ) -> Result<Rotation, ServiceError> {
        let envelope = self.envelope()?;
        let mut done = Rotation {
            key_id: envelope.key_id().to_string(),
            ..Default::default()
        };
        let mut batches = 0;
        for kind in [
            SealedKind::Integration,
            SealedKind::Totp,
            SealedKind::PendingTotp,
        ] {
            let mut after = None;
            loop {
                if max_batches.is_some_and(|max| batches >= max) {
                    done.stopped_early = true;
                    return Ok(done);
                }
                let page = store::integrations::sealed_page(
                    &self.db,
                    kind,
                    envelope.key_id(),
                    after,
                    batch,
                )
                .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id);
                batches += 1;
                for sealed in page {
                    let context = context(kind, sealed.user_id, sealed.id);
                    let Ok(plain) = envelope.open(&sealed.value, &context) else {
                        done.unreadable.push(describe(&sealed));
                        continue;
                    };
                    let resealed = envelope.seal(&plain, &context);
                    if !store::integrations::reseal(&self.db, &sealed, &resealed).await? {
                        done.changed_meanwhile += 1;
                    } else if kind == SealedKind::Integration {
                        done.integrations += 1;
                    } else {
                        done.totp += 1;
                    }
                }
                progress(&done);
            }
        }
        Ok(done)
    }

    /// Whether the configured master key opens what is stored: `Err` (naming the problem) when
    /// sealed values exist and the key is missing or another one, so a server never starts to
    /// hand out garbage or fail on every MFA login.
    pub async fn check_master_key(&self) -> Result<(), String> {
        let sample = store::integrations::sample_sealed(&self.db, 3)
            .await
            .map_err(|e| e.to_string())?;
        let Some(first) = sample.first() else {
            return Ok(());
        };
        let Some(envelope) = &self.envelope else {
            return Err(format!(
                "is not set, but the database holds encrypted values ({}); set the key they were sealed with",
                describe(first)
            ));
        };
        for sealed in &sample {
            if let Err(e) = envelope.open(
                &sealed.value,
                &context(sealed.kind, sealed.user_id, sealed.id),
            ) {
                return Err(format!(
                    "does not open the stored {} ({e}; the key's id is {}, the value's {}): set the key they were sealed with",
                    describe(sealed),
                    envelope.key_id(),
                    sealed.value.split(':').nth(1).unwrap_or("unknown"),
                ));
            }
        }
        Ok(())
    }
}

/// What a key rotation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// The key every value is now sealed under.
    pub key_id: String,
    /// Values sealed again under it, by kind: integration keys, TOTP secrets (active and pending).
    pub integrations: u64,
    pub totp: u64,
    /// Values that changed while being moved (deleted, replaced): left as the server wrote them.
    pub changed_meanwhile: u64,
    /// Values no configured key opens, named (they are left untouched).
    pub unreadable: Vec<String>,
    /// Whether the run stopped after the batches it was allowed before finishing.
    pub stopped_early: bool,
}

fn describe(sealed: &Sealed) -> String {
    match sealed.kind {
        SealedKind::Integration => format!("integration key {}", sealed.id),
        SealedKind::Totp | SealedKind::PendingTotp => {
            format!("TOTP secret of user {}", sealed.user_id)
        }
    }
}
