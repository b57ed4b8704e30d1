//! Argon2id hashing on a bounded pool of dedicated, lower-priority threads, so password work never runs on an async worker, never starves it, and a flood gets `Busy` at once instead of unbounded latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::Mutex;
use std::sync::mpsc;

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
    /// A hash of nothing anyone knows, verified for unknown accounts so they cost the same time.
    dummy: std::sync::OnceLock<String>,
    /// Jobs admitted (running or waiting for a worker).
    admitted: AtomicUsize,
    capacity: usize,
    jobs: Mutex<mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// What a hashing thread keeps between jobs: the configured cost, and the argon2 memory it
/// fills for every check. The memory is kept while jobs are waiting (allocating and zeroing
/// 19 MiB per password was about 8 % of a check when logins saturate the pool) and given back
/// when the queue runs dry, so an idle server holds none of it.
struct Worker {
    params: Params,
    memory: Vec<Block>,
}

impl Worker {
    /// Whether `password` matches the argon2 PHC hash `parsed`, computed in this thread's
    /// memory (a hash of a higher memory cost than the configured one gets its own).
    fn verify_argon2(&mut self, password: &[u8], parsed: &PasswordHash) -> bool {
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let version = parsed.version.map(Version::try_from).transpose();
        let (Ok(algorithm), Ok(version), Ok(params)) = (
            Algorithm::try_from(parsed.algorithm),
            version,
            Params::try_from(parsed),
        ) else {
            return false;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
        let mut out = [0u8; Output::MAX_LENGTH];
        let out = &mut out[..expected.len()];
        let hashed = if blocks <= self.params.block_count() {
            if self.memory.is_empty() {
                self.memory = vec![Block::default(); self.params.block_count()];
            }
            argon2.hash_password_into_with_memory(password, salt, out, &mut self.memory[..blocks])
        } else {
            argon2.hash_password_into(password, salt, out)
        };
        // `Output`'s equality is constant-time.
        hashed.is_ok() && Output::new(out).is_ok_and(|computed| computed == expected)
    }
}

/// How much lower than the async runtime the hashing threads run (Linux nice value): the lowest,
/// so a request thread that wakes takes the core at once (docs/architecture.md).
const HASH_THREAD_NICE: i32 = 19;

fn worker(params: Params, jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut state = Worker {
        params,
        memory: Vec::new(),
    };
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes the scheduling priority of the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, HASH_THREAD_NICE);
    }
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.try_recv().or_else(|_| {
                state.memory = Vec::new();
                rx.recv()
            }),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(&mut state),
            // Every handle is gone: the pool shuts down.
            Err(_) => return,
        }
    }
}

/// Holds an admission slot until the job has run (or was dropped unrun), even if the caller gave up waiting.
struct Admission(Arc<Inner>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
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
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cfg.hash_workers {
            let (params, rx) = (params.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{i}"))
                .spawn(move || worker(params, rx))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dummy: std::sync::OnceLock::new(),
                admitted: AtomicUsize::new(0),
                capacity: cfg.hash_workers + cfg.hash_queue,
                jobs: Mutex::new(tx),
            }),
        })
    }

    fn argon2(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Worker) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let inner = &self.inner;
        if inner.admitted.fetch_add(1, Ordering::AcqRel) >= inner.capacity {
            inner.admitted.fetch_sub(1, Ordering::AcqRel);
            return Err(HashError::Busy);
        }
        let admission = Admission(inner.clone());
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let out = job(worker);
            drop(admission);
            let _ = done.send(out);
        });
        inner
            .jobs
            .lock()
            .map_err(|_| HashError::Failed("hashing pool poisoned".into()))?
            .send(job)
            .map_err(|_| HashError::Failed("hashing pool stopped".into()))?;
        result
            .await
            .map_err(|_| HashError::Failed("hashing job lost".into()))
    }

    fn hash_sync(params: &Params, password: &str) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        Self::argon2(params)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| HashError::Failed(e.to_string()))
    }

    /// A PHC string (`$argon2id$v=19$m=…`) for `password`.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        self.run(move |worker| Self::hash_sync(&worker.params, &password))
            .await?
    }

    /// Check `password` against a stored hash (argon2id PHC, or an imported bcrypt, PBKDF2 or
    /// scrypt hash: see `hash_formats`). With no stored
    /// hash (unknown account) a dummy hash is verified instead, so both cost the same.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verification, HashError> {
        let inner = self.inner.clone();
        self.run(move |worker| {
            let Some(stored) = stored else {
                let dummy = inner.dummy.get_or_init(|| {
                    Self::hash_sync(&worker.params, "gatehouse-dummy").unwrap_or_default()
                });
                if let Ok(parsed) = PasswordHash::new(dummy) {
                    worker.verify_argon2(password.as_bytes(), &parsed);
                }
                return Verification {
                    ok: false,
                    needs_rehash: false,
                };
            };
            if let Some(ok) = super::hash_formats::verify_imported(&password, &stored) {
                return Verification {
                    ok,
                    needs_rehash: ok,
                };
            }
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verification {
                    ok: false,
                    needs_rehash: false,
                };
            };
            let ok = worker.verify_argon2(password.as_bytes(), &parsed);
            let params = &worker.params;
            let current = parsed.algorithm.as_str() == "argon2id"
                && Params::try_from(&parsed).is_ok_and(|p| {
                    p.m_cost() == params.m_cost()
                        && p.t_cost() == params.t_cost()
                        && p.p_cost() == params.p_cost()
                });
            Verification {
                ok,
                needs_rehash: ok && !current,
            }
        })
        .await
    }
}

