//! Accounts, the role catalogue and role grants.

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
                .table("users")
                .col(pk("id"))
                .col(string("email", 320))
                .col(string("email_lower", 320))
                .col(string_null("password_hash", 255))
                .col(string_null("name", 200))
                .col(boolean("active", true))
                .col(ts_null(m, "deleted_at"))
                .col(boolean("email_verified", false))
                .col(ts_null(m, "email_verified_at"))
                .col(int("failed_logins", 0))
                .col(ts_null(m, "locked_until"))
                .col(ts_null(m, "last_login_at"))
                .col(boolean("mfa_enabled", false))
                .col(text_null("mfa_secret"))
                .col(text_null("mfa_pending_secret"))
                .col(bigint_null("mfa_last_step"))
                .col(json("metadata"))
                .col(ts(m, "created_at"))
                .col(ts(m, "updated_at"))
                .take(),
            vec![
                unique("ux_users_email_lower", "users", &["email_lower"]),
                index("ix_users_created_at", "users", &["created_at", "id"]),
            ],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("roles")
                .col(
                    ColumnDef::new("name")
                        .string_len(32)
                        .not_null()
                        .primary_key(),
                )
                .col(ColumnDef::new("rank").integer().not_null())
                .col(string("description", 255))
                .col(json("permissions"))
                .col(boolean("builtin", false))
                .col(ts(m, "created_at"))
                .take(),
            vec![unique("ux_roles_rank", "roles", &["rank"])],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("user_roles")
                .col(uuid("user_id"))
                .col(string("role", 32))
                .col(ts(m, "granted_at"))
                .col(uuid_null("granted_by"))
                .primary_key(
                    Index::create()
                        .name("pk_user_roles")
                        .col("user_id")
                        .col("role"),
                )
                .foreign_key(&mut fk(
                    "fk_user_roles_user",
                    "user_roles",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_user_roles_role",
                    "user_roles",
                    "role",
                    "roles",
                    "name",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![index("ix_user_roles_role", "user_roles", &["role"])],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["user_roles", "roles", "users"]).await
    }
}
