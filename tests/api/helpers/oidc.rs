//! Outside sign-in providers for the OAuth tests: a real OpenID provider (the `oidc-provider` npm package, tests/oidc/provider.mjs) in a Node process on loopback, a GitHub stand-in (an axum router speaking its authorize, token, `/user` and `/user/emails` endpoints), a server configured for both, and a browser (cookie jar, redirects followed by hand).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpListener;

use super::{Reply, TestApp, TestDb, USER_AGENT};

pub const OIDC_CLIENT_ID: &str = "gatehouse-test";
pub const OIDC_CLIENT_SECRET: &str = "gatehouse-test-client-secret";
const GITHUB_CLIENT_ID: &str = "gh-test-client";
const GITHUB_CLIENT_SECRET: &str = "gh-test-client-secret";

/// The OpenID provider process; killed when dropped.
pub struct OidcProvider {
    pub issuer: String,
    child: tokio::process::Child,
}

impl OidcProvider {
    /// Start tests/oidc/provider.mjs with a client whose redirect URI is `redirect_uri`.
    pub async fn start(redirect_uri: &str) -> OidcProvider {
        let dir = format!("{}/tests/oidc", env!("CARGO_MANIFEST_DIR"));
        assert!(
            std::path::Path::new(&dir)
                .join("node_modules/oidc-provider")
                .exists(),
            "the test OpenID provider is not installed: run `npm ci` in {dir} (README, Run the tests)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .args([OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, redirect_uri])
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be on the PATH (README, Run the tests)");
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        // Keep reading, so that what it prints later never meets a closed pipe.
        tokio::spawn(async move {
            let mut rest = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut rest).await;
        });
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the provider did not start: {line:?}"));
        OidcProvider {
            issuer: started["issuer"].as_str().unwrap().to_string(),
            child,
        }
    }

    /// Make the next token response carry an ID token signed with a key of someone else's:
    /// `newkid` under a key id the provider never published, `samekid` under its own.
    pub async fn forge_next_id_token(&self, mode: &str) {
        let res = reqwest::get(format!("{}/__test/forge?mode={mode}", self.issuer))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    /// Stop the provider (it is unreachable from then on).
    pub async fn stop(&mut self) {
        self.child.kill().await.unwrap();
    }
}

/// What the GitHub stand-in remembers between its calls.
#[derive(Default)]
struct GitHubState {
    /// code → (login, PKCE challenge).
    codes: HashMap<String, (String, String)>,
    /// access token → login.
    tokens: HashMap<String, String>,
}

/// A stand-in for GitHub's OAuth endpoints and API on loopback. An account `LOGIN` has the
/// primary email LOGIN@example.com, verified unless LOGIN ends in `.unverified`; the
/// authorize page signs in the account named by its `login` parameter at once.
pub struct GitHubStandIn {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GitHubStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn github_id(login: &str) -> u64 {
    login
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        % 1_000_000_000
}

impl GitHubStandIn {
    /// Stop answering (connections are refused from then on).
    pub async fn stop(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    pub async fn start() -> GitHubStandIn {
        use axum::extract::{Form, Query, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::response::{IntoResponse, Redirect, Response};
        use axum::routing::{get, post};

        type Shared = Arc<Mutex<GitHubState>>;

        async fn authorize(
            State(st): State<Shared>,
            Query(q): Query<HashMap<String, String>>,
        ) -> Response {
            if q.get("client_id").map(String::as_str) != Some(GITHUB_CLIENT_ID)
                || q.get("code_challenge_method").map(String::as_str) != Some("S256")
            {
                return (StatusCode::BAD_REQUEST, "bad client or no PKCE").into_response();
            }
            let code = uuid::Uuid::now_v7().simple().to_string();
            st.lock().unwrap().codes.insert(
                code.clone(),
                (q["login"].clone(), q["code_challenge"].clone()),
            );
            let mut back = url::Url::parse(&q["redirect_uri"]).unwrap();
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &q["state"]);
            Redirect::to(back.as_str()).into_response()
        }

        async fn token(
            State(st): State<Shared>,
            Form(f): Form<HashMap<String, String>>,
        ) -> axum::Json<Value> {
            let mut st = st.lock().unwrap();
            let found = st.codes.remove(f.get("code").map_or("", String::as_str));
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()));
            match found {
                Some((login, expected))
                    if expected == challenge
                        && f.get("client_id").map(String::as_str) == Some(GITHUB_CLIENT_ID)
                        && f.get("client_secret").map(String::as_str)
                            == Some(GITHUB_CLIENT_SECRET) =>
                {
                    let token = format!("gho_{}", uuid::Uuid::now_v7().simple());
                    st.tokens.insert(token.clone(), login);
                    axum::Json(
                        json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
                    )
                }
                // GitHub answers a bad code with 200 and an error.
                _ => axum::Json(json!({"error": "bad_verification_code"})),
            }
        }

