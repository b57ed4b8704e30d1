//! The audit log: no foreign keys, it outlives purged users.

use sea_orm_migration::prelude::*;

use super::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        create(
            m,
            Table::create()
                .table("audit_log")
                .col(pk("id"))
                .col(ts(m, "at"))
                .col(string("event", 64))
                .col(uuid_null("user_id"))
                .col(uuid_null("actor_id"))
                .col(string_null("ip_address", 45))
                .col(string_null("user_agent", 512))
                .col(json("detail"))
                .take(),
            vec![
                index("ix_audit_log_at", "audit_log", &["at"]),
                index("ix_audit_log_user_at", "audit_log", &["user_id", "at"]),
                index("ix_audit_log_event_at", "audit_log", &["event", "at"]),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["audit_log"]).await
    }
}
