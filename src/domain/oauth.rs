//! Rules of signing in through an outside provider: where a finished sign-in may send the browser, and what an identity the provider vouches for may do to the accounts here.

use url::Url;

/// `candidate` parsed, when it lies within one entry of `allowlist`: the same origin (scheme,
/// host and port) and, for an entry with a path, under that path. Userinfo and fragments are
/// refused (the answer's `?code=` goes into the query).
pub fn allowed_redirect(allowlist: &[Url], candidate: &str) -> Option<Url> {
    let url = Url::parse(candidate).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.has_host()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none();
    let within = |entry: &Url| {
        let prefix = entry.path().trim_end_matches('/');
        entry.origin() == url.origin()
            && (prefix.is_empty()
                || url.path() == prefix
                || url.path().starts_with(&format!("{prefix}/")))
    };
    (plain && allowlist.iter().any(within)).then_some(url)
}

/// What is known here of an identity a provider vouched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vouched {
    /// The identity is already linked to an account.
    pub linked: bool,
    /// The provider gave an email and says it is verified.
    pub email_verified: bool,
    /// An account with that email exists: whether its own address was verified here.
    pub account_with_email: Option<bool>,
}

/// What a sign-in through a provider does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sign in to the linked account.
    SignIn,
    /// Link the identity to the account with the same email, then sign in.
    LinkByEmail,
    /// Make an account (email verified, no password) with the identity.
    SignUp,
    /// Refuse, with the `error` the browser is sent back with.
    Refuse(&'static str),
}

/// An identity signs in to the account it is linked to. Otherwise its email decides, and only
/// when the provider says it is verified: it links to the account with that email (only if
/// that account's own address was verified too, so an account someone registered with another
/// person's address and a password of their own is never handed to them), or makes a new one.
pub fn decide(v: Vouched) -> Decision {
    match (v.linked, v.email_verified, v.account_with_email) {
        (true, _, _) => Decision::SignIn,
        (false, false, _) => Decision::Refuse("email_not_verified"),
        (false, true, Some(true)) => Decision::LinkByEmail,
        (false, true, Some(false)) => Decision::Refuse("account_not_verified"),
        (false, true, None) => Decision::SignUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Vec<Url> {
        entries.iter().map(|e| Url::parse(e).unwrap()).collect()
    }

    #[test]
    fn redirects_stay_within_the_allowlist() {
        let allow = list(&["https://app.example.com", "http://127.0.0.1:3000/spa/"]);
        for ok in [
            "https://app.example.com/",
            "https://app.example.com/done?x=1",
            "http://127.0.0.1:3000/spa",
            "http://127.0.0.1:3000/spa/callback",
        ] {
            assert!(allowed_redirect(&allow, ok).is_some(), "{ok}");
        }
        for bad in [
            "https://app.example.com.evil.com/",
            "http://app.example.com/",
            "https://app.example.com:444/",
            "https://evil@app.example.com/",
            "https://app.example.com/#frag",
            "http://127.0.0.1:3000/spam",
            "http://127.0.0.1:3000/",
            "javascript:alert(1)",
            "/relative",
            "",
        ] {
            assert!(allowed_redirect(&allow, bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn only_a_verified_email_links_or_signs_up() {
        let v = |linked, email_verified, account_with_email| Vouched {
            linked,
            email_verified,
            account_with_email,
        };
        assert_eq!(decide(v(true, false, None)), Decision::SignIn);
        assert_eq!(decide(v(true, true, Some(false))), Decision::SignIn);
        assert_eq!(
            decide(v(false, false, Some(true))),
            Decision::Refuse("email_not_verified")
        );
        assert_eq!(
            decide(v(false, false, None)),
            Decision::Refuse("email_not_verified")
        );
        assert_eq!(decide(v(false, true, Some(true))), Decision::LinkByEmail);
        assert_eq!(
            decide(v(false, true, Some(false))),
            Decision::Refuse("account_not_verified")
        );
        assert_eq!(decide(v(false, true, None)), Decision::SignUp);
    }
}
