//! The hosted pages. Without a browser, on every backend: their security headers and cookies, a form posted without its CSRF token refused before anything happens, `GATEHOUSE_UI=off`, and an app's sign-in through `/login?redirect_to=` and its one-time code. In a real browser (headless chromium over WebDriver, on SQLite): sign up and confirm from the mail, TOTP enrolment and a sign-in with a code, a reset from the mail link, revoking another session, and an admin disabling a signed-in user. Each browser page is saved under `target/screenshots/`.

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{
    Backend, Browser, MASTER_KEY, PASSWORD, ROOT, SmtpSink, TestApp, TestDb, base32_decode,
    code_at, decode_qp, link_token, step_now,
};

/// A client that shows redirects instead of following them, and keeps no cookies.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A browser's state as a test keeps it by hand: its cookies and the last form's CSRF token.
#[derive(Default)]
struct Jar {
    cookies: Vec<(String, String)>,
    csrf: String,
}

impl Jar {
    fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Take the answer's cookies and the CSRF token of its form, if any.
    fn take(&mut self, res: &reqwest::Response) {
        for set in res.headers().get_all("set-cookie") {
            let first = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = first.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// GET a page with the jar's cookies; its status, headers and body.
    async fn get(&mut self, s: &TestApp, path: &str) -> Got {
        let res = plain_client()
            .get(s.url(path))
            .header("cookie", self.header())
            .send()
            .await
            .unwrap();
        self.take(&res);
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.text().await.unwrap();
        const FIELD: &str = r#"name="csrf" value=""#;
        if let Some(at) = body.find(FIELD) {
            let rest = &body[at + FIELD.len()..];
            self.csrf = rest[..rest.find('"').unwrap()].to_string();
        }
        Got {
            status,
            headers,
            body,
        }
    }

    async fn post(&mut self, s: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let res = plain_client()
            .post(s.url(path))
            .header("cookie", self.header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.take(&res);
        res
    }
}

/// A page as read by [`Jar::get`].
struct Got {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

fn location(res: &reqwest::Response) -> String {
    res.headers()["location"].to_str().unwrap().to_string()
}

async fn pages_carry_security_headers_and_cookies(db: TestDb) {
    let s = db
        .app(&[("UI_LOGO_URL", "https://cdn.example.com/logo.svg")])
        .await;
    let mut jar = Jar::default();
    let Got {
        status,
        headers: h,
        body,
    } = jar.get(&s, "/login").await;
    assert_eq!(status, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "img-src 'self' data: https://cdn.example.com",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("gatehouse_csrf="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    assert!(!jar.csrf.is_empty() && body.contains(r#"<label for="email">"#));
    assert!(body.contains("https://cdn.example.com/logo.svg"));
    assert!(!body.contains("<script"), "no scripts: {body}");
    let css = s.get_public("/ui/style.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.text.contains("--accent: #2557d6"));

    // A sign-in sets the page session's cookie the same way.
    s.register("ada@example.com").await;
    let res = jar
        .post(
            &s,
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrf", &jar.csrf.clone()),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/account");
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("gatehouse_page="))
        .expect("a page-session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    // It is a database session like any other: listed, and nothing of the cookie is stored.
    let pair = s.login("ada@example.com").await;
    let sessions = s.get("/api/v1/auth/sessions", &pair.access).await.body;
    assert_eq!(sessions["total"], 2, "{sessions}");
    let value = session
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string();
    let rows = db.query("SELECT * FROM sessions").await;
    assert_eq!(rows.len(), 2);
    for table in ["sessions", "one_time_tokens", "audit_log"] {
        for row in db.query(&format!("SELECT * FROM {table}")).await {
            assert!(
                !format!("{row:?}").contains(&value),
                "the cookie is in {table}"
            );
        }
    }
    let page = jar.get(&s, "/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("ada@example.com"));
    assert_eq!(page.headers["cache-control"], "no-store");
    s.stop().await;

    // Behind https the cookies are Secure and bound to the host.
    let s = db
        .app(&[("GATEHOUSE_PUBLIC_URL", "https://id.example.com")])
        .await;
    let res = s.get_public("/login").await;
    let cookie = res.header("set-cookie");
    assert!(cookie.starts_with("__Host-gatehouse_csrf="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    s.stop().await;
}

async fn a_form_without_its_csrf_token_is_refused(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let mut jar = Jar::default();
    jar.get(&s, "/login").await;
    let good = jar.csrf.clone();
    let form = |csrf: &'static str| {
        vec![
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf", csrf),
        ]
    };
    // No token, a made-up token, and a real token without the cookie it belongs to.
    let res = jar.post(&s, "/login", &form("")[..2]).await;
    assert_eq!(res.status(), 403);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("did not come from this site")
    );
    assert_eq!(jar.post(&s, "/login", &form("forged")).await.status(), 403);
    let res = plain_client()
        .post(s.url("/login"))
        .form(&[
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("csrf", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "the token is bound to the browser's cookie"
    );
    // Nothing happened: no session, no login attempt counted or audited.
    assert!(db.query("SELECT id FROM sessions").await.is_empty());
    assert_eq!(db.user("ada@example.com").await.failed_logins, 0);
    // The same form with its token signs in; the token then changes with the session.
    let res = jar
        .post(
            &s,
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("csrf", &good),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let res = jar.post(&s, "/logout", &[("csrf", &good)]).await;
    assert_eq!(res.status(), 403, "the signed-out token does not sign out");
    jar.get(&s, "/account").await;
    let res = jar
        .post(&s, "/logout", &[("csrf", &jar.csrf.clone())])
        .await;
    assert_eq!(
        (res.status(), location(&res).as_str()),
        (StatusCode::SEE_OTHER, "/login")
    );
    s.stop().await;
}

async fn ui_off_serves_no_pages(db: TestDb) {
    let s = db.app(&[("GATEHOUSE_UI", "off")]).await;
    for path in [
        "/login",
        "/register",
        "/account",
        "/ui/style.css",
        "/verify-email?token=x",
        // The OpenID Provider needs the pages: it is off with them.
        "/.well-known/openid-configuration",
        "/oauth2/authorize?client_id=x",
        "/oauth2/userinfo",
    ] {
        let res = s.get_public(path).await;
        assert_eq!(res.problem(), (404, "not_found"), "{path}");
    }
    let res = plain_client()
        .post(s.url("/login"))
        .form(&[("email", "a")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The API is all there.
    s.register("ada@example.com").await;
    s.login("ada@example.com").await;
    s.stop().await;
}

async fn an_app_signs_in_through_the_pages_with_a_one_time_code(db: TestDb) {
    let s = db
        .app(&[("UI_REDIRECT_ALLOWLIST", "https://app.example.com")])
        .await;
    s.register("ada@example.com").await;
    let mut jar = Jar::default();
    // An address outside the allow-list is refused before anything else.
    let refused = jar
        .get(&s, "/login?redirect_to=https%3A%2F%2Fevil.example.net%2Fcb")
        .await;
    assert_eq!(refused.status, 400);
    let page = jar
        .get(
            &s,
            "/login?redirect_to=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1",
        )
        .await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://app.example.com"),
        "{csp}"
    );
    assert!(
        page.body
            .contains(r#"value="https://app.example.com/cb?x=1""#)
    );
    let res = jar
        .post(
            &s,
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("redirect_to", "https://app.example.com/cb?x=1"),
                ("csrf", &jar.csrf.clone()),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let to = url::Url::parse(&location(&res)).unwrap();
    assert_eq!(to.origin().ascii_serialization(), "https://app.example.com");
    let query: Vec<(String, String)> = to.query_pairs().into_owned().collect();
    assert_eq!(query[0], ("x".into(), "1".into()));
    assert_eq!(query[1].0, "code");
    assert!(
        !to.as_str().contains("eyJ"),
        "no token in the address: {to}"
    );
    let code = query[1].1.clone();
    // The app exchanges the code once, for a session of its own.
    let pair = s
        .post_public("/api/v1/auth/code/exchange", json!({"code": code}))
        .await
        .pair();
    assert_eq!(
        s.user_id(&pair.access).await,
        pair.body["user"]["id"].as_str().unwrap()
    );
    let again = s
        .post_public("/api/v1/auth/code/exchange", json!({"code": code}))
        .await;
    assert_eq!(again.problem(), (401, "invalid_code"));
    let forged = s
        .post_public("/api/v1/auth/code/exchange", json!({"code": "x.y"}))
        .await;
    assert_eq!(forged.problem(), (401, "invalid_code"));
    assert_eq!(
        s.audit_total(&s.admin().await, "event=sign_in_code_exchanged")
            .await,
        1
    );
    // Signed in already: the next app sign-in goes straight back with a new code.
    let again = jar
        .get(&s, "/login?redirect_to=https%3A%2F%2Fapp.example.com%2F")
        .await;
    assert_eq!(again.status, 303);
    let next = again.headers["location"].to_str().unwrap().to_string();
    assert!(next.starts_with("https://app.example.com/?code="), "{next}");
    // A code whose sign-in session has ended is worthless.
    jar.get(&s, "/account").await;
    jar.post(&s, "/logout", &[("csrf", &jar.csrf.clone())])
        .await;
    let code = next.split("code=").nth(1).unwrap();
    let code = percent_decode(code);
    let res = s
        .post_public("/api/v1/auth/code/exchange", json!({"code": code}))
        .await;
    assert_eq!(res.problem(), (401, "invalid_code"));
    s.stop().await;
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("c={s}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

per_backend!(
    pages_carry_security_headers_and_cookies,
    a_form_without_its_csrf_token_is_refused,
    ui_off_serves_no_pages,
    an_app_signs_in_through_the_pages_with_a_one_time_code,
);

/// A SQLite database for a browser test (the page routes' checks above run on every backend).
async fn sqlite() -> TestDb {
    TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite is always tested")
}

/// Sign in through the page as `email` with `password`; lands on what `then` selects.
async fn sign_in(b: &Browser, s: &TestApp, email: &str, password: &str, then: &str) {
    b.goto(&s.url("/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", password).await;
    b.submit("#sign-in", then).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_sign_up_then_confirm_from_the_mail() {
    let db = sqlite().await;
    let smtp = SmtpSink::start().await;
    let s = db
        .public_app(&[
            ("SMTP_URL", &smtp.url()),
            ("AUTH_REQUIRE_EMAIL_VERIFICATION", "true"),
        ])
        .await;
    let mut b = Browser::start("sign-up").await;
    b.goto(&s.url("/login")).await;
    b.find("#sign-in").await;
    b.shot("login").await;
    b.click("a[href='/register']").await;
    b.fill("#name", "Ada Lovelace").await;
    b.fill("#email", "ada@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.shot("register").await;
    b.submit("#create", "#message").await;
    assert!(b.text("#message").await.contains("confirm your email"));
    b.shot("check-mailbox").await;

    // Not yet: the address is unconfirmed.
    sign_in(&b, &s, "ada@example.com", PASSWORD, "#error").await;
    assert!(
        b.text("#error").await.contains("Verify your email"),
        "{}",
        b.text("#error").await
    );

    let mail = &smtp.wait_for(1).await[0];
    let token = link_token(mail, "/verify-email").unwrap();
    let link = format!("{}/verify-email?token={token}", s.base);
    assert!(
        decode_qp(mail).contains(&link),
        "the mail links to this server's page"
    );
    b.goto(&link).await;
    b.find("#confirm").await;
    b.shot("verify-email").await;
    b.submit("#confirm", "#message").await;
    assert!(b.text("#message").await.contains("confirmed"));
    b.shot("verified").await;
    assert!(db.user("ada@example.com").await.email_verified);

    sign_in(&b, &s, "ada@example.com", PASSWORD, "#sessions").await;
    assert_eq!(b.path().await, "/account");
    assert!(b.source().await.contains("verified"));
    assert_eq!(
        b.find("#name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Ada Lovelace")
    );
    b.shot("account").await;
    // On a phone the account page is one column and needs no sideways scrolling.
    b.resize(390, 844).await;
    b.shot("account-phone").await;
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_enrol_totp_sign_out_and_sign_in_with_a_code() {
    let db = sqlite().await;
    let s = db
        .public_app(&[("ENCRYPTION_MASTER_KEY", MASTER_KEY)])
        .await;
    s.register("ada@example.com").await;
    let mut b = Browser::start("mfa").await;
    sign_in(&b, &s, "ada@example.com", PASSWORD, "#enroll").await;
    b.submit("#enroll", "#totp-secret").await;
    let qr = b.find("img.qr").await.attr("src").await.unwrap().unwrap();
    assert!(qr.starts_with("data:image/svg+xml;base64,"), "{qr}");
    let secret = base32_decode(&b.text("#totp-secret").await);
    b.shot("enrol").await;
    let confirmed = step_now();
    b.fill("#code", &code_at(&secret, confirmed)).await;
    b.submit("#confirm", "#recovery-codes").await;
    let codes = b
        .client
        .find_all(fantoccini::Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    b.shot("recovery-codes").await;
    assert!(db.user("ada@example.com").await.mfa_enabled);

    b.click("a[href='/account']").await;
    b.submit("#sign-out", "#sign-in").await;
    assert_eq!(b.path().await, "/login");
    b.goto(&s.url("/account")).await;
    b.find("#sign-in").await;
    assert_eq!(b.path().await, "/login", "signed out");

    sign_in(&b, &s, "ada@example.com", PASSWORD, "#code").await;
    b.shot("second-factor").await;
    // A wrong code says so and keeps the step.
    b.fill("#code", "000000").await;
    b.submit("#verify", "#error").await;
    // The enrolment's step is spent: the next one (accepted within ±1 step).
    b.fill("#code", &code_at(&secret, step_now().max(confirmed + 1)))
        .await;
    b.submit("#verify", "#disable-mfa").await;
    assert_eq!(b.path().await, "/account");
    b.shot("account-mfa-on").await;
    let (audit, admin) = (s.admin().await, "event=login_succeeded");
    assert_eq!(
        s.audit_total(&audit, admin).await,
        3,
        "ada twice, root once"
    );
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_reset_the_password_from_the_mail_link() {
    let db = sqlite().await;
    let smtp = SmtpSink::start().await;
    let s = db.public_app(&[("SMTP_URL", &smtp.url())]).await;
    s.register("ada@example.com").await;
    let other = s.login("ada@example.com").await;
    let mut b = Browser::start("reset").await;
    b.goto(&s.url("/login")).await;
    b.click("a[href='/forgot-password']").await;
    b.fill("#email", "ada@example.com").await;
    b.shot("forgot").await;
    b.submit("#send", "#message").await;
    // The first message is the verification mail of the registration.
    let token = smtp.wait_for(2).await[1..]
        .iter()
        .find_map(|m| link_token(m, "/reset-password"))
        .expect("a reset mail");
    b.goto(&format!("{}/reset-password?token={token}", s.base))
        .await;
    b.fill("#new_password", "Brand-New-Horse7").await;
    b.fill("#confirm_password", "Brand-New-Horse8").await;
    b.submit("#save", "#error").await;
    assert!(b.text("#error").await.contains("differ"));
    b.fill("#new_password", "Brand-New-Horse7").await;
    b.fill("#confirm_password", "Brand-New-Horse7").await;
    b.shot("reset").await;
    b.submit("#save", "#message").await;
    b.shot("reset-done").await;
    assert_eq!(s.login_with("ada@example.com", PASSWORD).await.status, 401);
    assert_eq!(s.me(&other.access).await.status, 401, "every session ended");
    sign_in(&b, &s, "ada@example.com", "Brand-New-Horse7", "#sessions").await;
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_revoke_another_session() {
    let db = sqlite().await;
    let s = db.public_app(&[]).await;
    s.register("ada@example.com").await;
    let other = s.login("ada@example.com").await;
    let mut b = Browser::start("sessions").await;
    sign_in(&b, &s, "ada@example.com", PASSWORD, "#sessions").await;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#sessions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        b.source().await.contains("gatehouse-tests/1"),
        "the other session's device"
    );
    b.shot("sessions").await;
    b.submit(&format!("#revoke-{}", other.session_id), "#notice")
        .await;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css("#sessions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    b.shot("revoked").await;
    assert_eq!(
        s.me(&other.access).await.status,
        401,
        "the revoked session is refused"
    );
    assert_eq!(s.refresh(&other.refresh).await.status, 401);
    // Signing out everywhere ends the page session too.
    let third = s.login("ada@example.com").await;
    b.goto(&s.url("/account")).await;
    b.submit("#sign-out-everywhere", "#sign-in").await;
    assert_eq!(s.me(&third.access).await.status, 401);
    b.goto(&s.url("/account")).await;
    b.find("#sign-in").await;
    assert_eq!(b.path().await, "/login");
    b.close().await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_an_admin_disables_a_signed_in_user() {
    let db = sqlite().await;
    let s = db.public_app(&[]).await;
    s.admin().await;
    s.register("ada@example.com").await;
    let ada = db.user("ada@example.com").await.id;
    let mut user = Browser::start("disabled-user").await;
    sign_in(&user, &s, "ada@example.com", PASSWORD, "#sessions").await;
    user.shot("before").await;

    let mut admin = Browser::start("admin").await;
    sign_in(&admin, &s, ROOT, PASSWORD, "#sessions").await;
    admin.click("a[href='/admin/users']").await;
    admin.fill("#q", "ada").await;
    admin.click("#search").await;
    admin.wait_for_url("q=ada").await;
    admin.find(&format!("#disable-{ada}")).await;
    admin.shot("users").await;
    admin
        .submit(&format!("#disable-{ada}"), &format!("#enable-{ada}"))
        .await;
    admin.shot("users-disabled").await;
    assert!(!db.user("ada@example.com").await.active);

    user.client.refresh().await.unwrap();
    user.find("#sign-in").await;
    assert_eq!(user.path().await, "/login", "signed out at once");
    user.shot("after").await;
    sign_in(&user, &s, "ada@example.com", PASSWORD, "#error").await;
    assert!(user.text("#error").await.contains("disabled"));

    admin.click("a[href='/admin/audit']").await;
    admin.fill("#event", "user_disabled").await;
    admin.click("#filter").await;
    admin.wait_for_url("event=user_disabled").await;
    let rows = admin
        .client
        .find_all(fantoccini::Locator::Css("#audit tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    admin.shot("audit").await;
    // A user who is no admin gets no console.
    s.register("bo@example.com").await;
    sign_in(&user, &s, "bo@example.com", PASSWORD, "#sessions").await;
    user.goto(&s.url("/admin/users")).await;
    assert!(user.text("#message").await.contains("may not"));
    admin.close().await;
    user.close().await;
    s.stop().await;
}
