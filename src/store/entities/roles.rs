//! A role of the catalogue, with its rank and permissions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "roles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub rank: i32,
    pub description: String,
    pub permissions: Json,
    pub builtin: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::user_roles::Entity")]
    UserRoles,
}

impl ActiveModelBehavior for ActiveModel {}

impl Related<super::user_roles::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::UserRoles.def()
    }
}

/// Roles to users through `user_roles`.
impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        super::user_roles::Relation::User.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::user_roles::Relation::Role.def().rev())
    }
}
