//! Audit rows written by flows: best-effort rows after the fact, and ending sessions together with the row that records it.

use sea_orm::{TransactionSession, TransactionTrait};
use uuid::Uuid;

use super::error::ServiceError;
use crate::domain::client::ClientInfo;
use crate::store;
use crate::store::StoreError;
use crate::store::audit::AuditEntry;

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

/// Append `entry` to the audit log outside any transaction, after what it records has happened:
/// a failure is logged, never returned, so it cannot undo or fail the flow.
pub(crate) async fn audit_after(db: &sea_orm::DatabaseConnection, entry: AuditEntry) {
    if let Err(e) = store::audit::record(db, entry).await {
        tracing::error!(error = %e, "could not write the audit log");
    }
}

/// Which of a user's sessions to end, and the reason stored on them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Revocation {
    pub user_id: Uuid,
    /// Only this session (when it is the user's).
    pub only: Option<Uuid>,
    /// Every session but this one.
    pub except: Option<Uuid>,
    pub reason: &'static str,
}

impl Revocation {
    /// Every session of `user_id`.
    pub fn all(user_id: Uuid, reason: &'static str) -> Self {
        Self {
            user_id,
            only: None,
            except: None,
            reason,
        }
    }
}

/// End the sessions `which` names and record the audit row `audit` makes from how many ended
/// (`None`: the caller records its own), in one transaction, or inside the caller's when `db`
/// is one. Every flow that ends sessions goes through here, so none forgets the row or writes
/// it apart from the change.
pub(crate) async fn revoke_sessions<C: TransactionTrait>(
    db: &C,
    which: Revocation,
    audit: impl FnOnce(u64) -> Option<AuditEntry>,
) -> Result<u64, ServiceError> {
    let txn = db.begin().await.map_err(StoreError::from)?;
    let n = store::sessions::revoke(&txn, which.user_id, which.only, which.except, which.reason)
        .await?;
    if let Some(entry) = audit(n) {
        store::audit::record(&txn, entry).await?;
    }
    txn.commit().await.map_err(StoreError::from)?;
    Ok(n)
}
