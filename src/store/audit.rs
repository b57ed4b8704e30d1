//! Appending to the audit log and reading it back, filtered and paged.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
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
    // Nothing is read back: one statement on every backend.
    audit_log::Entity::insert(audit_log::ActiveModel {
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
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Which audit rows a query returns.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub event: Option<String>,
    /// Inclusive.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive.
    pub until: Option<DateTime<Utc>>,
}

/// One page of audit rows, newest first, and how many match in all.
pub async fn page(
    db: &DatabaseConnection,
    filter: &AuditFilter,
    offset: u64,
    limit: u64,
) -> Result<(Vec<audit_log::Model>, u64), StoreError> {
    let mut query = audit_log::Entity::find();
    if let Some(id) = filter.user_id {
        query = query.filter(audit_log::Column::UserId.eq(id));
    }
    if let Some(id) = filter.actor_id {
        query = query.filter(audit_log::Column::ActorId.eq(id));
    }
    if let Some(event) = &filter.event {
        query = query.filter(audit_log::Column::Event.eq(event.as_str()));
    }
    // Bound through `instant`: a caller's bound past 2038 would reach MariaDB as NULL.
    let backend = db.get_database_backend();
    if let Some(since) = filter.since {
        query = query.filter(audit_log::Column::At.gte(crate::store::instant(backend, since)));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_log::Column::At.lt(crate::store::instant(backend, until)));
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(audit_log::Column::At)
        .order_by_desc(audit_log::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await?;
    Ok((rows, total))
}
