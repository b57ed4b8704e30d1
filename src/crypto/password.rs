//! Argon2id hashing on a bounded pool of blocking threads, so password work never runs on an async worker and a flood gets `Busy` at once instead of unbounded latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordConfig;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: try again shortly.
    #[error("the password hashing queue is full")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// A cloneable handle to the hashing pool.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    workers: Semaphore,
    /// Jobs admitted (running or waiting for a worker).
    admitted: AtomicUsize,
    capacity: usize,
}

/// Releases the admission slot when dropped (also on cancellation).
struct Admission<'a>(&'a AtomicUsize);

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordHasher {
    pub fn new(cfg: &PasswordConfig) -> Result<Self, HashError> {
        let params = Params::new(
            cfg.argon2_memory_kib,
            cfg.argon2_iterations,
            cfg.argon2_parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                workers: Semaphore::new(cfg.hash_workers),
                admitted: AtomicUsize::new(0),
                capacity: cfg.hash_workers + cfg.hash_queue,
            }),
        })
    }

    fn argon2(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Params) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = &self.inner;
        if inner.admitted.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let _admission = Admission(&inner.admitted);
        let _permit = inner
            .workers
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let params = inner.params.clone();
        tokio::task::spawn_blocking(move || job(&params))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |params| {
            let salt = SaltString::generate(&mut OsRng);
            Self::argon2(params)
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await?
    }

    /// Whether `password` matches the stored PHC hash (a malformed hash never matches).
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        self.run(move |params| {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return false;
            };
            Self::argon2(params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(workers: usize, queue: usize) -> PasswordConfig {
        PasswordConfig {
            min_length: 8,
            require_classes: true,
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            hash_workers: workers,
            hash_queue: queue,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let h = PasswordHasher::new(&cheap(2, 4)).unwrap();
        let phc = h.hash("Secret-Pass1".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify("Secret-Pass1".into(), phc.clone()).await.unwrap());
        assert!(!h.verify("secret-pass1".into(), phc).await.unwrap());
        assert!(!h.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let mut cfg = cheap(1, 1);
        cfg.argon2_memory_kib = 64 * 1024;
        cfg.argon2_iterations = 8;
        let h = PasswordHasher::new(&cfg).unwrap();
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash("Secret-Pass1".into()).await })
            })
            .collect();
        let mut busy = 0;
        let mut done = 0;
        for j in jobs {
            match j.await.unwrap() {
                Ok(_) => done += 1,
                Err(HashError::Busy) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(done >= 1 && busy >= 1, "done={done} busy={busy}");
        assert_eq!(done + busy, 8);
        // Slots are given back: the pool works again afterwards.
        assert!(h.hash("Secret-Pass1".into()).await.is_ok());
    }
}
