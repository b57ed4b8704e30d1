//! The server under test, in this process on an ephemeral port, and the typed calls every flow makes through its HTTP API (written once here, not in each test file).

use std::path::Path;

use base64::Engine;
use gatehouse::Gatehouse;
use gatehouse::config::{Config, Vars};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::JWT_SECRET;

/// The password of every account the tests make unless a test says otherwise.
pub const PASSWORD: &str = "Correct-Horse9";
/// A password that is well-formed but never the account's.
pub const WRONG_PASSWORD: &str = "Wrong-Horse9";
/// The super_admin that [`TestApp::admin`] creates.
pub const ROOT: &str = "root@example.com";
/// The `User-Agent` of every request the test client sends.
pub const USER_AGENT: &str = "gatehouse-tests/1";

/// A server running in this process.
pub struct TestApp {
    pub base: String,
    pub gh: Gatehouse,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// The tasks alive once the server has started and has nothing to do (see
    /// [`TestApp::settle`]); `None` unless started with [`TestApp::start_settling`].
    pub(super) idle_tasks: Option<usize>,
}

/// An answer read whole: status, headers, the body as text and as JSON (Null when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

/// A login's tokens, and the whole answer they came in.
#[derive(Debug, Clone)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
    pub session_id: String,
    pub body: Value,
}

impl Reply {
    pub async fn read(res: reqwest::Response) -> Reply {
        let (status, headers) = (res.status(), res.headers().clone());
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// The status and the problem document's `code` ("" when there is none).
    pub fn problem(&self) -> (u16, &str) {
        (
            self.status.as_u16(),
            self.body["code"].as_str().unwrap_or_default(),
        )
    }

    /// The status and the `code` of the first field error of a 422 ("" when there is none).
    pub fn field_error(&self) -> (u16, &str) {
        (
            self.status.as_u16(),
            self.body["errors"][0]["code"].as_str().unwrap_or_default(),
        )
    }

    /// A header's value as text (the header must be there).
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers[name].to_str().unwrap()
    }

    /// The token pair this answer must hold.
    #[track_caller]
    pub fn pair(self) -> Pair {
        assert_eq!(self.status, 200, "{}", self.body);
        let field = |name: &str| {
            self.body[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} missing in {}", self.body))
                .to_string()
        };
        Pair {
            access: field("access_token"),
            refresh: field("refresh_token"),
            session_id: field("session_id"),
            body: self.body.clone(),
        }
    }
}

/// The claims of a JWT, decoded without checking its signature.
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

impl TestApp {
    pub async fn start(url: &str, dir: &Path, extra_env: &[(&str, &str)]) -> TestApp {
        let client = reqwest::Client::builder().user_agent(USER_AGENT);
        Self::start_with(url, dir, extra_env, client.build().unwrap(), None).await
    }

    /// A server on `listener`, bound beforehand so that its address can be configured (as
    /// `GATEHOUSE_PUBLIC_URL`) and handed to others (an OAuth provider's redirect URI).
    pub async fn start_on(
        url: &str,
        dir: &Path,
        extra_env: &[(&str, &str)],
        listener: TcpListener,
    ) -> TestApp {
        let client = reqwest::Client::builder().user_agent(USER_AGENT);
        Self::start_with(url, dir, extra_env, client.build().unwrap(), Some(listener)).await
    }

    /// A server whose background work a test can wait out with [`TestApp::settle`]: its client
    /// keeps no idle connection (so no connection task outlives its request), and the tasks
    /// alive once it has started are counted.
    pub async fn start_settling(url: &str, dir: &Path, extra_env: &[(&str, &str)]) -> TestApp {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .pool_max_idle_per_host(0);
        let mut app = Self::start_with(url, dir, extra_env, client.build().unwrap(), None).await;
        // The cache's listener is long-lived: count it in the idle baseline, once it runs.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !app.gh.auth().principals().started() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cache never subscribed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        app.idle_tasks = Some(app.quiet_tasks().await);
        app
    }

