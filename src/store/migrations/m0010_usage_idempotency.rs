//! Usage events carry when they happened (`occurred_at`, which the reporting service chooses) and the idempotency key they were reported under, unique per API key, so a retried report is stored once.

use sea_orm_migration::prelude::*;

use super::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "usage_records";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for column in [
            ts_null(m, "occurred_at"),
            string_null("idempotency_key", 128),
        ] {
            m.alter_table(Table::alter().table(TABLE).add_column(column).take())
                .await?;
        }
        // Rows reported before this migration happened when they were recorded.
        m.get_connection()
            .execute(
                &Query::update()
                    .table(TABLE)
                    .value("occurred_at", Expr::col("created_at"))
                    .to_owned(),
            )
            .await?;
        // The key comes first: MySQL would otherwise take this index for the foreign key on
        // `api_key_id`, drop the one it made for it, and refuse to drop this one on the way down.
        m.create_index(unique(
            "ux_usage_records_key_idempotency",
            TABLE,
            &["idempotency_key", "api_key_id"],
        ))
        .await?;
        m.create_index(index(
            "ix_usage_records_user_occurred",
            TABLE,
            &["user_id", "occurred_at"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "ix_usage_records_user_occurred",
            "ux_usage_records_key_idempotency",
        ] {
            m.drop_index(Index::drop().name(name).table(TABLE).to_owned())
                .await?;
        }
        for column in ["idempotency_key", "occurred_at"] {
            m.alter_table(Table::alter().table(TABLE).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
