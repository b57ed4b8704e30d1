//! Cryptographic infrastructure (password hashing pool, JWT keys, refresh-token MACs, envelopes at rest, TOTP), kept apart from the rules that use it.

pub mod envelope;
pub mod hash_formats;
pub mod jwt;
pub mod keys;
pub mod password;
pub mod tokens;
pub mod totp;
