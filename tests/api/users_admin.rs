//! The users admin API on every backend: self-service limits, the last super_admin (also under a race), disable, soft delete and purge with their audit rows, and values a database refuses answered 422.

use serde_json::json;

use crate::helpers::{PASSWORD, TestDb, USER_AGENT};

async fn self_service_and_the_last_super_admin(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (me_id, ada) = s.user_as(&root, "ada@example.com", &["user"]).await;
    let mine = format!("/api/v1/users/{me_id}");
    let res = s
        .patch(
            &mine,
            &ada,
            json!({"name": "Ada L.", "metadata": {"theme": "dark"}}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        (res.body["name"].as_str(), &res.body["metadata"]),
        (Some("Ada L."), &json!({"theme": "dark"}))
    );
    for patch in [json!({"active": false}), json!({"roles": ["admin"]})] {
        let res = s.patch(&mine, &ada, patch).await;
        assert_eq!(res.status, 403, "{}", res.body);
    }
    let res = s
        .put(
            &format!("{mine}/roles"),
            &ada,
            json!({"roles": ["moderator"]}),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = s.patch(&mine, &ada, json!({"metadata": [1]})).await;
    assert_eq!(res.field_error(), (422, "not_an_object"));
    let res = s
        .patch(&mine, &ada, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(res.status, 400);

    // The only super_admin can neither lower itself, nor be disabled or deleted.
    let root_path = format!("/api/v1/users/{}", s.user_id(&root).await);
    let root_roles = format!("{root_path}/roles");
    let res = s.put(&root_roles, &root, json!({"roles": ["admin"]})).await;
    assert_eq!(res.problem(), (403, "cannot_lower_own_role"));
    let res = s.patch(&root_path, &root, json!({"active": false})).await;
    assert_eq!(res.problem(), (409, "last_super_admin"));
    let res = s.delete(&root_path, &root).await;
    assert_eq!(res.problem(), (409, "last_super_admin"));

    // Two super_admins demoting each other at the same instant: exactly one wins.
    let (other_id, other) = s
        .user_as(&root, "second@example.com", &["super_admin"])
        .await;
    let other_path = format!("/api/v1/users/{other_id}/roles");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let race = |token: String, path: String| {
        let (client, url, barrier) = (s.client.clone(), s.url(&path), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            client
                .put(url)
                .bearer_auth(token)
                .json(&json!({"roles": ["admin"]}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let (a, b) = (
        race(root.clone(), other_path),
        race(other.clone(), root_roles),
    );
    let mut statuses = vec![a.await.unwrap().as_u16(), b.await.unwrap().as_u16()];
    statuses.sort();
    // The loser either raced the winner (409 last_super_admin) or was already an admin when its
    // call was checked (403: an admin cannot manage a super_admin).
    assert!(
        statuses == vec![200, 409] || statuses == vec![200, 403],
        "exactly one demotion wins: {statuses:?}"
    );
    let page = s.get("/api/v1/users?role=super_admin", &root).await.body;
    let page2 = s.get("/api/v1/users?role=super_admin", &other).await.body;
    let total = page["total"].as_u64().or(page2["total"].as_u64());
    assert_eq!(total, Some(1), "{page} {page2}");
    s.stop().await;
}

async fn disable_delete_and_purge(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (_, moderator) = s.user_as(&root, "mod@example.com", &["moderator"]).await;
    let id = s.create_user(&root, "bob@example.com", &["user"]).await;
    let path = format!("/api/v1/users/{id}");
    let bob = s.login("bob@example.com").await;

    // Disabling cuts every session at once; enabling lets the user log in again.
    let res = s.patch(&path, &moderator, json!({"active": false})).await;
    assert_eq!(
        (res.status.as_u16(), res.body["active"].as_bool()),
        (200, Some(false))
    );
    assert_eq!(s.me(&bob.access).await.status, 401);
    assert_eq!(s.refresh(&bob.refresh).await.status, 401);
    let res = s.login_with("bob@example.com", PASSWORD).await;
    assert_eq!(res.problem(), (403, "account_disabled"));
    let res = s.patch(&path, &moderator, json!({"active": true})).await;
    assert_eq!(res.status, 200);
    let bob = s.login("bob@example.com").await;

    // Soft delete: sessions die, login fails, the account disappears, the email stays taken.
    assert_eq!(s.delete(&path, &moderator).await.status, 204);
    assert_eq!(s.me(&bob.access).await.status, 401);
    assert_eq!(s.login_with("bob@example.com", PASSWORD).await.status, 401);
    assert_eq!(s.get(&path, &root).await.status, 404);
    assert_eq!(s.delete(&path, &moderator).await.status, 404);
    let page = s.get("/api/v1/users?q=bob", &root).await.body;
    assert_eq!(page["total"], 0);
    let register = json!({"email": "BOB@example.com", "password": PASSWORD});
    let res = s
        .post_public("/api/v1/auth/register", register.clone())
        .await;
    assert_eq!(res.problem(), (409, "email_taken"));

    // Purge is for admins; it frees the email.
    let purge = format!("{path}?purge=true");
    let res = s.delete(&purge, &moderator).await;
    assert_eq!(res.problem(), (403, "insufficient_role"));
    assert_eq!(s.delete(&purge, &root).await.status, 204);
    let res = s.post_public("/api/v1/auth/register", register).await;
    assert_eq!(res.status, 201);

    // Every admin action is in the audit log with actor, target, IP and user agent.
    let page = s
        .get(&format!("/api/v1/audit?user_id={id}&per_page=200"), &root)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let items = page.body["items"].as_array().unwrap();
    let events: Vec<&str> = items.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for event in [
        "user_created",
        "user_disabled",
        "user_enabled",
        "user_deleted",
        "user_purged",
    ] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    let disabled = items
        .iter()
        .find(|e| e["event"] == "user_disabled")
        .unwrap();
    assert_eq!(disabled["ip_address"], "127.0.0.1");
    assert_eq!(disabled["user_agent"], USER_AGENT);
    assert_eq!(disabled["user_id"].as_str(), Some(id.as_str()));
    assert!(disabled["actor_id"].is_string());
    assert!(disabled["detail"]["sessions_revoked"].as_u64().unwrap() >= 1);
    s.stop().await;
}

async fn values_a_database_refuses_are_422_not_500(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let mine = format!("/api/v1/users/{}", s.user_id(&root).await);
    let register = json!({"email": "nul@example.com", "password": PASSWORD, "name": "a\u{0}b"});
    let res = s.post_public("/api/v1/auth/register", register).await;
    assert_eq!(res.field_error(), (422, "invalid_characters"));
    let res = s
        .patch(&mine, &root, json!({"metadata": {"k": "\u{0}"}}))
        .await;
    assert_eq!(res.status, 422);
    let key = json!({"name": "a\u{0}", "scopes": ["introspect"]});
    assert_eq!(s.post("/api/v1/api-keys", &root, key).await.status, 422);
    for page in ["18446744073709551615", "9223372036854775807", "1000001"] {
        let res = s
            .get(&format!("/api/v1/users?page={page}&per_page=200"), &root)
            .await;
        assert_eq!(res.status, 422, "page {page}");
    }
    // Searching for a NUL finds nothing or is refused, never a server error.
    for path in ["/api/v1/users?q=%00", "/api/v1/audit?event=%00"] {
        let status = s.get(path, &root).await.status;
        assert!(status == 200 || status == 422, "{path}: {status}");
    }
    s.stop().await;
}

per_backend!(
    self_service_and_the_last_super_admin,
    disable_delete_and_purge,
    values_a_database_refuses_are_422_not_500,
);