    /// A server whose `GATEHOUSE_PUBLIC_URL` is its own address, so the links in its mail lead
    /// back to it (the hosted pages' flows follow them in a browser).
    pub async fn start_public(url: &str, dir: &Path, extra_env: &[(&str, &str)]) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut env = vec![("GATEHOUSE_PUBLIC_URL", base.as_str())];
        env.extend_from_slice(extra_env);
        let client = reqwest::Client::builder().user_agent(USER_AGENT);
        Self::serve_on(listener, url, dir, &env, client.build().unwrap()).await
    }

    async fn start_with(
        url: &str,
        dir: &Path,
        extra_env: &[(&str, &str)],
        client: reqwest::Client,
        listener: Option<TcpListener>,
    ) -> TestApp {
        let listener = match listener {
            Some(l) => l,
            None => TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        Self::serve_on(listener, url, dir, extra_env, client).await
    }

    async fn serve_on(
        listener: TcpListener,
        url: &str,
        dir: &Path,
        extra_env: &[(&str, &str)],
        client: reqwest::Client,
    ) -> TestApp {
        let mut pairs: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), url.into()),
            ("JWT_SECRET".into(), JWT_SECRET.into()),
            ("PASSWORD_ARGON2_MEMORY_KIB".into(), "64".into()),
            ("PASSWORD_ARGON2_ITERATIONS".into(), "1".into()),
            // Tests log in far more often than people do; limits.rs sets real limits.
            ("RATE_LIMIT_LOGIN_PER_MINUTE".into(), "100000,100000".into()),
            (
                "MAIL_OUTBOX_DIR".into(),
                dir.join("outbox").display().to_string(),
            ),
        ];
        pairs.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let config = Config::from_vars(&Vars::from_pairs(pairs)).expect("config");
        let gh = Gatehouse::connect(config).await.expect("connect");
        gh.migrate().await.expect("migrate");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = gh.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        TestApp {
            base,
            gh,
            client,
            stop: Some(tx),
            task: Some(task),
            idle_tasks: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    /// Any call: a bearer token when given, a JSON body when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// GET without credentials.
    pub async fn get_public(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    /// POST JSON without credentials.
    pub async fn post_public(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(&body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(&body))
            .await
    }

    /// POST with a bearer token and no body at all.
    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.send(Method::POST, path, Some(token), None).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(token), Some(&body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Register `email` with [`PASSWORD`]; the 201 answer's body.
    pub async fn register(&self, email: &str) -> Value {
        let res = self
            .post_public(
                "/api/v1/auth/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status, 201, "register {email}: {}", res.body);
        res.body
    }

    /// Log in with any password; the answer as it comes.
    pub async fn login_with(&self, email: &str, password: &str) -> Reply {
        self.post_public(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// Log in with [`PASSWORD`]: the token pair (the account has no second factor).
    pub async fn login(&self, email: &str) -> Pair {
        self.login_with(email, PASSWORD).await.pair()
    }

    /// Log in with [`PASSWORD`] to an account with a second factor: the `mfa_token` to verify.
    pub async fn mfa_challenge(&self, email: &str) -> Value {
        let res = self.login_with(email, PASSWORD).await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["mfa_required"], true, "{}", res.body);
        res.body["mfa_token"].clone()
    }

    pub async fn me(&self, token: &str) -> Reply {
        self.get("/api/v1/auth/me", token).await
    }

    /// The id of the account behind `token`.
    pub async fn user_id(&self, token: &str) -> String {
        let me = self.me(token).await;
        assert_eq!(me.status, 200, "{}", me.body);
        me.body["user"]["id"].as_str().unwrap().to_string()
    }

    /// Refresh with any token (a string or a JSON value taken from an answer).
    pub async fn refresh(&self, refresh_token: impl serde::Serialize) -> Reply {
        self.post_public(
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Log out of the session behind `token` (no body, as a browser's fetch sends it).
    pub async fn logout(&self, token: &str) -> Reply {
        self.post_empty("/api/v1/auth/logout", token).await
    }

    /// The caller's own session in `GET /auth/sessions`.
    pub async fn current_session(&self, token: &str) -> Value {
        let list = self.get("/api/v1/auth/sessions", token).await.body;
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["current"] == true)
            .unwrap_or_else(|| panic!("no current session in {list}"))
            .clone()
    }

    /// Make [`ROOT`] a super_admin (with [`PASSWORD`]) and return its access token.
    pub async fn admin(&self) -> String {
        self.gh
            .accounts()
            .ensure_super_admin(ROOT, Some(PASSWORD))
            .await
            .unwrap();
        self.login(ROOT).await.access
    }

    /// Create an account with `roles` through the users API as `token`; its id.
    pub async fn create_user(&self, token: &str, email: &str, roles: &[&str]) -> String {
        let res = self
            .post(
                "/api/v1/users",
                token,
                json!({"email": email, "password": PASSWORD, "name": email, "roles": roles}),
            )
            .await;
        assert_eq!(res.status, 201, "create {email}: {}", res.body);
        assert_eq!(res.body["roles"], json!(roles));
        res.body["id"].as_str().unwrap().to_string()
    }

    /// Create an account with `roles` as `admin` and log it in; its id and access token.
    pub async fn user_as(&self, admin: &str, email: &str, roles: &[&str]) -> (String, String) {
        let id = self.create_user(admin, email, roles).await;
        (id, self.login(email).await.access)
    }

    /// Issue a service API key as `token`; the 201 answer's body (`key` holds the secret).
    pub async fn api_key(&self, token: &str, name: &str, scopes: &[&str]) -> Value {
        let res = self
            .post(
                "/api/v1/api-keys",
                token,
                json!({"name": name, "scopes": scopes}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.body
    }

    /// Total rows of one page of the audit log for `query` (as an admin reads it).
    pub async fn audit_total(&self, token: &str, query: &str) -> Value {
        let page = self.get(&format!("/api/v1/audit?{query}"), token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        page.body["total"].clone()
    }
}