        fn login_of(st: &Shared, headers: &HeaderMap) -> Option<String> {
            let auth = headers.get("authorization")?.to_str().ok()?;
            let token = auth.strip_prefix("Bearer ")?;
            st.lock().unwrap().tokens.get(token).cloned()
        }

        async fn user(State(st): State<Shared>, headers: HeaderMap) -> Response {
            match login_of(&st, &headers) {
                Some(login) => axum::Json(json!({
                    "id": github_id(&login), "login": login, "name": null, "email": null
                }))
                .into_response(),
                None => StatusCode::UNAUTHORIZED.into_response(),
            }
        }

        async fn emails(State(st): State<Shared>, headers: HeaderMap) -> Response {
            match login_of(&st, &headers) {
                Some(login) => {
                    let name = login.trim_end_matches(".unverified");
                    axum::Json(json!([
                        {"email": format!("{name}-old@example.com"), "primary": false, "verified": true, "visibility": null},
                        {"email": format!("{name}@example.com"), "primary": true,
                         "verified": !login.ends_with(".unverified"), "visibility": "private"}
                    ]))
                    .into_response()
                }
                None => StatusCode::UNAUTHORIZED.into_response(),
            }
        }

        let app = axum::Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/api/user", get(user))
            .route("/api/user/emails", get(emails))
            .with_state(Shared::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        GitHubStandIn { base, task }
    }
}

/// A server with the provider `acme` (the OpenID provider) and GitHub (the stand-in), and
/// those two.
pub struct OAuthWorld {
    pub s: TestApp,
    pub idp: OidcProvider,
    pub github: GitHubStandIn,
}

impl OAuthWorld {
    /// Where the tests ask to be sent back: on the server's own origin (the default allow-list).
    pub fn done(&self) -> String {
        self.s.url("/app/done")
    }
}

impl TestDb {
    /// A server with OAuth sign-in through `acme` (a real OpenID provider) and GitHub (a stand-in).
    pub async fn oauth_app(&self, extra_env: &[(&str, &str)]) -> OAuthWorld {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = OidcProvider::start(&format!("{base}/api/v1/auth/oauth/acme/callback")).await;
        let github = GitHubStandIn::start().await;
        let (auth, token, api) = (
            format!("{}/login/oauth/authorize", github.base),
            format!("{}/login/oauth/access_token", github.base),
            format!("{}/api", github.base),
        );
        let mut env = vec![
            ("GATEHOUSE_PUBLIC_URL", base.as_str()),
            ("OAUTH_ENABLED", "true"),
            ("OAUTH_PROVIDERS", "acme"),
            ("OAUTH_ACME_ISSUER", idp.issuer.as_str()),
            ("OAUTH_ACME_CLIENT_ID", OIDC_CLIENT_ID),
            ("OAUTH_ACME_CLIENT_SECRET", OIDC_CLIENT_SECRET),
            ("OAUTH_ACME_DISPLAY_NAME", "Acme SSO"),
            ("GITHUB_CLIENT_ID", GITHUB_CLIENT_ID),
            ("GITHUB_CLIENT_SECRET", GITHUB_CLIENT_SECRET),
            ("OAUTH_GITHUB_AUTH_URL", auth.as_str()),
            ("OAUTH_GITHUB_TOKEN_URL", token.as_str()),
            ("OAUTH_GITHUB_API_URL", api.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let s = TestApp::start_on(&self.url, self.dir.path(), &env, listener).await;
        OAuthWorld { s, idp, github }
    }
}

/// A browser without a page renderer (plain HTTP): its own cookie jar, and redirects followed one at a time.
pub struct CookieBrowser {
    pub client: reqwest::Client,
    pub jar: Arc<Jar>,
}

impl Default for CookieBrowser {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieBrowser {
    pub fn new() -> CookieBrowser {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(jar.clone())
            .build()
            .unwrap();
        CookieBrowser { client, jar }
    }

    /// GET `url`: the answer as read.
    pub async fn get(&self, url: &str) -> Reply {
        Reply::read(self.client.get(url).send().await.unwrap()).await
    }

    /// The cookies this browser would send to `url`.
    pub fn cookies(&self, url: &str) -> String {
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// Follow redirects from `url` until one points at a URL starting with `stop`: that URL
    /// (not visited).
    pub async fn follow_until(&self, url: &str, stop: &str) -> String {
        let mut url = url.to_string();
        for _ in 0..20 {
            let res = self.get(&url).await;
            assert!(
                res.status.is_redirection(),
                "{url} answered {} {}",
                res.status,
                res.text
            );
            let next = url::Url::parse(&url)
                .unwrap()
                .join(res.header("location"))
                .unwrap()
                .to_string();
            if next.starts_with(stop) {
                return next;
            }
            url = next;
        }
        panic!("too many redirects from {url}");
    }
}

/// `url` with the query parameter `name` set to `value` (replacing any).
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair(name, value);
    u.to_string()
}

/// The query parameter `name` of `url`.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
