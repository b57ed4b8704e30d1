//! A software passkey for the API flows (webauthn-authenticator-rs's `SoftPasskey`, real P-256 keys and signatures), standing in for a browser and its authenticator at an origin the test chooses.

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse, Url,
};

use super::{Reply, TestApp};

/// The public URL the passkey tests' servers claim (their relying party is `localhost`).
pub const ORIGIN: &str = "http://localhost:8080";

/// One authenticator holding the passkeys it registered, answering as a browser at `origin`.
pub struct SoftKey {
    inner: WebauthnAuthenticator<SoftPasskey>,
    /// Credential ids it made, base64url.
    pub ids: Vec<String>,
}

impl Default for SoftKey {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftKey {
    pub fn new() -> Self {
        // `true`: it claims user verification, as a platform authenticator with a PIN would.
        Self {
            inner: WebauthnAuthenticator::new(SoftPasskey::new(true)),
            ids: Vec::new(),
        }
    }

    /// Answer `navigator.credentials.create()` with these options (a `…/begin` answer's `options`).
    pub fn create(&mut self, origin: &str, options: &Value) -> Value {
        // The soft key cannot store credentials itself (a discoverable credential): it answers
        // as a key that was not asked to. The server checks the same attestation either way;
        // the browser tests' virtual authenticator keeps its credential for real.
        let mut options = options.clone();
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = json!("discouraged");
        selection["requireResidentKey"] = json!(false);
        let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let credential = self
            .inner
            .do_registration(Url::parse(origin).unwrap(), options)
            .expect("the soft passkey registers");
        let answer = serde_json::to_value(&credential).unwrap();
        self.ids.push(answer["id"].as_str().unwrap().to_string());
        answer
    }

    /// Answer `navigator.credentials.get()`. For a discoverable sign-in (no allowed credentials
    /// in the options) the key offers its newest passkey and returns the user handle, as a
    /// browser does: `user_id` (the handle is not signed, the rest of the answer is).
    pub fn get(&mut self, origin: &str, options: &Value, user_id: Option<&str>) -> Value {
        let mut options = options.clone();
        let allowed = &mut options["publicKey"]["allowCredentials"];
        if allowed.as_array().is_none_or(Vec::is_empty) {
            let id = self.ids.last().expect("a registered passkey");
            *allowed = json!([{"type": "public-key", "id": id}]);
        }
        let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let mut credential: PublicKeyCredential = self
            .inner
            .do_authentication(Url::parse(origin).unwrap(), options)
            .expect("the soft passkey signs");
        if let Some(user) = user_id {
            let uuid = uuid::Uuid::parse_str(user).unwrap();
            credential.response.user_handle = Some(uuid.as_bytes().to_vec().into());
        }
        serde_json::to_value(&credential).unwrap()
    }
}

impl TestApp {
    /// `POST /auth/webauthn/register/begin` then `…/finish` with `key` at `origin`: the finish answer.
    pub async fn add_passkey(
        &self,
        token: &str,
        key: &mut SoftKey,
        origin: &str,
        name: &str,
    ) -> Reply {
        let begin = self
            .post("/api/v1/auth/webauthn/register/begin", token, json!({}))
            .await;
        assert_eq!(begin.status, 200, "{}", begin.body);
        let credential = key.create(origin, &begin.body["options"]);
        self.post(
            "/api/v1/auth/webauthn/register/finish",
            token,
            json!({"ceremony_id": begin.body["ceremony_id"], "name": name, "credential": credential}),
        )
        .await
    }

    /// A discoverable sign-in's begin: `(ceremony_id, options)`.
    pub async fn passkey_begin(&self) -> (Value, Value) {
        let begin = self
            .post_public("/api/v1/auth/webauthn/login/begin", json!({}))
            .await;
        assert_eq!(begin.status, 200, "{}", begin.body);
        (
            begin.body["ceremony_id"].clone(),
            begin.body["options"].clone(),
        )
    }

    /// `POST /auth/webauthn/login/finish`.
    pub async fn passkey_finish(&self, ceremony_id: &Value, credential: &Value) -> Reply {
        self.post_public(
            "/api/v1/auth/webauthn/login/finish",
            json!({"ceremony_id": ceremony_id, "credential": credential}),
        )
        .await
    }
}

/// A WebDriver extension command of the virtual authenticator (W3C WebAuthn § 11):
/// `{method} /session/{id}/webauthn/{path}`.
#[derive(Debug)]
struct WebauthnCommand {
    method: axum::http::Method,
    path: String,
    body: Option<Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebauthnCommand {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

impl super::Browser {
    /// Attach a virtual platform authenticator (CTAP2, resident keys, user verification that
    /// always succeeds, presence simulated): its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let answer = self
            .client
            .issue_cmd(WebauthnCommand {
                method: axum::http::Method::POST,
                path: "authenticator".into(),
                body: Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                })),
            })
            .await
            .expect("chromium adds a virtual authenticator");
        answer.as_str().expect("an authenticator id").to_string()
    }

    /// The credentials the virtual authenticator `id` holds.
    pub async fn virtual_credentials(&self, id: &str) -> Vec<Value> {
        let answer = self
            .client
            .issue_cmd(WebauthnCommand {
                method: axum::http::Method::GET,
                path: format!("authenticator/{id}/credentials"),
                body: None,
            })
            .await
            .expect("chromium lists the credentials");
        answer.as_array().cloned().unwrap_or_default()
    }

    /// In the page: begin a discoverable sign-in at `begin`, let the browser's authenticator
    /// answer, and hand back `{ceremony_id, credential}` without posting it anywhere.
    pub async fn passkey_assertion(&self, begin: &str) -> Value {
        const SCRIPT: &str = r#"
            const [begin, done] = arguments;
            const b64 = s => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
            const enc = buf => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
            fetch(begin, {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"})
              .then(r => r.json())
              .then(c => {
                const pk = c.options.publicKey;
                pk.challenge = b64(pk.challenge);
                return navigator.credentials.get({publicKey: pk}).then(a => done({
                  ceremony_id: c.ceremony_id,
                  credential: {
                    id: a.id, rawId: enc(a.rawId), type: a.type,
                    response: {
                      clientDataJSON: enc(a.response.clientDataJSON),
                      authenticatorData: enc(a.response.authenticatorData),
                      signature: enc(a.response.signature),
                      userHandle: a.response.userHandle ? enc(a.response.userHandle) : null,
                    },
                  },
                }));
              })
              .catch(e => done({error: String(e)}));
        "#;
        self.client
            .execute_async(SCRIPT, vec![json!(begin)])
            .await
            .expect("the script runs")
    }
}

/// A server for the browser: it listens on 127.0.0.1 but its public URL (so its relying party
/// and origin) is `http://localhost:<port>`, a secure context for chromium. `extra_env` may
/// override the WebAuthn variables.
pub async fn localhost_app(db: &super::TestDb, extra_env: &[(&str, &str)]) -> (TestApp, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    // A master key too, so MFA can be turned on.
    let mut env = vec![
        ("GATEHOUSE_PUBLIC_URL", base.as_str()),
        ("ENCRYPTION_MASTER_KEY", super::totp::MASTER_KEY),
    ];
    env.extend_from_slice(extra_env);
    let app = db.app_on(&env, listener).await;
    (app, base)
}
