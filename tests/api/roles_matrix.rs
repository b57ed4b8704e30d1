//! What each role tier may do to each other tier through the users API, on every backend, and role changes taking effect on the very next call.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestDb};

const TIERS: [&str; 5] = ["super_admin", "admin", "moderator", "user", "guest"];

/// `MANAGES[a][t]`: may tier `a` manage tier `t` (the contract's rule, spelled out).
const MANAGES: [[bool; 5]; 5] = [
    [true, true, true, true, true],
    [false, false, true, true, true],
    [false, false, false, true, true],
    [false, false, false, false, true],
    [false, false, false, false, false],
];

async fn role_checks_for_every_tier(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let mut actors = Vec::new();
    for tier in TIERS {
        let email = format!("actor-{tier}@example.com");
        actors.push(s.user_as(&root, &email, &[tier]).await.1);
    }
    for (a, actor) in actors.iter().enumerate() {
        let sees = a <= 2;
        let admin = a <= 1;
        for (path, allowed) in [("/api/v1/users", sees), ("/api/v1/audit", admin)] {
            let status = s.get(path, actor).await.status;
            assert_eq!(
                status,
                if allowed { 200 } else { 403 },
                "{} {path}",
                TIERS[a]
            );
        }
        let res = s.get("/api/v1/roles", actor).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body["roles"].as_array().unwrap().len(), 5);
        let res = s
            .post(
                "/api/v1/users",
                actor,
                json!({"email": format!("made-by-{a}@example.com"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            res.status,
            if admin { 201 } else { 403 },
            "{} creates: {}",
            TIERS[a],
            res.body
        );

        for (t, tier) in TIERS.iter().enumerate() {
            let email = format!("t-{a}-{t}@example.com");
            let target = s.create_user(&root, &email, &[tier]).await;
            let path = format!("/api/v1/users/{target}");
            let who = format!("{} on {}", TIERS[a], tier);
            let denied = if !sees {
                StatusCode::NOT_FOUND
            } else if MANAGES[a][t] {
                StatusCode::OK
            } else {
                StatusCode::FORBIDDEN
            };

            let res = s.get(&path, actor).await;
            assert_eq!(res.status, if sees { 200 } else { 404 }, "{who} reads");
            if !sees {
                assert_eq!(res.body["code"], "not_found");
            }
            let res = s.patch(&path, actor, json!({"name": "Renamed"})).await;
            assert_eq!(res.status, denied, "{who} renames: {}", res.body);
            if res.status == 403 {
                assert_eq!(res.body["code"], "cannot_manage_user");
            }
            // The name as root reads it: changed only when allowed.
            let renamed = denied == StatusCode::OK;
            let name = s.get(&path, &root).await.body["name"].clone();
            assert_eq!(
                name,
                if renamed { "Renamed" } else { email.as_str() },
                "{who}"
            );
            // Demoting the target to guest also needs the right to take its role away.
            let roles = format!("{path}/roles");
            let res = s.put(&roles, actor, json!({"roles": ["guest"]})).await;
            assert_eq!(res.status, denied, "{who} sets roles: {}", res.body);
            if res.status == 200 {
                assert_eq!(res.body["roles"], json!(["guest"]));
            }
            // Granting a role at the actor's own level is for super_admin only.
            if a > 0 && sees && MANAGES[a][t] {
                let res = s.put(&roles, actor, json!({"roles": [TIERS[a]]})).await;
                assert_eq!(
                    res.problem(),
                    (403, "role_not_grantable"),
                    "{who} grants its own role"
                );
            }
            let deleted = if denied == StatusCode::OK {
                StatusCode::NO_CONTENT
            } else {
                denied
            };
            assert_eq!(
                s.delete(&path, actor).await.status,
                deleted,
                "{who} deletes"
            );
            // Gone for root too when deleted, there as before when not.
            let status = s.get(&path, &root).await.status;
            assert_eq!(status, if renamed { 404 } else { 200 }, "{who} deletes");
        }
    }
    s.stop().await;
}

async fn roles_take_effect_on_the_next_call(db: TestDb) {
    let s = db.app(&[]).await;
    let root = s.admin().await;
    let (id, eve) = s.user_as(&root, "eve@example.com", &["user"]).await;
    assert_eq!(s.get("/api/v1/users", &eve).await.status, 403);
    let roles = format!("/api/v1/users/{id}/roles");
    let res = s.put(&roles, &root, json!({"roles": ["moderator"]})).await;
    assert_eq!(res.status, 200);
    assert_eq!(
        s.get("/api/v1/users", &eve).await.status,
        200,
        "promotion at once"
    );
    s.put(&roles, &root, json!({"roles": ["user"]})).await;
    assert_eq!(
        s.get("/api/v1/users", &eve).await.status,
        403,
        "demotion at once"
    );
    let res = s.put(&roles, &root, json!({"roles": []})).await;
    assert_eq!(res.field_error(), (422, "empty"));
    let res = s
        .put(
            "/api/v1/users/not-a-uuid/roles",
            &root,
            json!({"roles": ["user"]}),
        )
        .await;
    assert_eq!(res.status, 404);
    s.stop().await;
}

per_backend!(
    role_checks_for_every_tier,
    roles_take_effect_on_the_next_call
);
