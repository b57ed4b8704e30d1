//! An account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub email: String,
    pub email_lower: String,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub active: bool,
    pub deleted_at: Option<DateTimeUtc>,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTimeUtc>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub last_login_at: Option<DateTimeUtc>,
    pub mfa_enabled: bool,
    pub mfa_secret: Option<String>,
    pub mfa_pending_secret: Option<String>,
    pub mfa_last_step: Option<i64>,
    pub metadata: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user_roles::Entity")]
    UserRoles,
    #[sea_orm(has_many = "super::sessions::Entity")]
    Sessions,
    #[sea_orm(has_many = "super::one_time_tokens::Entity")]
    OneTimeTokens,
    #[sea_orm(has_many = "super::recovery_codes::Entity")]
    RecoveryCodes,
    #[sea_orm(has_many = "super::api_keys::Entity")]
    ApiKeys,
    #[sea_orm(has_many = "super::integrations::Entity")]
    Integrations,
    #[sea_orm(has_many = "super::oauth_identities::Entity")]
    OauthIdentities,
    #[sea_orm(has_many = "super::usage_records::Entity")]
    UsageRecords,
    #[sea_orm(has_many = "super::billing_records::Entity")]
    BillingRecords,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::user_roles::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserRoles.def()
    }
}

impl Related<super::sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Sessions.def()
    }
}

impl Related<super::one_time_tokens::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OneTimeTokens.def()
    }
}

impl Related<super::recovery_codes::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::RecoveryCodes.def()
    }
}

impl Related<super::api_keys::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiKeys.def()
    }
}

impl Related<super::integrations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Integrations.def()
    }
}

impl Related<super::oauth_identities::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OauthIdentities.def()
    }
}

impl Related<super::usage_records::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UsageRecords.def()
    }
}

impl Related<super::billing_records::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BillingRecords.def()
    }
}

/// Users to roles through `user_roles`.
impl Related<super::roles::Entity> for Entity {
    fn to() -> RelationDef {
        super::user_roles::Relation::Role.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::user_roles::Relation::User.def().rev())
    }
}
