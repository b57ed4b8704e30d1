//! A login session; its refresh tokens are derived from id, generation and salt, never stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub refresh_generation: i64,
    pub salt: String,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub aal: String,
    pub created_at: DateTimeUtc,
    pub last_used_at: DateTimeUtc,
    pub refreshed_at: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    pub revoked_reason: Option<String>,
    /// The OpenID client (`oidc_clients.id`) this session was issued to; `None` for our own.
    pub oidc_client_id: Option<Uuid>,
    /// The scope granted to that client.
    pub oidc_scope: Option<String>,
    /// When the person behind a client's session authenticated.
    pub auth_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        fk_name = "fk_sessions_user",
        to = "super::users::Column::Id",
        on_update = "Cascade",
        on_delete = "Cascade"
    )]
    User,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}
