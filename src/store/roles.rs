//! Queries on the role catalogue.

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set, TransactionTrait};

use super::StoreError;
use super::entities::roles;

/// A role as the catalogue should hold it.
#[derive(Debug, Clone)]
pub struct RoleDef {
    pub name: &'static str,
    pub rank: i32,
    pub description: &'static str,
    pub permissions: Vec<&'static str>,
}

/// Insert missing roles and bring changed ones up to date, in one transaction. Returns (created, updated).
pub async fn upsert(
    db: &DatabaseConnection,
    defs: &[RoleDef],
) -> Result<(usize, usize), StoreError> {
    let txn = db.begin().await?;
    let (mut created, mut updated) = (0, 0);
    for def in defs {
        let permissions = serde_json::json!(def.permissions);
        match roles::Entity::find_by_id(def.name.to_string())
            .one(&txn)
            .await?
        {
            None => {
                roles::ActiveModel {
                    name: Set(def.name.to_string()),
                    rank: Set(def.rank),
                    description: Set(def.description.to_string()),
                    permissions: Set(permissions),
                    builtin: Set(true),
                    created_at: Set(crate::store::now()),
                }
                .insert(&txn)
                .await?;
                created += 1;
            }
            Some(existing)
                if existing.rank != def.rank
                    || existing.description != def.description
                    || existing.permissions != permissions
                    || !existing.builtin =>
            {
                let mut row: roles::ActiveModel = existing.into();
                row.rank = Set(def.rank);
                row.description = Set(def.description.to_string());
                row.permissions = Set(permissions);
                row.builtin = Set(true);
                row.update(&txn).await?;
                updated += 1;
            }
            Some(_) => {}
        }
    }
    txn.commit().await?;
    Ok((created, updated))
}

/// Every role, highest rank first.
pub async fn all(db: &DatabaseConnection) -> Result<Vec<roles::Model>, StoreError> {
    use sea_orm::QueryOrder;
    Ok(roles::Entity::find()
        .order_by_desc(roles::Column::Rank)
        .all(db)
        .await?)
}
