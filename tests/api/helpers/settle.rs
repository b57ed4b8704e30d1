//! Waiting until a server has finished everything it started, so a test can say "nothing else happened" without sleeping: what runs after an answer (resend and reset mail) and the mail queue are tasks of the test's runtime, and the runtime can tell when only the long-lived ones are left.

use std::time::Duration;

use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::runtime::{Handle, RuntimeMetrics};

use super::TestApp;

/// The longest a server may need to finish: a message to a dead SMTP server is given up after
/// four attempts 1, 2 and 4 s apart.
const SETTLE_WAIT: Duration = Duration::from_secs(30);

/// The number of alive tasks at an instant when every worker of the runtime is parked and
/// nothing is queued for them; `None` when the runtime is busy. A worker publishes an odd
/// park count when it parks and an even one before it runs a task again, so equal odd counts
/// before and after the reads mean no worker ran anything in between.
fn parked_tasks(metrics: &RuntimeMetrics) -> Option<usize> {
    let parks = || -> Vec<u64> {
        (0..metrics.num_workers())
            .map(|w| metrics.worker_park_unpark_count(w))
            .collect()
    };
    let before = parks();
    let alive = metrics.num_alive_tasks();
    let queued = metrics.global_queue_depth();
    let after = parks();
    (before == after && before.iter().all(|n| n % 2 == 1) && queued == 0).then_some(alive)
}

/// No database connection is checked out (a query or the return of a connection to the pool
/// is a task waiting for the database, not for more work).
fn pool_idle(db: &DatabaseConnection) -> bool {
    let (size, idle) = match db.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle())
        }
        DatabaseBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle())
        }
        _ => {
            let p = db.get_mysql_connection_pool();
            (p.size(), p.num_idle())
        }
    };
    size as usize == idle
}

impl TestApp {
    /// Wait until the runtime is parked with the server's pool idle; the tasks alive then.
    pub(super) async fn quiet_tasks(&self) -> usize {
        self.wait_quiet(|_| true).await
    }

    async fn wait_quiet(&self, done: impl Fn(usize) -> bool) -> usize {
        let metrics = Handle::current().metrics();
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        let mut last = None;
        loop {
            if let Some(alive) = parked_tasks(&metrics).filter(|_| pool_idle(self.gh.db())) {
                if done(alive) {
                    return alive;
                }
                last = Some(alive);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server did not settle in {SETTLE_WAIT:?}: {last:?} tasks alive when idle, {:?} expected",
                self.idle_tasks
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Wait until the server has finished all it started: every task it spawned after it came
    /// up (work done after an answer, mail being sent or retried) has ended and nothing is
    /// queued. Then anything that was going to happen has happened. Only for a server from
    /// [`TestApp::start_settling`]; tasks the test itself leaves in the runtime (another server,
    /// a connection pool not closed) keep it from settling.
    pub async fn settle(&self) {
        let idle = self
            .idle_tasks
            .expect("settle needs a server from TestApp::start_settling");
        self.wait_quiet(|alive| alive == idle).await;
    }
}
