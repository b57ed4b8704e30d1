//! The password policy and how passwords are hashed (Argon2id cost, hashing threads and their queue).

use super::print::Lines;
use super::{ConfigError, Vars};

#[derive(Debug, Clone)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub require_classes: bool,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Threads that hash passwords (default: the number of cores).
    pub hash_workers: usize,
    /// Hash jobs allowed to wait for a worker before new ones get 503.
    pub hash_queue: usize,
}

impl PasswordConfig {
    /// The password policy these settings describe.
    pub fn policy(&self) -> crate::domain::password_policy::PasswordPolicy {
        crate::domain::password_policy::PasswordPolicy {
            min_length: self.min_length,
            require_classes: self.require_classes,
            ..Default::default()
        }
    }

    pub(super) fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        // Only one algorithm; the variable exists so that a wrong one is refused.
        vars.choice("PASSWORD_HASH", (), &[("argon2id", ())])?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hash_workers: usize = vars.number("PASSWORD_HASH_WORKERS", cores as u64, 1..=1024)?;
        Ok(Self {
            min_length: vars.number("PASSWORD_MIN_LENGTH", 8, 1..=128)?,
            require_classes: vars.bool("PASSWORD_REQUIRE_CLASSES", true)?,
            argon2_memory_kib: vars.number(
                "PASSWORD_ARGON2_MEMORY_KIB",
                19_456,
                8..=4 * 1024 * 1024,
            )?,
            argon2_iterations: vars.number("PASSWORD_ARGON2_ITERATIONS", 2, 1..=100)?,
            argon2_parallelism: vars.number("PASSWORD_ARGON2_PARALLELISM", 1, 1..=64)?,
            hash_workers,
            hash_queue: vars.number(
                "PASSWORD_HASH_QUEUE",
                (hash_workers * 32) as u64,
                1..=1_000_000,
            )?,
        })
    }

    pub(super) fn render(&self, out: &mut Lines) {
        out.value("PASSWORD_MIN_LENGTH", self.min_length);
        out.value("PASSWORD_REQUIRE_CLASSES", self.require_classes);
        out.value("PASSWORD_HASH", "argon2id");
        out.value("PASSWORD_ARGON2_MEMORY_KIB", self.argon2_memory_kib);
        out.value("PASSWORD_ARGON2_ITERATIONS", self.argon2_iterations);
        out.value("PASSWORD_ARGON2_PARALLELISM", self.argon2_parallelism);
        out.value("PASSWORD_HASH_WORKERS", self.hash_workers);
        out.value("PASSWORD_HASH_QUEUE", self.hash_queue);
    }
}
