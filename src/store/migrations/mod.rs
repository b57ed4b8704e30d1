//! The schema's history: every migration in order, each with `up` and `down`. Released migrations are never edited; changes come as new ones.

pub(crate) mod columns;
mod m0001_users_roles;
mod m0002_sessions_tokens;
mod m0003_keys_integrations;
mod m0004_usage_billing;
mod m0005_audit_log;
pub mod m0006_seed_roles;
mod m0007_role_permissions;
mod m0008_login_throttles;
mod m0009_canonical_email_keys;
mod m0010_usage_idempotency;
mod m0011_oauth_states;
mod m0012_oidc_provider;
mod m0013_passkeys;

pub use m0006_seed_roles::BUILTIN_ROLES;

use sea_orm_migration::prelude::*;

/// Every Gatehouse migration, oldest first; `MigrationName::name` is the file stem the CLI shows and accepts.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_users_roles::Migration),
            Box::new(m0002_sessions_tokens::Migration),
            Box::new(m0003_keys_integrations::Migration),
            Box::new(m0004_usage_billing::Migration),
            Box::new(m0005_audit_log::Migration),
            Box::new(m0006_seed_roles::Migration),
            Box::new(m0007_role_permissions::Migration),
            Box::new(m0008_login_throttles::Migration),
            Box::new(m0009_canonical_email_keys::Migration),
            Box::new(m0010_usage_idempotency::Migration),
            Box::new(m0011_oauth_states::Migration),
            Box::new(m0012_oidc_provider::Migration),
            Box::new(m0013_passkeys::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    use sea_orm_migration::MigratorTrait;

    use super::Migrator;

    #[test]
    fn names_are_the_file_stems() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "m0001_users_roles",
                "m0002_sessions_tokens",
                "m0003_keys_integrations",
                "m0004_usage_billing",
                "m0005_audit_log",
                "m0006_seed_roles",
                "m0007_role_permissions",
                "m0008_login_throttles",
                "m0009_canonical_email_keys",
                "m0010_usage_idempotency",
                "m0011_oauth_states",
                "m0012_oidc_provider",
                "m0013_passkeys",
            ]
        );
    }
}
