//! Recompute `users.email_lower` as the canonical key (case-folded NFKC local part, IDNA ASCII domain) for addresses that are not plain ASCII; plain ASCII keys are unchanged by the new rule.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use crate::domain::email::Email;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let select = Query::select()
            .columns([
                Alias::new("id"),
                Alias::new("email"),
                Alias::new("email_lower"),
            ])
            .from(Alias::new("users"))
            .to_owned();
        let rows = db.query_all(&select).await?;
        let mut taken: std::collections::HashSet<String> = rows
            .iter()
            .filter_map(|r| r.try_get::<String>("", "email_lower").ok())
            .collect();
        for row in rows {
            let email: String = row.try_get("", "email")?;
            let old: String = row.try_get("", "email_lower")?;
            if email.is_ascii() {
                continue;
            }
            let Ok(parsed) = Email::parse(&email) else {
                continue;
            };
            let new = parsed.key().to_string();
            // Two old accounts that the new rule calls one address keep their old keys: the
            // operator decides which stays (logged), nothing is merged silently.
            if new == old || !taken.insert(new.clone()) {
                if new != old {
                    tracing::warn!(%email, "another account already holds this address's canonical key; key left as it was");
                }
                continue;
            }
            let id: sea_orm_migration::sea_orm::prelude::Uuid = row.try_get("", "id")?;
            let update = Query::update()
                .table(Alias::new("users"))
                .value(Alias::new("email_lower"), new)
                .and_where(Expr::col(Alias::new("id")).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }
        Ok(())
    }

    async fn down(&self, _: &SchemaManager) -> Result<(), DbErr> {
        // The old keys were lower-cased addresses; the canonical ones serve them as well.
        Ok(())
    }
}
