//! The hosted pages (`GATEHOUSE_UI`): server-rendered HTML over the same services as the API — sign-in, sign-up, the mail links' landings, the account page and a small admin console — with their cookies, CSRF checks and security headers in one place.
//!
//! Handlers stay thin (read the form, call one service, render or redirect). A page session is
//! a database session (`service::web`) carried by an HttpOnly, SameSite=Lax cookie; every form
//! that changes something carries a CSRF token bound to the browser's CSRF cookie and its page
//! session, and one without it gets a 403 page.

mod account;
mod admin;
mod provider;
mod sign_in;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::extract::{Client, cookie};
use super::problem::Problem;
use crate::Gatehouse;
use crate::config::Config;
use crate::crypto::tokens;
use crate::domain::client::ClientInfo;
use crate::domain::roles::Role;
use crate::service::ServiceError;
use crate::service::login::Principal;
use crate::service::oauth::ProviderList;

/// The stylesheet every page links (compiled in; the accent colour is prepended at start).
const STYLE: &str = include_str!("../../../templates/style.css");
/// The pages' one script (compiled in): passkey ceremonies through `navigator.credentials`.
const SCRIPT: &str = include_str!("../../../templates/passkeys.js");

/// The page routes, or none when `GATEHOUSE_UI=off`.
pub(crate) fn routes(gh: &Gatehouse) -> Router<Gatehouse> {
    if !gh.config().ui.enabled {
        return Router::new();
    }
    let headers = SecurityHeaders::new(gh.config());
    Router::new()
        .route("/ui/style.css", get(stylesheet))
        .route("/ui/passkeys.js", get(script))
        .route("/login", get(sign_in::login_form).post(sign_in::login))
        .route("/login/mfa", post(sign_in::second_factor))
        .route("/login/passkey", post(sign_in::passkey))
        .route("/login/oauth", get(sign_in::oauth_landing))
        .route(
            "/register",
            get(sign_in::register_form).post(sign_in::register),
        )
        .route(
            "/forgot-password",
            get(sign_in::forgot_form).post(sign_in::forgot),
        )
        .route(
            "/verify-email",
            get(sign_in::verify_form).post(sign_in::verify),
        )
        .route(
            "/reset-password",
            get(sign_in::reset_form).post(sign_in::reset),
        )
        .route("/logout", post(sign_in::logout))
        .route("/account", get(account::show))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/sessions/revoke", post(account::revoke))
        .route("/account/sessions/revoke-all", post(account::revoke_all))
        .route("/account/apps/revoke", post(account::revoke_app))
        .route("/account/mfa/enroll", post(account::enroll))
        .route("/account/mfa/confirm", post(account::confirm))
        .route("/account/mfa/disable", post(account::disable_mfa))
        .route("/account/passkeys", post(account::passkey_add))
        .route("/account/passkeys/begin", post(account::passkey_begin))
        .route("/account/passkeys/rename", post(account::passkey_rename))
        .route("/account/passkeys/delete", post(account::passkey_delete))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/action", post(admin::user_action))
        .route("/admin/audit", get(admin::audit))
        .route("/oauth2/authorize", get(provider::authorize))
        .route("/oauth2/authorize/consent", post(provider::consent))
        .route("/oauth2/logout", get(provider::logout))
        .layer(axum::middleware::from_fn_with_state(
            (gh.clone(), headers),
            finish,
        ))
}

async fn stylesheet(State(gh): State<Gatehouse>) -> Response {
    let css = format!(
        ":root {{ --accent: {}; }}\n{STYLE}",
        gh.config().ui.accent_color
    );
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        css,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

/// The headers every page carries, built once from the configuration.
#[derive(Clone)]
struct SecurityHeaders {
    csp: HeaderValue,
}

impl SecurityHeaders {
    fn new(config: &Config) -> Self {
        let ui = &config.ui;
        let logo = ui
            .logo_origin()
            .map(|o| format!(" {o}"))
            .unwrap_or_default();
        // A sign-in form redirects to the app it came for: browsers check that redirect
        // against `form-action` too.
        let apps: String = ui
            .redirect_allowlist
            .iter()
            .map(|o| format!(" {o}"))
            .collect();
        let csp = format!(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'{apps}; \
             img-src 'self' data:{logo}; base-uri 'none'; object-src 'none'"
        );
        Self {
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            )),
        }
    }
}

/// What a failed page handler answers: a message that [`finish`] renders as a branded error
/// page, or an answer of its own (a redirect to the sign-in page).
#[derive(Debug)]
pub(crate) enum PageError {
    Message { status: StatusCode, message: String },
    Answer(Box<Response>),
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Message {
            status,
            message: message.into(),
        }
    }

    fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and try again.",
        )
    }

    fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "You may not open this page.")
    }
}

impl From<Response> for PageError {
    fn from(res: Response) -> Self {
        Self::Answer(Box::new(res))
    }
}

