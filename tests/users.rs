//! The users admin API, roles, audit log, service API keys and introspection through HTTP on every backend: each tier's rights, soft delete and purge, the last super_admin under races, scopes, and the extractors in a host app.

mod common;

use axum::Router;
use axum::routing::get;
use common::{TestDb, TestServer};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

const PASSWORD: &str = "Correct-Horse9";
const ROOT: &str = "root@example.com";
const TIERS: [&str; 5] = ["super_admin", "admin", "moderator", "user", "guest"];

/// `MANAGES[a][t]`: may tier `a` manage tier `t` (the contract's rule, spelled out).
const MANAGES: [[bool; 5]; 5] = [
    [true, true, true, true, true],
    [false, false, true, true, true],
    [false, false, false, true, true],
    [false, false, false, false, true],
    [false, false, false, false, false],
];

async fn call(
    s: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = s
        .client
        .request(method, s.url(path))
        .header("user-agent", "users-test/1");
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn login(s: &TestServer, email: &str) -> Value {
    let (status, body) = call(
        s,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "login {email}: {body}");
    body
}

/// A server with a super_admin; returns it and the super_admin's access token.
async fn setup(db: &TestDb) -> (TestServer, String) {
    let s = db.server(&[]).await;
    s.gh.accounts()
        .ensure_super_admin(ROOT, Some(PASSWORD))
        .await
        .unwrap();
    let token = login(&s, ROOT).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (s, token)
}

/// Create a user with `roles` as `token`; returns its id.
async fn create(s: &TestServer, token: &str, email: &str, roles: &[&str]) -> String {
    let (status, body) = call(
        s,
        Method::POST,
        "/api/v1/users",
        Some(token),
        Some(json!({"email": email, "password": PASSWORD, "name": email, "roles": roles})),
    )
    .await;
    assert_eq!(status, 201, "create {email}: {body}");
    assert_eq!(body["roles"], json!(roles));
    body["id"].as_str().unwrap().to_string()
}

fn access(pair: &Value) -> String {
    pair["access_token"].as_str().unwrap().to_string()
}

async fn role_checks_for_every_tier(db: TestDb) {
    let (s, root) = setup(&db).await;
    let mut actors = Vec::new();
    for tier in TIERS {
        let email = format!("actor-{tier}@example.com");
        create(&s, &root, &email, &[tier]).await;
        actors.push(access(&login(&s, &email).await));
    }
    for (a, actor) in actors.iter().enumerate() {
        let sees = a <= 2;
        let admin = a <= 1;
        let (status, _) = call(&s, Method::GET, "/api/v1/users", Some(actor), None).await;
        assert_eq!(status, if sees { 200 } else { 403 }, "{} lists", TIERS[a]);
        let (status, _) = call(&s, Method::GET, "/api/v1/audit", Some(actor), None).await;
        assert_eq!(status, if admin { 200 } else { 403 }, "{} audit", TIERS[a]);
        let (status, body) = call(&s, Method::GET, "/api/v1/roles", Some(actor), None).await;
        assert_eq!(status, 200);
        assert_eq!(body["roles"].as_array().unwrap().len(), 5);
        let (status, body) = call(
            &s,
            Method::POST,
            "/api/v1/users",
            Some(actor),
            Some(json!({"email": format!("made-by-{a}@example.com"), "password": PASSWORD})),
        )
        .await;
        assert_eq!(
            status,
            if admin { 201 } else { 403 },
            "{} creates: {body}",
            TIERS[a]
        );

        for (t, tier) in TIERS.iter().enumerate() {
            let target = create(&s, &root, &format!("t-{a}-{t}@example.com"), &[tier]).await;
            let path = format!("/api/v1/users/{target}");
            let who = format!("{} on {}", TIERS[a], tier);
            let denied = if !sees {
                StatusCode::NOT_FOUND
            } else if MANAGES[a][t] {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };

            let (status, body) = call(&s, Method::GET, &path, Some(actor), None).await;
            assert_eq!(status, if sees { 200 } else { 404 }, "{who} reads");
            if !sees {
                assert_eq!(body["code"], "not_found");
            }
            let (status, body) = call(
                &s,
                Method::PATCH,
                &path,
                Some(actor),
                Some(json!({"name": "Renamed"})),
            )
            .await;
            assert_eq!(status, denied, "{who} renames: {body}");
            if status == 403 {
                assert_eq!(body["code"], "cannot_manage_user");
            }
            // Demoting the target to guest also needs the right to take its role away.
            let (status, body) = call(
                &s,
                Method::PUT,
                &format!("{path}/roles"),
                Some(actor),
                Some(json!({"roles": ["guest"]})),
            )
            .await;
            assert_eq!(status, denied, "{who} sets roles: {body}");
            if status == 200 {
                assert_eq!(body["roles"], json!(["guest"]));
            }
            // Granting a role at the actor's own level is for super_admin only.
            if a > 0 && sees && MANAGES[a][t] {
                let (status, body) = call(
                    &s,
                    Method::PUT,
                    &format!("{path}/roles"),
                    Some(actor),
                    Some(json!({"roles": [TIERS[a]]})),
                )
                .await;
                assert_eq!(status, 403, "{who} grants its own role");
                assert_eq!(body["code"], "role_not_grantable");
            }
            let (status, _) = call(&s, Method::DELETE, &path, Some(actor), None).await;
            let deleted = if denied == StatusCode::OK {
                StatusCode::NO_CONTENT
            } else {
                denied
            };
            assert_eq!(status, deleted, "{who} deletes");
        }
    }
    s.stop().await;
}

async fn self_service_and_the_last_super_admin(db: TestDb) {
    let (s, root) = setup(&db).await;
    let me_id = create(&s, &root, "ada@example.com", &["user"]).await;
    let ada = access(&login(&s, "ada@example.com").await);
    let mine = format!("/api/v1/users/{me_id}");
    let (status, body) = call(
        &s,
        Method::PATCH,
        &mine,
        Some(&ada),
        Some(json!({"name": "Ada L.", "metadata": {"theme": "dark"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["name"].as_str(), &body["metadata"]),
        (Some("Ada L."), &json!({"theme": "dark"}))
    );
    for patch in [json!({"active": false}), json!({"roles": ["admin"]})] {
        let (status, body) = call(&s, Method::PATCH, &mine, Some(&ada), Some(patch)).await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, _) = call(
        &s,
        Method::PUT,
        &format!("{mine}/roles"),
        Some(&ada),
        Some(json!({"roles": ["moderator"]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &s,
        Method::PATCH,
        &mine,
        Some(&ada),
        Some(json!({"metadata": [1]})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_an_object"))
    );
    let (status, _) = call(
        &s,
        Method::PATCH,
        &mine,
        Some(&ada),
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    assert_eq!(status, 400);

    // The only super_admin can neither lower itself, nor be disabled or deleted.
    let (status, me) = call(&s, Method::GET, "/api/v1/auth/me", Some(&root), None).await;
    assert_eq!(status, 200);
    let root_path = format!("/api/v1/users/{}", me["user"]["id"].as_str().unwrap());
    let (status, body) = call(
        &s,
        Method::PUT,
        &format!("{root_path}/roles"),
        Some(&root),
        Some(json!({"roles": ["admin"]})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("cannot_lower_own_role"))
    );
    let (status, body) = call(
        &s,
        Method::PATCH,
        &root_path,
        Some(&root),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_super_admin"))
    );
    let (status, body) = call(&s, Method::DELETE, &root_path, Some(&root), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_super_admin"))
    );

    // Two super_admins demoting each other at the same instant: exactly one wins.
    let other_id = create(&s, &root, "second@example.com", &["super_admin"]).await;
    let other = access(&login(&s, "second@example.com").await);
    let other_path = format!("/api/v1/users/{other_id}/roles");
    let root_roles = format!("{root_path}/roles");
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
    let (_, page) = call(
        &s,
        Method::GET,
        "/api/v1/users?role=super_admin",
        Some(&root),
        None,
    )
    .await;
    let (_, page2) = call(
        &s,
        Method::GET,
        "/api/v1/users?role=super_admin",
        Some(&other),
        None,
    )
    .await;
    let total = page["total"].as_u64().or(page2["total"].as_u64());
    assert_eq!(total, Some(1), "{page} {page2}");
    s.stop().await;
}

async fn disable_delete_and_purge(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "mod@example.com", &["moderator"]).await;
    let moderator = access(&login(&s, "mod@example.com").await);
    let id = create(&s, &root, "bob@example.com", &["user"]).await;
    let path = format!("/api/v1/users/{id}");
    let bob = login(&s, "bob@example.com").await;

    // Disabling cuts every session at once; enabling lets the user log in again.
    let (status, body) = call(
        &s,
        Method::PATCH,
        &path,
        Some(&moderator),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(
        (status, body["active"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (status, _) = call(
        &s,
        Method::GET,
        "/api/v1/auth/me",
        Some(&access(&bob)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": bob["refresh_token"]})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "bob@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("account_disabled"))
    );
    let (status, _) = call(
        &s,
        Method::PATCH,
        &path,
        Some(&moderator),
        Some(json!({"active": true})),
    )
    .await;
    assert_eq!(status, 200);
    let bob = login(&s, "bob@example.com").await;

    // Soft delete: sessions die, login fails, the account disappears, the email stays taken.
    let (status, _) = call(&s, Method::DELETE, &path, Some(&moderator), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &s,
        Method::GET,
        "/api/v1/auth/me",
        Some(&access(&bob)),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"email": "bob@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = call(&s, Method::GET, &path, Some(&root), None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&s, Method::DELETE, &path, Some(&moderator), None).await;
    assert_eq!(status, 404);
    let (_, page) = call(&s, Method::GET, "/api/v1/users?q=bob", Some(&root), None).await;
    assert_eq!(page["total"], 0);
    let register = json!({"email": "BOB@example.com", "password": PASSWORD});
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(register.clone()),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );

    // Purge is for admins; it frees the email.
    let (status, body) = call(
        &s,
        Method::DELETE,
        &format!("{path}?purge=true"),
        Some(&moderator),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_role"))
    );
    let (status, _) = call(
        &s,
        Method::DELETE,
        &format!("{path}?purge=true"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(register),
    )
    .await;
    assert_eq!(status, 201);

    // Every admin action is in the audit log with actor, target, IP and user agent.
    let (status, page) = call(
        &s,
        Method::GET,
        &format!("/api/v1/audit?user_id={id}&per_page=200"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let events: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for event in [
        "user_created",
        "user_disabled",
        "user_enabled",
        "user_deleted",
        "user_purged",
    ] {
        assert!(events.contains(&event), "{event} in {events:?}");
    }
    let disabled = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "user_disabled")
        .unwrap();
    assert_eq!(disabled["ip_address"], "127.0.0.1");
    assert_eq!(disabled["user_agent"], "users-test/1");
    assert_eq!(disabled["user_id"].as_str(), Some(id.as_str()));
    assert!(disabled["actor_id"].is_string());
    assert!(disabled["detail"]["sessions_revoked"].as_u64().unwrap() >= 1);
    s.stop().await;
}

async fn listing_filters_and_pages(db: TestDb) {
    let (s, root) = setup(&db).await;
    for (i, name) in [
        "Zoë Quinn",
        "Ada Byron",
        "Grace Hopper",
        "Alan 100%",
        "Edsger",
    ]
    .iter()
    .enumerate()
    {
        let role = if i % 2 == 0 { "moderator" } else { "guest" };
        let (status, _) = call(&s, Method::POST, "/api/v1/users", Some(&root), Some(json!({
            "email": format!("Person{i}@Example.com"), "password": PASSWORD, "name": name, "roles": [role]
        }))).await;
        assert_eq!(status, 201);
    }
    let (status, page) = call(
        &s,
        Method::GET,
        "/api/v1/users?per_page=2",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            page["total"].as_u64(),
            page["per_page"].as_u64(),
            page["page"].as_u64()
        ),
        (Some(6), Some(2), Some(1))
    );
    let mut seen = Vec::new();
    for p in 1..=3 {
        let (_, page) = call(
            &s,
            Method::GET,
            &format!("/api/v1/users?per_page=2&page={p}"),
            Some(&root),
            None,
        )
        .await;
        for u in page["items"].as_array().unwrap() {
            seen.push(u["email"].as_str().unwrap().to_string());
        }
    }
    let expected: Vec<String> = std::iter::once(ROOT.to_string())
        .chain((0..5).map(|i| format!("Person{i}@Example.com")))
        .collect();
    assert_eq!(
        seen, expected,
        "oldest first, no gaps or repeats across pages"
    );
    let q = |query: &str| {
        let path = format!("/api/v1/users?{query}");
        let (s, root) = (&s, &root);
        async move { call(s, Method::GET, &path, Some(root), None).await }
    };
    assert_eq!(q("role=moderator").await.1["total"], 3);
    assert_eq!(q("role=guest&q=alan").await.1["total"], 1);
    assert_eq!(q("q=PERSON3").await.1["total"], 1, "case-insensitive email");
    assert_eq!(q("q=grace%20hop").await.1["total"], 1, "name");
    assert_eq!(q("q=%25").await.1["total"], 1, "a literal percent sign");
    assert_eq!(q("q=zo%C3%AB").await.1["total"], 1);
    let (_, page) = q("per_page=500").await;
    assert_eq!(page["per_page"], 200);
    let (status, body) = q("page=0").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert_eq!(q("role=emperor").await.0, 422);
    assert_eq!(q("active=maybe").await.0, 400);
    let (_, me) = call(&s, Method::GET, "/api/v1/auth/me", Some(&root), None).await;
    let id = me["user"]["id"].as_str().unwrap();
    let (_, page) = q("q=person1").await;
    let target = page["items"][0]["id"].as_str().unwrap().to_string();
    call(
        &s,
        Method::PATCH,
        &format!("/api/v1/users/{target}"),
        Some(&root),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(q("active=false").await.1["total"], 1);
    assert_eq!(q("active=true").await.1["total"], 5);

    // The audit log, filtered and paged.
    let (status, page) = call(
        &s,
        Method::GET,
        "/api/v1/audit?event=user_created&per_page=2",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 5);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_id"] == id)
    );
    let first = page["items"][0]["at"].as_str().unwrap().to_string();
    let since = urlencode(&first);
    let (_, newer) = call(
        &s,
        Method::GET,
        &format!("/api/v1/audit?event=user_created&since={since}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        newer["total"], 1,
        "the newest row is at or after its own time"
    );
    let (_, older) = call(
        &s,
        Method::GET,
        &format!("/api/v1/audit?event=user_created&until={since}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(older["total"], 4);
    let (status, _) = call(
        &s,
        Method::GET,
        "/api/v1/audit?since=yesterday",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(status, 400);
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}

async fn roles_take_effect_on_the_next_call(db: TestDb) {
    let (s, root) = setup(&db).await;
    let id = create(&s, &root, "eve@example.com", &["user"]).await;
    let eve = access(&login(&s, "eve@example.com").await);
    assert_eq!(
        call(&s, Method::GET, "/api/v1/users", Some(&eve), None)
            .await
            .0,
        403
    );
    let roles = format!("/api/v1/users/{id}/roles");
    let (status, _) = call(
        &s,
        Method::PUT,
        &roles,
        Some(&root),
        Some(json!({"roles": ["moderator"]})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(&s, Method::GET, "/api/v1/users", Some(&eve), None)
            .await
            .0,
        200,
        "promotion at once"
    );
    call(
        &s,
        Method::PUT,
        &roles,
        Some(&root),
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!(
        call(&s, Method::GET, "/api/v1/users", Some(&eve), None)
            .await
            .0,
        403,
        "demotion at once"
    );
    let (status, body) = call(
        &s,
        Method::PUT,
        &roles,
        Some(&root),
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("empty"))
    );
    let (status, _) = call(
        &s,
        Method::PUT,
        "/api/v1/users/not-a-uuid/roles",
        Some(&root),
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!(status, 404);
    s.stop().await;
}

async fn service_api_keys(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "mod@example.com", &["moderator"]).await;
    let moderator = access(&login(&s, "mod@example.com").await);
    let body = json!({"name": "reporting", "scopes": ["users:read", "introspect"]});
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&moderator),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 403);
    let (status, created) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("gh_") && key.len() >= 3 + 22, "{key}");
    let (status, bad) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({"name": "x", "scopes": ["root:everything"]})),
    )
    .await;
    assert_eq!(
        (status, bad["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_scope"))
    );

    // Stored hashed: nothing in the table holds the key.
    let conn = db.connect().await;
    let rows = conn
        .query_all_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT key_hash, key_prefix FROM api_keys",
        ))
        .await
        .unwrap();
    for row in rows {
        let hash: String = row.try_get("", "key_hash").unwrap();
        let prefix: String = row.try_get("", "key_prefix").unwrap();
        assert!(!hash.contains(&key[3..]) && key.starts_with(&prefix) && prefix.len() < 12);
    }

    // Scopes are checked on every call.
    assert_eq!(
        call(&s, Method::GET, "/api/v1/users", Some(&key), None)
            .await
            .0,
        200
    );
    let (status, body) = call(&s, Method::GET, "/api/v1/audit", Some(&key), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_permission"))
    );
    let (status, body) = call(&s, Method::GET, "/api/v1/auth/me", Some(&key), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("user_required"))
    );
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/users",
        Some(&key),
        Some(json!({"email": "k@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &s,
        Method::GET,
        "/api/v1/users",
        Some("gh_forged0000000000000000000000"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_api_key"))
    );

    // Listed without the key, with its last use recorded.
    let (status, page) = call(&s, Method::GET, "/api/v1/api-keys", Some(&root), None).await;
    assert_eq!(status, 200);
    let listed = &page["items"][0];
    assert!(listed.get("key").is_none() && !page.to_string().contains(&key));
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert_eq!(listed["scopes"], json!(["users:read", "introspect"]));

    // Far expiries survive every backend (MariaDB would turn a 2040 TIMESTAMP into NULL).
    let (status, far) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({
            "name": "far", "scopes": ["audit:read"], "expires_at": "2040-06-01T00:00:00Z"
        })),
    )
    .await;
    assert_eq!(status, 201, "{far}");
    assert_eq!(far["expires_at"], "2040-06-01T00:00:00Z");
    let (_, page) = call(&s, Method::GET, "/api/v1/api-keys", Some(&root), None).await;
    let stored = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == far["id"])
        .unwrap()
        .clone();
    assert_eq!(stored["expires_at"], "2040-06-01T00:00:00Z");
    let far_key = far["key"].as_str().unwrap();
    assert_eq!(
        call(&s, Method::GET, "/api/v1/audit", Some(far_key), None)
            .await
            .0,
        200
    );
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({
            "name": "past", "scopes": ["audit:read"], "expires_at": "2001-01-01T00:00:00Z"
        })),
    )
    .await;
    assert_eq!(status, 422);

    // An expired key stops working.
    conn.execute_raw(Statement::from_string(
        conn.get_database_backend(),
        "UPDATE api_keys SET expires_at = created_at WHERE name = 'far'",
    ))
    .await
    .unwrap();
    assert_eq!(
        call(&s, Method::GET, "/api/v1/audit", Some(far_key), None)
            .await
            .0,
        401
    );

    // Revocation is immediate.
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&root),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(&s, Method::GET, "/api/v1/users", Some(&key), None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            &s,
            Method::DELETE,
            &format!("/api/v1/api-keys/{id}"),
            Some(&root),
            None
        )
        .await
        .0,
        404
    );
    let (_, audit) = call(
        &s,
        Method::GET,
        "/api/v1/audit?event=api_key_revoked",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(audit["total"], 1);
    conn.close().await.unwrap();
    s.stop().await;
}

async fn token_introspection(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "ann@example.com", &["user"]).await;
    let ann = login(&s, "ann@example.com").await;
    let (_, key) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({"name": "gateway", "scopes": ["introspect"]})),
    )
    .await;
    let key = key["key"].as_str().unwrap().to_string();
    let (_, reader) = call(
        &s,
        Method::POST,
        "/api/v1/api-keys",
        Some(&root),
        Some(json!({"name": "reader", "scopes": ["users:read"]})),
    )
    .await;
    let reader = reader["key"].as_str().unwrap().to_string();
    let introspect = |caller: String, token: Value| {
        let s = &s;
        async move {
            call(
                s,
                Method::POST,
                "/api/v1/auth/introspect",
                Some(&caller),
                Some(json!({"token": token})),
            )
            .await
        }
    };

    let (status, body) = introspect(key.clone(), ann["access_token"].clone()).await;
    assert_eq!(status, 200);
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["sub"], ann["user"]["id"]);
    assert_eq!(body["sid"], ann["session_id"]);
    assert_eq!(body["roles"], json!(["user"]));
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    let (_, body) = introspect(root.clone(), ann["refresh_token"].clone()).await;
    assert_eq!(
        (body["active"].as_bool(), body["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    let (_, body) = introspect(root.clone(), json!(key)).await;
    assert_eq!(
        (body["active"].as_bool(), body["scope"].as_str()),
        (Some(true), Some("introspect"))
    );

    // Anything forged, unknown, spent or revoked is just inactive.
    let mut forged = ann["access_token"].as_str().unwrap().to_string();
    forged.pop();
    for token in [
        json!(forged),
        json!("garbage"),
        json!("gh_unknown"),
        json!(""),
    ] {
        let (status, body) = introspect(key.clone(), token).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"active": false})));
    }
    let (_, next) = call(
        &s,
        Method::POST,
        "/api/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": ann["refresh_token"]})),
    )
    .await;
    assert_eq!(
        introspect(key.clone(), ann["refresh_token"].clone())
            .await
            .1,
        json!({"active": false}),
        "spent refresh token"
    );
    assert_eq!(
        introspect(key.clone(), next["refresh_token"].clone())
            .await
            .1["active"],
        true
    );
    assert_eq!(
        call(
            &s,
            Method::POST,
            "/api/v1/auth/logout",
            Some(&access(&next)),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        introspect(key.clone(), next["access_token"].clone())
            .await
            .1,
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
    let fresh = login(&s, "ann@example.com").await;
    let (status, body) = introspect(access(&fresh), fresh["access_token"].clone()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_permission"))
    );
    assert_eq!(
        introspect(reader, fresh["access_token"].clone()).await.0,
        403
    );
    // A key reads users only with `users:read`.
    let (_, me) = call(
        &s,
        Method::GET,
        "/api/v1/auth/me",
        Some(&access(&fresh)),
        None,
    )
    .await;
    let user = format!("/api/v1/users/{}", me["user"]["id"].as_str().unwrap());
    let (status, body) = call(&s, Method::GET, &user, Some(&key), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_permission"))
    );
    let res = s
        .client
        .post(s.url("/api/v1/auth/introspect"))
        .json(&json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    s.stop().await;
}

async fn session_cleanup(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "cy@example.com", &["user"]).await;
    for _ in 0..3 {
        let pair = login(&s, "cy@example.com").await;
        assert_eq!(
            call(
                &s,
                Method::POST,
                "/api/v1/auth/logout",
                Some(&access(&pair)),
                None
            )
            .await
            .0,
            204
        );
    }
    let cy = access(&login(&s, "cy@example.com").await);
    assert_eq!(
        call(
            &s,
            Method::POST,
            "/api/v1/admin/sessions/cleanup",
            Some(&cy),
            None
        )
        .await
        .0,
        403
    );
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/v1/admin/sessions/cleanup",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(
        (status, body["deleted"].as_u64()),
        (StatusCode::OK, Some(3))
    );
    let (_, body) = call(
        &s,
        Method::POST,
        "/api/v1/admin/sessions/cleanup",
        Some(&root),
        None,
    )
    .await;
    assert_eq!(body["deleted"], 0);
    assert_eq!(
        call(&s, Method::GET, "/api/v1/auth/me", Some(&cy), None)
            .await
            .0,
        200,
        "live sessions stay"
    );
    s.stop().await;
}

