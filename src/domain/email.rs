//! A validated email address in one canonical form: Unicode-normalised (NFKC), without invisible characters or a mixed-script local part, and carrying the key uniqueness is decided on (case-folded local part, IDNA ASCII domain).

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_security::MixedScript;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("is empty")]
    Empty,
    #[error("is longer than 320 characters")]
    TooLong,
    #[error("is not a valid email address")]
    Invalid,
    #[error("contains invisible characters")]
    Invisible,
    #[error("mixes letters of several scripts before the @")]
    MixedScript,
}

impl EmailError {
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "required",
            EmailError::TooLong => "too_long",
            EmailError::Invalid => "invalid_email",
            EmailError::Invisible => "invisible_characters",
            EmailError::MixedScript => "mixed_script",
        }
    }
}

/// An email as stored and mailed to (trimmed, NFKC; the case as given) plus its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    given: String,
    key: String,
}

/// Characters that render as nothing (Unicode's default-ignorable code points, and the
/// bidirectional controls): an address holding one looks like another that does not.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().any(invisible) {
            return Err(EmailError::Invisible);
        }
        // Compatibility forms (fullwidth letters, the Kelvin sign, ligatures) become the
        // characters they stand for, so each address has one spelling.
        let given: String = trimmed.nfkc().collect();
        if given.chars().count() > 320 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = given.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"@<>()[]\\,;:\"".contains(c));
        if !local_ok {
            return Err(EmailError::Invalid);
        }
        if !local.is_single_script() {
            return Err(EmailError::MixedScript);
        }
        let ascii_domain = idna::domain_to_ascii(domain).map_err(|_| EmailError::Invalid)?;
        let domain_ok = ascii_domain.len() <= 253
            && ascii_domain.contains('.')
            && ascii_domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !domain_ok {
            return Err(EmailError::Invalid);
        }
        let folded: String = caseless::default_case_fold_str(local).nfkc().collect();
        let key = format!("{folded}@{ascii_domain}");
        Ok(Self { given, key })
    }

    /// As stored and mailed to: trimmed and NFKC-normalised, in the case it was given.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    /// What uniqueness and look-ups use: the local part case-folded, the domain in IDNA ASCII.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_folds_the_key_only() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(e.key(), "ada.lovelace@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a@b..com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@b.com-",
            "a@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(320));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn accepts_common_forms() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x_y-z@exa-mple.io",
            "ünï@bücher.de",
            "админ@пример.рф",
            "用户@例子.中国",
            "ユーザー名@example.jp",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} refused");
        }
    }

    /// Addresses that look alike or say the same thing share one key, or are refused.
    #[test]
    fn one_key_per_address() {
        let key = |s: &str| Email::parse(s).map(|e| e.key().to_string());
        let ascii = key("kase@example.com").unwrap();
        for same in [
            "KASE@EXAMPLE.COM",
            "\u{212A}ase@example.com",         // Kelvin sign
            "ｋａｓｅ@ｅｘａｍｐｌｅ．ｃｏｍ", // fullwidth
            "kase@EXAMPLE.com",
        ] {
            assert_eq!(key(same).as_deref(), Ok(ascii.as_str()), "{same:?}");
        }
        assert_eq!(
            Email::parse("\u{212A}ase@example.com").unwrap().as_str(),
            "Kase@example.com",
            "stored in its normal form"
        );
        assert_eq!(key("strasse@example.com"), key("STRASSE@example.com"));
        assert_eq!(
            key("straße@example.com"),
            key("STRASSE@example.com"),
            "case folding"
        );
        assert_eq!(
            key("ünï@bücher.de").unwrap(),
            "ünï@xn--bcher-kva.de",
            "IDNA for the domain"
        );
        assert_eq!(key("ünï@BÜCHER.de"), key("ünï@xn--bcher-kva.de"));
        // Composed and decomposed ü are one address.
        assert_eq!(
            key("u\u{0308}ni@example.com"),
            key("\u{00FC}ni@example.com")
        );
    }

    #[test]
    fn refuses_invisible_and_mixed_script_local_parts() {
        for (bad, err) in [
            ("ka\u{200B}se@example.com", EmailError::Invisible),
            ("kase\u{2060}@example.com", EmailError::Invisible),
            ("\u{FEFF}kase@example.com", EmailError::Invisible),
            ("kase@exam\u{200D}ple.com", EmailError::Invisible),
            ("k\u{0430}se@example.com", EmailError::MixedScript), // Cyrillic а among Latin
            ("p\u{0430}yp\u{0430}l@example.com", EmailError::MixedScript),
            ("αdmin@example.com", EmailError::MixedScript), // Greek alpha among Latin
        ] {
            assert_eq!(Email::parse(bad), Err(err.clone()), "{bad:?}");
            assert_eq!(Email::parse(bad).unwrap_err().code(), err.code());
        }
    }
}
