//! Passkeys (WebAuthn): each account's registered credentials (the credential id as its SHA-256, the public key and counter as webauthn-rs serialises them, a name and when it was made and last used), and the ceremonies in progress (their id as a SHA-256, single-use and short-lived, so any instance can finish what another began).
//!
//! Numbered m0013: m0012 is taken by another branch; the runner applies migrations in list
//! order whatever their numbers.

use sea_orm_migration::prelude::*;

use super::columns::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        create(
            m,
            Table::create()
                .table("passkeys")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(string("credential_hash", 64))
                .col(string("name", 64))
                .col(text("credential"))
                .col(ts(m, "created_at"))
                .col(ts_null(m, "last_used_at"))
                .foreign_key(&mut fk(
                    "fk_passkeys_user",
                    "passkeys",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique(
                    "ux_passkeys_credential_hash",
                    "passkeys",
                    &["credential_hash"],
                ),
                index("ix_passkeys_user_id", "passkeys", &["user_id"]),
            ],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("webauthn_ceremonies")
                .col(pk("id"))
                .col(string("ceremony_hash", 64))
                .col(string("kind", 16))
                .col(uuid_null("user_id"))
                .col(text("state"))
                .col(ts(m, "created_at"))
                .col(ts(m, "expires_at"))
                .foreign_key(&mut fk(
                    "fk_webauthn_ceremonies_user",
                    "webauthn_ceremonies",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique(
                    "ux_webauthn_ceremonies_hash",
                    "webauthn_ceremonies",
                    &["ceremony_hash"],
                ),
                index(
                    "ix_webauthn_ceremonies_expires_at",
                    "webauthn_ceremonies",
                    &["expires_at"],
                ),
            ],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        drop(m, &["webauthn_ceremonies", "passkeys"]).await
    }
}
