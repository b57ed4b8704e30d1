//! What an account's owner may write about it: a display name and a metadata object, parsed once into types that are valid by construction.

use super::Violation;

/// A display name: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX_CHARS: usize = 200;

    /// `Ok(None)` for no name (absent, empty or blank), the name, or the rule it breaks.
    pub fn parse(raw: Option<&str>) -> Result<Option<DisplayName>, Violation> {
        let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        if name.chars().count() > Self::MAX_CHARS {
            return Err(Violation::new(
                "too_long",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(Violation::new(
                "invalid_characters",
                "must not contain control characters",
            ));
        }
        Ok(Some(DisplayName(name.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Text a caller searches or filters by (`q`, a role or event name): any length the query
/// allows, no control characters (a NUL would match everything on some backends).
pub fn search_text(raw: &str) -> Result<&str, Violation> {
    if raw.chars().any(char::is_control) {
        return Err(Violation::new(
            "invalid_characters",
            "must not contain control characters",
        ));
    }
    Ok(raw)
}

/// Account metadata: a JSON object that every backend stores the same (no NUL anywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata(serde_json::Value);

impl Metadata {
    pub fn parse(value: serde_json::Value) -> Result<Metadata, Violation> {
        if !value.is_object() {
            return Err(Violation::new("not_an_object", "must be a JSON object"));
        }
        if holds_nul(&value) {
            return Err(Violation::new(
                "invalid_characters",
                "must not contain NUL characters",
            ));
        }
        Ok(Metadata(value))
    }

    pub fn into_value(self) -> serde_json::Value {
        self.0
    }
}

/// Whether any key or string in `value` holds a NUL, which PostgreSQL's JSON refuses.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_trimmed_and_blank_means_none() {
        assert_eq!(DisplayName::parse(None), Ok(None));
        assert_eq!(DisplayName::parse(Some("   ")), Ok(None));
        let name = DisplayName::parse(Some("  Ada Lovelace "))
            .unwrap()
            .unwrap();
        assert_eq!(name.as_str(), "Ada Lovelace");
    }

    #[test]
    fn names_are_bounded_and_printable() {
        let long = "é".repeat(201);
        assert_eq!(
            DisplayName::parse(Some(&long)).unwrap_err().code,
            "too_long"
        );
        assert!(
            DisplayName::parse(Some(&"é".repeat(200)))
                .unwrap()
                .is_some()
        );
        for bad in ["a\u{0}b", "a\nb", "tab\there", "\u{7f}x"] {
            assert_eq!(
                DisplayName::parse(Some(bad)).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn search_text_has_no_control_characters() {
        assert_eq!(search_text("ada lovelace"), Ok("ada lovelace"));
        for bad in ["\0", "a\u{1}", "x\ny"] {
            assert_eq!(search_text(bad).unwrap_err().code, "invalid_characters");
        }
    }

    #[test]
    fn metadata_is_an_object_without_nul() {
        assert!(Metadata::parse(json!({"plan": "pro", "n": [1, {"x": null}]})).is_ok());
        assert_eq!(
            Metadata::parse(json!([1])).unwrap_err().code,
            "not_an_object"
        );
        assert_eq!(
            Metadata::parse(json!("x")).unwrap_err().code,
            "not_an_object"
        );
        for bad in [
            json!({"a\u{0}": 1}),
            json!({"a": ["x\u{0}"]}),
            json!({"a": {"b": "\u{0}"}}),
        ] {
            assert_eq!(Metadata::parse(bad).unwrap_err().code, "invalid_characters");
        }
    }
}