/// What a service error says to a person, and its status (the API's, from `problem.rs`).
pub(crate) fn explain(err: ServiceError) -> (StatusCode, String) {
    let problem = Problem::from(err);
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let message = if problem.errors.is_empty() {
        problem.detail
    } else {
        problem
            .errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    (status, capitalised(&message))
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl From<ServiceError> for PageError {
    fn from(err: ServiceError) -> Self {
        let (status, message) = explain(err);
        Self::Message { status, message }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Message { status, message } => {
                let mut res = status.into_response();
                res.extensions_mut().insert(Failure(message));
                res
            }
            Self::Answer(res) => *res,
        }
    }
}

/// The message of a failed page, for [`finish`] to render.
#[derive(Clone)]
struct Failure(String);

pub(crate) type PageResult = Result<Response, PageError>;

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    layout: Layout,
    message: String,
    link: Option<(String, String)>,
}

/// Every page's last step: render a failure as a branded page, and set the security headers.
async fn finish(
    State((gh, security)): State<(Gatehouse, SecurityHeaders)>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let mut res = next.run(req).await;
    if let Some(Failure(message)) = res.extensions_mut().remove::<Failure>() {
        let status = res.status();
        let page = MessagePage {
            layout: Layout::bare(&gh, status.canonical_reason().unwrap_or("Error")),
            message,
            link: Some(("/login".into(), "Back to sign-in".into())),
        };
        res = (status, html(&page)).into_response();
    }
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, security.csp.clone());
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show tokens, secrets, recovery codes and personal data: never stored.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A template as an HTML answer (a render failure is logged and answered 500).
fn html(t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What every page shows around its content.
pub(crate) struct Layout {
    pub product: String,
    pub logo: Option<String>,
    pub title: String,
    pub csrf: String,
    /// The signed-in person's email, when there is one.
    pub email: Option<String>,
    pub admin: bool,
}

impl Layout {
    fn bare(gh: &Gatehouse, title: &str) -> Self {
        let ui = &gh.config().ui;
        Self {
            product: ui.product_name.clone(),
            logo: ui.logo_url.as_ref().map(|u| u.to_string()),
            title: title.to_string(),
            csrf: String::new(),
            email: None,
            admin: false,
        }
    }
}

/// The cookie names: `__Host-` prefixed (bound to this host, Secure, Path=/) behind https.
fn cookie_name(gh: &Gatehouse, base: &str) -> String {
    if secure(gh) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

fn secure(gh: &Gatehouse) -> bool {
    gh.config().public_url.scheme() == "https"
}

const SESSION_COOKIE: &str = "gatehouse_page";
const CSRF_COOKIE: &str = "gatehouse_csrf";

/// `Set-Cookie` for a page cookie: HttpOnly, SameSite=Lax, Path=/, Secure behind https;
/// `None` clears it.
fn set_cookie(gh: &Gatehouse, base: &str, value: Option<&str>, max_age: u64) -> HeaderValue {
    let secure = if secure(gh) { "; Secure" } else { "" };
    let name = cookie_name(gh, base);
    let cookie = match value {
        Some(v) => format!("{name}={v}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"),
        None => format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
    };
    HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static("x=; Max-Age=0"))
}

/// The browser's page cookies as sent: the CSRF nonce and the page session ("" when absent).
struct Cookies {
    nonce: String,
    session: String,
}

impl Cookies {
    fn read(gh: &Gatehouse, headers: &HeaderMap) -> Self {
        Self {
            nonce: cookie(headers, &cookie_name(gh, CSRF_COOKIE)).unwrap_or_default(),
            session: cookie(headers, &cookie_name(gh, SESSION_COOKIE)).unwrap_or_default(),
        }
    }
}

/// A page request: the browser's cookies, who is signed in (if anyone), and where it comes
/// from. A browser without a CSRF cookie gets one with the answer.
pub(crate) struct Page {
    gh: Gatehouse,
    cookies: Cookies,
    fresh_nonce: bool,
    pub who: Option<Principal>,
    pub client: ClientInfo,
}

impl<S> FromRequestParts<S> for Page
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gh = Gatehouse::from_ref(state);
        let Ok(Client(client)) = Client::from_request_parts(parts, state).await;
        let mut cookies = Cookies::read(&gh, &parts.headers);
        let fresh_nonce = cookies.nonce.is_empty();
        if fresh_nonce {
            cookies.nonce = tokens::random_token(24);
        }
        let who = if cookies.session.is_empty() {
            None
        } else {
            gh.web().authenticate(&cookies.session).await?
        };
        Ok(Page {
            gh,
            cookies,
            fresh_nonce,
            who,
            client,
        })
    }
}

impl Page {
    pub fn gh(&self) -> &Gatehouse {
        &self.gh
    }

    /// The signed-in person, or a redirect to the sign-in page.
    pub fn who(&self) -> Result<&Principal, PageError> {
        self.who.as_ref().ok_or_else(|| {
            let mut res = Redirect::to("/login").into_response();
            if !self.cookies.session.is_empty() {
                // A dead session's cookie goes.
                res.headers_mut().append(
                    header::SET_COOKIE,
                    set_cookie(&self.gh, SESSION_COOKIE, None, 0),
                );
            }
            PageError::Answer(Box::new(res))
        })
    }