async fn admins_unlock_accounts(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "mod@example.com", &["moderator"]).await;
    let moderator = access(&login(&s, "mod@example.com").await);
    let id = create(&s, &root, "dora@example.com", &["user"]).await;
    let wrong = json!({"email": "dora@example.com", "password": "Wrong-Horse9"});
    for _ in 0..5 {
        call(
            &s,
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(wrong.clone()),
        )
        .await;
    }
    let right = json!({"email": "dora@example.com", "password": PASSWORD});
    let (status, _) = call(
        &s,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(right.clone()),
    )
    .await;
    assert_eq!(status, 423);
    let unlock = format!("/api/v1/users/{id}/unlock");
    let (status, body) = call(&s, Method::POST, &unlock, Some(&moderator), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("insufficient_role"))
    );
    assert_eq!(
        call(&s, Method::POST, &unlock, Some(&root), None).await.0,
        204
    );
    let (status, _) = call(&s, Method::POST, "/api/v1/auth/login", None, Some(right)).await;
    assert_eq!(status, 200);
    let unknown = format!("/api/v1/users/{}/unlock", uuid::Uuid::now_v7());
    assert_eq!(
        call(&s, Method::POST, &unknown, Some(&root), None).await.0,
        404
    );
    let (_, audit) = call(
        &s,
        Method::GET,
        &format!("/api/v1/audit?event=user_unlocked&user_id={id}"),
        Some(&root),
        None,
    )
    .await;
    assert_eq!(audit["total"], 1);
    s.stop().await;
}

