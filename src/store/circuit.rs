//! The database circuit: once the server knows its database is unreachable, requests that need
//! it are answered 503 at once instead of each waiting `DB_CONNECT_TIMEOUT` for a pool
//! connection; a background probe closes the circuit as soon as the database answers again.
//!
//! It can only open on evidence that the database is unreachable, never on a slow or busy one:
//! a request's `StoreError::Unavailable` (a refused or broken connection, an exhausted pool) is
//! only a *suspicion*, and the circuit opens when a fresh connection of its own (not one from
//! the pool, which may be exhausted, and without the pool's retries) then fails within
//! `DB_CONNECT_TIMEOUT`: refused, reset, timed out, or "starting up / shutting down". A server
//! that answers at all, even "too many connections", is reachable. While open, the probe tries
//! every 200 ms and the first `SELECT 1` that succeeds closes the circuit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::StoreError;
use super::db::{Reach, Target};
use crate::config::DatabaseConfig;

/// How often an open circuit probes the database.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// The longest a probe of an open circuit waits (at most `DB_CONNECT_TIMEOUT`): the database
/// was already found unreachable, and a probe that hangs must not delay the next one.
pub const OPEN_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database is known to be unreachable. Cheap to clone; the probe task ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Circuit {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    /// How long a fresh connection may take before the database counts as unreachable.
    confirm_timeout: Duration,
    open: AtomicBool,
    opened_at: Mutex<Option<Instant>>,
    state: watch::Sender<bool>,
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Let the probe task see that the circuit is gone, and end.
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("open", &self.is_open())
            .finish()
    }
}

impl Circuit {
    /// A closed circuit for this database, with its probe task (started on the current Tokio
    /// runtime; outside one the circuit never opens).
    pub fn new(cfg: &DatabaseConfig) -> Result<Self, StoreError> {
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            target: Target::new(cfg)?,
            confirm_timeout: cfg.connect_timeout,
            open: AtomicBool::new(false),
            opened_at: Mutex::new(None),
            state: watch::channel(false).0,
            wake: wake.clone(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(probe_task(Arc::downgrade(&shared), wake));
        }
        Ok(Self { shared })
    }

    /// The database is known to be unreachable: answer 503 without trying it.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// A request could not reach the database: check with a fresh connection, and open the
    /// circuit if that fails too. Returns at once; many calls make one check.
    pub fn suspect(&self) {
        if !self.is_open() {
            self.shared.wake.notify_one();
        }
    }

    /// Resolves when the circuit opens (at once if it is open). Create it before the work it
    /// guards, so an opening during that work is seen.
    pub fn opened(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.shared.state.subscribe();
        async move {
            if rx.wait_for(|open| *open).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Shared {
    fn trip(&self, why: &str) {
        if self.open.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.opened_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.state.send_replace(true);
        metrics::gauge!("gatehouse_database_circuit_open").set(1.0);
        tracing::warn!(
            error = %why,
            "database unreachable: answering 503 at once until it answers again"
        );
    }

    fn close(&self) {
        if !self.open.swap(false, Ordering::AcqRel) {
            return;
        }
        let since = self
            .opened_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.state.send_replace(false);
        metrics::gauge!("gatehouse_database_circuit_open").set(0.0);
        tracing::warn!(
            unreachable_ms = since.map(|t| t.elapsed().as_millis() as u64),
            "database answers again"
        );
    }
}

/// Sleeps until a suspicion, confirms it with a fresh connection, and while the circuit is open
/// probes every [`PROBE_INTERVAL`] until the database answers.
async fn probe_task(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(s) = shared.upgrade() else { return };
        if !s.open.load(Ordering::Acquire) {
            match s.target.probe(s.confirm_timeout).await {
                Reach::Down(why) => s.trip(&why),
                Reach::TimedOut(_) => s.trip("no connection within the connect timeout"),
                Reach::Up(_) | Reach::Answered(_) => {
                    // Reachable: a burst of suspicions (an exhausted pool) makes one probe per
                    // interval at most.
                    drop(s);
                    tokio::time::sleep(PROBE_INTERVAL).await;
                    continue;
                }
            }
        }
        let timeout = s.confirm_timeout.min(OPEN_PROBE_TIMEOUT);
        drop(s);
        loop {
            tokio::time::sleep(PROBE_INTERVAL).await;
            let Some(s) = shared.upgrade() else { return };
            match s.target.probe(timeout).await {
                Reach::Up(_) | Reach::Answered(_) => {
                    s.close();
                    break;
                }
                Reach::Down(why) => tracing::debug!(error = %why, "database still unreachable"),
                Reach::TimedOut(_) => tracing::debug!("database still unreachable (no answer)"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn opens_within(circuit: &Circuit, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if circuit.is_open() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_refused_connection_opens_it_and_a_reachable_database_does_not() {
        // Nothing listens on port 1: refused at once.
        let cfg = DatabaseConfig::from_url("postgres://gh@127.0.0.1:1/gh").unwrap();
        let circuit = Circuit::new(&cfg).unwrap();
        let opened = circuit.opened();
        assert!(!circuit.is_open());
        circuit.suspect();
        assert!(opens_within(&circuit, Duration::from_secs(3)).await);
        tokio::time::timeout(Duration::from_secs(1), opened)
            .await
            .expect("opened() resolves when it opens");

        let cfg = DatabaseConfig::from_url("sqlite::memory:").unwrap();
        let circuit = Circuit::new(&cfg).unwrap();
        circuit.suspect();
        assert!(!opens_within(&circuit, Duration::from_millis(500)).await);
    }
}
