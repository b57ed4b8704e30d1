//! Third-party API keys on every backend: sealed at rest (no plaintext in the raw bytes), shown as a hint, opened only for a service key with `integrations:decrypt` and audited then, and a server that refuses to start with a missing or wrong master key.

use serde_json::json;

use crate::helpers::{Backend, TestApp, TestDb, stderr};

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

per_backend!(
    integration_keys_are_sealed_and_audited,
    start_up_refuses_a_missing_or_wrong_master_key
);