async fn values_a_database_refuses_are_422_not_500(db: TestDb) {
    let (s, root) = setup(&db).await;
    let (_, me) = call(&s, Method::GET, "/api/v1/auth/me", Some(&root), None).await;
    let mine = format!("/api/v1/users/{}", me["user"]["id"].as_str().unwrap());
    let register = json!({"email": "nul@example.com", "password": PASSWORD, "name": "a\u{0}b"});
    let (status, body) = call(
        &s,
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(register),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_characters"))
    );
    let (status, _) = call(
        &s,
        Method::PATCH,
        &mine,
        Some(&root),
        Some(json!({"metadata": {"k": "\u{0}"}})),
    )
    .await;
    assert_eq!(status, 422);
    let key = json!({"name": "a\u{0}", "scopes": ["introspect"]});
    assert_eq!(
        call(&s, Method::POST, "/api/v1/api-keys", Some(&root), Some(key))
            .await
            .0,
        422
    );
    for page in ["18446744073709551615", "9223372036854775807", "1000001"] {
        let (status, _) = call(
            &s,
            Method::GET,
            &format!("/api/v1/users?page={page}&per_page=200"),
            Some(&root),
            None,
        )
        .await;
        assert_eq!(status, 422, "page {page}");
    }
    // Searching for a NUL finds nothing or is refused, never a server error.
    for path in ["/api/v1/users?q=%00", "/api/v1/audit?event=%00"] {
        let (status, _) = call(&s, Method::GET, path, Some(&root), None).await;
        assert!(status == 200 || status == 422, "{path}: {status}");
    }
    s.stop().await;
}

