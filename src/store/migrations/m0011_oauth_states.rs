//! Sign-ins through an outside provider in progress: each `state` (stored as its SHA-256) with the hash of the browser binder it belongs to, where the browser returns, and the account being linked, single-use and short-lived so any instance can finish the flow.

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
                .table("oauth_states")
                .col(pk("id"))
                .col(string("state_hash", 64))
                .col(string("binder_hash", 64))
                .col(string("provider", 32))
                .col(text("redirect_uri"))
                .col(uuid_null("link_user_id"))
                .col(ts(m, "created_at"))
                .col(ts(m, "expires_at"))
                .col(ts_null(m, "used_at"))
                .foreign_key(&mut fk(
                    "fk_oauth_states_link_user",
                    "oauth_states",
                    "link_user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique(
                    "ux_oauth_states_state_hash",
                    "oauth_states",
                    &["state_hash"],
                ),
                index(
                    "ix_oauth_states_expires_at",
                    "oauth_states",
                    &["expires_at"],
                ),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["oauth_states"]).await
    }
}
