//! The account page: profile, password, sessions, TOTP (enrolment with its QR code, recovery codes shown once, disabling), and passkeys (added through /ui/passkeys.js, renamed, deleted).

use askama::Template;
use axum::extract::Query;
use axum::response::{IntoResponse, Redirect};
use base64::Engine;
use serde::Deserialize;

use super::{Form, Layout, NoFields, Page, PageResult, explain};
use crate::service::ServiceError;
use crate::service::login::Principal;
use crate::service::passkeys::PasskeyView;
use crate::service::users::UserPatch;
use crate::service::views::SessionView;

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    email: String,
    name: String,
    email_verified: bool,
    mfa_enabled: bool,
    aal2: bool,
    sessions: Vec<SessionRow>,
    /// The apps signing in through this account, with what they may see.
    apps: Vec<(String, String, String, String)>,
    /// Whether passkeys are on (`WEBAUTHN_RP_ID`), and the account's.
    passkeys_on: bool,
    passkeys: Vec<PasskeyRow>,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A passkey as the account page lists it.
struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

impl PasskeyRow {
    fn new(p: PasskeyView) -> Self {
        Self {
            id: p.id.to_string(),
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".into(), when),
        }
    }
}

/// A session as the account page lists it.
struct SessionRow {
    id: String,
    device: String,
    ip: String,
    last_seen: String,
    created: String,
    current: bool,
}

impl SessionRow {
    fn new(s: SessionView) -> Self {
        let when = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        Self {
            id: s.id.to_string(),
            device: s.user_agent.unwrap_or_else(|| "unknown device".into()),
            ip: s.ip_address.unwrap_or_else(|| "unknown".into()),
            last_seen: when(s.last_used_at),
            created: when(s.created_at),
            current: s.current,
        }
    }
}

#[derive(Template)]
#[template(path = "enroll.html")]
struct EnrollPage {
    layout: Layout,
    qr_data_uri: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "recovery.html")]
struct RecoveryPage {
    layout: Layout,
    codes: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct NoticeQuery {
    #[serde(default)]
    done: String,
}

/// What a finished action says on the account page (`?done=`), from a fixed list.
fn notice(done: &str) -> Option<&'static str> {
    Some(match done {
        "profile" => "Your profile is saved.",
        "password" => "Your password is changed; your other sessions are signed out.",
        "revoked" => "The session is signed out.",
        "mfa_disabled" => "Two-step verification is off.",
        "app_revoked" => "The app's access is revoked.",
        "passkey_added" => "Your passkey is added.",
        "passkey_renamed" => "The passkey is renamed.",
        "passkey_deleted" => "The passkey is deleted.",
        _ => return None,
    })
}

