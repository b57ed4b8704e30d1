//! Gatehouse as an OpenID Provider. Certified relying-party libraries sign in through the hosted pages in a real browser (on SQLite): `openid-client` from npm (tests/oidc/rp.mjs: discovery, the code flow with PKCE, ID token validation, userinfo, refresh and its reuse, RP-initiated logout) and Python's Authlib (tests/oidc/rp_authlib.py). On every backend, over plain HTTP: discovery and the JWKS, the refusals (an unregistered redirect URI, a replayed code revoking what it issued, a wrong PKCE verifier, an expired code, a disabled user, wrong client credentials), `prompt=none`, and the clients' admin API and CLI with their audit rows.

use std::process::Stdio;

use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{
    Backend, Browser, CookieBrowser, MASTER_KEY, PASSWORD, Reply, TestApp, TestDb, claims, param,
    with_param,
};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:9/cb";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Register a client through the admin API as `admin`; the 201 body.
async fn create_client(s: &TestApp, admin: &str, body: Value) -> Value {
    let res = s.post("/api/v1/admin/clients", admin, body).await;
    assert_eq!(res.status, 201, "{}", res.body);
    res.body
}

/// A first-party confidential client redirecting to [`REDIRECT`]: (client_id, secret).
async fn first_party(s: &TestApp, admin: &str) -> (String, String) {
    let c = create_client(
        s,
        admin,
        json!({"name": "Wiki", "redirect_uris": [REDIRECT], "first_party": true}),
    )
    .await;
    (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

fn authorize_url(s: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&s.url("/oauth2/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email profile roles")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", &challenge(VERIFIER))
        .append_pair("code_challenge_method", "S256");
    let mut url = url.to_string();
    for (k, v) in extra {
        url = with_param(&url, k, v);
    }
    url
}

/// Sign `b` in on the hosted page as `email`.
async fn page_sign_in(s: &TestApp, b: &CookieBrowser, email: &str) {
    let form = b.get(&s.url("/login")).await;
    let csrf = form
        .text
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let res = b
        .client
        .post(s.url("/login"))
        .form(&[("email", email), ("password", PASSWORD), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
}

/// A code for `client_id` through a browser signed in as `email` (the client is first-party).
async fn code_for(s: &TestApp, b: &CookieBrowser, client_id: &str) -> String {
    let res = b.get(&authorize_url(s, client_id, &[])).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let to = res.header("location").to_string();
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&to, "iss").as_deref(), Some(s.base.as_str()));
    param(&to, "code").unwrap()
}

async fn token(s: &TestApp, client: (&str, &str), form: &[(&str, &str)]) -> Reply {
    let res = reqwest::Client::new()
        .post(s.url("/oauth2/token"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    Reply::read(res).await
}

async fn exchange(s: &TestApp, client: (&str, &str), code: &str, verifier: &str) -> Reply {
    token(
        s,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn refresh_grant(s: &TestApp, client: (&str, &str), refresh: &str) -> Reply {
    token(
        s,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await
}

async fn userinfo(s: &TestApp, access: &str) -> Reply {
    let res = reqwest::Client::new()
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    Reply::read(res).await
}

fn oauth_error(res: &Reply) -> (u16, &str) {
    (
        res.status.as_u16(),
        res.body["error"].as_str().unwrap_or(""),
    )
}

async fn discovery_and_the_code_flow_over_http(db: TestDb) {
    let s = db.public_app(&[]).await;
    let admin = s.admin().await;
    let meta = s.get_public("/.well-known/openid-configuration").await;
    assert_eq!(meta.status, 200, "{}", meta.body);
    assert_eq!(meta.body["issuer"], s.base.as_str());
    assert_eq!(meta.body["token_endpoint"], s.url("/oauth2/token").as_str());
    assert_eq!(meta.body["response_types_supported"], json!(["code"]));
    assert_eq!(
        meta.body["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        meta.body["authorization_response_iss_parameter_supported"],
        true
    );
    // The ID-token key is in the JWKS, never the HS256 secret of access tokens.
    let jwks = s.get_public("/.well-known/jwks.json").await;
    let keys = jwks.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{}", jwks.body);
    assert_ne!(keys[0]["kty"], "oct");

    let (id, secret) = first_party(&s, &admin).await;
    s.create_user(&admin, "ada@example.com", &["user"]).await;
    let b = CookieBrowser::new();
    // Not signed in: off to the hosted sign-in page, which comes back here.
    let res = b.get(&authorize_url(&s, &id, &[])).await;
    assert_eq!(res.status, 303, "{}", res.text);
    let login = res.header("location").to_string();
    assert!(login.starts_with("/login?redirect_to="), "{login}");
    page_sign_in(&s, &b, "ada@example.com").await;
    let code = code_for(&s, &b, &id).await;
    let res = exchange(&s, (&id, &secret), &code, VERIFIER).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("cache-control"), "no-store");
    let id_token = claims(res.body["id_token"].as_str().unwrap());
    assert_eq!(id_token["iss"], s.base.as_str());
    assert_eq!(id_token["aud"], id.as_str());
    assert_eq!(id_token["nonce"], "n-1");
    assert_eq!(id_token["email"], "ada@example.com");
    assert_eq!(id_token["roles"], json!(["user"]));
    assert_eq!(id_token["amr"], json!(["pwd"]));
    assert!(id_token["auth_time"].as_i64().is_some());
    let access = res.body["access_token"].as_str().unwrap().to_string();
    let info = userinfo(&s, &access).await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body["email"], "ada@example.com");
    assert_eq!(info.body["sub"], id_token["sub"]);
    // A client's access token is not a key to our own API, nor ours to userinfo.
    assert_eq!(s.me(&access).await.status, 401);
    let own = s.login("ada@example.com").await;
    assert_eq!(
        oauth_error(&userinfo(&s, &own.access).await),
        (401, "invalid_token")
    );
    // Our refresh tokens are not the client's, and the other way round.
    let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(s.refresh(&refresh).await.status, 401);
    assert_eq!(
        oauth_error(&refresh_grant(&s, (&id, &secret), &own.refresh).await),
        (400, "invalid_grant")
    );
    let next = refresh_grant(&s, (&id, &secret), &refresh).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_ne!(next.body["refresh_token"], refresh.as_str());
    let again = claims(next.body["id_token"].as_str().unwrap());
    assert_eq!(again["sub"], id_token["sub"]);
    assert_eq!(again["auth_time"], id_token["auth_time"]);
    s.stop().await;
}

async fn refusals(db: TestDb) {
    let s = db
        .public_app(&[("AUTH_REFRESH_REUSE_GRACE_SECONDS", "0")])
        .await;
    let admin = s.admin().await;
    let (id, secret) = first_party(&s, &admin).await;
    let client = (id.as_str(), secret.as_str());
    s.create_user(&admin, "ada@example.com", &["user"]).await;
    let b = CookieBrowser::new();
    page_sign_in(&s, &b, "ada@example.com").await;

    // A redirect URI not registered exactly: a page here, never a redirect there.
    for uri in [
        "http://127.0.0.1:9/cb/",
        "http://127.0.0.1:9/other",
        "http://evil.example/cb",
    ] {
        let res = b
            .get(&authorize_url(&s, &id, &[("redirect_uri", uri)]))
            .await;
        assert_eq!(res.status, 400, "{uri}: {}", res.text);
        assert!(res.headers.get("location").is_none());
    }
    // An unknown client: a page too.
    let res = b.get(&authorize_url(&s, "ghc_nobody", &[])).await;
    assert_eq!(res.status, 400);
    // A registered redirect URI: errors go back there with state and iss.
    for (extra, error) in [
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "email")], "invalid_scope"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
    ] {
        let res = b.get(&authorize_url(&s, &id, &extra)).await;
        assert_eq!(res.status, 303, "{}", res.text);
        let to = res.header("location");
        assert_eq!(param(to, "error").as_deref(), Some(error), "{to}");
        assert_eq!(param(to, "state").as_deref(), Some("st-1"));
        assert_eq!(param(to, "iss").as_deref(), Some(s.base.as_str()));
    }

    // A wrong PKCE verifier: refused, and the code is spent.
    let code = code_for(&s, &b, &id).await;
    let wrong = VERIFIER.replace('d', "e");
    assert_eq!(
        oauth_error(&exchange(&s, client, &code, &wrong).await),
        (400, "invalid_grant")
    );
    assert_eq!(
        oauth_error(&exchange(&s, client, &code, VERIFIER).await),
        (400, "invalid_grant")
    );
    // A different redirect_uri at the token endpoint.
    let code = code_for(&s, &b, &id).await;
    let res = token(
        &s,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(oauth_error(&res), (400, "invalid_grant"));

    // A replayed code: refused, and the session it issued is revoked.
    let code = code_for(&s, &b, &id).await;
    let first = exchange(&s, client, &code, VERIFIER).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let access = first.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&s, &access).await.status, 200);
    assert_eq!(
        oauth_error(&exchange(&s, client, &code, VERIFIER).await),
        (400, "invalid_grant")
    );
    assert_eq!(
        oauth_error(&userinfo(&s, &access).await),
        (401, "invalid_token")
    );
    let refresh = first.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        oauth_error(&refresh_grant(&s, client, refresh).await),
        (400, "invalid_grant")
    );

    // An expired code.
    let code = code_for(&s, &b, &id).await;
    {
        use gatehouse::store::entities::oidc_codes;
        use sea_orm::{EntityTrait, sea_query::Expr};
        let conn = db.connect().await;
        oidc_codes::Entity::update_many()
            .col_expr(
                oidc_codes::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(5)),
            )
            .exec(&conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    assert_eq!(
        oauth_error(&exchange(&s, client, &code, VERIFIER).await),
        (400, "invalid_grant")
    );

    // Client authentication: a wrong secret (401 + WWW-Authenticate), an unknown client.
    let code = code_for(&s, &b, &id).await;
    let res = exchange(&s, (&id, "wrong-secret"), &code, VERIFIER).await;
    assert_eq!(oauth_error(&res), (401, "invalid_client"));
    assert!(res.header("www-authenticate").starts_with("Basic"));
    let res = exchange(&s, ("ghc_nobody", &secret), &code, VERIFIER).await;
    assert_eq!(oauth_error(&res), (401, "invalid_client"));
    // client_secret_post works as well as Basic.
    let res = Reply::read(
        reqwest::Client::new()
            .post(s.url("/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let refresh = res.body["refresh_token"].as_str().unwrap().to_string();
    let access = res.body["access_token"].as_str().unwrap().to_string();

    // A rotated refresh token presented again: our reuse rule, the session is revoked.
    let code = code_for(&s, &b, &id).await;
    let res = exchange(&s, client, &code, VERIFIER).await;
    let spent = res.body["refresh_token"].as_str().unwrap().to_string();
    let next = refresh_grant(&s, client, &spent).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(
        oauth_error(&refresh_grant(&s, client, &spent).await),
        (400, "invalid_grant")
    );
    let current = next.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        oauth_error(&refresh_grant(&s, client, current).await),
        (400, "invalid_grant")
    );

    // A disabled user: codes, refreshes and userinfo all stop.
    let code = code_for(&s, &b, &id).await;
    let user = s.user_id(&s.login("ada@example.com").await.access).await;
    let res = s
        .patch(
            &format!("/api/v1/users/{user}"),
            &admin,
            json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(
        oauth_error(&exchange(&s, client, &code, VERIFIER).await),
        (400, "invalid_grant")
    );
    assert_eq!(
        oauth_error(&refresh_grant(&s, client, &refresh).await),
        (400, "invalid_grant")
    );
    assert_eq!(
        oauth_error(&userinfo(&s, &access).await),
        (401, "invalid_token")
    );
    // And the browser is sent to sign in again, where the account is refused.
    let res = b.get(&authorize_url(&s, &id, &[])).await;
    assert_eq!(res.status, 303);
    assert!(res.header("location").starts_with("/login"));
    db.assert_audited(&[
        "oidc_client_created",
        "oidc_tokens_issued",
        "oidc_code_replayed",
    ])
    .await;
    s.stop().await;
}

async fn public_clients_need_pkce_and_prompt_none_never_shows_a_page(db: TestDb) {
    let s = db.public_app(&[]).await;
    let admin = s.admin().await;
    let c = create_client(
        &s,
        &admin,
        json!({"name": "SPA", "redirect_uris": [REDIRECT], "public": true}),
    )
    .await;
    assert!(c["client_secret"].is_null(), "{c}");
    let id = c["client_id"].as_str().unwrap();
    s.create_user(&admin, "ada@example.com", &["user"]).await;
    let b = CookieBrowser::new();
    // Not signed in, prompt=none: login_required at the client.
    let res = b.get(&authorize_url(&s, id, &[("prompt", "none")])).await;
    assert_eq!(
        param(res.header("location"), "error").as_deref(),
        Some("login_required")
    );
    // No PKCE: refused for a public client.
    let mut url = url::Url::parse(&authorize_url(&s, id, &[])).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    page_sign_in(&s, &b, "ada@example.com").await;
    let res = b.get(url.as_str()).await;
    assert_eq!(
        param(res.header("location"), "error").as_deref(),
        Some("invalid_request")
    );
    // Not first-party and no consent yet: prompt=none says so; without it, the consent page.
    let res = b.get(&authorize_url(&s, id, &[("prompt", "none")])).await;
    assert_eq!(
        param(res.header("location"), "error").as_deref(),
        Some("consent_required")
    );
    let res = b.get(&authorize_url(&s, id, &[])).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(
        res.text.contains("SPA") && res.text.contains("id=\"allow\""),
        "{}",
        res.text
    );
    s.stop().await;
}

/// The hidden field `name` of a page's form.
fn hidden(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        .to_string()
}

async fn mfa_shows_in_the_id_token_and_prompt_login_asks_again(db: TestDb) {
    let s = db
        .public_app(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)])
        .await;
    let admin = s.admin().await;
    let (id, secret) = first_party(&s, &admin).await;
    let totp = s.with_totp("ada@example.com").await;
    // Sign in on the page: the password, then a recovery code.
    let b = CookieBrowser::new();
    let form = b.get(&s.url("/login")).await;
    let res = b
        .client
        .post(s.url("/login"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf", &hidden(&form.text, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    let step = Reply::read(res).await;
    assert_eq!(step.status, 200, "{}", step.text);
    let res = b
        .client
        .post(s.url("/login/mfa"))
        .form(&[
            ("mfa_token", hidden(&step.text, "mfa_token").as_str()),
            ("recovery_code", totp.recovery_codes[0].as_str()),
            ("csrf", &hidden(&step.text, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let code = code_for(&s, &b, &id).await;
    let res = exchange(&s, (&id, &secret), &code, VERIFIER).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let id_token = claims(res.body["id_token"].as_str().unwrap());
    assert_eq!(id_token["acr"], "aal2");
    assert_eq!(id_token["amr"], json!(["pwd", "otp", "mfa"]));

    // prompt=login (and a max_age the sign-in is older than): the sign-in page again, even
    // for a signed-in browser, coming back without prompt=login.
    for extra in [("prompt", "login"), ("max_age", "-1")] {
        let res = b.get(&authorize_url(&s, &id, &[extra])).await;
        if extra.0 == "max_age" {
            // A negative max_age is malformed: the client hears so.
            assert_eq!(
                param(res.header("location"), "error").as_deref(),
                Some("invalid_request")
            );
            continue;
        }
        assert_eq!(res.status, 303, "{}", res.text);
        let to = res.header("location").to_string();
        assert!(
            to.starts_with("/login?redirect_to=") && to.ends_with("&reauth=1"),
            "{to}"
        );
        let back = param(&s.url(&to), "redirect_to").unwrap();
        assert!(back.starts_with(&s.url("/oauth2/authorize?")), "{back}");
        assert!(!back.contains("prompt=login"), "{back}");
        let page = b.get(&s.url(&to)).await;
        assert_eq!(page.status, 200, "the form, not a redirect: {}", page.text);
        assert!(page.text.contains("id=\"sign-in\""));
    }
    s.stop().await;
}

async fn clients_admin_api_and_cli(db: TestDb) {
    let s = db.app(&[]).await;
    let admin = s.admin().await;
    // super_admin only (clients:manage).
    let (_, plain_admin) = s.user_as(&admin, "boss@example.com", &["admin"]).await;
    let res = s.get("/api/v1/admin/clients", &plain_admin).await;
    assert_eq!(res.problem(), (403, "insufficient_permission"));
    // Validation: redirect URIs exact, https or loopback, no fragment; known scopes.
    for body in [
        json!({"name": "x", "redirect_uris": ["http://app.example.com/cb"]}),
        json!({"name": "x", "redirect_uris": ["https://app.example.com/cb#f"]}),
        json!({"name": "x", "redirect_uris": []}),
        json!({"name": "x", "redirect_uris": ["https://a.example/cb"], "scopes": "openid admin"}),
    ] {
        let res = s.post("/api/v1/admin/clients", &admin, body.clone()).await;
        assert_eq!(res.status, 422, "{body}: {}", res.body);
    }
    let c = create_client(
        &s,
        &admin,
        json!({"name": "Grafana", "redirect_uris": ["https://grafana.example.com/login/generic_oauth"], "scopes": "email"}),
    )
    .await;
    assert_eq!(c["scopes"], "openid email");
    let secret = c["client_secret"].as_str().unwrap();
    assert!(secret.len() >= 40);
    // The secret is stored hashed.
    assert!(
        !db.stored_values()
            .await
            .iter()
            .any(|(_, v)| String::from_utf8_lossy(v).contains(secret))
    );
    let list = s.get("/api/v1/admin/clients", &admin).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["clients"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(secret));
    let client_id = c["client_id"].as_str().unwrap();
    s.stop().await;

    // The CLI over the same database.
    let out = db
        .run_ok(&[
            "clients",
            "create",
            "--name",
            "Proxy",
            "--redirect-uri",
            "https://proxy.example.com/oauth2/callback",
            "--first-party",
        ])
        .await;
    assert!(
        out.contains("client_id: ghc_") && out.contains("client_secret: "),
        "{out}"
    );
    let out = db.run_ok(&["clients", "list"]).await;
    assert!(
        out.contains("Grafana") && out.contains("Proxy") && out.contains("first-party"),
        "{out}"
    );
    let out = db.run_ok(&["clients", "delete", client_id]).await;
    assert!(out.contains("deleted"), "{out}");
    let out = db.run_ok(&["clients", "list"]).await;
    assert!(!out.contains("Grafana"), "{out}");
    let bad = db.run(&["clients", "delete", client_id]).await;
    assert!(!bad.status.success());
    db.assert_audited(&["oidc_client_created", "oidc_client_deleted"])
        .await;
}

per_backend!(
    discovery_and_the_code_flow_over_http,
    refusals,
    public_clients_need_pkce_and_prompt_none_never_shows_a_page,
    mfa_shows_in_the_id_token_and_prompt_login_asks_again,
    clients_admin_api_and_cli,
);

/// A relying-party process (tests/oidc/rp.mjs or rp_authlib.py) and the lines it prints.
struct Rp {
    port: u16,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
}

impl Rp {
    async fn start(program: &str, script: &str, issuer: &str) -> Rp {
        let dir = format!("{}/tests/oidc", env!("CARGO_MANIFEST_DIR"));
        let mut child = tokio::process::Command::new(program)
            .arg(script)
            .arg(issuer)
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program} {script}: {e} (README, Run the tests)"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next_line()
            .await
            .unwrap()
            .expect("the RP did not start");
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap() as u16;
        Rp {
            port,
            lines,
            _child: child,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next event the RP printed.
    async fn event(&mut self) -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), self.lines.next_line())
            .await
            .expect("the RP printed nothing")
            .unwrap()
            .expect("the RP ended");
        serde_json::from_str(&line).unwrap()
    }
}

async fn sqlite() -> TestDb {
    TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite is always tested")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_client_signs_in_through_the_hosted_pages() {
    let node_modules = format!(
        "{}/tests/oidc/node_modules/openid-client",
        env!("CARGO_MANIFEST_DIR")
    );
    assert!(
        std::path::Path::new(&node_modules).exists(),
        "run `npm ci` in tests/oidc (README, Run the tests)"
    );
    let db = sqlite().await;
    let s = db.public_app(&[]).await;
    let admin = s.admin().await;
    s.create_user(&admin, "ada@example.com", &["moderator", "user"])
        .await;
    let mut rp = Rp::start("node", "rp.mjs", &s.base).await;
    let c = create_client(
        &s,
        &admin,
        json!({
            "name": "Team Wiki",
            "redirect_uris": [rp.url("/cb")],
            "post_logout_redirect_uris": [rp.url("/logged-out")],
        }),
    )
    .await;
    let (id, secret) = (
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    );
    let mut b = Browser::start("op-openid-client").await;
    let start = format!(
        "{}?client_id={id}&client_secret={secret}&auth=post",
        rp.url("/start")
    );
    b.goto(&start).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.shot("sign-in").await;
    b.submit("#sign-in", "#allow").await;
    assert!(b.text("#consent-question").await.contains("Team Wiki"));
    b.shot("consent").await;
    b.submit("#allow", "#rp-done").await;
    b.shot("signed-out-at-the-app").await;

    let signed_in = rp.event().await;
    assert_eq!(signed_in["event"], "signed_in", "{signed_in}");
    let claims = &signed_in["claims"];
    assert_eq!(claims["iss"], s.base.as_str());
    assert_eq!(claims["aud"], id);
    assert_eq!(claims["email"], "ada@example.com");
    // As the account is: made by an admin, its address not confirmed yet.
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["roles"], json!(["moderator", "user"]));
    assert_eq!(claims["acr"], "aal1");
    assert!(claims["sid"].is_string() && claims["auth_time"].is_number());
    assert_eq!(signed_in["userinfo"]["email"], "ada@example.com");
    assert_eq!(signed_in["userinfo"]["sub"], claims["sub"]);
    assert_eq!(signed_in["refreshed_sub"], claims["sub"]);
    assert_eq!(signed_in["refreshed_new_token"], true);
    assert_eq!(signed_in["iss"], s.base.as_str());
    let logged_out = rp.event().await;
    assert_eq!(logged_out, json!({"event": "logged_out", "state": "bye"}));
    // The logout ended the hosted session too.
    b.goto(&s.url("/account")).await;
    b.find("#sign-in").await;

    // Signed in again, the remembered consent skips the page.
    b.goto(&start).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.submit("#sign-in", "#rp-done").await;
    assert_eq!(rp.event().await["event"], "signed_in");
    assert_eq!(rp.event().await["event"], "logged_out");
    // The account page lists the app; revoking it forgets the consent.
    b.goto(&s.url("/login")).await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.submit("#sign-in", "#apps").await;
    assert!(b.text("#apps").await.contains("Team Wiki"));
    b.shot("account-apps").await;
    b.submit(&format!("#revoke-app-{id}"), "#no-apps").await;
    b.goto(&start).await;
    b.find("#allow").await;

    // A public client (an SPA): no secret, PKCE only (`none` at the token endpoint); the
    // browser is still signed in, and first-party clients skip consent.
    let spa = create_client(
        &s,
        &admin,
        json!({
            "name": "SPA",
            "public": true,
            "first_party": true,
            "redirect_uris": [rp.url("/cb")],
            "post_logout_redirect_uris": [rp.url("/logged-out")],
        }),
    )
    .await;
    let spa_id = spa["client_id"].as_str().unwrap();
    b.goto(&format!(
        "{}?client_id={spa_id}&auth=none",
        rp.url("/start")
    ))
    .await;
    b.find("#rp-done").await;
    let ev = rp.event().await;
    assert_eq!(ev["event"], "signed_in", "{ev}");
    assert_eq!(ev["claims"]["aud"], spa_id);
    assert_eq!(rp.event().await["event"], "logged_out");
    db.assert_audited(&[
        "oidc_consent_granted",
        "oidc_tokens_issued",
        "oidc_consent_revoked",
    ])
    .await;
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_signs_in_through_the_hosted_pages() {
    let db = sqlite().await;
    let s = db.public_app(&[]).await;
    let admin = s.admin().await;
    s.create_user(&admin, "grace@example.com", &["user"]).await;
    let mut rp = Rp::start("python3", "rp_authlib.py", &s.base).await;
    let c = create_client(
        &s,
        &admin,
        json!({"name": "Reports", "redirect_uris": [rp.url("/cb")], "first_party": true}),
    )
    .await;
    let (id, secret) = (
        c["client_id"].as_str().unwrap(),
        c["client_secret"].as_str().unwrap(),
    );
    let mut b = Browser::start("op-authlib").await;
    b.goto(&format!(
        "{}?client_id={id}&client_secret={secret}",
        rp.url("/start")
    ))
    .await;
    b.fill("#email", "grace@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.submit("#sign-in", "#rp-done").await;
    b.shot("signed-in-at-the-app").await;
    let ev = rp.event().await;
    assert_eq!(ev["event"], "signed_in", "{ev}");
    assert_eq!(ev["claims"]["email"], "grace@example.com");
    assert_eq!(ev["claims"]["aud"], id);
    assert_eq!(ev["userinfo"]["email"], "grace@example.com");
    assert_eq!(ev["refreshed_new_token"], true);
    b.close().await;
    s.stop().await;
}
