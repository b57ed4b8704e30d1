//! Permissions that match the RBAC rules as built: moderators manage and assign roles below them, admins create users and introspect tokens.

use sea_orm_migration::prelude::*;

use super::m0006_seed_roles::BUILTIN_ROLES;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, description, permissions) as this migration leaves them (a frozen copy).
const ROLES: &[(&str, &str, &[&str])] = &[
    (
        "admin",
        "Manages users below admin, service API keys, the audit log and billing",
        &[
            "users:read",
            "users:create",
            "users:manage",
            "users:unlock",
            "roles:assign",
            "audit:read",
            "sessions:cleanup",
            "api_keys:manage",
            "introspect",
            "billing:manage",
            "profile:read",
            "profile:write",
        ],
    ),
    (
        "moderator",
        "Reads every user; manages users and guests (profile, active, roles, delete)",
        &[
            "users:read",
            "users:manage",
            "roles:assign",
            "profile:read",
            "profile:write",
        ],
    ),
];

async fn set(
    m: &SchemaManager<'_>,
    name: &str,
    description: &str,
    permissions: &[&str],
) -> Result<(), DbErr> {
    m.exec_stmt(
        Query::update()
            .table("roles")
            .value("description", description)
            .value("permissions", serde_json::json!(permissions))
            .and_where(Expr::col("name").eq(name))
            .take(),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, description, permissions) in ROLES {
            set(m, name, description, permissions).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (name, _, description, permissions) in BUILTIN_ROLES {
            if ROLES.iter().any(|r| r.0 == *name) {
                set(m, name, description, permissions).await?;
            }
        }
        Ok(())
    }
}
