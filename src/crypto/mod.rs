//! Cryptographic infrastructure (password hashing pool; later JWT keys, token MACs and envelopes), kept apart from the rules that use it.

pub mod keys;
pub mod password;
