//! Usage records reported by services and billing records closed from them (amounts in millionths of the currency unit).

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
                .table("usage_records")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(uuid_null("api_key_id"))
                .col(string("service", 64))
                .col(string("model", 128))
                .col(string("request_type", 64))
                .col(bigint("tokens_used"))
                .col(bigint("cost_micros"))
                .col(ts(m, "created_at"))
                .foreign_key(&mut fk(
                    "fk_usage_records_user",
                    "usage_records",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_usage_records_api_key",
                    "usage_records",
                    "api_key_id",
                    "api_keys",
                    "id",
                    ForeignKeyAction::SetNull,
                ))
                .take(),
            vec![index(
                "ix_usage_records_user_created",
                "usage_records",
                &["user_id", "created_at"],
            )],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("billing_records")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(ts(m, "period_start"))
                .col(ts(m, "period_end"))
                .col(bigint("amount_micros"))
                .col(
                    ColumnDef::new("currency")
                        .string_len(3)
                        .not_null()
                        .default("USD"),
                )
                .col(
                    ColumnDef::new("status")
                        .string_len(16)
                        .not_null()
                        .default("open"),
                )
                .col(ts(m, "created_at"))
                .foreign_key(&mut fk(
                    "fk_billing_records_user",
                    "billing_records",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![unique(
                "ux_billing_records_user_period",
                "billing_records",
                &["user_id", "period_start", "period_end"],
            )],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["billing_records", "usage_records"]).await
    }
}
