//! Appending to the audit log.

use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};
use uuid::Uuid;

use super::StoreError;
use super::entities::audit_log;

/// One audit event.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry {
    pub event: &'static str,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
}

pub async fn record<C: ConnectionTrait>(db: &C, entry: AuditEntry) -> Result<(), StoreError> {
    audit_log::ActiveModel {
        id: Set(Uuid::now_v7()),
        at: Set(crate::store::now()),
        event: Set(entry.event.to_string()),
        user_id: Set(entry.user_id),
        actor_id: Set(entry.actor_id),
        ip_address: Set(entry.ip_address),
        user_agent: Set(entry.user_agent),
        detail: Set(if entry.detail.is_null() {
            serde_json::json!({})
        } else {
            entry.detail
        }),
    }
    .insert(db)
    .await?;
    Ok(())
}
