//! Passkeys through the API on every backend, with a software authenticator (real keys and signatures): register, sign in without an email at aal2, the passkey as the second step after a password, list, rename and delete; refused with a replayed assertion, a wrong origin, a counter that went back, a changed backup flag, a deleted credential, an expired or foreign ceremony; the last way to sign in kept; audit rows. Then the hosted pages in chromium with its virtual authenticator.

use serde_json::{Value, json};

use crate::helpers::{
    Backend, Browser, ORIGIN, PASSWORD, SoftKey, TestApp, TestDb, claims, count, localhost_app,
    race_on,
};

async fn app(db: &TestDb) -> TestApp {
    // A master key too: the second-step tests turn MFA on.
    db.mfa_app(&[("GATEHOUSE_PUBLIC_URL", ORIGIN)]).await
}

/// The id of the account behind an access token.
fn user_of(token: &str) -> String {
    claims(token)["sub"].as_str().unwrap().to_string()
}

async fn register_sign_in_and_manage(db: TestDb) {
    let s = app(&db).await;
    s.register("ada@example.com").await;
    let token = s.login("ada@example.com").await.access;
    let user = user_of(&token);
    let mut key = SoftKey::new();

    let begin = s
        .post("/api/v1/auth/webauthn/register/begin", &token, json!({}))
        .await;
    assert_eq!(begin.status, 200, "{}", begin.body);
    let public_key = &begin.body["options"]["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(
        public_key["authenticatorSelection"]["residentKey"],
        "required"
    );
    let res = s.add_passkey(&token, &mut key, ORIGIN, "Laptop").await;
    assert_eq!(res.status, 201, "{}", res.body);
    assert_eq!(res.body["name"], "Laptop");
    assert!(res.body["last_used_at"].is_null());
    let id = res.body["id"].as_str().unwrap().to_string();
    // Stored by a hash of the credential id, never the id itself.
    let rows = db.query("SELECT credential_hash FROM passkeys").await;
    let stored: String = rows[0].try_get("", "credential_hash").unwrap();
    assert_eq!(stored.len(), 64);
    assert_ne!(stored, key.ids[0]);

    // Sign in with no email typed: aal2.
    let (ceremony, options) = s.passkey_begin().await;
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    let assertion = key.get(ORIGIN, &options, Some(&user));
    let pair = s.passkey_finish(&ceremony, &assertion).await.pair();
    assert_eq!(claims(&pair.access)["aal"], "aal2");
    assert_eq!(pair.body["user"]["email"], "ada@example.com");
    let list = s.get("/api/v1/me/passkeys", &token).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["passkeys"].as_array().unwrap().len(), 1);
    assert!(list.body["passkeys"][0]["last_used_at"].is_string());

    // The same assertion again: its ceremony is spent; under a new ceremony its challenge is wrong.
    let res = s.passkey_finish(&ceremony, &assertion).await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));
    let (fresh, _) = s.passkey_begin().await;
    let res = s.passkey_finish(&fresh, &assertion).await;
    assert_eq!(res.problem(), (401, "passkey_refused"));

    // An assertion made for another origin (another site on the host) is refused.
    let (ceremony, options) = s.passkey_begin().await;
    let phished = key.get("http://localhost:9999", &options, Some(&user));
    let res = s.passkey_finish(&ceremony, &phished).await;
    assert_eq!(res.problem(), (401, "passkey_refused"));

    // A stored counter ahead of the authenticator's (a cloned key), or a backup flag that
    // changed since registration: refused. Back as it was, the same key signs in again.
    let rows = db.query("SELECT credential FROM passkeys").await;
    let original: String = rows[0].try_get("", "credential").unwrap();
    for (field, value) in [
        ("counter", json!(1_000_000)),
        ("backup_eligible", json!(true)),
    ] {
        let mut tampered: Value = serde_json::from_str(&original).unwrap();
        assert!(!tampered["cred"][field].is_null(), "{field} in {original}");
        tampered["cred"][field] = value;
        db.execute(&format!("UPDATE passkeys SET credential = '{tampered}'"))
            .await;
        let (ceremony, options) = s.passkey_begin().await;
        let assertion = key.get(ORIGIN, &options, Some(&user));
        let res = s.passkey_finish(&ceremony, &assertion).await;
        assert_eq!(res.problem(), (401, "passkey_refused"), "{field}");
    }
    db.execute(&format!("UPDATE passkeys SET credential = '{original}'"))
        .await;
    let (ceremony, options) = s.passkey_begin().await;
    let assertion = key.get(ORIGIN, &options, Some(&user));
    assert_eq!(s.passkey_finish(&ceremony, &assertion).await.status, 200);

    // Rename: trimmed, bounded.
    let path = format!("/api/v1/me/passkeys/{id}");
    let res = s
        .patch(&path, &token, json!({"name": "  Work laptop "}))
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["name"], "Work laptop");
    let res = s
        .patch(&path, &token, json!({"name": "x".repeat(65)}))
        .await;
    assert_eq!(res.field_error(), (422, "invalid_name"));
    let res = s.patch(&path, &token, json!({"name": ""})).await;
    assert_eq!(res.field_error(), (422, "invalid_name"));

    // Another account cannot see, rename or delete it.
    s.register("bo@example.com").await;
    let other = s.login("bo@example.com").await.access;
    assert_eq!(
        s.get("/api/v1/me/passkeys", &other).await.body["passkeys"],
        json!([])
    );
    let res = s.patch(&path, &other, json!({"name": "mine"})).await;
    assert_eq!(res.problem(), (404, "not_found"));
    assert_eq!(s.delete(&path, &other).await.status, 404);

    // Deleted (the account has a password, so it may): the credential no longer signs in.
    assert_eq!(s.delete(&path, &token).await.status, 204);
    assert_eq!(
        s.get("/api/v1/me/passkeys", &token).await.body["passkeys"],
        json!([])
    );
    let (ceremony, options) = s.passkey_begin().await;
    let assertion = key.get(ORIGIN, &options, Some(&user));
    let res = s.passkey_finish(&ceremony, &assertion).await;
    assert_eq!(res.problem(), (401, "passkey_refused"));

    let metrics = s.get_public("/metrics").await.text;
    for outcome in ["success", "failure"] {
        let line = format!("gatehouse_passkey_sign_ins_total{{outcome=\"{outcome}\"}}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    db.assert_audited(&[
        "passkey_registered",
        "passkey_sign_in",
        "passkey_refused",
        "passkey_renamed",
        "passkey_deleted",
    ])
    .await;
    s.stop().await;
}

