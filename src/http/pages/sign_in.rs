//! Signing in and out, signing up, and the landings of the verification and reset mails.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use url::Url;

use super::{
    Form, Layout, NoFields, OAuthButton, Page, PageError, PageResult, explain, oauth_buttons,
};
use crate::http::extract::DeviceCookie;
use crate::service::ServiceError;
use crate::service::auth::{LoginOutcome, Registered};
use crate::service::mfa::SecondFactor;
use crate::service::views::TokenPair;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    redirect_to: String,
    error: Option<String>,
    oauth: Vec<OAuthButton>,
    /// Whether to offer signing in with a passkey.
    passkeys: bool,
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    layout: Layout,
    mfa_token: String,
    redirect_to: String,
    error: Option<String>,
    /// The account's second factors, comma-separated (`totp,recovery_code,webauthn`).
    methods: String,
}

impl MfaPage {
    fn new(page: &Page, mfa_token: String, redirect_to: String, methods: String) -> Self {
        Self {
            layout: page.layout("Two-step verification"),
            mfa_token,
            redirect_to,
            error: None,
            methods,
        }
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    email: String,
    name: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    layout: Layout,
    token: String,
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    token: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    redirect_to: Option<String>,
    /// Show the form even to a signed-in browser (an OpenID client asked for a fresh sign-in).
    reauth: Option<String>,
}

/// The app a sign-in returns to, when it is allow-listed; a 400 page when it is not.
fn return_address(page: &Page, raw: Option<&str>) -> Result<Option<Url>, PageError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match Url::parse(raw) {
        Ok(url) if page.gh().config().ui.allows_redirect(&url) => Ok(Some(url)),
        // Back to our own authorization endpoint, to finish an OpenID client's request.
        Ok(url) if super::provider::is_authorize_url(page, raw) => Ok(Some(url)),
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "The application that sent you here is not allowed to use this sign-in page.",
        )),
    }
}

/// Where a signed-in browser goes: back to the app with a one-time code, or to its account.
async fn onward(
    page: &Page,
    user: uuid::Uuid,
    session: uuid::Uuid,
    app: Option<Url>,
) -> Result<String, PageError> {
    Ok(match app {
        Some(url) if super::provider::is_authorize_url(page, url.as_str()) => url.to_string(),
        Some(mut url) => {
            let code = page.gh().web().issue_code(user, session).await?;
            url.query_pairs_mut().append_pair("code", &code);
            url.to_string()
        }
        None => "/account".to_string(),
    })
}

fn login_page(page: &Page, email: &str, redirect_to: &str, error: Option<String>) -> LoginPage {
    let public = page.gh().config().public_url.as_str().trim_end_matches('/');
    // An app's sign-in returns to the app; the hosted one to the sign-in page's OAuth landing.
    let back = if redirect_to.is_empty() {
        format!("{public}/login/oauth")
    } else {
        redirect_to.to_string()
    };
    LoginPage {
        layout: page.layout("Sign in"),
        email: email.to_string(),
        redirect_to: redirect_to.to_string(),
        error,
        oauth: oauth_buttons(&page.gh().oauth().providers(), &back),
        passkeys: page.gh().config().webauthn.enabled(),
    }
}

pub(crate) async fn login_form(page: Page, Query(q): Query<LoginQuery>) -> PageResult {
    let app = return_address(&page, q.redirect_to.as_deref())?;
    if let Some(who) = page.who.as_ref().filter(|_| q.reauth.is_none()) {
        // Already signed in: straight on (single sign-on for the apps).
        return Ok(
            Redirect::to(&onward(&page, who.user_id, who.session_id, app).await?).into_response(),
        );
    }
    page.ok(&login_page(
        &page,
        "",
        q.redirect_to.as_deref().unwrap_or(""),
        None,
    ))
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    redirect_to: String,
}

/// A finished sign-in: the page-session cookie, then on to the app or the account.
async fn signed_in(page: &Page, pair: TokenPair, app: Option<Url>) -> PageResult {
    let cookie = page.gh().web().session_cookie(&pair).await?;
    let to = onward(page, pair.user.id, pair.session_id, app).await?;
    Ok(page.sign_in(&cookie, &to, pair.device_token))
}

