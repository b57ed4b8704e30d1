//! The schema's history: every migration in order, each with `up` and `down`. Released migrations are never edited; changes come as new ones.

mod columns;
mod m0001_users_roles;
mod m0002_sessions_tokens;
mod m0003_keys_integrations;
mod m0004_usage_billing;
mod m0005_audit_log;
mod m0006_seed_roles;

use sea_orm_migration::prelude::*;

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
        ]
    }
}
