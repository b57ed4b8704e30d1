//! Third-party API keys on every backend: sealed at rest (no plaintext in the raw bytes), shown as a hint, opened only for a service key with `integrations:decrypt` and audited then, and a server that refuses to start with a missing or wrong master key.

use serde_json::json;

use crate::helpers::{
    Backend, TestApp, TestDb, assert_success, base32_decode, code_at, stderr, step_now,
};

/// `ENCRYPTION_MASTER_KEY` of these tests (32 bytes of 7, base64), and another key.
pub const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const OTHER_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";
const SECRET: &str = "sk-live-Wm9vbGFuZGVyU2VjcmV0-abcd";

/// A service API key with `scopes`, issued by `admin`: the secret only.
pub async fn service_key(s: &TestApp, admin: &str, scopes: &[&str]) -> String {
    s.api_key(admin, &scopes.join("+"), scopes).await["key"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every byte the database keeps for this test: the SQLite files, or every integration row as
/// text on a server.
async fn raw_bytes(db: &TestDb) -> Vec<u8> {
    if db.backend == Backend::Sqlite {
        let dir = db.dir.path().join("data");
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        return all;
    }
    let sql = match db.backend {
        Backend::Postgres => "SELECT CAST(i.* AS TEXT) AS t FROM integrations i",
        _ => {
            "SELECT CAST(CONCAT_WS('|', id, user_id, service, label, key_ciphertext, key_hint, status) AS CHAR) AS t FROM integrations"
        }
    };
    db.query(sql)
        .await
        .iter()
        .flat_map(|r| r.try_get::<String>("", "t").unwrap().into_bytes())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn integration_keys_are_sealed_and_audited(db: TestDb) {
    let s = db.app(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    let root = s.admin().await;
    s.register("ada@example.com").await;
    let ada = s.login("ada@example.com").await.access;
    let ada_id = s.user_id(&ada).await;

    let res = s
        .post(
            "/api/v1/me/integrations",
            &ada,
            json!({"service": "openai", "api_key": SECRET, "label": "production"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["key_hint"], "…abcd");
    assert_eq!(res.body["status"], "active");
    assert!(!res.text.contains("Wm9vbGFuZGVy"), "{}", res.text);
    let iid = res.body["id"].as_str().unwrap().to_string();
    for (body, code) in [
        (
            json!({"service": "openai", "api_key": "short"}),
            "invalid_length",
        ),
        (
            json!({"service": "open ai", "api_key": SECRET}),
            "invalid_characters",
        ),
        (
            json!({"service": "openai", "api_key": "has a space"}),
            "invalid_characters",
        ),
    ] {
        let res = s.post("/api/v1/me/integrations", &ada, body).await;
        assert_eq!(res.field_error(), (422, code), "{}", res.body);
    }

    let list = s.get("/api/v1/me/integrations", &ada).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["integrations"][0]["id"], iid.as_str());
    assert!(!list.text.contains("Wm9vbGFuZGVy"));

    // Nothing plaintext in the database: only an envelope, bound to its row.
    let stored = db.query("SELECT key_ciphertext FROM integrations").await;
    let sealed: String = stored[0].try_get("", "key_ciphertext").unwrap();
    assert!(sealed.starts_with("v1:"), "{sealed}");
    let raw = raw_bytes(&db).await;
    assert!(!raw.is_empty());
    assert!(!contains(&raw, SECRET) && !contains(&raw, "Wm9vbGFuZGVy"));

    // Only a service key with integrations:decrypt opens it; people never do, whatever the role.
    let path = format!("/api/v1/users/{ada_id}/integrations/{iid}/secret");
    assert_eq!(
        s.get(&path, &ada).await.problem(),
        (403, "service_key_required")
    );
    assert_eq!(
        s.get(&path, &root).await.problem(),
        (403, "service_key_required")
    );
    let reader = service_key(&s, &root, &["users:read"]).await;
    assert_eq!(
        s.get(&path, &reader).await.problem(),
        (403, "insufficient_permission")
    );
    let vault = service_key(&s, &root, &["integrations:decrypt"]).await;
    let vault_key = vault.as_str();
    let res = s.get(&path, vault_key).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["api_key"], SECRET);
    assert_eq!(res.body["service"], "openai");
    let other = s.create_user(&root, "bob@example.com", &["user"]).await;
    let wrong_owner = format!("/api/v1/users/{other}/integrations/{iid}/secret");
    assert_eq!(s.get(&wrong_owner, vault_key).await.status, 404);
    assert_eq!(
        s.get("/api/v1/users/x/integrations/y/secret", vault_key)
            .await
            .status,
        404
    );
    let audited = s.audit_total(&root, "event=integration_decrypted").await;
    assert_eq!(audited, 1, "one decryption, one audit row");
    db.assert_audited(&["integration_created"]).await;

    // Deleted with its ciphertext; someone else's id is 404.
    let mine = format!("/api/v1/me/integrations/{iid}");
    let bob = s.login("bob@example.com").await.access;
    assert_eq!(s.delete(&mine, &bob).await.status, 404);
    assert_eq!(s.delete(&mine, &ada).await.status, 204);
    assert_eq!(s.delete(&mine, &ada).await.status, 404);
    assert_eq!(s.get(&path, vault_key).await.status, 404);
    assert_eq!(
        s.get("/api/v1/me/integrations", &ada).await.body["total"],
        0
    );
    assert!(db.query("SELECT id FROM integrations").await.is_empty());
    db.assert_audited(&["integration_deleted"]).await;
    s.stop().await;

    // Without a master key nothing is stored.
    let plain = db.app(&[]).await;
    let ada = plain.login("ada@example.com").await.access;
    let res = plain
        .post(
            "/api/v1/me/integrations",
            &ada,
            json!({"service": "openai", "api_key": SECRET}),
        )
        .await;
    assert_eq!(res.problem(), (503, "encryption_not_configured"));
    plain.stop().await;
}

/// Run `gatehouse serve` with this master key (None: unset); it must refuse to start.
async fn serve_refuses(db: &TestDb, key: Option<&str>) -> String {
    let mut env = vec![("GATEHOUSE_BIND", "127.0.0.1:0")];
    if let Some(k) = key {
        env.push(("ENCRYPTION_MASTER_KEY", k));
    }
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        db.cli(&["serve"], &env, None),
    )
    .await
    .expect("serve must refuse to start, not run");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    stderr(&out)
}

async fn start_up_refuses_a_missing_or_wrong_master_key(db: TestDb) {
    let s = db.app(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    s.register("ada@example.com").await;
    let ada = s.login("ada@example.com").await.access;
    let res = s
        .post(
            "/api/v1/me/integrations",
            &ada,
            json!({"service": "openai", "api_key": SECRET}),
        )
        .await;
    assert_eq!(res.status, 201);
    s.stop().await;

    let missing = serve_refuses(&db, None).await;
    assert!(
        missing.contains("ENCRYPTION_MASTER_KEY") && missing.contains("is not set"),
        "{missing}"
    );
    let wrong = serve_refuses(&db, Some(OTHER_KEY)).await;
    assert!(
        wrong.contains("ENCRYPTION_MASTER_KEY") && wrong.contains("does not open"),
        "{wrong}"
    );
}

/// Store a key for `token`'s owner; the integration's id.
async fn store_key(s: &TestApp, token: &str, api_key: &str) -> String {
    let res = s
        .post(
            "/api/v1/me/integrations",
            token,
            json!({"service": "openai", "api_key": api_key}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.body["id"].as_str().unwrap().to_string()
}

/// A user's integration key in clear, as the service key `vault` reads it.
async fn reveal(s: &TestApp, user: &str, iid: &str, vault: &str) -> crate::helpers::Reply {
    let path = format!("/api/v1/users/{user}/integrations/{iid}/secret");
    s.get(&path, vault).await
}

/// The sealed values of every kind, as stored.
async fn sealed_values(db: &TestDb) -> Vec<String> {
    let mut all = Vec::new();
    for (sql, column) in [
        ("SELECT key_ciphertext AS v FROM integrations", "v"),
        (
            "SELECT mfa_secret AS v FROM users WHERE mfa_secret IS NOT NULL",
            "v",
        ),
        (
            "SELECT mfa_pending_secret AS v FROM users WHERE mfa_pending_secret IS NOT NULL",
            "v",
        ),
    ] {
        for row in db.query(sql).await {
            all.push(row.try_get::<String>("", column).unwrap());
        }
    }
    all
}

async fn keys_rotate_moves_every_secret_while_serving(db: TestDb) {
    let new_id = gatehouse::crypto::envelope::Envelope::from_base64(OTHER_KEY)
        .unwrap()
        .key_id()
        .to_string();
    let s = db.app(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)]).await;
    let root = s.admin().await;
    let (ada_id, ada) = s.user_as(&root, "ada@example.com", &["user"]).await;
    let (bob_id, bob) = s.user_as(&root, "bob@example.com", &["user"]).await;
    let mut keys = Vec::new();
    for i in 0..3 {
        let secret = format!("sk-old-{i}-0123456789");
        keys.push((ada_id.clone(), store_key(&s, &ada, &secret).await, secret));
    }
    // ada's TOTP is active, bob's pending.
    let ada_totp = base32_decode(s.enroll_totp(&ada).await.body["secret"].as_str().unwrap());
    let step = step_now();
    assert_eq!(
        s.confirm_totp(&ada, &code_at(&ada_totp, step)).await.status,
        200
    );
    let bob_totp = base32_decode(s.enroll_totp(&bob).await.body["secret"].as_str().unwrap());
    s.stop().await;

    // A server with the new master key reads old values and seals new ones under the new key.
    let moving = [
        ("ENCRYPTION_MASTER_KEY", OTHER_KEY),
        ("ENCRYPTION_READ_KEYS", MASTER_KEY),
    ];
    let t = db.app(&moving).await;
    let vault = service_key(
        &t,
        &t.login(crate::helpers::ROOT).await.access,
        &["integrations:decrypt"],
    )
    .await;
    assert_eq!(
        reveal(&t, &keys[0].0, &keys[0].1, &vault).await.body["api_key"],
        keys[0].2.as_str()
    );
    let bob = t.login("bob@example.com").await.access;
    let secret = "sk-new-0123456789".to_string();
    keys.push((bob_id, store_key(&t, &bob, &secret).await, secret));

    // One batch of two (as if the run had crashed there), then the rest, with the server up.
    let out = assert_success(
        &db.cli(
            &["keys", "rotate", "--batch-size", "2", "--batches", "1"],
            &moving,
            None,
        )
        .await,
    );
    assert!(out.contains("run again"), "{out}");
    let current = format!("v1:{new_id}:");
    let moved = sealed_values(&db)
        .await
        .iter()
        .filter(|v| v.starts_with(&current))
        .count();
    assert_eq!(moved, 3, "the new one and one batch of two");
    let out = assert_success(
        &db.cli(&["keys", "rotate", "--batch-size", "2"], &moving, None)
            .await,
    );
    assert!(
        out.contains(&format!("every secret is now under key {new_id}")),
        "{out}"
    );
    let values = sealed_values(&db).await;
    assert_eq!(values.len(), 6);
    assert!(values.iter().all(|v| v.starts_with(&current)), "{values:?}");
    let again = assert_success(&db.cli(&["keys", "rotate"], &moving, None).await);
    assert!(
        again.contains("re-encrypted 0 integration key(s) and 0 TOTP secret(s)"),
        "{again}"
    );
    t.stop().await;

    // The old key is no longer needed: every value opens with the new one alone.
    let u = db.app(&[("ENCRYPTION_MASTER_KEY", OTHER_KEY)]).await;
    for (user, iid, secret) in &keys {
        assert_eq!(
            reveal(&u, user, iid, &vault).await.body["api_key"],
            secret.as_str()
        );
    }
    let bob = u.login("bob@example.com").await.access;
    let res = u.confirm_totp(&bob, &code_at(&bob_totp, step_now())).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let challenge = u.mfa_challenge("ada@example.com").await;
    let res = u
        .post_public(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": challenge, "code": code_at(&ada_totp, step + 1)}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    u.stop().await;
    // And a value under a key nobody configured is reported, not lost.
    let old_only = [("ENCRYPTION_MASTER_KEY", MASTER_KEY)];
    let out = db.cli(&["keys", "rotate"], &old_only, None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("open with no configured key"),
        "{}",
        stderr(&out)
    );
}

per_backend!(
    integration_keys_are_sealed_and_audited,
    start_up_refuses_a_missing_or_wrong_master_key,
    keys_rotate_moves_every_secret_while_serving
);
