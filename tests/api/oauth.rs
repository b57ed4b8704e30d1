//! Sign-in through outside providers on every backend, against a real OpenID provider (the `oidc-provider` npm package) and a GitHub stand-in on loopback: sign-up, sign-in, linking by verified email only, the flow bound to its browser (state, cookie, nonce), forged ID tokens, the redirect allow-list, providers that are down, the one-time code, MFA, linking while signed in, unlinking, and the audit rows.

use serde_json::json;

use crate::helpers::{
    CookieBrowser, OAuthWorld, PASSWORD, Reply, TestDb, code_at, param, step_now, with_param,
};

/// Start at Gatehouse in `b`: the provider's authorization URL (the binder cookie is now in `b`).
async fn authorize(w: &OAuthWorld, b: &CookieBrowser, provider: &str) -> String {
    let start = with_param(
        &w.s.url(&format!("/api/v1/auth/oauth/{provider}/authorize")),
        "redirect_uri",
        &w.done(),
    );
    let res = b.get(&start).await;
    assert_eq!(res.status, 302, "{}", res.text);
    res.header("location").to_string()
}

/// From the provider's authorization URL, signed in there as `login`: the callback URL at
/// Gatehouse the provider sends the browser to (not visited yet).
async fn at_provider(w: &OAuthWorld, b: &CookieBrowser, url: &str, login: &str) -> String {
    let hint = if url.starts_with(&w.github.base) {
        "login"
    } else {
        "login_hint"
    };
    b.follow_until(
        &with_param(url, hint, login),
        &w.s.url("/api/v1/auth/oauth/"),
    )
    .await
}

/// Visit the callback: where Gatehouse sends the browser (it must be the `redirect_uri`).
async fn back(w: &OAuthWorld, b: &CookieBrowser, callback: &str) -> String {
    let res = b.get(callback).await;
    assert_eq!(res.status, 302, "{}", res.text);
    let location = res.header("location").to_string();
    assert!(location.starts_with(&w.done()), "{location}");
    location
}

/// A whole flow in a new browser, signed in at `provider` as `login`: where it ends.
async fn flow(w: &OAuthWorld, provider: &str, login: &str) -> String {
    let b = CookieBrowser::new();
    let url = authorize(w, &b, provider).await;
    let callback = at_provider(w, &b, &url, login).await;
    back(w, &b, &callback).await
}

async fn exchange(w: &OAuthWorld, code: &str) -> Reply {
    w.s.post_public("/api/v1/auth/oauth/exchange", json!({"code": code}))
        .await
}

/// A whole flow that must sign in: the access token.
async fn sign_in(w: &OAuthWorld, provider: &str, login: &str) -> String {
    let end = flow(w, provider, login).await;
    let code = param(&end, "code").unwrap_or_else(|| panic!("no code: {end}"));
    exchange(w, &code).await.pair().access
}

async fn identities(w: &OAuthWorld, token: &str) -> Vec<serde_json::Value> {
    let res = w.s.get("/api/v1/me/identities", token).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body["identities"].as_array().unwrap().clone()
}

