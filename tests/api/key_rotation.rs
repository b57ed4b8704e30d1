//! Rotating the JWT signing key while tokens are live, on every backend: `gatehouse keys rotate-jwt` makes the next key and prints the variables; a server restarted with them accepts the access and refresh tokens issued before, signs with the new key (its `kid` in every token, every verifying public key in the JWKS), and once a previous key is dropped its tokens get 401.

use std::collections::BTreeSet;

use gatehouse::crypto::jwt::secret_kid;
use serde_json::Value;

use crate::helpers::{JWT_SECRET, Reply, TestDb, assert_one_line_failure, assert_success, claims};

/// The `NAME=value` lines `keys rotate-jwt` printed, checked to be nothing else.
fn env_lines(out: &str) -> Vec<(String, String)> {
    let pairs: Vec<(String, String)> = out
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not NAME=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "JWT_ALGORITHM",
            "JWT_SECRET",
            "JWT_PRIVATE_KEY_FILE",
            "JWT_PREVIOUS_SECRETS",
            "JWT_PREVIOUS_KEY_FILES"
        ],
        "{out}"
    );
    pairs
}

fn get<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
    &env.iter().find(|(k, _)| k == name).unwrap().1
}

fn borrowed(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `keys rotate-jwt` run with the configuration `env` (over the test database's).
async fn rotate(db: &TestDb, env: &[(String, String)], args: &[&str]) -> Vec<(String, String)> {
    let mut argv = vec!["keys", "rotate-jwt"];
    argv.extend_from_slice(args);
    env_lines(&assert_success(&db.cli(&argv, &borrowed(env), None).await))
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .unwrap()
        .kid
        .expect("a kid")
}

/// HS256: a rotation keeps every session (access and refresh tokens) while the old secret is a
/// previous one; dropping it refuses the tokens still signed with it.
async fn hs256_rotation_signs_nobody_out(db: TestDb) {
    let before = db.app(&[]).await;
    before.register("ada@example.com").await;
    before.register("bob@example.com").await;
    let ada = before.login("ada@example.com").await;
    let bob = before.login("bob@example.com").await;
    assert_eq!(kid(&ada.access), secret_kid(JWT_SECRET));
    before.stop().await;

    let env = rotate(&db, &[], &[]).await;
    assert_eq!(get(&env, "JWT_ALGORITHM"), "HS256");
    let new_secret = get(&env, "JWT_SECRET").to_string();
    assert!(new_secret.len() >= 32 && new_secret != JWT_SECRET);
    assert_eq!(get(&env, "JWT_PREVIOUS_SECRETS"), JWT_SECRET);
    assert_eq!(get(&env, "JWT_PRIVATE_KEY_FILE"), "");

    let after = db.app(&borrowed(&env)).await;
    assert_eq!(after.me(&ada.access).await.status, 200);
    let next = after.refresh(&ada.refresh).await.pair();
    assert_eq!(kid(&next.access), secret_kid(&new_secret));
    assert_eq!(claims(&next.access)["sid"], ada.session_id.as_str());
    let fresh = after.login("ada@example.com").await;
    assert_eq!(kid(&fresh.access), secret_kid(&new_secret));
    assert_eq!(after.me(&fresh.access).await.status, 200);
    // Only the ID-token key of the OpenID Provider is published, never a secret.
    let jwks = after.get_public("/.well-known/jwks.json").await.body;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "EC", "secrets are never published: {jwks}");
    // Several instances: one that has the new secret only as a previous one (the first step of
    // a rolling rotation) accepts what the new one signs, and still signs with the old.
    let staged = db
        .app(&[
            ("JWT_SECRET", JWT_SECRET),
            ("JWT_PREVIOUS_SECRETS", &new_secret),
        ])
        .await;
    assert_eq!(staged.me(&fresh.access).await.status, 200);
    let back = staged.refresh(&fresh.refresh).await.pair();
    assert_eq!(kid(&back.access), secret_kid(JWT_SECRET));
    assert_eq!(after.me(&back.access).await.status, 200);
    staged.stop().await;
    // A second rotation keeps both earlier secrets, the newest first.
    let env2 = rotate(&db, &env, &[]).await;
    assert_eq!(
        get(&env2, "JWT_PREVIOUS_SECRETS"),
        format!("{new_secret},{JWT_SECRET}")
    );
    after.stop().await;

    // The old secret dropped: what it signed is refused, what the new one signed is not.
    let dropped = db
        .app(&[("JWT_SECRET", &new_secret), ("JWT_PREVIOUS_SECRETS", "")])
        .await;
    let old_access = dropped.me(&ada.access).await;
    assert_eq!(old_access.problem(), (401, "invalid_token"));
    assert_eq!(dropped.me(&bob.access).await.status, 401);
    assert_eq!(dropped.me(&next.access).await.status, 200);
    // Ada's session moved to the new secret when it refreshed; Bob's never did.
    assert_eq!(dropped.refresh(&next.refresh).await.status, 200);
    assert_eq!(
        dropped.refresh(&bob.refresh).await.problem(),
        (401, "invalid_refresh_token")
    );
    dropped.stop().await;
}

async fn jwks_kids(base: &str) -> BTreeSet<String> {
    let body: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

async fn send(base: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
    let c = reqwest::Client::new();
    let url = format!("{base}{path}");
    let req = match body {
        Some(b) => c.post(url).json(&b),
        None => c.get(url),
    };
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    Reply::read(req.send().await.unwrap()).await
}

async fn login(base: &str, email: &str) -> (String, String) {
    let body = serde_json::json!({"email": email, "password": crate::helpers::PASSWORD});
    let pair = send(base, "/api/v1/auth/login", None, Some(body))
        .await
        .pair();
    (pair.access, pair.refresh)
}

/// EdDSA and ES256 through `gatehouse serve`: from HS256 to an asymmetric key, then to a second
/// one; the JWKS lists every key still verifying, and a dropped key's tokens get 401.
async fn asymmetric_rotation_through_the_command(db: TestDb) {
    for alg in ["EdDSA", "ES256"] {
        let (k1, k2) = (
            db.dir.path().join(format!("{alg}-1.pem")),
            db.dir.path().join(format!("{alg}-2.pem")),
        );
        // From the HS256 secret of the test environment to a first asymmetric key.
        let env1 = rotate(
            &db,
            &[],
            &["--algorithm", alg, "--out", k1.to_str().unwrap()],
        )
        .await;
        assert_eq!(get(&env1, "JWT_ALGORITHM"), alg);
        assert_eq!(get(&env1, "JWT_SECRET"), "");
        assert_eq!(get(&env1, "JWT_PRIVATE_KEY_FILE"), k1.to_str().unwrap());
        assert_eq!(get(&env1, "JWT_PREVIOUS_SECRETS"), JWT_SECRET);
        // The key file is never overwritten.
        let pem = std::fs::read(&k1).unwrap();
        let again = db
            .cli(
                &["keys", "rotate-jwt", "--out", k1.to_str().unwrap()],
                &borrowed(&env1),
                None,
            )
            .await;
        assert!(assert_one_line_failure(&again).contains("already exists"));
        assert_eq!(std::fs::read(&k1).unwrap(), pem);

        let first = db.serve(&borrowed(&env1)).await;
        if alg == "EdDSA" {
            let status = first
                .post(
                    "/api/v1/auth/register",
                    serde_json::json!({"email": "ada@example.com", "password": crate::helpers::PASSWORD}),
                )
                .await;
            assert_eq!(status, 201);
        }
        let (access1, refresh1) = login(&first.base, "ada@example.com").await;
        let kid1 = kid(&access1);
        assert_eq!(jwks_kids(&first.base).await, BTreeSet::from([kid1.clone()]));
        assert!(first.terminate().await.success());

        // The second key; the first and the HS256 secret keep verifying.
        let env2 = rotate(&db, &env1, &["--out", k2.to_str().unwrap()]).await;
        assert_eq!(get(&env2, "JWT_ALGORITHM"), alg);
        assert_eq!(get(&env2, "JWT_PREVIOUS_KEY_FILES"), k1.to_str().unwrap());
        assert_eq!(get(&env2, "JWT_PREVIOUS_SECRETS"), JWT_SECRET);
        let second = db.serve(&borrowed(&env2)).await;
        let me = send(&second.base, "/api/v1/auth/me", Some(&access1), None).await;
        assert_eq!(me.status, 200, "{alg}: {}", me.body);
        let refreshed = send(
            &second.base,
            "/api/v1/auth/refresh",
            None,
            Some(serde_json::json!({"refresh_token": refresh1})),
        )
        .await
        .pair();
        let kid2 = kid(&refreshed.access);
        assert_ne!(kid2, kid1);
        assert_eq!(
            jwks_kids(&second.base).await,
            BTreeSet::from([kid1.clone(), kid2.clone()]),
            "{alg}"
        );
        let (access2, _) = login(&second.base, "ada@example.com").await;
        assert_eq!(kid(&access2), kid2);
        assert!(second.terminate().await.success());

        // The first key dropped: its tokens are refused, the JWKS lists the second only.
        let mut env3 = env2.clone();
        env3.retain(|(k, _)| k != "JWT_PREVIOUS_KEY_FILES");
        let third = db.serve(&borrowed(&env3)).await;
        let me = send(&third.base, "/api/v1/auth/me", Some(&access1), None).await;
        assert_eq!(me.problem(), (401, "invalid_token"), "{alg}");
        let me = send(&third.base, "/api/v1/auth/me", Some(&access2), None).await;
        assert_eq!(me.status, 200, "{alg}: {}", me.body);
        assert_eq!(jwks_kids(&third.base).await, BTreeSet::from([kid2]));
        assert!(third.terminate().await.success());
    }
}

per_backend!(
    hs256_rotation_signs_nobody_out,
    asymmetric_rotation_through_the_command
);

/// What the command refuses: an HS256 secret written to a file, an asymmetric key with nowhere
/// to go, an unknown algorithm; and a bad previous key file stops `serve` with its variable.
#[tokio::test]
async fn rotate_jwt_refusals() {
    let db = TestDb::create(crate::helpers::Backend::Sqlite)
        .await
        .unwrap();
    let out = db.dir.path().join("k.pem");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (vec!["--out", out], "--out is for asymmetric keys"),
        (vec!["--algorithm", "RS256"], "--out FILE is required"),
    ] {
        let mut argv = vec!["keys", "rotate-jwt"];
        argv.extend(args);
        let line = assert_one_line_failure(&db.run(&argv).await);
        assert!(line.contains(says), "{line}");
    }
    let o = db.run(&["keys", "rotate-jwt", "--algorithm", "none"]).await;
    assert!(!o.status.success());
    assert!(!std::path::Path::new(out).exists());

    let junk = db.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();
    let line = assert_one_line_failure(
        &db.cli(
            &["serve"],
            &[("JWT_PREVIOUS_KEY_FILES", junk.to_str().unwrap())],
            None,
        )
        .await,
    );
    assert!(line.contains("JWT_PREVIOUS_KEY_FILES"), "{line}");
}