async fn second_step_after_a_password(db: TestDb) {
    let s = app(&db).await;
    s.register("cy@example.com").await;
    let token = s.login("cy@example.com").await.access;
    let mut key = SoftKey::new();
    let res = s.add_passkey(&token, &mut key, ORIGIN, "Phone").await;
    assert_eq!(res.status, 201, "{}", res.body);

    // A passkey alone leaves the password sufficient (losing it never locks the account out).
    let pair = s.login_with("cy@example.com", PASSWORD).await.pair();
    assert_eq!(claims(&pair.access)["aal"], "aal1");
    // With MFA on, the passkey is one of the second steps.
    s.turn_on_totp(&token).await;
    let challenge = s.login_with("cy@example.com", PASSWORD).await;
    assert_eq!(challenge.body["mfa_required"], true, "{}", challenge.body);
    assert_eq!(
        challenge.body["methods"],
        json!(["totp", "recovery_code", "webauthn"])
    );
    let mfa_token = challenge.body["mfa_token"].clone();
    let begin = s
        .post_public(
            "/api/v1/auth/mfa/webauthn/begin",
            json!({"mfa_token": mfa_token}),
        )
        .await;
    assert_eq!(begin.status, 200, "{}", begin.body);
    let allowed = begin.body["options"]["publicKey"]["allowCredentials"].clone();
    assert_eq!(allowed[0]["id"], key.ids[0].as_str());
    let answer = key.get(ORIGIN, &begin.body["options"], None);
    let verify = |ceremony: &Value, credential: &Value| json!({"mfa_token": mfa_token, "webauthn": {"ceremony_id": ceremony, "credential": credential}});
    let pair = s
        .post_public(
            "/api/v1/auth/mfa/verify",
            verify(&begin.body["ceremony_id"], &answer),
        )
        .await
        .pair();
    assert_eq!(claims(&pair.access)["aal"], "aal2");
    // The mfa_token is spent with it.
    let res = s
        .post_public(
            "/api/v1/auth/mfa/verify",
            verify(&begin.body["ceremony_id"], &answer),
        )
        .await;
    assert_eq!(res.problem(), (401, "invalid_mfa_token"));

    // Another account's ceremony does not finish this account's step.
    s.register("di@example.com").await;
    let di = s.login("di@example.com").await.access;
    let mut di_key = SoftKey::new();
    assert_eq!(
        s.add_passkey(&di, &mut di_key, ORIGIN, "Key").await.status,
        201
    );
    s.turn_on_totp(&di).await;
    let di_challenge = s.login_with("di@example.com", PASSWORD).await;
    let di_begin = s
        .post_public(
            "/api/v1/auth/mfa/webauthn/begin",
            json!({"mfa_token": di_challenge.body["mfa_token"]}),
        )
        .await;
    let di_answer = di_key.get(ORIGIN, &di_begin.body["options"], None);
    let cy_token = s.login_with("cy@example.com", PASSWORD).await.body["mfa_token"].clone();
    let res = s
        .post_public(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": cy_token, "webauthn": {"ceremony_id": di_begin.body["ceremony_id"], "credential": di_answer}}),
        )
        .await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));
    // Both a code and a passkey: refused as ambiguous.
    let res = s
        .post_public(
            "/api/v1/auth/mfa/verify",
            json!({"mfa_token": cy_token, "code": "123456", "webauthn": {"ceremony_id": "x", "credential": di_answer}}),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    s.stop().await;
}

