//! Sessions on every backend: listing and revoking cut access at once, logout and logout-all, a password change ending the other sessions, the client address behind trusted proxies, and the admin cleanup.

use serde_json::json;

use crate::helpers::{PASSWORD, TestDb, USER_AGENT, WRONG_PASSWORD};

async fn sessions_list_and_revocation_cut_access_at_once(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    s.register("bob@example.com").await;
    let a1 = s.login("ada@example.com").await;
    let a2 = s.login("ada@example.com").await;
    let a3 = s.login("ada@example.com").await;
    let b1 = s.login("bob@example.com").await;
    let t1 = a1.access.as_str();
    let list = s
        .client
        .get(s.url("/api/v1/auth/sessions"))
        .bearer_auth(t1)
        .header("user-agent", "gatehouse-test/1")
        .send()
        .await
        .unwrap();
    let list = crate::helpers::Reply::read(list).await.body;
    assert_eq!(list["total"], 3);
    let sessions = list["sessions"].as_array().unwrap();
    let current: Vec<_> = sessions.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], a1.session_id);
    assert_eq!(current[0]["ip_address"], "127.0.0.1");
    assert_eq!(current[0]["aal"], "aal1");
    assert!(sessions.iter().all(|x| x["id"] != b1.session_id));

    // Someone else's session, an unknown id, a malformed id: 404.
    for id in [
        b1.session_id.as_str(),
        &uuid::Uuid::now_v7().to_string(),
        "not-a-uuid",
    ] {
        let res = s.delete(&format!("/api/v1/auth/sessions/{id}"), t1).await;
        assert_eq!(res.problem(), (404, "not_found"));
    }
    assert_eq!(s.me(&b1.access).await.status, 200);

    // Delete a2 from a1: a2's access and refresh tokens die at once.
    let res = s
        .delete(&format!("/api/v1/auth/sessions/{}", a2.session_id), t1)
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(s.me(&a2.access).await.status, 401);
    assert_eq!(s.refresh(&a2.refresh).await.status, 401);
    let list = s.get("/api/v1/auth/sessions", t1).await.body;
    assert_eq!(list["total"], 2);

    // Logout ends only the current session (a JSON body, as some clients send, is fine).
    assert_eq!(
        s.post("/api/v1/auth/logout", &a3.access, json!({}))
            .await
            .status,
        204
    );
    assert_eq!(s.me(&a3.access).await.status, 401);
    assert_eq!(s.me(t1).await.status, 200);

    // Logout-all ends every session of the user, and nobody else's.
    let a4 = s.login("ada@example.com").await;
    assert_eq!(
        s.post("/api/v1/auth/logout-all", t1, json!({}))
            .await
            .status,
        204
    );
    for t in [t1, a4.access.as_str()] {
        assert_eq!(s.me(t).await.status, 401);
    }
    assert_eq!(s.refresh(&a4.refresh).await.status, 401);
    assert_eq!(s.me(&b1.access).await.status, 200);
    db.assert_audited(&["logout", "logout_all", "session_revoked", "user_registered"])
        .await;
    s.stop().await;
}

async fn change_password_revokes_other_sessions(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let keep = s.login("ada@example.com").await;
    let other = s.login("ada@example.com").await;
    let t = keep.access.as_str();
    let change = |old: &str, new: &str| {
        s.post(
            "/api/v1/auth/change-password",
            t,
            json!({"old_password": old, "new_password": new}),
        )
    };
    let res = change(WRONG_PASSWORD, "Battery-Staple7").await;
    assert_eq!(res.problem(), (401, "invalid_credentials"));
    let res = change(PASSWORD, "weak").await;
    assert_eq!(res.problem(), (422, "validation_failed"));
    assert_eq!(s.me(&other.access).await.status, 200);

    let res = change(PASSWORD, "Battery-Staple7").await;
    assert_eq!(res.status, 204);
    assert_eq!(s.me(t).await.status, 200);
    assert_eq!(s.me(&other.access).await.status, 401);
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 401);
    assert_eq!(
        s.login_with("ada@example.com", "Battery-Staple7")
            .await
            .status,
        200
    );
    db.assert_audited(&["password_changed"]).await;
    s.stop().await;
}

async fn client_ip_honours_trusted_proxies_only(db: TestDb) {
    let login_via = |s: &crate::helpers::TestApp, forwarded_for: &'static str| {
        let req = s
            .client
            .post(s.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"email": "ada@example.com", "password": PASSWORD}));
        async move {
            crate::helpers::Reply::read(req.send().await.unwrap())
                .await
                .pair()
        }
    };
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let p = login_via(&s, "198.51.100.7").await;
    let list = s.get("/api/v1/auth/sessions", &p.access).await.body;
    assert_eq!(list["sessions"][0]["ip_address"], "127.0.0.1");
    s.stop().await;
    let s = db.app(&[("TRUSTED_PROXIES", "127.0.0.0/8")]).await;
    let p = login_via(&s, "6.6.6.6, 198.51.100.7").await;
    let current = s.current_session(&p.access).await;
    assert_eq!(current["ip_address"], "198.51.100.7");
    s.stop().await;
}

async fn session_cleanup(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    s.create_user(&root, "cy@example.com", &["user"]).await;
    for _ in 0..3 {
        let pair = s.login("cy@example.com").await;
        assert_eq!(s.logout(&pair.access).await.status, 204);
    }
    let cy = s.login("cy@example.com").await.access;
    let cleanup = "/api/v1/admin/sessions/cleanup";
    assert_eq!(s.post_empty(cleanup, &cy).await.status, 403);
    let res = s.post_empty(cleanup, &root).await;
    assert_eq!(
        (res.status.as_u16(), res.body["deleted"].as_u64()),
        (200, Some(3))
    );
    assert_eq!(s.post_empty(cleanup, &root).await.body["deleted"], 0);
    assert_eq!(s.me(&cy).await.status, 200, "live sessions stay");
    // Every request the tests send names them.
    assert_eq!(s.current_session(&cy).await["user_agent"], USER_AGENT);
    s.stop().await;
}

per_backend!(
    sessions_list_and_revocation_cut_access_at_once,
    change_password_revokes_other_sessions,
    client_ip_honours_trusted_proxies_only,
    session_cleanup,
);
