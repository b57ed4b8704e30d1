//! The rules of Gatehouse as an OpenID Provider that need no I/O: which scopes a client may get, what a redirect URI may be, the PKCE S256 check, when a person must sign in again, whether a remembered consent covers a request, and what `amr` a session's level shows.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use url::Url;

/// Every scope Gatehouse knows, in the order discovery lists them.
pub const SCOPES: [&str; 5] = ["openid", "email", "profile", "roles", "offline_access"];

/// The scopes a new client gets when none are named.
pub const DEFAULT_SCOPES: &str = "openid email profile roles offline_access";

/// The scopes of a request that the client may have, in request order without repeats; the
/// request must include `openid`. Scopes the client may not have (or nobody knows) are dropped,
/// as RFC 6749 § 3.3 allows. `None` when `openid` is missing or not allowed.
pub fn granted_scopes(requested: &str, allowed: &str) -> Option<Vec<String>> {
    let allowed: Vec<&str> = allowed.split_whitespace().collect();
    let mut out: Vec<String> = Vec::new();
    for s in requested.split_whitespace() {
        if SCOPES.contains(&s) && allowed.contains(&s) && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out.iter().any(|s| s == "openid").then_some(out)
}

/// The allowed scopes of a client being registered: known names, `openid` included.
pub fn client_scopes(raw: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for s in raw.split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(format!("unknown scope {s:?}; known: {}", SCOPES.join(" ")));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if !out.contains(&"openid") {
        out.insert(0, "openid");
    }
    Ok(out.join(" "))
}

/// Whether `raw` may be registered as a redirect URI: absolute, no fragment, https or a
/// loopback/localhost http address, or a private-use scheme of a native app (`com.example:/cb`).
pub fn redirect_uri_problem(raw: &str) -> Option<&'static str> {
    let Ok(url) = Url::parse(raw) else {
        return Some("is not an absolute URI");
    };
    if url.fragment().is_some() {
        return Some("must not have a fragment");
    }
    match url.scheme() {
        "https" => None,
        "http" => {
            let local = match url.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            (!local).then_some("must be https (http only for localhost and loopback addresses)")
        }
        "javascript" | "data" | "file" | "vbscript" => {
            Some("has a scheme that cannot be a redirect")
        }
        s if s.contains('.') => None,
        _ => Some("must be https, loopback http, or a private-use scheme like com.example.app"),
    }
}

/// Whether a PKCE verifier (RFC 7636: 43–128 unreserved characters) matches an S256 challenge.
pub fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Whether a challenge looks like an S256 one (43 base64url characters).
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether a person signed in at `auth_time` must sign in again for a request with `prompt`
/// and `max_age` (seconds) at `now`.
pub fn must_sign_in_again(
    prompt_login: bool,
    max_age: Option<i64>,
    auth_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    prompt_login || max_age.is_some_and(|max| (now - auth_time).num_seconds() > max)
}

/// Whether a remembered consent to `granted` covers every scope in `requested`.
pub fn consent_covers(granted: &str, requested: &[String]) -> bool {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    requested.iter().all(|s| granted.contains(&s.as_str()))
}

/// The authentication methods a session's level stands for (RFC 8176 values).
pub fn amr(aal: &str) -> Vec<&'static str> {
    if aal == "aal2" {
        vec!["pwd", "otp", "mfa"]
    } else {
        vec!["pwd"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_need_openid_and_drop_what_the_client_may_not_have() {
        let allowed = "openid email profile";
        assert_eq!(
            granted_scopes("openid email roles email bogus", allowed),
            Some(vec!["openid".to_string(), "email".to_string()])
        );
        assert_eq!(granted_scopes("email profile", allowed), None);
        assert_eq!(granted_scopes("openid", "email"), None);
        assert_eq!(client_scopes("email").unwrap(), "openid email");
        assert!(client_scopes("openid admin").is_err());
    }

    #[test]
    fn redirect_uris_are_absolute_https_or_loopback() {
        assert_eq!(redirect_uri_problem("https://app.example.com/cb"), None);
        assert_eq!(redirect_uri_problem("http://127.0.0.1:8080/cb"), None);
        assert_eq!(redirect_uri_problem("http://localhost/cb"), None);
        assert_eq!(redirect_uri_problem("com.example.app:/cb"), None);
        assert!(redirect_uri_problem("http://app.example.com/cb").is_some());
        assert!(redirect_uri_problem("https://app.example.com/cb#x").is_some());
        assert!(redirect_uri_problem("/cb").is_some());
        assert!(redirect_uri_problem("javascript:alert(1)").is_some());
    }

    #[test]
    fn pkce_s256_is_checked_exactly() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_s256_matches("short", challenge));
        assert!(!is_s256_challenge("plain-verifier"));
    }

    #[test]
    fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
        let now = Utc::now();
        let then = now - chrono::Duration::seconds(120);
        assert!(!must_sign_in_again(false, None, then, now));
        assert!(must_sign_in_again(true, None, now, now));
        assert!(must_sign_in_again(false, Some(60), then, now));
        assert!(!must_sign_in_again(false, Some(600), then, now));
        assert!(consent_covers("openid email", &["openid".into()]));
        assert!(!consent_covers(
            "openid",
            &["openid".into(), "email".into()]
        ));
        assert_eq!(amr("aal2"), ["pwd", "otp", "mfa"]);
        assert_eq!(amr("aal1"), ["pwd"]);
    }
}
