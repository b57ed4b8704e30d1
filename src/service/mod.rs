//! Use cases: one type per area that runs a flow (check the rules, call the store, hash, audit) and speaks in `ServiceError`.
//!
//! Dependencies run one way: `login` (sign-in mechanics) and `new_account` serve `auth`, `mfa`,
//! `users` and `accounts`; `audit` and `error` serve every module; no use case calls another
//! except `auth`, which queues verification mail through `verification`. `oauth` (sign-in
//! through outside providers) finishes its sign-ins with `login` and makes accounts with
//! `new_account`.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod caller;
pub mod error;
pub mod import;
pub mod integrations;
pub mod introspection;
pub mod login;
pub mod mfa;
pub mod new_account;
pub mod oauth;
pub mod paging;
pub mod passkeys;
pub mod principals;
pub mod provider;
pub mod usage;
pub mod users;
pub mod verification;
pub mod views;
pub mod web;

pub use error::{FieldError, ServiceError};
pub use paging::Paging;