pub(crate) async fn login(
    page: Page,
    device: DeviceCookie,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let app = return_address(&page, Some(&form.redirect_to))?;
    let gh = page.gh();
    let attempt = async {
        gh.limiter()
            .login(page.client.ip, &form.email)
            .await
            .into_result()?;
        gh.auth()
            .login(
                &form.email,
                &form.password,
                device.0.as_deref(),
                &page.client,
            )
            .await
    };
    match attempt.await {
        Ok(LoginOutcome::Tokens(pair)) => signed_in(&page, *pair, app).await,
        Ok(LoginOutcome::MfaRequired(challenge)) => page.ok(&MfaPage::new(
            &page,
            challenge.mfa_token,
            form.redirect_to,
            challenge.methods.join(","),
        )),
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(
                status,
                &login_page(&page, &form.email, &form.redirect_to, Some(message)),
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct PasskeyForm {
    #[serde(default)]
    ceremony_id: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    redirect_to: String,
}

/// A discoverable passkey's answer (filled in by /ui/passkeys.js): a page session at `aal2`.
pub(crate) async fn passkey(page: Page, Form(form): Form<PasskeyForm>) -> PageResult {
    let app = return_address(&page, Some(&form.redirect_to))?;
    let gh = page.gh();
    let attempt = async {
        gh.limiter()
            .per_ip("passkey", page.client.ip)
            .await
            .into_result()?;
        let credential =
            passkey_answer(&form.credential).map_err(|_| ServiceError::BadRequest {
                code: "invalid_body",
                detail: "the passkey's answer was incomplete; try again".into(),
            })?;
        gh.passkeys()
            .sign_in_finish(&form.ceremony_id, &credential, &page.client)
            .await
    };
    match attempt.await {
        Ok(pair) => signed_in(&page, pair, app).await,
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(
                status,
                &login_page(&page, "", &form.redirect_to, Some(message)),
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct OAuthLanding {
    code: Option<String>,
    error: Option<String>,
}

/// Where a provider sign-in started from the sign-in page comes back: its one-time code
/// becomes a page session (or the second step, when the account has one).
pub(crate) async fn oauth_landing(page: Page, Query(q): Query<OAuthLanding>) -> PageResult {
    let refused = |message: String| {
        Ok(page.render(
            StatusCode::BAD_REQUEST,
            &login_page(&page, "", "", Some(message)),
        ))
    };
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refused(match q.error.as_deref() {
            Some("email_not_verified") => {
                "The provider has not verified your email address, so it cannot sign you in here."
                    .into()
            }
            Some("account_not_verified") => {
                "An account with this email exists but its address is not verified yet: sign in with its password first.".into()
            }
            _ => "Signing in through the provider did not work. Try again.".into(),
        });
    };
    match page.gh().oauth().exchange(&code, &page.client).await {
        Ok(LoginOutcome::Tokens(pair)) => signed_in(&page, *pair, None).await,
        Ok(LoginOutcome::MfaRequired(challenge)) => page.ok(&MfaPage::new(
            &page,
            challenge.mfa_token,
            String::new(),
            challenge.methods.join(","),
        )),
        Err(e) => refused(explain(e).1),
    }
}

#[derive(Deserialize)]
pub(crate) struct MfaForm {
    mfa_token: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default)]
    redirect_to: String,
    #[serde(default)]
    methods: String,
    /// A passkey's answer (filled by /ui/passkeys.js) instead of a code.
    #[serde(default)]
    ceremony_id: String,
    #[serde(default)]
    credential: String,
}

/// A passkey's answer as a page form carries it (JSON in a hidden field).
fn passkey_answer<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, PageError> {
    serde_json::from_str(raw).map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "The passkey's answer was incomplete. Try again.",
        )
    })
}

pub(crate) async fn second_factor(page: Page, Form(form): Form<MfaForm>) -> PageResult {
    let app = return_address(&page, Some(&form.redirect_to))?;
    let gh = page.gh();
    let outcome = if !form.credential.is_empty() {
        let credential = passkey_answer(&form.credential)?;
        gh.passkeys()
            .second_step_finish(
                &form.mfa_token,
                &form.ceremony_id,
                &credential,
                &page.client,
            )
            .await
    } else {
        let factor = if form.recovery_code.trim().is_empty() {
            SecondFactor::Totp(form.code.trim().to_string())
        } else {
            SecondFactor::RecoveryCode(form.recovery_code.trim().to_string())
        };
        gh.mfa().verify(&form.mfa_token, factor, &page.client).await
    };
    match outcome {
        Ok(pair) => signed_in(&page, pair, app).await,
        Err(ServiceError::Unauthorized {
            code: code @ ("invalid_mfa_code" | "passkey_refused" | "invalid_ceremony"),
            detail,
        }) => {
            let message = if code == "invalid_mfa_code" {
                super::capitalised(&detail)
            } else {
                "The passkey was not accepted. Try again, or use another way.".to_string()
            };
            let mut retry = MfaPage::new(&page, form.mfa_token, form.redirect_to, form.methods);
            retry.error = Some(message);
            Ok(page.render(StatusCode::UNAUTHORIZED, &retry))
        }
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(
                status,
                &login_page(&page, "", &form.redirect_to, Some(message)),
            ))
        }
    }
}

