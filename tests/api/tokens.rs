//! Access tokens that must be refused (forged, tampered, expired, another audience, a refresh token in their place) and asymmetric signing verified with the published JWKS.

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{Backend, JWT_SECRET, TestDb};

async fn bad_tokens_are_refused(db: TestDb) {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let s = db.app(&[]).await;
    s.register("ada@example.com").await;
    let p = s.login("ada@example.com").await;
    let (access, refresh) = (p.access.clone(), p.refresh.clone());
    let c = crate::helpers::claims(&access);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let sign = |claims: &Value, secret: &[u8]| {
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    };

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&c)
    );
    let mut tampered_claims = c.clone();
    tampered_claims["roles"] = json!(["super_admin"]);
    let parts: Vec<&str> = access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&tampered_claims), parts[2]);
    let wrong_key = sign(&c, b"another-secret-another-secret-1234");
    let mut expired_claims = c.clone();
    expired_claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    let expired = sign(&expired_claims, JWT_SECRET.as_bytes());
    let mut other_aud = c.clone();
    other_aud["aud"] = json!("someone-else");
    let other_aud = sign(&other_aud, JWT_SECRET.as_bytes());

    for bad in [
        none.as_str(),
        &tampered,
        &wrong_key,
        &expired,
        &other_aud,
        &refresh,
        "garbage",
        "",
    ] {
        let res = s.me(bad).await;
        assert_eq!(res.status, 401, "{bad}");
        assert_eq!(res.header("www-authenticate"), "Bearer");
    }
    let res = s.get_public("/api/v1/auth/me").await;
    assert_eq!(res.problem(), (401, "unauthorized"));
    // An access token is not a refresh token.
    let res = s.refresh(&access).await;
    assert_eq!(res.problem(), (401, "invalid_refresh_token"));
    // A forged refresh token (right shape, wrong MAC) is refused and does not revoke anything.
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&refresh)
        .unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    assert_eq!(s.refresh(forged).await.status, 401);
    assert_eq!(s.me(&access).await.status, 200);
    s.stop().await;
}

per_backend!(bad_tokens_are_refused);

/// Asymmetric algorithms: tokens verify with the key published at /.well-known/jwks.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_tokens_verify_with_the_published_jwks() {
    for (alg, genkey) in [
        ("EdDSA", vec!["genpkey", "-algorithm", "ed25519"]),
        (
            "ES256",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
        ),
        (
            "RS256",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
        ),
    ] {
        let db = TestDb::create(Backend::Sqlite).await.unwrap();
        let key = db.dir.path().join("key.pem");
        let out = std::process::Command::new("openssl")
            .args(&genkey)
            .args(["-out", key.to_str().unwrap()])
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s = db
            .app(&[
                ("JWT_ALGORITHM", alg),
                ("JWT_PRIVATE_KEY_FILE", key.to_str().unwrap()),
            ])
            .await;
        s.register("ada@example.com").await;
        let p = s.login("ada@example.com").await;
        let token = p.access.as_str();
        let published = s.get_public("/.well-known/jwks.json").await;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(published.body).unwrap();
        assert_eq!(jwks.keys.len(), 1, "{alg}");
        let header = jsonwebtoken::decode_header(token).unwrap();
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid in jwks");
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&["gatehouse"]);
        let data = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sid"], p.session_id, "{alg}");
        assert_eq!(s.me(token).await.status, 200);
        // The JWKS never holds private parts.
        let raw = published.text;
        assert!(!raw.contains("\"d\""), "{raw}");
        // An HS256 token made with the public key as secret (algorithm confusion) is refused.
        let forged = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &data.claims,
            &jsonwebtoken::EncodingKey::from_secret(raw.as_bytes()),
        )
        .unwrap();
        assert_eq!(s.me(&forged).await.status, 401);
        s.stop().await;
    }
    // HS256 publishes no secret: only the ID-token key of the OpenID Provider (an EC key).
    let db = TestDb::create(Backend::Sqlite).await.unwrap();
    let s = db.app(&[]).await;
    let jwks = s.get_public("/.well-known/jwks.json").await.body;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(keys[0]["kty"], "EC", "{jwks}");
    assert!(keys[0].get("k").is_none(), "{jwks}");
    s.stop().await;
}