async fn sign_up_then_sign_in_with_the_same_identity(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    let list = w.s.get_public("/api/v1/auth/oauth/providers").await;
    assert_eq!(list.status, 200);
    assert_eq!(
        list.body["providers"],
        json!([{"name": "github", "display_name": "GitHub"}, {"name": "acme", "display_name": "Acme SSO"}])
    );

    // The authorize answer: state, nonce and PKCE S256 on the way out, a binding cookie.
    let b = CookieBrowser::new();
    let start = with_param(
        &w.s.url("/api/v1/auth/oauth/acme/authorize"),
        "redirect_uri",
        &w.done(),
    );
    let res = b.get(&start).await;
    assert_eq!(res.status, 302, "{}", res.text);
    let to = res.header("location").to_string();
    assert!(to.starts_with(&w.idp.issuer), "{to}");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(param(&to, p).is_some_and(|v| v.len() >= 43), "{p} in {to}");
    }
    assert_eq!(param(&to, "code_challenge_method").as_deref(), Some("S256"));
    let cookie = res.header("set-cookie");
    assert!(
        cookie.starts_with("gatehouse_oauth=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/api/v1/auth/oauth"),
        "{cookie}"
    );

    // First time: a new account, verified, without a password.
    let callback = at_provider(&w, &b, &to, "alice").await;
    let end = back(&w, &b, &callback).await;
    let code = param(&end, "code").unwrap_or_else(|| panic!("{end}"));
    assert!(!end.contains("access_token"), "{end}");
    let first = exchange(&w, &code).await.pair();
    let me = w.s.me(&first.access).await.body["user"].clone();
    assert_eq!(me["email"], "alice@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["roles"], json!(["user"]));
    let login = w.s.login_with("alice@example.com", PASSWORD).await;
    assert_eq!(login.problem(), (401, "invalid_credentials"));

    // The code is single-use; the state too.
    assert_eq!(exchange(&w, &code).await.problem(), (401, "invalid_code"));
    assert_eq!(
        exchange(&w, "not-a-code").await.problem(),
        (401, "invalid_code")
    );
    let replay = b.get(&callback).await;
    assert_eq!(replay.problem(), (400, "invalid_state"));

    // Second time: the same account.
    let again = sign_in(&w, "acme", "alice").await;
    assert_eq!(w.s.user_id(&again).await, me["id"].as_str().unwrap());
    let ids = identities(&w, &again).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0]["provider"], "acme");
    assert_eq!(ids[0]["subject"], "alice");
    assert_eq!(ids[0]["email"], "alice@example.com");

    // Its only way in cannot be removed.
    let id = ids[0]["id"].as_str().unwrap();
    let res =
        w.s.delete(&format!("/api/v1/me/identities/{id}"), &again)
            .await;
    assert_eq!(res.problem(), (409, "last_sign_in_method"));
    assert_eq!(identities(&w, &again).await.len(), 1);
    db.assert_audited(&["oauth_sign_up", "oauth_sign_in", "login_succeeded"])
        .await;
}

