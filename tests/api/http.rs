//! The HTTP skeleton on a real listener against every backend: health, readiness (also while the database goes away), problem documents, request ids, OpenAPI, metrics, and the JSON extractor's rejections.

use serde_json::json;

use crate::helpers::{Backend, Proxy, Reply, TestApp, TestDb, WRONG_PASSWORD};

/// Assert a problem document with this status and code.
fn problem(res: &Reply, status: u16, code: &str) {
    assert_eq!(res.status.as_u16(), status);
    assert_eq!(res.header("content-type"), "application/problem+json");
    let body = &res.body;
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code, "{body}");
    assert!(body["type"].is_string() && body["title"].is_string() && body["detail"].is_string());
}

async fn health_and_ready(db: TestDb) {
    let s = db.app(&[]).await;
    let res = s.get_public("/health").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, json!({"status": "ok"}));
    let res = s.get_public("/ready").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["status"], "ok");
    assert_eq!(res.body["checks"]["database"]["status"], "ok");
    s.stop().await;
}

async fn errors_are_problem_documents(db: TestDb) {
    let s = db.app(&[]).await;
    problem(&s.get_public("/nope").await, 404, "not_found");
    problem(&s.get_public("/api/v1/nope").await, 404, "not_found");
    let res = s.send(reqwest::Method::POST, "/health", None, None).await;
    assert!(res.headers.get("allow").is_some());
    problem(&res, 405, "method_not_allowed");
    let big = vec![b'x'; 64 * 1024 + 1];
    let res = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(&Reply::read(res).await, 413, "payload_too_large");
    s.stop().await;
}

