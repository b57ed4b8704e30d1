//! sea-orm entities: one module per table, mirroring the migrations.

pub mod api_keys;
pub mod audit_log;
pub mod billing_records;
pub mod integrations;
pub mod login_throttles;
pub mod oauth_identities;
pub mod oauth_states;
pub mod oidc_clients;
pub mod oidc_codes;
pub mod oidc_consents;
pub mod one_time_tokens;
pub mod passkeys;
pub mod recovery_codes;
pub mod roles;
pub mod sessions;
pub mod usage_records;
pub mod user_roles;
pub mod users;
pub mod webauthn_ceremonies;