async fn links_by_email_only_when_both_sides_verified_it(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    let root = w.s.admin().await;
    let res =
        w.s.post(
            "/api/v1/users",
            &root,
            json!({"email": "ada@example.com", "password": PASSWORD, "email_verified": true}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let ada_id = res.body["id"].as_str().unwrap().to_string();

    // The provider does not vouch for the email: no link, no sign-in.
    let end = flow(&w, "acme", "ada.unverified").await;
    assert_eq!(param(&end, "error").as_deref(), Some("email_not_verified"));
    assert_eq!(param(&end, "code"), None);
    let ada = w.s.login("ada@example.com").await.access;
    assert!(identities(&w, &ada).await.is_empty());

    // It does: linked to the existing account.
    let token = sign_in(&w, "acme", "ada").await;
    assert_eq!(w.s.user_id(&token).await, ada_id);
    let ids = identities(&w, &ada).await;
    assert_eq!(ids.len(), 1);

    // With a password left, the identity can go.
    let id = ids[0]["id"].as_str().unwrap();
    let res =
        w.s.delete(&format!("/api/v1/me/identities/{id}"), &ada)
            .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(identities(&w, &ada).await.is_empty());
    let res =
        w.s.delete(&format!("/api/v1/me/identities/{id}"), &ada)
            .await;
    assert_eq!(res.problem(), (404, "not_found"));

    // An account whose own address was never verified is not handed over.
    w.s.register("bob@example.com").await;
    let end = flow(&w, "acme", "bob").await;
    assert_eq!(
        param(&end, "error").as_deref(),
        Some("account_not_verified")
    );
    db.assert_audited(&["oauth_linked", "oauth_unlinked"]).await;
}

async fn the_flow_is_bound_to_its_browser_state_and_nonce(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    let b = CookieBrowser::new();
    let url = authorize(&w, &b, "acme").await;
    let callback = at_provider(&w, &b, &url, "carol").await;

    // Another browser (no cookie, or someone else's binder) cannot finish it.
    let stranger = CookieBrowser::new();
    let res = stranger.get(&callback).await;
    assert_eq!(res.problem(), (400, "state_mismatch"));
    let forger = CookieBrowser::new();
    let other = CookieBrowser::new();
    authorize(&w, &other, "acme").await;
    let theirs = other.cookies(&callback);
    forger
        .jar
        .add_cookie_str(&format!("{theirs}; Path=/"), &callback.parse().unwrap());
    assert!(forger.cookies(&callback).starts_with("gatehouse_oauth="));
    assert_eq!(
        forger.get(&callback).await.problem(),
        (400, "state_mismatch")
    );
    // The browser that started it still can.
    let end = back(&w, &b, &callback).await;
    assert!(param(&end, "code").is_some(), "{end}");

    // An unknown state, or none.
    let bogus = with_param(&callback, "state", "made-up");
    assert_eq!(b.get(&bogus).await.problem(), (400, "invalid_state"));
    let none = w.s.url("/api/v1/auth/oauth/acme/callback?code=x");
    assert_eq!(b.get(&none).await.problem(), (400, "invalid_state"));

    // An ID token for another nonce is refused.
    let b = CookieBrowser::new();
    let url = authorize(&w, &b, "acme").await;
    let tampered = with_param(&url, "nonce", "someone-elses-nonce-0123456789abcdefghijklm");
    let callback = at_provider(&w, &b, &tampered, "dave").await;
    let end = back(&w, &b, &callback).await;
    assert_eq!(param(&end, "error").as_deref(), Some("invalid_id_token"));
    assert!(db.query("SELECT id FROM users").await.len() == 1);
}

async fn forged_id_tokens_are_refused(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    for mode in ["newkid", "samekid"] {
        let b = CookieBrowser::new();
        let url = authorize(&w, &b, "acme").await;
        let callback = at_provider(&w, &b, &url, "mallory").await;
        w.idp.forge_next_id_token(mode).await;
        let end = back(&w, &b, &callback).await;
        assert_eq!(
            param(&end, "error").as_deref(),
            Some("invalid_id_token"),
            "{mode}"
        );
    }
    assert!(db.query("SELECT id FROM users").await.is_empty());
    assert!(db.query("SELECT id FROM oauth_identities").await.is_empty());
    // The provider's own tokens still pass (the key set read again for the unknown key id
    // holds the real key).
    let token = sign_in(&w, "acme", "mallory").await;
    assert_eq!(w.s.me(&token).await.status, 200);
}

async fn redirects_stay_in_the_allowlist(db: TestDb) {
    let w = db
        .oauth_app(&[("OAUTH_REDIRECT_ALLOWLIST", "https://app.example.com/spa")])
        .await;
    let b = CookieBrowser::new();
    let own_origin = w.done();
    let start = |redirect: &str| {
        with_param(
            &w.s.url("/api/v1/auth/oauth/acme/authorize"),
            "redirect_uri",
            redirect,
        )
    };
    for bad in [
        "https://evil.example.com/",
        "https://app.example.com.evil.example/spa",
        "https://app.example.com/spam",
        // The server's own origin is not allowed once the list is set.
        own_origin.as_str(),
        "not a url",
    ] {
        let res = b.get(&start(bad)).await;
        assert_eq!(res.problem(), (400, "redirect_uri_not_allowed"), "{bad}");
        assert!(res.headers.get("set-cookie").is_none());
    }
    let res = b.get(&start("https://app.example.com/spa/done")).await;
    assert_eq!(res.status, 302, "{}", res.text);
    let res = b.get(&w.s.url("/api/v1/auth/oauth/acme/authorize")).await;
    assert_eq!(res.problem(), (400, "invalid_query"));
    let res = b
        .get(&with_param(
            &w.s.url("/api/v1/auth/oauth/nosuch/authorize"),
            "redirect_uri",
            "https://app.example.com/spa",
        ))
        .await;
    assert_eq!(res.problem(), (404, "not_found"));
}

async fn a_provider_that_is_down_is_a_clear_answer(db: TestDb) {
    let mut w = db.oauth_app(&[]).await;
    // Down between authorize and callback: the browser is sent back with an error.
    let b = CookieBrowser::new();
    let url = authorize(&w, &b, "github").await;
    let callback = at_provider(&w, &b, &url, "octo").await;
    w.github.stop().await;
    let end = back(&w, &b, &callback).await;
    assert_eq!(
        param(&end, "error").as_deref(),
        Some("provider_unavailable")
    );

    // Down before the first authorize: no discovery document, a problem document.
    w.idp.stop().await;
    let res = b
        .get(&with_param(
            &w.s.url("/api/v1/auth/oauth/acme/authorize"),
            "redirect_uri",
            &w.done(),
        ))
        .await;
    assert_eq!(res.problem(), (502, "provider_unavailable"), "{}", res.text);
    assert_eq!(res.header("content-type"), "application/problem+json");
}

async fn an_account_with_mfa_still_takes_its_second_step(db: TestDb) {
    let w = db
        .oauth_app(&[(
            "ENCRYPTION_MASTER_KEY",
            "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
        )])
        .await;
    let token = sign_in(&w, "acme", "erin").await;
    let enrolled = w.s.enroll_totp(&token).await;
    assert_eq!(enrolled.status, 200, "{}", enrolled.body);
    let secret = crate::helpers::base32_decode(enrolled.body["secret"].as_str().unwrap());
    let step = step_now();
    let res = w.s.confirm_totp(&token, &code_at(&secret, step)).await;
    assert_eq!(res.status, 200, "{}", res.body);

    let end = flow(&w, "acme", "erin").await;
    let res = exchange(&w, &param(&end, "code").unwrap()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["mfa_required"], true, "{}", res.body);
    assert!(res.body.get("access_token").is_none());
    let verified =
        w.s.mfa_verify(
            &res.body["mfa_token"],
            json!({"code": code_at(&secret, step + 1)}),
        )
        .await
        .pair();
    assert_eq!(
        crate::helpers::claims(&verified.access)["aal"],
        "aal2",
        "{}",
        verified.body
    );
}

async fn a_signed_in_user_links_another_identity(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    w.s.register("frank@example.com").await;
    let frank = w.s.login("frank@example.com").await.access;

    let res =
        w.s.post(
            "/api/v1/me/identities/acme/link",
            &frank,
            json!({"redirect_uri": w.done()}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let start = res.body["authorize_url"].as_str().unwrap().to_string();
    let b = CookieBrowser::new();
    let res = b.get(&start).await;
    assert_eq!(res.status, 302, "{}", res.text);
    // The identity's email need not be the account's.
    let callback = at_provider(&w, &b, res.header("location"), "frank-at-work").await;
    let end = back(&w, &b, &callback).await;
    assert_eq!(param(&end, "linked").as_deref(), Some("acme"), "{end}");
    let ids = identities(&w, &frank).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["subject"], "frank-at-work");
    // The ticket is spent.
    assert_eq!(b.get(&start).await.problem(), (400, "invalid_link_ticket"));
    // Signing in with the identity now reaches frank.
    let token = sign_in(&w, "acme", "frank-at-work").await;
    assert_eq!(w.s.user_id(&token).await, w.s.user_id(&frank).await);

    // Someone else cannot take it.
    w.s.register("grace@example.com").await;
    let grace = w.s.login("grace@example.com").await.access;
    let res =
        w.s.post(
            "/api/v1/me/identities/acme/link",
            &grace,
            json!({"redirect_uri": w.done()}),
        )
        .await;
    let b = CookieBrowser::new();
    let res = b.get(res.body["authorize_url"].as_str().unwrap()).await;
    let callback = at_provider(&w, &b, res.header("location"), "frank-at-work").await;
    let end = back(&w, &b, &callback).await;
    assert_eq!(param(&end, "error").as_deref(), Some("identity_in_use"));
    assert!(identities(&w, &grace).await.is_empty());

    // Bad requests.
    let res =
        w.s.post(
            "/api/v1/me/identities/acme/link",
            &grace,
            json!({"redirect_uri": "https://evil.example.com/"}),
        )
        .await;
    assert_eq!(res.problem(), (400, "redirect_uri_not_allowed"));
    let res =
        w.s.post(
            "/api/v1/me/identities/nosuch/link",
            &grace,
            json!({"redirect_uri": w.done()}),
        )
        .await;
    assert_eq!(res.problem(), (404, "not_found"));
    let res =
        w.s.post_public(
            "/api/v1/me/identities/acme/link",
            json!({"redirect_uri": w.done()}),
        )
        .await;
    assert_eq!(res.status, 401);
    db.assert_audited(&["oauth_linked"]).await;
}

async fn github_signs_in_with_a_verified_primary_email_only(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    let token = sign_in(&w, "github", "octo").await;
    let me = w.s.me(&token).await.body["user"].clone();
    assert_eq!(me["email"], "octo@example.com");
    assert_eq!(me["email_verified"], true);
    let ids = identities(&w, &token).await;
    assert_eq!(ids[0]["provider"], "github");
    assert!(
        ids[0]["subject"].as_str().unwrap().parse::<u64>().is_ok(),
        "{ids:?}"
    );
    // Again: the same account.
    let again = sign_in(&w, "github", "octo").await;
    assert_eq!(w.s.user_id(&again).await, me["id"].as_str().unwrap());

    let end = flow(&w, "github", "hubot.unverified").await;
    assert_eq!(param(&end, "error").as_deref(), Some("email_not_verified"));
    assert_eq!(db.query("SELECT id FROM users").await.len(), 1);
}

/// The hosted sign-in page offers every enabled provider; a sign-in through one lands on
/// `/login/oauth`, which turns its one-time code into a page session; a refusal is explained.
async fn the_hosted_sign_in_page_signs_in_through_a_provider(db: TestDb) {
    let w = db.oauth_app(&[]).await;
    let b = CookieBrowser::new();
    let page = b.get(&w.s.url("/login")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Continue with GitHub"), "{}", page.text);
    assert!(
        page.text.contains("Continue with Acme SSO"),
        "{}",
        page.text
    );
    let start = page
        .text
        .split('"')
        .find(|part| part.starts_with("/api/v1/auth/oauth/acme/authorize?"))
        .expect("a button for acme")
        .replace("&amp;", "&");
    assert_eq!(
        param(&w.s.url(&start), "redirect_uri").as_deref(),
        Some(w.s.url("/login/oauth").as_str())
    );

    let res = b.get(&w.s.url(&start)).await;
    assert_eq!(res.status, 302, "{}", res.text);
    let callback = at_provider(&w, &b, res.header("location"), "grace").await;
    let res = b.get(&callback).await;
    assert_eq!(res.status, 302, "{}", res.text);
    let landing = res.header("location").to_string();
    assert!(
        landing.starts_with(&w.s.url("/login/oauth?code=")),
        "{landing}"
    );
    let res = b.get(&landing).await;
    assert!(res.status.is_redirection(), "{} {}", res.status, res.text);
    assert_eq!(res.header("location"), "/account");
    let account = b.get(&w.s.url("/account")).await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert!(
        account.text.contains("grace@example.com"),
        "{}",
        account.text
    );
    // The code was spent on the way in.
    let again = CookieBrowser::new().get(&landing).await;
    assert_eq!(again.status, 400, "{}", again.text);

    // A provider that does not vouch for the email: the page says why, no session.
    let b = CookieBrowser::new();
    let res = b.get(&w.s.url(&start)).await;
    let callback = at_provider(&w, &b, res.header("location"), "heidi.unverified").await;
    let landing = b.get(&callback).await.header("location").to_string();
    assert!(landing.contains("error=email_not_verified"), "{landing}");
    let res = b.get(&landing).await;
    assert_eq!(res.status, 400, "{}", res.text);
    assert!(res.text.contains("not verified your email"), "{}", res.text);
    assert_eq!(b.get(&w.s.url("/account")).await.status, 303);
}

per_backend!(
    sign_up_then_sign_in_with_the_same_identity,
    links_by_email_only_when_both_sides_verified_it,
    the_flow_is_bound_to_its_browser_state_and_nonce,
    forged_id_tokens_are_refused,
    redirects_stay_in_the_allowlist,
    a_provider_that_is_down_is_a_clear_answer,
    an_account_with_mfa_still_takes_its_second_step,
    a_signed_in_user_links_another_identity,
    github_signs_in_with_a_verified_primary_email_only,
    the_hosted_sign_in_page_signs_in_through_a_provider,
);
