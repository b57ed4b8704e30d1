//! The one integration test binary (so the crate is linked once, not once per file): the harness in `helpers`, then one module per flow. Every test that takes a database runs on each backend as `<flow>::sqlite::<name>`, `<flow>::postgres::<name>` and `<flow>::mysql::<name>`.

#[macro_use]
mod helpers;

mod api_keys;
mod cli;
mod cli_admin;
mod cli_config;
mod container_files;
mod docs_sync;
mod emails;
mod embedding;
mod enumeration;
mod faults;
mod hardening;
mod http;
mod import;
mod integrations;
mod key_rotation;
mod limits;
mod listing;
mod lockout;
mod log_hygiene;
mod mail;
mod mfa;
mod oauth;
mod op;
mod pages;
mod passkeys;
mod principal_cache;
mod refresh;
mod register_login;
mod roles_matrix;
mod schema;
mod sessions;
mod tokens;
mod two_instances;
mod usage_billing;
mod users_admin;
