//! The five built-in roles as they were at this release (a frozen copy: later changes go through `roles seed` or a new migration).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (name, rank, description, permissions)
const ROLES: &[(&str, i32, &str, &[&str])] = &[
    (
        "super_admin",
        100,
        "Full control, including other administrators",
        &["*"],
    ),
    (
        "admin",
        80,
        "Manages users, roles below admin, keys, audit and billing",
        &[
            "users:read",
            "users:write",
            "users:delete",
            "users:unlock",
            "roles:assign",
            "audit:read",
            "sessions:cleanup",
            "api_keys:manage",
            "billing:manage",
            "profile:read",
            "profile:write",
        ],
    ),
    (
        "moderator",
        60,
        "Reads users and disables accounts below moderator",
        &[
            "users:read",
            "users:disable",
            "profile:read",
            "profile:write",
        ],
    ),
    (
        "user",
        40,
        "A regular account",
        &["profile:read", "profile:write"],
    ),
    (
        "guest",
        20,
        "A restricted account with read-only access to itself",
        &["profile:read"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let now = chrono::Utc::now();
        let mut insert = Query::insert();
        insert.into_table("roles").columns([
            "name",
            "rank",
            "description",
            "permissions",
            "builtin",
            "created_at",
        ]);
        for (name, rank, description, permissions) in ROLES {
            insert.values_panic([
                (*name).into(),
                (*rank).into(),
                (*description).into(),
                serde_json::json!(permissions).into(),
                true.into(),
                now.into(),
            ]);
        }
        m.exec_stmt(insert).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let names: Vec<&str> = ROLES.iter().map(|r| r.0).collect();
        m.exec_stmt(
            Query::delete()
                .from_table("roles")
                .and_where(Expr::col("name").is_in(names))
                .take(),
        )
        .await
    }
}