async fn request_ids_are_echoed_or_made(db: TestDb) {
    let s = db.app(&[]).await;
    let res = s
        .client
        .get(s.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = s.get_public("/health").await;
    let made = res.header("x-request-id");
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    s.stop().await;
}

async fn openapi_describes_the_routes(db: TestDb) {
    let s = db.app(&[]).await;
    let res = s.get_public("/openapi.json").await;
    assert_eq!(res.status, 200);
    let doc = res.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for path in ["/health", "/ready", "/openapi.json"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    for (path, method) in [
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{id}", "patch"),
        ("/api/v1/users/{id}", "delete"),
        ("/api/v1/users/{id}/roles", "put"),
        ("/api/v1/users/{id}/unlock", "post"),
        ("/api/v1/roles", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/admin/sessions/cleanup", "post"),
        ("/api/v1/api-keys", "post"),
        ("/api/v1/api-keys/{id}", "delete"),
        ("/api/v1/auth/introspect", "post"),
        ("/api/v1/auth/verify-email", "post"),
        ("/api/v1/auth/verify-email/resend", "post"),
        ("/api/v1/auth/password-reset/request", "post"),
        ("/api/v1/auth/password-reset/confirm", "post"),
        ("/api/v1/auth/mfa/totp/enroll", "post"),
        ("/api/v1/auth/mfa/totp/confirm", "post"),
        ("/api/v1/auth/mfa/totp", "delete"),
        ("/api/v1/auth/mfa/verify", "post"),
        ("/api/v1/auth/mfa/webauthn/begin", "post"),
        ("/api/v1/auth/webauthn/register/begin", "post"),
        ("/api/v1/auth/webauthn/register/finish", "post"),
        ("/api/v1/auth/webauthn/login/begin", "post"),
        ("/api/v1/auth/webauthn/login/finish", "post"),
        ("/api/v1/me/passkeys", "get"),
        ("/api/v1/me/passkeys/{id}", "patch"),
        ("/api/v1/me/passkeys/{id}", "delete"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    s.stop().await;
}

async fn metrics_count_requests_by_route(db: TestDb) {
    let s = db.app(&[]).await;
    s.get_public("/health").await;
    let res = s.login_with("nobody@example.com", WRONG_PASSWORD).await;
    assert_eq!(res.status, 401);
    let res = s.get_public("/metrics").await;
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").starts_with("text/plain"));
    let text = res.text;
    let has = |needle: &str| {
        text.lines()
            .any(|l| l.starts_with("gatehouse_") && needle.split('&').all(|n| l.contains(n)))
    };
    assert!(
        has("gatehouse_http_requests_total{&route=\"/health\"&status=\"200\""),
        "{text}"
    );
    assert!(has("route=\"/api/v1/auth/login\"&status=\"401\""), "{text}");
    assert!(has("gatehouse_logins_total{outcome=\"failure\"}"), "{text}");
    assert!(
        has("gatehouse_http_request_duration_seconds_bucket"),
        "{text}"
    );
    s.stop().await;
}

per_backend!(
    health_and_ready,
    metrics_count_requests_by_route,
    errors_are_problem_documents,
    request_ids_are_echoed_or_made,
    openapi_describes_the_routes
);

/// `/ready` turns 503 while the database is unreachable and recovers by itself.
async fn ready_follows_the_database(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else {
        return;
    };
    let port = if backend == Backend::Postgres {
        5432
    } else {
        3306
    };
    let proxy = Proxy::start(([127, 0, 0, 1], port).into()).await;
    // Migrate directly, then serve through the proxy.
    db.connect().await.close().await.unwrap();
    let s = TestApp::start(
        &db.url_via(proxy.addr),
        db.dir.path(),
        &[("DB_CONNECT_TIMEOUT", "1")],
    )
    .await;
    assert_eq!(s.get_public("/ready").await.status, 200);

    proxy.down();
    let res = s.get_public("/ready").await;
    assert_eq!(res.status, 503);
    assert_eq!(res.body["status"], "unavailable");
    assert_eq!(res.body["checks"]["database"]["status"], "unavailable");
    // Liveness does not depend on the database.
    assert_eq!(s.get_public("/health").await.status, 200);

    proxy.up();
    let mut recovered = false;
    for _ in 0..50 {
        if s.get_public("/ready").await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "/ready did not recover");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ready_follows_the_database() {
    ready_follows_the_database(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_ready_follows_the_database() {
    ready_follows_the_database(Backend::MySql).await;
}

/// `/ready` on SQLite: the file is removed from under the server? Not possible portably; instead
/// check the zero-configuration start writes the development key beside the database.
#[tokio::test]
async fn sqlite_zero_config_keeps_a_development_key_beside_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/gh.db").display());
    let config = gatehouse::config::Config::from_vars(&gatehouse::config::Vars::from_pairs([(
        "DATABASE_URL",
        url.as_str(),
    )]))
    .unwrap();
    let gh = gatehouse::Gatehouse::connect(config.clone()).await.unwrap();
    let key_path = dir.path().join("data/jwt_secret");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert!(key.len() >= 32);
    drop(gh);
    // The same key is kept on the next start.
    let _gh = gatehouse::Gatehouse::connect(config).await.unwrap();
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), key);
}

/// The JSON extractor every route uses maps each rejection to the contract's status.
mod extractor {
    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::post;
    use gatehouse::http::json::ApiJson;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct In {
        #[allow(dead_code)]
        n: u32,
    }

    async fn call(content_type: Option<&str>, body: &str) -> (u16, serde_json::Value) {
        let app = Router::new().route("/", post(|ApiJson(_): ApiJson<In>| async { "ok" }));
        let mut req = Request::post("/");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let res = app
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn rejections_are_problems() {
        let (s, b) = call(Some("application/json"), "{\"n\": ").await;
        assert_eq!((s, b["code"].as_str()), (400, Some("malformed_json")));
        let (s, b) = call(Some("application/json"), "{\"n\": \"seven\"}").await;
        assert_eq!((s, b["code"].as_str()), (400, Some("invalid_body")));
        let (s, b) = call(None, "{\"n\": 1}").await;
        assert_eq!(
            (s, b["code"].as_str()),
            (415, Some("unsupported_media_type"))
        );
        let (s, _) = call(Some("application/json"), "{\"n\": 1}").await;
        assert_eq!(s, 200);
    }
}