async fn ceremonies_are_single_use_short_lived_and_owned(db: TestDb) {
    let s = app(&db).await;
    s.register("ed@example.com").await;
    s.register("flo@example.com").await;
    let ed = s.login("ed@example.com").await.access;
    let flo = s.login("flo@example.com").await.access;
    let mut key = SoftKey::new();

    // Ed's registration ceremony cannot be finished by Flo.
    let begin = s
        .post("/api/v1/auth/webauthn/register/begin", &ed, json!({}))
        .await;
    let credential = key.create(ORIGIN, &begin.body["options"]);
    let finish = |token: &str, ceremony: &Value| {
        let body = json!({"ceremony_id": ceremony, "credential": credential});
        let token = token.to_string();
        let s = &s;
        async move {
            s.post("/api/v1/auth/webauthn/register/finish", &token, body)
                .await
        }
    };
    let res = finish(&flo, &begin.body["ceremony_id"]).await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));
    // …and Flo's attempt spent it: a ceremony is taken once, whoever takes it.
    let res = finish(&ed, &begin.body["ceremony_id"]).await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));

    // An expired ceremony is refused; stored ceremonies hold only a hash of their id.
    let begin = s
        .post("/api/v1/auth/webauthn/register/begin", &ed, json!({}))
        .await;
    let ceremony = begin.body["ceremony_id"].as_str().unwrap().to_string();
    let rows = db
        .query("SELECT ceremony_hash, state FROM webauthn_ceremonies")
        .await;
    for r in &rows {
        let hash: String = r.try_get("", "ceremony_hash").unwrap();
        assert_ne!(hash, ceremony);
    }
    db.execute("UPDATE webauthn_ceremonies SET expires_at = created_at")
        .await;
    let credential = key.create(ORIGIN, &begin.body["options"]);
    let res = s
        .post(
            "/api/v1/auth/webauthn/register/finish",
            &ed,
            json!({"ceremony_id": ceremony, "credential": credential}),
        )
        .await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));

    // A sign-in ceremony cannot finish a registration, nor the reverse.
    let (sign_in, _) = s.passkey_begin().await;
    let res = s
        .post(
            "/api/v1/auth/webauthn/register/finish",
            &ed,
            json!({"ceremony_id": sign_in, "credential": credential}),
        )
        .await;
    assert_eq!(res.problem(), (401, "invalid_ceremony"));

    // Begun on one instance, finished on another; raced on both, exactly one wins.
    let registered = s.add_passkey(&ed, &mut key, ORIGIN, "Key").await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let other = app(&db).await;
    let (ceremony, options) = s.passkey_begin().await;
    let assertion = key.get(ORIGIN, &options, Some(&user_of(&ed)));
    let results = race_on(
        &[&s, &other],
        8,
        "/api/v1/auth/webauthn/login/finish",
        |_| json!({"ceremony_id": ceremony, "credential": assertion}),
    )
    .await;
    assert_eq!(count(&results, 200), 1, "{results:?}");
    assert_eq!(count(&results, 401), 7, "{results:?}");
    other.stop().await;

    // Garbage is a 400, never a 500.
    let res = s
        .post_public(
            "/api/v1/auth/webauthn/login/finish",
            json!({"ceremony_id": "x", "credential": {"id": 1}}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    s.stop().await;
}

async fn the_last_way_to_sign_in_is_kept(db: TestDb) {
    let s = app(&db).await;
    s.register("gil@example.com").await;
    let token = s.login("gil@example.com").await.access;
    let mut key = SoftKey::new();
    let first = s.add_passkey(&token, &mut key, ORIGIN, "One").await;
    let second = s.add_passkey(&token, &mut key, ORIGIN, "Two").await;
    assert_eq!((first.status.as_u16(), second.status.as_u16()), (201, 201));
    let list = s.get("/api/v1/me/passkeys", &token).await;
    let names: Vec<&str> = list.body["passkeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["One", "Two"]);
    // A passwordless account (as an outside sign-in or an import without a hash makes one).
    db.execute("UPDATE users SET password_hash = NULL").await;
    let path = |r: &crate::helpers::Reply| {
        format!("/api/v1/me/passkeys/{}", r.body["id"].as_str().unwrap())
    };
    assert_eq!(s.delete(&path(&first), &token).await.status, 204);
    let res = s.delete(&path(&second), &token).await;
    assert_eq!(res.problem(), (409, "last_sign_in_method"));
    assert_eq!(
        s.get("/api/v1/me/passkeys", &token).await.body["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // It still signs in with it.
    let (ceremony, options) = s.passkey_begin().await;
    let assertion = key.get(ORIGIN, &options, Some(&user_of(&token)));
    assert_eq!(s.passkey_finish(&ceremony, &assertion).await.status, 200);
    s.stop().await;
}

async fn off_without_a_domain(db: TestDb) {
    // The default public URL is an IP address: passkeys are off, and say so.
    let s = db.app(&[]).await;
    let res = s
        .post_public("/api/v1/auth/webauthn/login/begin", json!({}))
        .await;
    assert_eq!(res.problem(), (503, "passkeys_not_configured"));
    s.stop().await;
}

/// A passkey outlives a password change, so only a recent sign-in may add one: a session that
/// signed in eleven minutes ago is refused until its person signs in again.
async fn adding_a_passkey_needs_a_recent_sign_in(db: TestDb) {
    let s = app(&db).await;
    s.register("el@example.com").await;
    let old = s.login("el@example.com").await.access;
    {
        use gatehouse::store::entities::sessions;
        use sea_orm::{EntityTrait, sea_query::Expr};
        let conn = db.connect().await;
        sessions::Entity::update_many()
            .col_expr(
                sessions::Column::CreatedAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(11)),
            )
            .exec(&conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let res = s
        .post("/api/v1/auth/webauthn/register/begin", &old, json!({}))
        .await;
    assert_eq!(res.problem(), (403, "reauthentication_required"));
    // Signed in again: the passkey is added.
    let fresh = s.login("el@example.com").await.access;
    let mut key = SoftKey::new();
    let added = s.add_passkey(&fresh, &mut key, ORIGIN, "Phone").await;
    assert_eq!(added.status, 201, "{}", added.body);
    s.stop().await;
}

per_backend!(
    adding_a_passkey_needs_a_recent_sign_in,
    register_sign_in_and_manage,
    second_step_after_a_password,
    ceremonies_are_single_use_short_lived_and_owned,
    the_last_way_to_sign_in_is_kept,
    off_without_a_domain,
);

/// Sign in on the page with a password; lands on what `then` selects.
async fn password_sign_in(b: &Browser, base: &str, email: &str, then: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.submit("#sign-in", then).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_register_sign_in_and_refusals() {
    let db = TestDb::create(Backend::Sqlite)
        .await
        .expect("sqlite is always tested");
    let (s, base) = localhost_app(&db, &[]).await;
    s.register("ada@example.com").await;
    let mut b = Browser::start("passkeys").await;
    let authenticator = b.add_virtual_authenticator().await;

    // Register from the account page.
    password_sign_in(&b, &base, "ada@example.com", "#add-passkey").await;
    b.fill("#passkey-name", "Laptop").await;
    b.shot("account-before").await;
    b.click("#add-passkey").await;
    b.wait_for_url("done=passkey_added").await;
    assert_eq!(
        b.find("#passkeys input[name=name]")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Laptop")
    );
    b.shot("account-with-passkey").await;
    let held = b.virtual_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["isResidentCredential"], true, "discoverable");
    b.submit("#sign-out", "#sign-in").await;

    // Sign in with it: no email typed.
    b.goto(&format!("{base}/login")).await;
    b.shot("login-with-passkey").await;
    b.submit("#passkey-sign-in", "#sessions").await;
    assert_eq!(b.path().await, "/account");
    db.assert_audited(&["passkey_registered", "passkey_sign_in"])
        .await;
    b.submit("#sign-out", "#sign-in").await;

    // With MFA on, a password's second step may be the passkey.
    let ada = s.login("ada@example.com").await.access;
    s.turn_on_totp(&ada).await;
    password_sign_in(&b, &base, "ada@example.com", "#passkey-verify").await;
    b.shot("second-step").await;
    b.submit("#passkey-verify", "#sessions").await;
    assert_eq!(b.path().await, "/account");
    b.submit("#sign-out", "#sign-in").await;

    // An assertion the browser made, posted twice: the second time it is refused.
    let answer = b
        .passkey_assertion(&format!("{base}/api/v1/auth/webauthn/login/begin"))
        .await;
    assert!(answer.get("error").is_none(), "{answer}");
    let first = s
        .passkey_finish(&answer["ceremony_id"], &answer["credential"])
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        claims(first.body["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );
    let replay = s
        .passkey_finish(&answer["ceremony_id"], &answer["credential"])
        .await;
    assert_eq!(replay.problem(), (401, "invalid_ceremony"));
    let (fresh, _) = s.passkey_begin().await;
    let replay = s.passkey_finish(&fresh, &answer["credential"]).await;
    assert_eq!(replay.problem(), (401, "passkey_refused"));

    // A server that expects another origin refuses what this page's passkey signs.
    let (other, other_base) =
        localhost_app(&db, &[("WEBAUTHN_RP_ORIGINS", "http://localhost:1")]).await;
    b.goto(&format!("{other_base}/login")).await;
    b.submit("#passkey-sign-in", "#error").await;
    assert!(
        b.text("#error").await.contains("not accepted"),
        "{}",
        b.text("#error").await
    );
    b.shot("wrong-origin").await;
    other.stop().await;

    // Deleted on the account page: the authenticator still offers it, the server refuses it.
    password_sign_in(&b, &base, "ada@example.com", "#passkey-verify").await;
    b.submit("#passkey-verify", "#sessions").await;
    b.click("#passkeys button.danger").await;
    b.wait_for_url("done=passkey_deleted").await;
    assert!(!b.source().await.contains("id=\"passkeys\""));
    b.submit("#sign-out", "#sign-in").await;
    b.goto(&format!("{base}/login")).await;
    b.submit("#passkey-sign-in", "#error").await;
    assert!(b.text("#error").await.contains("not accepted"));
    assert_eq!(b.virtual_credentials(&authenticator).await.len(), 1);
    b.shot("deleted-refused").await;
    db.assert_audited(&["passkey_refused", "passkey_deleted"])
        .await;
    b.close().await;
    s.stop().await;
}
