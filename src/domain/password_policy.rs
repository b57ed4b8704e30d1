//! The password policy (length, character classes, not the email), one `Violation` per broken rule so clients can show them all.

pub use super::Violation;

/// The configured rules.
#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    pub require_classes: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 128,
            require_classes: true,
        }
    }
}

impl PasswordPolicy {
    /// Every rule `password` breaks (empty when it is acceptable).
    pub fn check(&self, password: &str, email: Option<&str>) -> Vec<Violation> {
        let mut out = Vec::new();
        let len = password.chars().count();
        let mut push = |code: &'static str, message: String| out.push(Violation { code, message });
        if len < self.min_length {
            push(
                "too_short",
                format!("must be at least {} characters", self.min_length),
            );
        }
        if len > self.max_length {
            push(
                "too_long",
                format!("must be at most {} characters", self.max_length),
            );
        }
        if self.require_classes {
            if !password.chars().any(char::is_lowercase) {
                push(
                    "missing_lowercase",
                    "must contain a lower-case letter".into(),
                );
            }
            if !password.chars().any(char::is_uppercase) {
                push(
                    "missing_uppercase",
                    "must contain an upper-case letter".into(),
                );
            }
            if !password.chars().any(|c| c.is_ascii_digit()) {
                push("missing_digit", "must contain a digit".into());
            }
            if !password
                .chars()
                .any(|c| !c.is_alphanumeric() && !c.is_whitespace())
            {
                push("missing_symbol", "must contain a symbol".into());
            }
        }
        // Control characters cannot be typed the same way twice, and break logs and terminals.
        if password.chars().any(char::is_control) {
            push(
                "invalid_characters",
                "must not contain control characters".into(),
            );
        }
        if let Some(email) = email
            && password.trim().eq_ignore_ascii_case(email.trim())
        {
            push("equals_email", "must not be the email address".into());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(p: &str, email: Option<&str>) -> Vec<&'static str> {
        PasswordPolicy::default()
            .check(p, email)
            .into_iter()
            .map(|v| v.code)
            .collect()
    }

    #[test]
    fn a_strong_password_passes() {
        assert!(codes("Correct-Horse9", Some("a@b.co")).is_empty());
    }

    #[test]
    fn each_broken_rule_is_reported_once() {
        assert_eq!(
            codes("abc", None),
            [
                "too_short",
                "missing_uppercase",
                "missing_digit",
                "missing_symbol"
            ]
        );
        assert_eq!(codes("ABCDEFGH1!", None), ["missing_lowercase"]);
        assert_eq!(
            codes(&format!("Aa1!{}", "x".repeat(125)), None),
            ["too_long"]
        );
        assert_eq!(
            codes("Ada@Example.com1", Some("ada@example.com1")),
            ["equals_email"]
        );
        for bad in [
            "Correct-Horse9\0",
            "Correct\nHorse9!",
            "Correct\u{7f}Horse9!",
            "Tab\tHorse9!",
        ] {
            assert_eq!(codes(bad, None), ["invalid_characters"], "{bad:?}");
        }
    }

    #[test]
    fn classes_can_be_switched_off_and_length_tuned() {
        let p = PasswordPolicy {
            min_length: 12,
            max_length: 128,
            require_classes: false,
        };
        let c: Vec<_> = p
            .check("alllowercase", None)
            .into_iter()
            .map(|v| v.code)
            .collect();
        assert!(c.is_empty());
        let c: Vec<_> = p.check("short", None).into_iter().map(|v| v.code).collect();
        assert_eq!(c, ["too_short"]);
    }
}