async fn account_page(
    page: &Page,
    who: &Principal,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<AccountPage, ServiceError> {
    let sessions = page.gh().auth().sessions(who).await?;
    let apps = page
        .gh()
        .provider()
        .consents(who.user_id)
        .await?
        .into_iter()
        .map(|c| {
            let granted = c.granted_at.format("%Y-%m-%d %H:%M UTC").to_string();
            (c.client_id, c.client_name, c.scope, granted)
        })
        .collect();
    let passkeys = page.gh().passkeys().list(who).await?.passkeys;
    Ok(AccountPage {
        layout: page.layout("Your account"),
        email: who.user.email.clone(),
        name: who.user.name.clone().unwrap_or_default(),
        email_verified: who.user.email_verified,
        mfa_enabled: who.user.mfa_enabled,
        aal2: who.aal == "aal2",
        sessions: sessions.sessions.into_iter().map(SessionRow::new).collect(),
        apps,
        passkeys_on: page.gh().config().webauthn.enabled(),
        passkeys: passkeys.into_iter().map(PasskeyRow::new).collect(),
        notice,
        error,
    })
}

pub(crate) async fn show(page: Page, Query(q): Query<NoticeQuery>) -> PageResult {
    let who = page.who()?;
    page.ok(&account_page(&page, who, notice(&q.done), None).await?)
}

/// The account page again after an action: on with `?done=` when it worked, else with the
/// error and its status.
async fn after(
    page: &Page,
    who: &Principal,
    outcome: Result<(), ServiceError>,
    done: &str,
) -> PageResult {
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/account?done={done}")).into_response()),
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.render(status, &account_page(page, who, None, Some(message)).await?))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ProfileForm {
    #[serde(default)]
    name: String,
}

pub(crate) async fn profile(page: Page, Form(form): Form<ProfileForm>) -> PageResult {
    let who = page.who()?;
    let name = Some(form.name.trim().to_string()).filter(|n| !n.is_empty());
    let patch = UserPatch {
        name: Some(name),
        ..Default::default()
    };
    let outcome = page
        .gh()
        .users()
        .update(who, who.user_id, patch, &page.client)
        .await
        .map(drop);
    after(&page, who, outcome, "profile").await
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    old_password: String,
    new_password: String,
}

pub(crate) async fn password(page: Page, Form(form): Form<PasswordForm>) -> PageResult {
    let who = page.who()?;
    let outcome = page
        .gh()
        .auth()
        .change_password(who, &form.old_password, &form.new_password, &page.client)
        .await;
    after(&page, who, outcome, "password").await
}

#[derive(Deserialize)]
pub(crate) struct SessionForm {
    id: String,
}

pub(crate) async fn revoke(page: Page, Form(form): Form<SessionForm>) -> PageResult {
    let who = page.who()?;
    let id = super::super::extract::path_id(&form.id)?;
    let outcome = page.gh().auth().revoke_session(who, id, &page.client).await;
    if outcome.is_ok() && id == who.session_id {
        return Ok(page.sign_out("/login"));
    }
    after(&page, who, outcome, "revoked").await
}

pub(crate) async fn revoke_all(page: Page, Form(_): Form<NoFields>) -> PageResult {
    let who = page.who()?;
    page.gh().auth().logout_all(who, &page.client).await?;
    Ok(page.sign_out("/login"))
}

pub(crate) async fn enroll(page: Page, Form(_): Form<NoFields>) -> PageResult {
    let who = page.who()?;
    let enrollment = page.gh().mfa().enroll(who).await?;
    let svg = base64::engine::general_purpose::STANDARD.encode(enrollment.qr_svg);
    page.ok(&EnrollPage {
        layout: page.layout("Set up two-step verification"),
        qr_data_uri: format!("data:image/svg+xml;base64,{svg}"),
        secret: enrollment.secret,
    })
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    code: String,
}

pub(crate) async fn confirm(page: Page, Form(form): Form<CodeForm>) -> PageResult {
    let who = page.who()?;
    match page
        .gh()
        .mfa()
        .confirm(who, form.code.trim(), &page.client)
        .await
    {
        Ok(codes) => page.ok(&RecoveryPage {
            layout: page.layout("Your recovery codes"),
            codes: codes.recovery_codes,
        }),
        Err(e) => {
            let (status, message) = explain(e);
            Ok(page.message(
                status,
                "Two-step verification is not on yet",
                &format!("{message}. Start again from your account page."),
                Some(("/account", "Back to your account")),
            ))
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct DisableForm {
    password: String,
}

pub(crate) async fn disable_mfa(page: Page, Form(form): Form<DisableForm>) -> PageResult {
    let who = page.who()?;
    let outcome = page
        .gh()
        .mfa()
        .disable(who, &form.password, &page.client)
        .await;
    after(&page, who, outcome, "mfa_disabled").await
}

#[derive(Deserialize)]
pub(crate) struct AppForm {
    client_id: String,
}

/// Revoke an OpenID client's remembered consent (and the sessions issued to it).
pub(crate) async fn revoke_app(page: Page, Form(form): Form<AppForm>) -> PageResult {
    let who = page.who()?;
    let outcome = page
        .gh()
        .provider()
        .revoke_consent(who, &form.client_id, &page.client)
        .await;
    after(&page, who, outcome, "app_revoked").await
}

/// The options for `navigator.credentials.create()` (JSON, fetched by /ui/passkeys.js with the
/// form's CSRF token).
pub(crate) async fn passkey_begin(page: Page, Form(_): Form<NoFields>) -> PageResult {
    let who = page.who()?;
    let ceremony = page.gh().passkeys().register_begin(who).await?;
    Ok(axum::Json(ceremony).into_response())
}

#[derive(Deserialize)]
pub(crate) struct AddPasskeyForm {
    #[serde(default)]
    ceremony_id: String,
    #[serde(default)]
    credential: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn passkey_add(page: Page, Form(form): Form<AddPasskeyForm>) -> PageResult {
    let who = page.who()?;
    let outcome = match serde_json::from_str(&form.credential) {
        Ok(credential) => page
            .gh()
            .passkeys()
            .register_finish(
                who,
                &form.ceremony_id,
                Some(&form.name),
                &credential,
                &page.client,
            )
            .await
            .map(drop),
        Err(_) => Err(ServiceError::BadRequest {
            code: "invalid_body",
            detail: "the passkey's answer was incomplete; try again".into(),
        }),
    };
    after(&page, who, outcome, "passkey_added").await
}

#[derive(Deserialize)]
pub(crate) struct RenamePasskeyForm {
    id: String,
    #[serde(default)]
    name: String,
}

pub(crate) async fn passkey_rename(page: Page, Form(form): Form<RenamePasskeyForm>) -> PageResult {
    let who = page.who()?;
    let id = super::super::extract::path_id(&form.id)?;
    let outcome = page
        .gh()
        .passkeys()
        .rename(who, id, &form.name, &page.client)
        .await
        .map(drop);
    after(&page, who, outcome, "passkey_renamed").await
}

pub(crate) async fn passkey_delete(page: Page, Form(form): Form<SessionForm>) -> PageResult {
    let who = page.who()?;
    let id = super::super::extract::path_id(&form.id)?;
    let outcome = page.gh().passkeys().delete(who, id, &page.client).await;
    after(&page, who, outcome, "passkey_deleted").await
}
