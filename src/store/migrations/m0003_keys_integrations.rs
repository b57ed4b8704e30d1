//! Service API keys, third-party integrations (keys encrypted at rest) and OAuth identities.

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
                .table("api_keys")
                .col(pk("id"))
                .col(string("name", 100))
                .col(string("key_prefix", 16))
                .col(string("key_hash", 64))
                .col(json("scopes"))
                .col(uuid_null("created_by"))
                .col(ts(m, "created_at"))
                .col(ts_null(m, "last_used_at"))
                .col(ts_null(m, "expires_at"))
                .col(ts_null(m, "revoked_at"))
                .foreign_key(&mut fk(
                    "fk_api_keys_created_by",
                    "api_keys",
                    "created_by",
                    "users",
                    "id",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
            vec![unique("ux_api_keys_hash", "api_keys", &["key_hash"])],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("integrations")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(string("service", 64))
                .col(string_null("label", 100))
                .col(text("key_ciphertext"))
                .col(string("key_hint", 16))
                .col(
                    ColumnDef::new("status")
                        .string_len(16)
                        .not_null()
                        .default("active"),
                )
                .col(ts(m, "created_at"))
                .col(ts(m, "updated_at"))
                .foreign_key(&mut fk(
                    "fk_integrations_user",
                    "integrations",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![index("ix_integrations_user", "integrations", &["user_id"])],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("oauth_identities")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(string("provider", 32))
                .col(string("subject", 255))
                .col(string_null("email", 320))
                .col(ts(m, "created_at"))
                .foreign_key(&mut fk(
                    "fk_oauth_identities_user",
                    "oauth_identities",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique(
                    "ux_oauth_identities_provider_subject",
                    "oauth_identities",
                    &["provider", "subject"],
                ),
                index("ix_oauth_identities_user", "oauth_identities", &["user_id"]),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["oauth_identities", "integrations", "api_keys"]).await
    }
}
