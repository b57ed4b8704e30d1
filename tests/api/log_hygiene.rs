//! No secret reaches the log on any backend: a full flow (register, login, refresh, MFA enrolment and sign-in, a password reset, a service API key, an integration key stored and decrypted) against `gatehouse serve` with `LOG_FORMAT=json` at debug level and a previous JWT secret configured, then every password, token, code and key it used (the JWT secrets and the master key too) is looked for in the whole log; and each request's line carries its id, route template, status, latency and, where a user is known, the user.

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::helpers::{
    JWT_SECRET, TestDb, base32_decode, code_at, link_token, step_now, wait_for_eml,
};

const MASTER_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
/// A signing secret from before a rotation, still verifying.
const PREVIOUS_JWT_SECRET: &str = "previous-jwt-secret-previous-jwt-secret-01";
/// A third-party key a user stores.
const INTEGRATION_KEY: &str = "sk-live-TG9nSHlnaWVuZQ-integration-wxyz";

async fn call(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn no_secret_reaches_the_log(db: TestDb) {
    let admin_password = "Boot-Strap-Pw1!";
    let mut server = db
        .serve(&[
            ("LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("ENCRYPTION_MASTER_KEY", MASTER_KEY),
            ("JWT_PREVIOUS_SECRETS", PREVIOUS_JWT_SECRET),
            ("ADMIN_USERNAME", "root@example.com"),
            ("ADMIN_PASSWORD", admin_password),
        ])
        .await;
    let mut log_pipe = server.child.stderr.take().unwrap();
    let log_task = tokio::spawn(async move {
        let mut log = String::new();
        let _ = log_pipe.read_to_string(&mut log).await;
        log
    });
    let c = reqwest::Client::new();
    let url = |p: &str| server.url(p);
    let mut secrets: Vec<String> = vec![
        admin_password.into(),
        MASTER_KEY.into(),
        JWT_SECRET.into(),
        PREVIOUS_JWT_SECRET.into(),
        INTEGRATION_KEY.into(),
    ];
    let (password, new_password) = ("First-Secret-Pw1!", "Second-Secret-Pw2!");
    secrets.extend([password.into(), new_password.into()]);

    let (s, _) = call(
        &c,
        url("/api/v1/auth/register"),
        None,
        json!({"email": "ada@example.com", "password": password}),
    )
    .await;
    assert_eq!(s, 201);
    let login = c
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    let device = login.headers()["set-cookie"].to_str().unwrap().to_string();
    secrets.push(
        device
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("gatehouse_device=")
            .into(),
    );
    let pair: Value = login.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap().to_string();
    let refresh = pair["refresh_token"].as_str().unwrap().to_string();
    secrets.extend([access.clone(), refresh.clone()]);
    let (s, next) = call(
        &c,
        url("/api/v1/auth/refresh"),
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(s, 200);
    let access = next["access_token"].as_str().unwrap().to_string();
    secrets.extend([
        access.clone(),
        next["refresh_token"].as_str().unwrap().into(),
    ]);
    let me = c
        .get(url("/api/v1/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let user_id = me.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // MFA: the secret, a code, the recovery codes, the mfa_token.
    let (s, enrolled) = call(
        &c,
        url("/api/v1/auth/mfa/totp/enroll"),
        Some(&access),
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    let secret = enrolled["secret"].as_str().unwrap().to_string();
    secrets.push(secret.clone());
    secrets.push(enrolled["otpauth_uri"].as_str().unwrap().into());
    let raw = base32_decode(&secret);
    let code = code_at(&raw, step_now());
    let (s, codes) = call(
        &c,
        url("/api/v1/auth/mfa/totp/confirm"),
        Some(&access),
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, 200);
    secrets.extend(
        codes["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string()),
    );
    let (s, challenge) = call(
        &c,
        url("/api/v1/auth/login"),
        None,
        json!({"email": "ada@example.com", "password": password}),
    )
    .await;
    assert_eq!(s, 200);
    let mfa_token = challenge["mfa_token"].as_str().unwrap().to_string();
    secrets.push(mfa_token.clone());
    let recovery = codes["recovery_codes"][0].as_str().unwrap();
    let (s, aal2) = call(
        &c,
        url("/api/v1/auth/mfa/verify"),
        None,
        json!({"mfa_token": mfa_token, "recovery_code": recovery}),
    )
    .await;
    assert_eq!(s, 200, "{aal2}");
    secrets.extend([
        aal2["access_token"].as_str().unwrap().into(),
        aal2["refresh_token"].as_str().unwrap().into(),
    ]);

    // An integration key, stored by its owner.
    let (s, integration) = call(
        &c,
        url("/api/v1/me/integrations"),
        aal2["access_token"].as_str(),
        json!({"service": "openai", "api_key": INTEGRATION_KEY, "label": "production"}),
    )
    .await;
    assert_eq!(s, 201, "{integration}");
    let integration_id = integration["id"].as_str().unwrap().to_string();

    // A password reset through the mailed link.
    let (s, _) = call(
        &c,
        url("/api/v1/auth/password-reset/request"),
        None,
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(s, 202);
    let mails = wait_for_eml(&db.dir.path().join("data").join("outbox"), 2).await;
    let reset = mails
        .iter()
        .find_map(|m| link_token(m, "reset-password"))
        .expect("a reset link");
    secrets.push(reset.clone());
    let (s, _) = call(
        &c,
        url("/api/v1/auth/password-reset/confirm"),
        None,
        json!({"token": reset, "new_password": new_password}),
    )
    .await;
    assert_eq!(s, 204);

    // A service API key, used.
    let (s, root) = call(
        &c,
        url("/api/v1/auth/login"),
        None,
        json!({"email": "root@example.com", "password": admin_password}),
    )
    .await;
    assert_eq!(s, 200);
    let root = root["access_token"].as_str().unwrap().to_string();
    secrets.push(root.clone());
    let (s, key) = call(
        &c,
        url("/api/v1/api-keys"),
        Some(&root),
        json!({"name": "reporting", "scopes": ["users:read"]}),
    )
    .await;
    assert_eq!(s, 201);
    let key = key["key"].as_str().unwrap().to_string();
    secrets.push(key.clone());
    let res = c
        .get(url(&format!("/api/v1/users/{user_id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The integration key opened by a service key that may decrypt.
    let (s, vault) = call(
        &c,
        url("/api/v1/api-keys"),
        Some(&root),
        json!({"name": "vault", "scopes": ["integrations:decrypt"]}),
    )
    .await;
    assert_eq!(s, 201);
    let vault = vault["key"].as_str().unwrap().to_string();
    secrets.push(vault.clone());
    let opened: Value = c
        .get(url(&format!(
            "/api/v1/users/{user_id}/integrations/{integration_id}/secret"
        )))
        .bearer_auth(&vault)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(opened["api_key"], INTEGRATION_KEY);

    assert!(server.terminate().await.success());
    let log = log_task.await.unwrap();
    assert!(log.lines().count() > 20, "the log was captured: {log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
    }

    // One JSON object per line, and request lines carry id, route, status, latency and user.
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "finished processing request")
        .collect();
    // The flow's 16 requests, and the start's polls of /ready.
    assert!(finished.len() > 16, "{} request lines", finished.len());
    for line in &finished {
        let span = &line["span"];
        assert!(
            span["request_id"].as_str().is_some_and(|id| id.len() == 36),
            "{line}"
        );
        assert!(
            span["route"].as_str().is_some_and(|r| r.starts_with('/')),
            "{line}"
        );
        assert!(line["status"].is_number(), "{line}");
        assert!(
            line["latency"].is_string() || line["latency"].is_number(),
            "{line}"
        );
    }
    // The user is named on every call a user's bearer token made.
    for route in [
        "/api/v1/auth/me",
        "/api/v1/auth/mfa/totp/enroll",
        "/api/v1/me/integrations",
    ] {
        let line = finished
            .iter()
            .find(|l| l["span"]["route"] == route)
            .unwrap_or_else(|| panic!("no finished {route} request in the log"));
        assert_eq!(line["span"]["user_id"], user_id.as_str(), "{line}");
    }
    let by_template = finished
        .iter()
        .any(|l| l["span"]["route"] == "/api/v1/users/{id}");
    assert!(by_template, "routes are logged by template, not by value");
    let secret_route = "/api/v1/users/{id}/integrations/{iid}/secret";
    assert!(
        finished.iter().any(|l| l["span"]["route"] == secret_route),
        "{secret_route}"
    );
}

per_backend!(no_secret_reaches_the_log);
