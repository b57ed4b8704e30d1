//! The five built-in roles as they were at this release (a frozen copy: later changes go through `roles seed` or a new migration).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The built-in roles as (name, rank, description, permissions), highest first, as this
/// migration inserts them. Public so other code can reuse them; it is the same list as
/// `domain::roles::Role` today, but only a new migration may change what this one inserted.
pub const BUILTIN_ROLES: &[(&str, i32, &str, &[&str])] = &[
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
        // Microsecond precision, like every other timestamp (see `store::now`).
        let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
        let mut insert = Query::insert();
        insert
            .into_table("roles")
            // Rows already there (same name) are left alone, so the seed never fails on a re-run.
            .on_conflict(
                OnConflict::column("name")
                    .do_nothing_on(["name"])
                    .to_owned(),
            )
            .columns([
                "name",
                "rank",
                "description",
                "permissions",
                "builtin",
                "created_at",
            ]);
        for (name, rank, description, permissions) in BUILTIN_ROLES {
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
        let names: Vec<&str> = BUILTIN_ROLES.iter().map(|r| r.0).collect();
        m.exec_stmt(
            Query::delete()
                .from_table("roles")
                .and_where(Expr::col("name").is_in(names))
                .take(),
        )
        .await
    }
}