/// The outcome of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub ok: bool,
    /// The hash is an imported format or has other argon2 parameters: store a fresh one.
    pub needs_rehash: bool,
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

    /// `password` hashed by a pool of its own at `cfg`'s cost.
    async fn hashed_with(cfg: &PasswordConfig, password: &str) -> String {
        let h = PasswordHasher::new(cfg).unwrap();
        h.hash(password.into()).await.unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let h = PasswordHasher::new(&cheap(2, 4)).unwrap();
        let phc = h.hash("Secret-Pass1".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let ok = Verification {
            ok: true,
            needs_rehash: false,
        };
        let no = Verification {
            ok: false,
            needs_rehash: false,
        };
        assert_eq!(
            h.verify("Secret-Pass1".into(), Some(phc.clone()))
                .await
                .unwrap(),
            ok
        );
        assert_eq!(
            h.verify("secret-pass1".into(), Some(phc)).await.unwrap(),
            no
        );
        assert_eq!(
            h.verify("x".into(), Some("not a hash".into()))
                .await
                .unwrap(),
            no
        );
        assert_eq!(h.verify("x".into(), None).await.unwrap(), no);
    }

    #[tokio::test]
    async fn imported_hashes_and_other_costs_verify_and_ask_for_a_rehash() {
        let h = PasswordHasher::new(&cheap(2, 4)).unwrap();
        let mut imported: Vec<String> = [
            bcrypt::Version::TwoA,
            bcrypt::Version::TwoB,
            bcrypt::Version::TwoY,
        ]
        .into_iter()
        .map(|v| {
            bcrypt::hash_with_result("Old-Pass1!", 4)
                .unwrap()
                .format_for_version(v)
        })
        .collect();
        // Werkzeug's and Django's PBKDF2 (vectors from Python's hashlib; more in hash_formats).
        imported.extend([
            "pbkdf2:sha256:1000$Xq3vR8tLm2Pz9KfW$f69118d774ac2d78d56a7894262d313fa8e8619faa7aa82b48406d6c6140ceaf".into(),
            "pbkdf2_sha256$1000$dJ4kQm8RtVz2wXa7bNc5Ye$sascOXKs4PDdNjH0Wf5i45DioUzq/oHVkCJHuQy1SUM=".into(),
        ]);
        for (stored, prefix) in imported
            .into_iter()
            .zip(["$2a$", "$2b$", "$2y$", "pbkdf2:", "pbkdf2_"])
        {
            assert!(stored.starts_with(prefix));
            let v = h
                .verify("Old-Pass1!".into(), Some(stored.clone()))
                .await
                .unwrap();
            assert_eq!(
                v,
                Verification {
                    ok: true,
                    needs_rehash: true
                },
                "{prefix}"
            );
            let v = h.verify("wrong".into(), Some(stored)).await.unwrap();
            assert!(!v.ok && !v.needs_rehash);
        }
        let mut other = cheap(1, 1);
        other.argon2_memory_kib = 128;
        let old = hashed_with(&other, "Secret-Pass1").await;
        let v = h.verify("Secret-Pass1".into(), Some(old)).await.unwrap();
        assert_eq!(
            v,
            Verification {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn one_thread_reuses_its_memory_across_costs_and_answers() {
        // One worker, so every check below runs in the same thread, whatever ran before.
        let mut cfg = cheap(1, 16);
        cfg.argon2_memory_kib = 128;
        let h = PasswordHasher::new(&cfg).unwrap();
        let own = h.hash("Secret-Pass1".into()).await.unwrap();
        let mut smaller = cheap(1, 1);
        smaller.argon2_memory_kib = 64;
        smaller.argon2_iterations = 3;
        let cheaper = hashed_with(&smaller, "Other-Pass2").await;
        // Submitted together, so they queue and each runs in the memory the one before it
        // left (the memory is given back only when the queue runs dry).
        let checks: Vec<_> = (0..3)
            .flat_map(|_| {
                [
                    ("Secret-Pass1", &own, true),
                    ("Other-Pass2", &cheaper, true),
                    ("Other-Pass2", &own, false),
                    ("Secret-Pass1", &cheaper, false),
                ]
            })
            .map(|(password, stored, ok)| {
                let (h, stored) = (h.clone(), stored.clone());
                let check =
                    tokio::spawn(async move { h.verify(password.into(), Some(stored)).await });
                (password, ok, check)
            })
            .collect();
        for (password, ok, check) in checks {
            assert_eq!(check.await.unwrap().unwrap().ok, ok, "{password}");
        }
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
