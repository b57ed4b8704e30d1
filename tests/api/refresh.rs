//! Refresh-token rotation on every backend: the grace for two tabs racing, replay revoking the session, and twenty parallel refreshes converging on one successor.

use serde_json::json;

use crate::helpers::{TestDb, count, distinct};

async fn refresh_rotates_with_grace_and_revokes_on_replay(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let first = s.login("ada@example.com").await;
    let r0 = first.refresh.as_str();
    let second = s.refresh(r0).await.pair();
    let r1 = second.refresh.as_str();
    assert_ne!(r0, r1);
    assert_eq!(second.session_id, first.session_id);
    assert_ne!(second.access, first.access);
    // Within the grace: the same successor again (two tabs racing).
    let again = s.refresh(r0).await.pair();
    assert_eq!(again.refresh, second.refresh);
    assert_eq!(s.me(&again.access).await.status, 200);
    // The successor itself rotates normally.
    let third = s.refresh(r1).await.pair();
    // r0 is now two generations old: replay, the whole session dies.
    let res = s.refresh(r0).await;
    assert_eq!(res.problem(), (401, "refresh_token_reused"));
    assert_eq!(s.me(&third.access).await.status, 401);
    assert_eq!(s.refresh(&third.refresh).await.status, 401);
    db.assert_audited(&["refresh_token_reused"]).await;
    s.stop().await;
}

async fn reuse_after_the_grace_revokes_the_session(db: TestDb) {
    let s = db.app(&[("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    s.register("ada@example.com").await;
    let first = s.login("ada@example.com").await;
    let other = s.login("ada@example.com").await;
    let second = s.refresh(&first.refresh).await.pair();
    // No waiting: a zero grace ends at the very microsecond of the rotation (instants are
    // stored to the microsecond on every backend), and this request starts after its answer.
    let res = s.refresh(&first.refresh).await;
    assert_eq!(res.problem(), (401, "refresh_token_reused"));
    assert_eq!(s.me(&second.access).await.status, 401);
    // Only that session: the user's other login lives on.
    assert_eq!(s.me(&other.access).await.status, 200);
    s.stop().await;
}

async fn twenty_parallel_refreshes_converge_on_one_successor(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let first = s.login("ada@example.com").await;
    let results = s
        .race(
            20,
            "/api/v1/auth/refresh",
            |_| json!({"refresh_token": first.refresh}),
        )
        .await;
    assert_eq!(count(&results, 200), 20);
    let successors = distinct(&results, "refresh_token");
    assert_eq!(successors.len(), 1, "{successors:?}");
    // The session advanced exactly one generation.
    let conn = db.connect().await;
    let sid = uuid::Uuid::parse_str(&first.session_id).unwrap();
    let row = gatehouse::store::sessions::find(&conn, sid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.refresh_generation, 1);
    assert!(row.revoked_at.is_none());
    conn.close().await.unwrap();
    let next = successors.into_iter().next().unwrap();
    assert_eq!(s.refresh(next).await.status, 200);
    s.stop().await;
}

per_backend!(
    refresh_rotates_with_grace_and_revokes_on_replay,
    reuse_after_the_grace_revokes_the_session,
    twenty_parallel_refreshes_converge_on_one_successor,
);
