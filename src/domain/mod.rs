//! Pure rules and types of the product (no I/O), so they can be tested exhaustively and reused by every flow.

pub mod accounts;
pub mod billing;
pub mod client;
pub mod email;
pub mod import;
pub mod import_files;
pub mod oauth;
pub mod password_policy;
pub mod permissions;
pub mod profile;
pub mod provider;
pub mod rbac;
pub mod roles;
pub mod sessions;

/// One broken rule: the stable `code` of the problem document's `errors` entry and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub code: &'static str,
    pub message: String,
}

impl Violation {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
