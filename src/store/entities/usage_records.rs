//! One metered request reported by a service.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub api_key_id: Option<Uuid>,
    pub service: String,
    pub model: String,
    pub request_type: String,
    pub tokens_used: i64,
    pub cost_micros: i64,
    /// When it was recorded.
    pub created_at: DateTimeUtc,
    /// When it happened, as the reporting service says (m0010; rows from before have `created_at`).
    pub occurred_at: Option<DateTimeUtc>,
    /// What the report was sent under, unique per API key (m0010).
    pub idempotency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        fk_name = "fk_usage_records_user",
        to = "super::users::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    User,
    #[sea_orm(
        belongs_to = "super::api_keys::Entity",
        from = "Column::ApiKeyId",
        fk_name = "fk_usage_records_api_key",
        to = "super::api_keys::Column::Id",
        on_update = "Cascade",
        on_delete = "SetNull"
    )]
    ApiKey,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::api_keys::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiKey.def()
    }
}
