//! Lockout counters that belong to no account row: emails with no account (so they lock exactly as real ones do) and trusted devices (their own budget while an account is locked).

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
                .table("login_throttles")
                .col(string("key_hash", 64).primary_key().take())
                .col(
                    ColumnDef::new("failed_logins")
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(ts_null(m, "locked_until"))
                .col(ts(m, "updated_at"))
                .take(),
            vec![index(
                "ix_login_throttles_updated_at",
                "login_throttles",
                &["updated_at"],
            )],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["login_throttles"]).await
    }
}
