//! One canonical email per person on every backend: look-alike spellings of a registered address are the same account (409, and they sign in to it), invisible and mixed-script addresses are refused, and the stored form is the normalised one.

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, TestDb};

async fn register_raw(s: &TestApp, email: &str) -> (u16, String, serde_json::Value) {
    let res = s
        .post_public(
            "/api/v1/auth/register",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    let code = match res.status.as_u16() {
        422 => res.field_error().1.to_string(),
        _ => res.problem().1.to_string(),
    };
    (res.status.as_u16(), code, res.body)
}

async fn look_alike_spellings_are_one_account(db: TestDb) {
    let s = db.app(&[]).await;
    s.register("kase@example.com").await;
    for same in [
        "KASE@example.com",
        "\u{212A}ase@example.com",         // Kelvin sign
        "ｋａｓｅ@ｅｘａｍｐｌｅ．ｃｏｍ", // fullwidth
        "kase@EXAMPLE.COM",
    ] {
        let (status, code, _) = register_raw(&s, same).await;
        assert_eq!((status, code.as_str()), (409, "email_taken"), "{same:?}");
        // And every spelling signs in to the one account.
        assert_eq!(s.login_with(same, PASSWORD).await.status, 200, "{same:?}");
    }
    s.stop().await;
}

async fn a_kelvin_sign_registration_is_stored_normalised(db: TestDb) {
    let s = db.app(&[]).await;
    let (status, _, body) = register_raw(&s, "\u{212A}ase@example.com").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["user"]["email"], "Kase@example.com");
    let row = db.user("kase@example.com").await;
    assert_eq!(row.email, "Kase@example.com");
    // The plain ASCII spelling is that account, not a new one.
    let (status, code, _) = register_raw(&s, "kase@example.com").await;
    assert_eq!((status, code.as_str()), (409, "email_taken"));
    assert_eq!(s.login_with("kase@example.com", PASSWORD).await.status, 200);
    s.stop().await;
}

async fn invisible_and_mixed_script_addresses_are_refused(db: TestDb) {
    let s = db.app(&[]).await;
    for (bad, code) in [
        ("ka\u{200B}se@example.com", "invisible_characters"),
        ("kase\u{2060}@example.com", "invisible_characters"),
        ("\u{FEFF}kase@example.com", "invisible_characters"),
        ("k\u{0430}se@example.com", "mixed_script"),
        ("p\u{0430}yp\u{0430}l@example.com", "mixed_script"),
    ] {
        let (status, got, body) = register_raw(&s, bad).await;
        assert_eq!((status, got.as_str()), (422, code), "{bad:?}: {body}");
    }
    let rows = db.query("SELECT id FROM users").await;
    assert!(rows.is_empty(), "nothing half-written");
    s.stop().await;
}

async fn international_addresses_keep_working(db: TestDb) {
    let s = db.app(&[]).await;
    for good in ["админ@пример.рф", "ünï@bücher.de", "用户@例子.中国"] {
        let (status, _, body) = register_raw(&s, good).await;
        assert_eq!(status, 201, "{good:?}: {body}");
        assert_eq!(body["user"]["email"], good);
    }
    // The IDNA spelling of a domain is the same domain.
    let (status, code, _) = register_raw(&s, "ünï@xn--bcher-kva.de").await;
    assert_eq!((status, code.as_str()), (409, "email_taken"));
    assert_eq!(s.login_with("ÜNÏ@BÜCHER.DE", PASSWORD).await.status, 200);
    s.stop().await;
}

per_backend!(
    look_alike_spellings_are_one_account,
    a_kelvin_sign_registration_is_stored_normalised,
    invisible_and_mixed_script_addresses_are_refused,
    international_addresses_keep_working,
);
