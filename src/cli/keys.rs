//! `gatehouse keys generate`: fresh secrets to paste into the configuration.

use crate::crypto::keys;

pub(super) fn generate() {
    println!("JWT_SECRET={}", keys::generate_jwt_secret());
    println!("ENCRYPTION_MASTER_KEY={}", keys::generate_master_key());
}
