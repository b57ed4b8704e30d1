//! Rules of metered usage and billing: exact money in micro-units, the names a usage event may carry, billing periods, a billing record's status moves, and what an integration key shows of itself.

use chrono::{DateTime, TimeZone, Utc};

use super::Violation;

/// Millionths of the currency unit per unit.
const MICROS_PER_UNIT: i64 = 1_000_000;

/// An amount of money in millionths of the currency unit: exact, never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Micros(pub i64);

impl Micros {
    /// The largest cost one usage event may carry (one million units), so that sums of any
    /// realistic number of events stay far inside 64 bits.
    pub const MAX_EVENT: Micros = Micros(1_000_000 * MICROS_PER_UNIT);

    /// A non-negative decimal string with at most six decimals (`"0.001234"`, `"12"`), as the
    /// API takes money; never through a float.
    pub fn parse(raw: &str) -> Result<Micros, Violation> {
        let invalid = || {
            Violation::new(
                "invalid_amount",
                "must be a non-negative decimal string with at most 6 decimals, such as \"0.0125\"",
            )
        };
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || raw.ends_with('.') {
            return Err(invalid());
        }
        if fraction.len() > 6 {
            return Err(Violation::new(
                "too_precise",
                "at most 6 decimals (millionths of the currency unit)",
            ));
        }
        let whole: i64 = whole.parse().map_err(|_| Micros::too_large())?;
        let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| invalid())?;
        let micros = whole
            .checked_mul(MICROS_PER_UNIT)
            .and_then(|w| w.checked_add(fraction))
            .ok_or_else(Micros::too_large)?;
        Micros::event(micros)
    }

    /// A usage event's cost given in micro-units: non-negative and at most [`Self::MAX_EVENT`].
    pub fn event(micros: i64) -> Result<Micros, Violation> {
        if micros < 0 {
            return Err(Violation::new("negative", "must not be negative"));
        }
        if micros > Self::MAX_EVENT.0 {
            return Err(Micros::too_large());
        }
        Ok(Micros(micros))
    }

    fn too_large() -> Violation {
        Violation::new(
            "too_large",
            format!(
                "must be at most {} per event",
                Micros::MAX_EVENT.to_decimal()
            ),
        )
    }

    /// The amount as a decimal string with six decimals (`"0.001234"`), as the API shows money.
    pub fn to_decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let unit = MICROS_PER_UNIT as u64;
        format!("{sign}{}.{:06}", abs / unit, abs % unit)
    }
}

/// The largest token count one usage event may carry.
pub const MAX_EVENT_TOKENS: i64 = 1_000_000_000_000;

/// A usage event's token count: non-negative and bounded.
pub fn tokens(count: i64) -> Result<i64, Violation> {
    if count < 0 {
        return Err(Violation::new("negative", "must not be negative"));
    }
    if count > MAX_EVENT_TOKENS {
        return Err(Violation::new(
            "too_large",
            format!("must be at most {MAX_EVENT_TOKENS}"),
        ));
    }
    Ok(count)
}

