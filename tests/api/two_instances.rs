//! Two servers on one database behave as one on every backend: tokens, a rotation race spread over both, revocation and lockout.

use serde_json::json;

use crate::helpers::{PASSWORD, TestDb, WRONG_PASSWORD, count, distinct, race_on};

async fn two_instances_behave_as_one(db: TestDb) {
    let a = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "4")]).await;
    let b = db.app(&[("AUTH_MAX_LOGIN_ATTEMPTS", "4")]).await;
    a.register("ada@example.com").await;
    let p = a.login("ada@example.com").await;
    let token = p.access.as_str();
    assert_eq!(b.me(token).await.status, 200);

    // Twenty racers on one refresh token, spread over both instances: one successor.
    let results = race_on(
        &[&a, &b],
        20,
        "/api/v1/auth/refresh",
        |_| json!({"refresh_token": p.refresh}),
    )
    .await;
    assert_eq!(count(&results, 200), 20);
    assert_eq!(distinct(&results, "refresh_token").len(), 1);

    // Logout on B cuts the token on A at once.
    assert_eq!(
        b.post("/api/v1/auth/logout", token, json!({})).await.status,
        204
    );
    assert_eq!(a.me(token).await.status, 401);

    // Parallel wrong passwords over both instances lock at exactly the limit.
    let results = race_on(
        &[&a, &b],
        16,
        "/api/v1/auth/login",
        |_| json!({"email": "ada@example.com", "password": WRONG_PASSWORD}),
    )
    .await;
    assert_eq!(count(&results, 401), 4, "{results:?}");
    assert_eq!(count(&results, 423), 12, "{results:?}");
    assert_eq!(b.login_with("ada@example.com", PASSWORD).await.status, 423);
    a.stop().await;
    b.stop().await;
}

per_backend!(two_instances_behave_as_one);
