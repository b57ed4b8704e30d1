//! The browser side of Gatehouse as an OpenID Provider: the authorization endpoint (over the hosted page session: a browser without one signs in on `/login` and comes back), the consent page, and RP-initiated logout.
//!
//! A step that ends at the client after a form was posted answers a small page that continues
//! by itself, not a redirect: browsers check a form's redirects against the page's CSP
//! `form-action`, which names only this site and the allow-listed apps.

use askama::Template;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{Form, Layout, Page, PageError, PageResult};
use crate::http::provider::AUTHORIZE_PATH;
use crate::service::provider::{AuthorizeError, AuthorizeRequest, Next};

#[derive(Template)]
#[template(path = "continue.html")]
struct ContinuePage {
    product: String,
    to: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    layout: Layout,
    client_name: String,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
}

/// A page that sends the browser on to `to` by itself.
pub(super) fn continue_to(page: &Page, to: &str) -> Response {
    page.render(
        StatusCode::OK,
        &ContinuePage {
            product: page.gh().config().ui.product_name.clone(),
            to: to.to_string(),
        },
    )
}

/// The authorization request's parameters, as a query string.
fn query_of(req: &AuthorizeRequest) -> String {
    serde_urlencoded::to_string(req).unwrap_or_default()
}

fn refused(err: AuthorizeError) -> PageResult {
    match err {
        AuthorizeError::Page(message) => Err(PageError::new(StatusCode::BAD_REQUEST, message)),
        AuthorizeError::Redirect(to) => Ok(Redirect::to(&to).into_response()),
    }
}

/// The address of the authorization endpoint for `req`, for `/login` to come back to.
pub(super) fn authorize_url(page: &Page, req: &AuthorizeRequest) -> String {
    format!(
        "{}{AUTHORIZE_PATH}?{}",
        page.gh().provider().issuer(),
        query_of(req)
    )
}

/// Whether `url` is our own authorization endpoint (a sign-in's way back to it).
pub(super) fn is_authorize_url(page: &Page, url: &str) -> bool {
    url.starts_with(&format!(
        "{}{AUTHORIZE_PATH}?",
        page.gh().provider().issuer()
    ))
}

/// `GET /oauth2/authorize`: the authorization code flow.
pub(crate) async fn authorize(page: Page, Query(mut req): Query<AuthorizeRequest>) -> PageResult {
    let op = page.gh().provider();
    let checked = match op.check(&req).await {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    match op.decide(&checked, page.who.as_ref(), false).await {
        Ok(Next::Redirect(to)) => Ok(Redirect::to(&to).into_response()),
        Ok(Next::SignIn { fresh }) => {
            // Back here without `prompt=login`, which the sign-in about to happen satisfies.
            if let Some(p) = &req.prompt {
                let rest: Vec<&str> = p.split_whitespace().filter(|p| *p != "login").collect();
                req.prompt = (!rest.is_empty()).then(|| rest.join(" "));
            }
            let back: String =
                url::form_urlencoded::byte_serialize(authorize_url(&page, &req).as_bytes())
                    .collect();
            let reauth = if fresh { "&reauth=1" } else { "" };
            Ok(Redirect::to(&format!("/login?redirect_to={back}{reauth}")).into_response())
        }
        Ok(Next::Consent) => {
            let params = serde_urlencoded::from_str::<Vec<(String, String)>>(&query_of(&req))
                .unwrap_or_default();
            page.ok(&ConsentPage {
                layout: page.layout("Allow access?"),
                client_name: checked.client_name().to_string(),
                scopes: checked.scopes().to_vec(),
                params,
            })
        }
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    req: AuthorizeRequest,
}

/// `POST /oauth2/authorize/consent`: the person's answer, then on to the client.
pub(crate) async fn consent(page: Page, Form(form): Form<ConsentForm>) -> PageResult {
    let who = page.who()?.clone();
    let op = page.gh().provider();
    let checked = match op.check(&form.req).await {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    match op
        .consent(&checked, &who, form.decision == "allow", &page.client)
        .await
    {
        Ok(to) | Err(AuthorizeError::Redirect(to)) => Ok(continue_to(&page, &to)),
        Err(AuthorizeError::Page(message)) => Err(PageError::new(StatusCode::BAD_REQUEST, message)),
    }
}

#[derive(Deserialize)]
pub(crate) struct LogoutQuery {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// `GET /oauth2/logout`: RP-initiated logout. Ends the browser's page session and the
/// session the `id_token_hint` names, then goes back to the client's registered
/// `post_logout_redirect_uri`, or shows that the person is signed out.
pub(crate) async fn logout(page: Page, Query(q): Query<LogoutQuery>) -> PageResult {
    let to = page
        .gh()
        .provider()
        .logout(
            q.id_token_hint.as_deref(),
            q.client_id.as_deref(),
            q.post_logout_redirect_uri.as_deref(),
            q.state.as_deref(),
            page.who.as_ref(),
            &page.client,
        )
        .await?;
    let mut res = page.sign_out("/login");
    if to.is_none() {
        let done = page.message(
            StatusCode::OK,
            "Signed out",
            "You are signed out.",
            Some(("/login", "Sign in again")),
        );
        let cookies: Vec<_> = res
            .headers()
            .get_all(axum::http::header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        res = done;
        for c in cookies {
            res.headers_mut().append(axum::http::header::SET_COOKIE, c);
        }
        return Ok(res);
    }
    if let Some(to) = to
        && let Ok(v) = axum::http::HeaderValue::from_str(&to)
    {
        res.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(res)
}