/// A machine name (service, model, request type): 1 to `max` characters of letters, digits and
/// `. _ - : /` (model names such as `gpt-4o-mini` or `meta/llama-3:70b`), so reports group them
/// the same on every backend.
pub fn name(raw: &str, max: usize) -> Result<String, Violation> {
    if raw.is_empty() || raw.chars().count() > max {
        return Err(Violation::new(
            "invalid_length",
            format!("must be 1 to {max} characters"),
        ));
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'))
    {
        return Err(Violation::new(
            "invalid_characters",
            "only letters, digits and . _ - : / are allowed",
        ));
    }
    Ok(raw.to_string())
}

/// The longest `Idempotency-Key` taken (a batch's events are stored under `<key>#<index>`).
pub const MAX_IDEMPOTENCY_KEY: usize = 100;

/// An `Idempotency-Key` header: 1 to 100 visible ASCII characters (a UUID is typical).
pub fn idempotency_key(raw: &str) -> Result<&str, Violation> {
    if raw.is_empty()
        || raw.len() > MAX_IDEMPOTENCY_KEY
        || !raw.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Violation::new(
            "invalid_idempotency_key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        ));
    }
    Ok(raw)
}

/// Earliest instant a usage event or billing period may name.
pub fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Latest instant a usage event or billing period may name (the end of year 9999, which every
/// backend stores).
pub fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// An instant a caller chose, within what every backend stores.
pub fn instant(at: DateTime<Utc>) -> Result<DateTime<Utc>, Violation> {
    if at < earliest() || at > latest() {
        return Err(Violation::new(
            "out_of_range",
            "must lie between 2000-01-01 and 9999-12-31",
        ));
    }
    Ok(chrono::SubsecRound::trunc_subsecs(at, 6))
}

/// A billing period `[start, end)`: start before end, both within [`instant`]'s range.
pub fn period(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Violation> {
    let (start, end) = (instant(start)?, instant(end)?);
    if start >= end {
        return Err(Violation::new(
            "empty_period",
            "period_end must lie after period_start",
        ));
    }
    Ok((start, end))
}

/// Whether two periods `[a0, a1)` and `[b0, b1)` share an instant.
pub fn overlaps(a: (DateTime<Utc>, DateTime<Utc>), b: (DateTime<Utc>, DateTime<Utc>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Where a billing record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillingStatus {
    Pending,
    Paid,
    Void,
}

impl BillingStatus {
    pub fn name(self) -> &'static str {
        match self {
            BillingStatus::Pending => "pending",
            BillingStatus::Paid => "paid",
            BillingStatus::Void => "void",
        }
    }

    pub fn parse(raw: &str) -> Option<BillingStatus> {
        [
            BillingStatus::Pending,
            BillingStatus::Paid,
            BillingStatus::Void,
        ]
        .into_iter()
        .find(|s| s.name() == raw)
    }

    /// Whether a record may move from `self` to `to`: a pending record is paid or voided, a
    /// paid one may still be voided (a refund); nothing goes back to pending, and a void record
    /// stays void.
    pub fn may_become(self, to: BillingStatus) -> bool {
        use BillingStatus::*;
        matches!((self, to), (Pending, Paid) | (Pending, Void) | (Paid, Void))
    }
}

/// What listings show of a third-party key: `…` and its last four characters.
pub fn key_hint(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

/// A third-party API key as a user gives it: 8 to 4096 characters, no whitespace or control
/// characters (the hint then reveals at most half of it).
pub fn integration_key(raw: &str) -> Result<&str, Violation> {
    let n = raw.chars().count();
    if !(8..=4096).contains(&n) {
        return Err(Violation::new(
            "invalid_length",
            "must be 8 to 4096 characters",
        ));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Violation::new(
            "invalid_characters",
            "must not contain whitespace or control characters",
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_exactly_and_prints_back() {
        for (raw, micros) in [
            ("0", 0),
            ("0.000001", 1),
            ("0.1", 100_000),
            ("12", 12_000_000),
            ("12.345678", 12_345_678),
            ("000.5", 500_000),
            ("1000000", 1_000_000_000_000),
        ] {
            assert_eq!(Micros::parse(raw), Ok(Micros(micros)), "{raw}");
        }
        assert_eq!(Micros(12_345_678).to_decimal(), "12.345678");
        assert_eq!(Micros(1).to_decimal(), "0.000001");
        assert_eq!(Micros(-1_500_000).to_decimal(), "-1.500000");
        for raw in ["", ".5", "5.", "-1", "1e3", "0x10", " 1", "1.2.3", "١"] {
            assert_eq!(
                Micros::parse(raw).unwrap_err().code,
                "invalid_amount",
                "{raw}"
            );
        }
        assert_eq!(Micros::parse("0.0000001").unwrap_err().code, "too_precise");
        assert_eq!(
            Micros::parse("1000000.000001").unwrap_err().code,
            "too_large"
        );
        assert_eq!(
            Micros::parse("99999999999999999999999").unwrap_err().code,
            "too_large"
        );
        assert_eq!(Micros::event(-1).unwrap_err().code, "negative");
    }

    #[test]
    fn names_and_tokens_are_bounded() {
        assert_eq!(name("meta/llama-3:70b", 128).unwrap(), "meta/llama-3:70b");
        assert_eq!(name("", 64).unwrap_err().code, "invalid_length");
        assert_eq!(
            name(&"a".repeat(65), 64).unwrap_err().code,
            "invalid_length"
        );
        assert_eq!(name("a b", 64).unwrap_err().code, "invalid_characters");
        assert_eq!(name("a\0", 64).unwrap_err().code, "invalid_characters");
        assert_eq!(tokens(-1).unwrap_err().code, "negative");
        assert_eq!(tokens(MAX_EVENT_TOKENS + 1).unwrap_err().code, "too_large");
        assert_eq!(tokens(0), Ok(0));
        assert!(idempotency_key("0190-retry").is_ok());
        for bad in ["", "a b", "é", &"k".repeat(101)] {
            assert!(idempotency_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_and_instants() {
        let at = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap();
        assert!(period(at(2040), at(2041)).is_ok());
        assert_eq!(period(at(2041), at(2040)).unwrap_err().code, "empty_period");
        assert_eq!(period(at(2040), at(2040)).unwrap_err().code, "empty_period");
        assert_eq!(instant(at(1999)).unwrap_err().code, "out_of_range");
        assert!(overlaps((at(2020), at(2022)), (at(2021), at(2023))));
        assert!(!overlaps((at(2020), at(2021)), (at(2021), at(2022))));
    }

    #[test]
    fn status_moves() {
        use BillingStatus::*;
        for from in [Pending, Paid, Void] {
            assert_eq!(BillingStatus::parse(from.name()), Some(from));
            for to in [Pending, Paid, Void] {
                let allowed =
                    matches!((from, to), (Pending, Paid) | (Pending, Void) | (Paid, Void));
                assert_eq!(from.may_become(to), allowed, "{from:?} -> {to:?}");
            }
        }
        assert_eq!(BillingStatus::parse("open"), None);
    }

    #[test]
    fn hints_show_four_characters() {
        assert_eq!(key_hint("sk-live-abcd"), "…abcd");
        assert_eq!(key_hint("ключ-ключ"), "…ключ");
        assert!(integration_key("short").is_err());
        assert!(integration_key("has space inside").is_err());
        assert!(integration_key("sk-0123456789").is_ok());
    }
}
