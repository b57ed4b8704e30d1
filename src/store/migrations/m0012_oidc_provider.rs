//! Gatehouse as an OpenID Provider: the registered relying parties (`oidc_clients`, secrets as SHA-256), the consents people gave them (`oidc_consents`), authorization codes in flight (`oidc_codes`: hashed, single-use, one minute, remembering the session they issued so a replay can revoke it), and on `sessions` the client a session was issued to, its scope and when its person authenticated.

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
                .table("oidc_clients")
                .col(pk("id"))
                .col(string("client_id", 64))
                .col(string("name", 200))
                .col(string_null("secret_hash", 64))
                .col(boolean("public", false))
                .col(boolean("first_party", false))
                .col(text("redirect_uris"))
                .col(text("post_logout_redirect_uris"))
                .col(text("scopes"))
                .col(ts(m, "created_at"))
                .take(),
            vec![unique(
                "ux_oidc_clients_client_id",
                "oidc_clients",
                &["client_id"],
            )],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("oidc_consents")
                .col(pk("id"))
                .col(uuid("user_id"))
                .col(uuid("client_id"))
                .col(text("scope"))
                .col(ts(m, "granted_at"))
                .foreign_key(&mut fk(
                    "fk_oidc_consents_user",
                    "oidc_consents",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_oidc_consents_client",
                    "oidc_consents",
                    "client_id",
                    "oidc_clients",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![unique(
                "ux_oidc_consents_user_client",
                "oidc_consents",
                &["user_id", "client_id"],
            )],
        )
        .await?;
        create(
            m,
            Table::create()
                .table("oidc_codes")
                .col(pk("id"))
                .col(string("code_hash", 64))
                .col(uuid("client_id"))
                .col(uuid("user_id"))
                .col(text("redirect_uri"))
                .col(text("scope"))
                .col(text_null("nonce"))
                .col(string_null("code_challenge", 128))
                .col(string("aal", 16))
                .col(ts(m, "auth_time"))
                .col(ts(m, "created_at"))
                .col(ts(m, "expires_at"))
                .col(ts_null(m, "used_at"))
                .col(uuid_null("session_id"))
                .foreign_key(&mut fk(
                    "fk_oidc_codes_client",
                    "oidc_codes",
                    "client_id",
                    "oidc_clients",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut fk(
                    "fk_oidc_codes_user",
                    "oidc_codes",
                    "user_id",
                    "users",
                    "id",
                    ForeignKeyAction::Cascade,
                ))
                .take(),
            vec![
                unique("ux_oidc_codes_code_hash", "oidc_codes", &["code_hash"]),
                index("ix_oidc_codes_expires_at", "oidc_codes", &["expires_at"]),
            ],
        )
        .await?;
        // SQLite adds one column per statement.
        for column in [
            uuid_null("oidc_client_id"),
            text_null("oidc_scope"),
            ts_null(m, "auth_time"),
        ] {
            m.alter_table(Table::alter().table("sessions").add_column(column).take())
                .await?;
        }
        m.create_index(index(
            "ix_sessions_oidc_client_id",
            "sessions",
            &["oidc_client_id"],
        ))
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(
            Index::drop()
                .name("ix_sessions_oidc_client_id")
                .table("sessions")
                .to_owned(),
        )
        .await?;
        for column in ["auth_time", "oidc_scope", "oidc_client_id"] {
            m.alter_table(
                Table::alter()
                    .table("sessions")
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        drop(m, &["oidc_codes", "oidc_consents", "oidc_clients"]).await
    }
}
