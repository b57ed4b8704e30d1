//! Pure rules and types of the product (no I/O), so they can be tested exhaustively and reused by every flow.

pub mod email;
pub mod password_policy;
pub mod rbac;
pub mod roles;
pub mod sessions;
