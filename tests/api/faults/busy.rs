//! The database circuit never refuses what the database could serve: a pool exhausted by a
//! slow caller answers 503 (after `DB_CONNECT_TIMEOUT`, as before), but the database still
//! answers a fresh connection, so the circuit stays closed and the next request succeeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::TransactionTrait;

use crate::helpers::TestDb;

async fn an_exhausted_pool_does_not_open_the_circuit(db: TestDb) {
    let app = db
        .app(&[
            ("DB_POOL_SIZE", "1"),
            ("DB_MAX_OVERFLOW", "0"),
            ("DB_CONNECT_TIMEOUT", "1"),
        ])
        .await;
    let opened = Arc::new(AtomicBool::new(false));
    let watch = {
        let (gh, opened) = (app.gh.clone(), opened.clone());
        tokio::spawn(async move {
            loop {
                if gh.database_circuit().is_open() {
                    opened.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    // Hold the pool's only connection.
    let held = app.gh.db().begin().await.unwrap();
    let res = app
        .post_public(
            "/api/v1/auth/register",
            serde_json::json!({"email": "busy@example.com", "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(res.problem(), (503, "database_unavailable"), "{}", res.body);
    // The suspicion is checked with a fresh connection, which works.
    tokio::time::sleep(Duration::from_millis(500)).await;
    held.rollback().await.unwrap();
    assert_eq!(app.get_public("/ready").await.status, 200);
    app.register("free@example.com").await;
    watch.abort();
    assert!(
        !opened.load(Ordering::Relaxed),
        "the circuit opened while the database was up"
    );
    app.stop().await;
}

per_backend!(an_exhausted_pool_does_not_open_the_circuit);
