//! The messages Gatehouse sends, as plain text and HTML, with links built from `GATEHOUSE_PUBLIC_URL`.

use super::Mail;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn link(public_url: &str, path: &str, token: &str) -> String {
    format!("{}/{path}?token={token}", public_url.trim_end_matches('/'))
}

fn mail(to: &str, subject: &str, intro: &str, action: &str, url: &str, outro: &str) -> Mail {
    Mail {
        to: to.to_string(),
        subject: subject.to_string(),
        text: format!("Hello,\r\n\r\n{intro}\r\n\r\n{url}\r\n\r\n{outro}\r\n\r\n-- Gatehouse\r\n"),
        html: format!(
            "<!doctype html><html><body style=\"font-family:sans-serif\">\
             <p>Hello,</p><p>{}</p><p><a href=\"{}\">{}</a></p><p>{}</p><p>&mdash; Gatehouse</p>\
             </body></html>",
            escape(intro),
            escape(url),
            escape(action),
            escape(outro)
        ),
    }
}

/// The link that confirms an email address.
pub fn verify_email(public_url: &str, to: &str, token: &str) -> Mail {
    mail(
        to,
        "Confirm your email address",
        "Please confirm your email address by opening this link:",
        "Confirm my email address",
        &link(public_url, "verify-email", token),
        "The link works once and expires in 24 hours. If you did not create an account, ignore this message.",
    )
}

/// The link that sets a new password.
pub fn password_reset(public_url: &str, to: &str, token: &str) -> Mail {
    mail(
        to,
        "Reset your password",
        "Someone asked to reset the password of your account. To choose a new one, open this link:",
        "Choose a new password",
        &link(public_url, "reset-password", token),
        "The link works once and expires in 1 hour. If you did not ask for this, ignore this message; your password stays as it is.",
    )
}

/// Someone tried to register an address that already has an account (sent instead of telling
/// the registering client, when `AUTH_REGISTER_CONCEAL_EXISTING` is on).
pub fn account_exists(public_url: &str, to: &str) -> Mail {
    mail(
        to,
        "You already have an account",
        "Someone tried to create an account with this email address, which already has one. If that was you, sign in, or choose a new password if you forgot it:",
        "Sign in",
        public_url.trim_end_matches('/'),
        "If it was not you, ignore this message; nothing has changed.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_come_from_the_public_url_and_html_is_escaped() {
        let m = verify_email("https://id.example.com/", "a@example.com", "tok_123");
        assert!(
            m.text
                .contains("https://id.example.com/verify-email?token=tok_123")
        );
        assert!(
            m.html
                .contains("href=\"https://id.example.com/verify-email?token=tok_123\"")
        );
        let m = password_reset("https://x.example/<b>", "a@example.com", "t");
        assert!(m.html.contains("&lt;b&gt;") && !m.html.contains("<b>"));
    }
}
