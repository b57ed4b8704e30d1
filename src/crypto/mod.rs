//! Cryptographic infrastructure (password hashing pool, JWT keys, refresh-token MACs), kept apart from the rules that use it.

pub mod jwt;
pub mod keys;
pub mod password;
pub mod tokens;