    /// The signed-in person, who must hold at least `role`.
    pub fn at_least(&self, role: Role) -> Result<&Principal, PageError> {
        let who = self.who()?;
        if who.highest_role() >= Some(role) {
            Ok(who)
        } else {
            Err(PageError::forbidden())
        }
    }

    pub fn layout(&self, title: &str) -> Layout {
        Layout {
            csrf: self
                .gh
                .web()
                .csrf_token(&self.cookies.nonce, &self.cookies.session),
            email: self.who.as_ref().map(|w| w.user.email.clone()),
            admin: self
                .who
                .as_ref()
                .is_some_and(|w| w.highest_role() >= Some(Role::Admin)),
            ..Layout::bare(&self.gh, title)
        }
    }

    /// A rendered page with `status`, giving the browser its CSRF cookie if it had none.
    pub fn render(&self, status: StatusCode, t: &impl Template) -> Response {
        let mut res = (status, html(t)).into_response();
        if self.fresh_nonce {
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&self.gh, CSRF_COOKIE, Some(&self.cookies.nonce), 7 * 86400),
            );
        }
        res
    }

    pub fn ok(&self, t: &impl Template) -> PageResult {
        Ok(self.render(StatusCode::OK, t))
    }

    /// A plain message page.
    pub fn message(
        &self,
        status: StatusCode,
        heading: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        self.render(
            status,
            &MessagePage {
                layout: self.layout(heading),
                message: message.to_string(),
                link: link.map(|(href, text)| (href.to_string(), text.to_string())),
            },
        )
    }

    /// A redirect that signs the browser in to `cookie`'s session.
    pub fn sign_in(&self, cookie: &str, to: &str, device: Option<String>) -> Response {
        let max_age = self.gh.config().jwt.refresh_token_ttl.as_secs();
        let res = if provider::is_authorize_url(self, to) {
            // Out of a form to an OpenID client: see `provider`.
            super::auth::signed_in(&self.gh, device, provider::continue_to(self, to))
        } else {
            super::auth::signed_in(&self.gh, device, Redirect::to(to))
        };
        let mut res = res.into_response();
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&self.gh, SESSION_COOKIE, Some(cookie), max_age),
        );
        res
    }

    /// A redirect that forgets the page session.
    pub fn sign_out(&self, to: &str) -> Response {
        let mut res = Redirect::to(to).into_response();
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&self.gh, SESSION_COOKIE, None, 0),
        );
        res
    }
}

/// An `application/x-www-form-urlencoded` form whose `csrf` field is this browser's token;
/// 403 otherwise. Fields it does not name are ignored.
pub(crate) struct Form<T>(pub T);

/// A form with nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub(crate) struct NoFields {}

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<S, T> FromRequest<S> for Form<T>
where
    Gatehouse: FromRef<S>,
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let gh = Gatehouse::from_ref(state);
        let cookies = Cookies::read(&gh, req.headers());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
        let CsrfField { csrf } =
            serde_urlencoded::from_bytes(&body).map_err(|_| PageError::csrf())?;
        if !gh.web().csrf_ok(&cookies.nonce, &cookies.session, &csrf) {
            return Err(PageError::csrf());
        }
        serde_urlencoded::from_bytes(&body)
            .map(Form)
            .map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "The form is incomplete."))
    }
}

/// A sign-in button of an enabled OAuth provider.
pub(crate) struct OAuthButton {
    pub label: String,
    pub href: String,
}

/// The sign-in buttons for `providers` (name, display name), each starting the provider's flow
/// and coming back to `redirect_uri`.
pub(crate) fn oauth_buttons(providers: &ProviderList, redirect_uri: &str) -> Vec<OAuthButton> {
    let back: String = url::form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    providers
        .providers
        .iter()
        .map(|p| OAuthButton {
            label: format!("Continue with {}", p.display_name),
            href: format!(
                "/api/v1/auth/oauth/{}/authorize?redirect_uri={back}",
                p.name
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::oauth::ProviderView;

    #[test]
    fn oauth_buttons_link_to_the_authorize_route_with_the_return_address_encoded() {
        let list = |names: &[(&str, &str)]| ProviderList {
            providers: names
                .iter()
                .map(|(name, display)| ProviderView {
                    name: name.to_string(),
                    display_name: display.to_string(),
                })
                .collect(),
        };
        let buttons = oauth_buttons(
            &list(&[("google", "Google"), ("github", "GitHub")]),
            "https://id.example.com/login?x=1&y=2",
        );
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0].label, "Continue with Google");
        assert_eq!(
            buttons[1].href,
            "/api/v1/auth/oauth/github/authorize?redirect_uri=https%3A%2F%2Fid.example.com%2Flogin%3Fx%3D1%26y%3D2"
        );
        assert!(oauth_buttons(&list(&[]), "x").is_empty());
    }

    #[test]
    fn messages_start_with_a_capital() {
        assert_eq!(capitalised("the code is wrong"), "The code is wrong");
        assert_eq!(capitalised(""), "");
    }
}
