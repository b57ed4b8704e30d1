//! Service API keys and token introspection on every backend: keys stored hashed, scopes checked on every call, far expiries, expiry and revocation; RFC 7662 answers for every kind of token.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestDb};

async fn service_api_keys(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (_, moderator) = s.user_as(&root, "mod@example.com", &["moderator"]).await;
    let body = json!({"name": "reporting", "scopes": ["users:read", "introspect"]});
    let res = s.post("/api/v1/api-keys", &moderator, body.clone()).await;
    assert_eq!(res.status, 403);
    let created = s
        .api_key(&root, "reporting", &["users:read", "introspect"])
        .await;
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("gh_") && key.len() >= 3 + 22, "{key}");
    let res = s
        .post(
            "/api/v1/api-keys",
            &root,
            json!({"name": "x", "scopes": ["root:everything"]}),
        )
        .await;
    assert_eq!(res.field_error(), (422, "unknown_scope"));

    // Stored hashed: nothing in the table holds the key.
    for row in db.query("SELECT key_hash, key_prefix FROM api_keys").await {
        let hash: String = row.try_get("", "key_hash").unwrap();
        let prefix: String = row.try_get("", "key_prefix").unwrap();
        assert!(!hash.contains(&key[3..]) && key.starts_with(&prefix) && prefix.len() < 12);
    }

    // Scopes are checked on every call.
    assert_eq!(s.get("/api/v1/users", &key).await.status, 200);
    let res = s.get("/api/v1/audit", &key).await;
    assert_eq!(res.problem(), (403, "insufficient_permission"));
    let res = s.me(&key).await;
    assert_eq!(res.problem(), (403, "user_required"));
    let res = s
        .post(
            "/api/v1/users",
            &key,
            json!({"email": "k@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 403);
    let res = s
        .get("/api/v1/users", "gh_forged0000000000000000000000")
        .await;
    assert_eq!(res.problem(), (401, "invalid_api_key"));

    // Listed without the key, with its last use recorded.
    let page = s.get("/api/v1/api-keys", &root).await;
    assert_eq!(page.status, 200);
    let listed = &page.body["items"][0];
    assert!(listed.get("key").is_none() && !page.text.contains(&key));
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert_eq!(listed["scopes"], json!(["users:read", "introspect"]));

    // Far expiries survive every backend (MariaDB would turn a 2040 TIMESTAMP into NULL).
    let expiring = |name: &str, at: &str| {
        let body = json!({"name": name, "scopes": ["audit:read"], "expires_at": at});
        let (s, root) = (&s, &root);
        async move { s.post("/api/v1/api-keys", root, body).await }
    };
    let far = expiring("far", "2040-06-01T00:00:00Z").await;
    assert_eq!(far.status, 201, "{}", far.body);
    let far = far.body;
    assert_eq!(far["expires_at"], "2040-06-01T00:00:00Z");
    let page = s.get("/api/v1/api-keys", &root).await.body;
    let stored = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == far["id"])
        .unwrap()
        .clone();
    assert_eq!(stored["expires_at"], "2040-06-01T00:00:00Z");
    let far_key = far["key"].as_str().unwrap();
    assert_eq!(s.get("/api/v1/audit", far_key).await.status, 200);
    assert_eq!(expiring("past", "2001-01-01T00:00:00Z").await.status, 422);

    // An expired key stops working.
    db.execute("UPDATE api_keys SET expires_at = created_at WHERE name = 'far'")
        .await;
    assert_eq!(s.get("/api/v1/audit", far_key).await.status, 401);

    // Revocation is immediate.
    let revoke = format!("/api/v1/api-keys/{}", created["id"].as_str().unwrap());
    assert_eq!(s.delete(&revoke, &root).await.status, 204);
    assert_eq!(s.get("/api/v1/users", &key).await.status, 401);
    assert_eq!(s.delete(&revoke, &root).await.status, 404);
    assert_eq!(s.audit_total(&root, "event=api_key_revoked").await, 1);
    s.stop().await;
}

async fn token_introspection(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    s.create_user(&root, "ann@example.com", &["user"]).await;
    let ann = s.login("ann@example.com").await;
    let key = s.api_key(&root, "gateway", &["introspect"]).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let reader = s.api_key(&root, "reader", &["users:read"]).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let introspect = |caller: String, token: Value| {
        let s = &s;
        async move {
            s.post("/api/v1/auth/introspect", &caller, json!({"token": token}))
                .await
        }
    };

    let res = introspect(key.clone(), json!(ann.access)).await;
    assert_eq!(res.status, 200);
    let body = res.body;
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["sub"], ann.body["user"]["id"]);
    assert_eq!(body["sid"], ann.session_id);
    assert_eq!(body["roles"], json!(["user"]));
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    let body = introspect(root.clone(), json!(ann.refresh)).await.body;
    assert_eq!(
        (body["active"].as_bool(), body["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    let body = introspect(root.clone(), json!(key)).await.body;
    assert_eq!(
        (body["active"].as_bool(), body["scope"].as_str()),
        (Some(true), Some("introspect"))
    );

    // Anything forged, unknown, spent or revoked is just inactive.
    let mut forged = ann.access.clone();
    forged.pop();
    for token in [
        json!(forged),
        json!("garbage"),
        json!("gh_unknown"),
        json!(""),
    ] {
        let res = introspect(key.clone(), token).await;
        assert_eq!(
            (res.status.as_u16(), res.body),
            (200, json!({"active": false}))
        );
    }
    let next = s.refresh(&ann.refresh).await.pair();
    assert_eq!(
        introspect(key.clone(), json!(ann.refresh)).await.body,
        json!({"active": false}),
        "spent refresh token"
    );
    assert_eq!(
        introspect(key.clone(), json!(next.refresh)).await.body["active"],
        true
    );
    assert_eq!(s.logout(&next.access).await.status, 204);
    assert_eq!(
        introspect(key.clone(), json!(next.access)).await.body,
        json!({"active": false}),
        "logged out"
    );

    // RFC 7662 clients send a form.
    let res = s
        .client
        .post(s.url("/api/v1/auth/introspect"))
        .bearer_auth(&key)
        .form(&[("token", key.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["active"], true);

    // Only admins and keys with the scope may ask.
    let fresh = s.login("ann@example.com").await;
    let res = introspect(fresh.access.clone(), json!(fresh.access)).await;
    assert_eq!(res.problem(), (403, "insufficient_permission"));
    assert_eq!(introspect(reader, json!(fresh.access)).await.status, 403);
    // A key reads users only with `users:read`.
    let user = format!("/api/v1/users/{}", s.user_id(&fresh.access).await);
    let res = s.get(&user, &key).await;
    assert_eq!(res.problem(), (403, "insufficient_permission"));
    let res = s
        .post_public("/api/v1/auth/introspect", json!({"token": "x"}))
        .await;
    assert_eq!(res.status, 401);
    s.stop().await;
}

per_backend!(service_api_keys, token_introspection);