pub(crate) async fn logout(page: Page, Form(_): Form<NoFields>) -> PageResult {
    if let Some(who) = &page.who {
        page.gh().auth().logout(who, &page.client).await?;
    }
    Ok(page.sign_out("/login"))
}

pub(crate) async fn register_form(page: Page) -> PageResult {
    page.ok(&RegisterPage {
        layout: page.layout("Create an account"),
        email: String::new(),
        name: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
pub(crate) struct RegisterForm {
    email: String,
    password: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn register(page: Page, Form(form): Form<RegisterForm>) -> PageResult {
    let name = Some(form.name.trim()).filter(|n| !n.is_empty());
    match page
        .gh()
        .auth()
        .register(&form.email, &form.password, name, &page.client)
        .await
    {
        Ok(Registered::LoggedIn(pair)) => signed_in(&page, pair, None).await,
        Ok(Registered::User(_) | Registered::Pending) => Ok(page.message(
            StatusCode::OK,
            "Check your mailbox",
            "We have sent you a link to confirm your email address. Open it to finish signing up.",
            Some(("/login", "Go to sign-in")),
        )),
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(
                status,
                &RegisterPage {
                    layout: page.layout("Create an account"),
                    email: form.email,
                    name: form.name,
                    error: Some(message),
                },
            ))
        }
    }
}

pub(crate) async fn forgot_form(page: Page) -> PageResult {
    page.ok(&ForgotPage {
        layout: page.layout("Forgot your password?"),
    })
}

#[derive(Deserialize)]
pub(crate) struct EmailForm {
    email: String,
}

pub(crate) async fn forgot(page: Page, Form(form): Form<EmailForm>) -> PageResult {
    let gh = page.gh();
    gh.limiter()
        .per_ip("mail", page.client.ip)
        .await
        .into_result()
        .map_err(ServiceError::from)?;
    gh.verification()
        .request_reset(form.email, page.client.clone());
    Ok(page.message(
        StatusCode::OK,
        "Check your mailbox",
        "If an account uses this address, we have sent it a link to choose a new password.",
        Some(("/login", "Back to sign-in")),
    ))
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The verification mail's landing: a button, so that a mail scanner opening the link spends
/// nothing.
pub(crate) async fn verify_form(page: Page, Query(q): Query<TokenQuery>) -> PageResult {
    page.ok(&VerifyPage {
        layout: page.layout("Confirm your email address"),
        token: q.token,
    })
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    token: String,
}

pub(crate) async fn verify(page: Page, Form(form): Form<TokenForm>) -> PageResult {
    page.gh()
        .verification()
        .verify_email(&form.token, &page.client)
        .await?;
    Ok(page.message(
        StatusCode::OK,
        "Email address confirmed",
        "Thank you: your email address is confirmed.",
        Some(("/login", "Sign in")),
    ))
}

pub(crate) async fn reset_form(page: Page, Query(q): Query<TokenQuery>) -> PageResult {
    page.ok(&ResetPage {
        layout: page.layout("Choose a new password"),
        token: q.token,
        error: None,
    })
}

#[derive(Deserialize)]
pub(crate) struct ResetForm {
    token: String,
    new_password: String,
    confirm_password: String,
}

pub(crate) async fn reset(page: Page, Form(form): Form<ResetForm>) -> PageResult {
    let outcome = if form.new_password != form.confirm_password {
        Err(ServiceError::invalid(
            "confirm_password",
            "mismatch",
            "the two passwords differ",
        ))
    } else {
        page.gh()
            .verification()
            .confirm_reset(&form.token, &form.new_password, &page.client)
            .await
    };
    match outcome {
        Ok(()) => Ok(page.message(
            StatusCode::OK,
            "Password changed",
            "Your new password is set, and every session of your account has been signed out.",
            Some(("/login", "Sign in")),
        )),
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(
                status,
                &ResetPage {
                    layout: page.layout("Choose a new password"),
                    token: form.token,
                    error: Some(message),
                },
            ))
        }
    }
}