async fn reports(
    gatehouse::RequireRole(who, ..): gatehouse::RequireRole<gatehouse::tier::Moderator>,
) -> String {
    format!("reports for {}", who.user_id)
}

async fn directory(_: gatehouse::RequirePermission<gatehouse::perm::UsersRead>) -> &'static str {
    "directory"
}

async fn extractors_in_a_host_app(db: TestDb) {
    let (s, root) = setup(&db).await;
    create(&s, &root, "mo@example.com", &["moderator"]).await;
    create(&s, &root, "us@example.com", &["user"]).await;
    let app = Router::new()
        .nest("/api/v1", s.gh.router())
        .route("/reports", get(reports))
        .route("/directory", get(directory))
        .with_state(s.gh.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let get_as = |path: &str, token: Option<String>| {
        let mut req = s.client.get(format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let mo = access(&login(&s, "mo@example.com").await);
    let us = access(&login(&s, "us@example.com").await);
    let (status, text) = get_as("/reports", Some(mo.clone())).await;
    assert_eq!(status, 200);
    assert!(text.starts_with("reports for "), "{text}");
    let (status, text) = get_as("/reports", Some(us.clone())).await;
    assert_eq!(status, 403);
    assert!(text.contains("insufficient_role"), "{text}");
    assert_eq!(get_as("/reports", None).await.0, 401);
    assert_eq!(get_as("/directory", Some(mo)).await.0, 200);
    assert_eq!(get_as("/directory", Some(us.clone())).await.0, 403);
    // The nested contract routes work in the host app too.
    assert_eq!(get_as("/api/v1/auth/me", Some(us)).await.0, 200);
    s.stop().await;
}

per_backend!(
    role_checks_for_every_tier,
    self_service_and_the_last_super_admin,
    disable_delete_and_purge,
    listing_filters_and_pages,
    roles_take_effect_on_the_next_call,
    service_api_keys,
    token_introspection,
    session_cleanup,
    admins_unlock_accounts,
    values_a_database_refuses_are_422_not_500,
    extractors_in_a_host_app,
);
