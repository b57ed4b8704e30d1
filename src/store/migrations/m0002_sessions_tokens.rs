//! Login sessions (with the refresh generation counter), one-time tokens and MFA recovery codes.

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
                .table("sessions")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(
                    ColumnDef::new("refresh_generation")
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .col(string("salt", 64))
                .col(string_null("ip_address", 45))
                .col(string_null("user_agent", 512))
                .col(
                    ColumnDef::new("aal")
                        .string_len(8)
                        .not_null()
                        .default("aal1"),
                )
                .col(ts(m, "created_at"))
                .col(ts(m, "last_used_at"))
                .col(ts_null(m, "refreshed_at"))
                .col(ts(m, "expires_at"))
                .col(ts_null(m, "revoked_at"))
                .col(string_null("revoked_reason", 64))
                .foreign_key(&mut fk(
                    "fk_sessions_user",
                    "sessions",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                index(
                    "ix_sessions_user_revoked",
                    "sessions",
                    &["user_id", "revoked_at"],
                ),
                index("ix_sessions_expires_at", "sessions", &["expires_at"]),
            ],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("one_time_tokens")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(string("purpose", 32))
                .col(string("token_hash", 64))
                .col(ts(m, "created_at"))
                .col(ts(m, "expires_at"))
                .col(ts_null(m, "used_at"))
                .foreign_key(&mut fk(
                    "fk_one_time_tokens_user",
                    "one_time_tokens",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique(
                    "ux_one_time_tokens_hash",
                    "one_time_tokens",
                    &["token_hash"],
                ),
                index(
                    "ix_one_time_tokens_user_purpose",
                    "one_time_tokens",
                    &["user_id", "purpose"],
                ),
                index(
                    "ix_one_time_tokens_expires_at",
                    "one_time_tokens",
                    &["expires_at"],
                ),
            ],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("recovery_codes")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(string("code_hash", 64))
                .col(ts(m, "created_at"))
                .col(ts_null(m, "used_at"))
                .foreign_key(&mut fk(
                    "fk_recovery_codes_user",
                    "recovery_codes",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![unique(
                "ux_recovery_codes_user_hash",
                "recovery_codes",
                &["user_id", "code_hash"],
            )],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["recovery_codes", "one_time_tokens", "sessions"]).await
    }
}
