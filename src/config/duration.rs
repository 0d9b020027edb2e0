//! Go `time.Duration` text: [`parse`] reads `time.ParseDuration` syntax (`300ms`,
//! `1h30m`, `5m0s`, `1.5h`, `-1s`, `0`) and [`format()`] writes `Duration.String` style
//! (`5m0s`, `1h30m0s`, `1.5ms`). Values are [`jiff::SignedDuration`] limited to Go's
//! range (a signed 64-bit count of nanoseconds); fractions are computed exactly as Go
//! does, so text written by either program reads back to the same value.

use jiff::SignedDuration;
use thiserror::Error;

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// Not Go duration syntax (empty, a bare number such as `60`, stray characters).
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit.
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// More than Go's 2^63-1 nanoseconds (about 292 years).
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const MAX_MAGNITUDE: u64 = 1 << 63;

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "µs" | "μs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SECOND,
        "m" => 60 * NANOS_PER_SECOND,
        "h" => 3600 * NANOS_PER_SECOND,
        _ => return None,
    })
}

/// Parses Go duration syntax: `[-+]?([0-9]*(\.[0-9]*)?unit)+` or a lone `0`.
pub fn parse(text: &str) -> Result<SignedDuration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let (nanos, after) = parse_component(rest, text)?;
        total = total
            .checked_add(nanos)
            .filter(|t| *t <= MAX_MAGNITUDE)
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = after;
    }
    signed_nanos(total, negative).ok_or_else(|| DurationError::Overflow(text.to_string()))
}

fn signed_nanos(magnitude: u64, negative: bool) -> Option<SignedDuration> {
    let nanos = if negative {
        0i64.checked_sub_unsigned(magnitude)?
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(SignedDuration::from_nanos(nanos))
}

/// Parses one `number unit` pair at the start of `s`; returns its nanoseconds and
/// the remaining text.
fn parse_component<'a>(s: &'a str, text: &str) -> Result<(u64, &'a str), DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let overflow = || DurationError::Overflow(text.to_string());
    if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
        return Err(invalid());
    }
    let (whole, after_whole, has_whole) = leading_int(s).ok_or_else(overflow)?;
    let (fraction, scale, rest, has_fraction) = match after_whole.strip_prefix('.') {
        Some(after_dot) => {
            let (f, scale, rest) = leading_fraction(after_dot);
            (f, scale, rest, rest.len() != after_dot.len())
        }
        None => (0, 1.0, after_whole, false),
    };
    if !has_whole && !has_fraction {
        return Err(invalid());
    }
    let unit_len = rest
        .find(|c: char| c == '.' || c.is_ascii_digit())
        .unwrap_or(rest.len());
    if unit_len == 0 {
        return Err(DurationError::MissingUnit(text.to_string()));
    }
    let unit = &rest[..unit_len];
    let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
        unit: unit.to_string(),
        text: text.to_string(),
    })?;
    let mut nanos = whole
        .checked_mul(per_unit)
        .filter(|n| *n <= MAX_MAGNITUDE)
        .ok_or_else(overflow)?;
    if fraction > 0 {
        // Go computes the fractional part in float64; do the same to agree on rounding.
        let part = (fraction as f64 * (per_unit as f64 / scale)) as u64;
        nanos = nanos
            .checked_add(part)
            .filter(|n| *n <= MAX_MAGNITUDE)
            .ok_or_else(overflow)?;
    }
    Ok((nanos, &rest[unit_len..]))
}

/// Reads leading digits; `None` on overflow. Returns the value, the rest, and whether
/// any digit was read.
fn leading_int(s: &str) -> Option<(u64, &str, bool)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    for b in s[..digits].bytes() {
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if value > MAX_MAGNITUDE {
            return None;
        }
    }
    Some((value, &s[digits..], digits > 0))
}

/// Reads fraction digits as Go does: digits past what fits are consumed but ignored.
/// Returns the value, its scale (10^digits used) and the rest.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let mut value: u64 = 0;
    let mut scale = 1.0;
    let mut overflowed = false;
    for b in s[..digits].bytes() {
        if overflowed {
            continue;
        }
        if value > (i64::MAX as u64) / 10 {
            overflowed = true;
            continue;
        }
        let next = value * 10 + u64::from(b - b'0');
        if next > i64::MAX as u64 {
            overflowed = true;
            continue;
        }
        value = next;
        scale *= 10.0;
    }
    (value, scale, &s[digits..])
}

/// Formats like Go's `Duration.String`: `0s`, `1.5ms`, `20s`, `5m0s`, `1h30m0s`,
/// `-1s`. Values beyond Go's range are written the same way with larger numbers.
pub fn format(duration: SignedDuration) -> String {
    let nanos = duration.as_nanos();
    let magnitude = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if magnitude == 0 {
        return "0s".to_string();
    }
    let body = if magnitude < u128::from(NANOS_PER_SECOND) {
        format_sub_second(magnitude)
    } else {
        format_seconds_and_up(magnitude)
    };
    format!("{sign}{body}")
}

/// A duration in Go's notation without the zero tails, for messages: `5m`, `1h30m`,
/// `90s` → `1m30s`, `3601s` → `1h0m1s`.
pub fn format_short(duration: std::time::Duration) -> String {
    let Ok(signed) = SignedDuration::try_from(duration) else {
        return format!("{}s", duration.as_secs());
    };
    let mut text = format(signed);
    if text.ends_with("m0s") {
        text.truncate(text.len() - 2);
    }
    if text.ends_with("h0m") {
        text.truncate(text.len() - 2);
    }
    text
}

fn format_sub_second(nanos: u128) -> String {
    let (precision, unit) = match nanos {
        0..1_000 => (0, "ns"),
        1_000..1_000_000 => (3, "µs"),
        _ => (6, "ms"),
    };
    format!("{}{unit}", decimal(nanos, precision))
}

fn format_seconds_and_up(nanos: u128) -> String {
    let seconds = decimal(nanos % (60 * u128::from(NANOS_PER_SECOND)), 9);
    let minutes = nanos / (60 * u128::from(NANOS_PER_SECOND));
    match (minutes / 60, minutes % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / 10^precision` with the fraction's trailing zeros (and a bare `.`) dropped.
fn decimal(value: u128, precision: u32) -> String {
    let scale = 10u128.pow(precision);
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(n: i64) -> SignedDuration {
        SignedDuration::from_nanos(n)
    }

    #[test]
    fn parses_go_syntax() {
        let second = 1_000_000_000i64;
        let cases = [
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("0s", 0),
            ("300ms", 300_000_000),
            ("30s", 30 * second),
            ("1m", 60 * second),
            ("1h30m", 5400 * second),
            ("5m0s", 300 * second),
            ("2h45m0s", 9900 * second),
            ("1.5h", 5400 * second),
            ("-1s", -second),
            ("+2s", 2 * second),
            (".5s", second / 2),
            ("5.s", 5 * second),
            ("1.000000001s", second + 1),
            ("1.0000000001s", second),
            ("10ns", 10),
            ("11us", 11_000),
            ("12µs", 12_000),
            ("12μs", 12_000),
            ("1h1m1s1ms1us1ns", 3_661_001_001_001),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", 360 * second),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Ok(nanos(want)), "{text}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for text in [
            "", "60", "-", "+", "s", ".s", "1", "1.5", "3x", "1d", "1 s", " 1s", "1s ", "1hh",
            "-.", "1e3s", "1,5s",
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
        assert!(matches!(parse("60"), Err(DurationError::MissingUnit(_))));
        assert!(matches!(
            parse("1d"),
            Err(DurationError::UnknownUnit { .. })
        ));
    }

    #[test]
    fn refuses_overflow() {
        for text in [
            "9223372036854775808ns",
            "3000000h",
            "99999999999999999999s",
            "2562048h",
        ] {
            assert!(
                matches!(parse(text), Err(DurationError::Overflow(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn formats_like_go() {
        let second = 1_000_000_000i64;
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (300_000_000, "300ms"),
            (second, "1s"),
            (20 * second, "20s"),
            (300 * second, "5m0s"),
            (5400 * second, "1h30m0s"),
            (3_661_001_001_001, "1h1m1.001001001s"),
            (-second, "-1s"),
            (-1_500_000, "-1.5ms"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (n, want) in cases {
            assert_eq!(format(nanos(n)), want, "{n}");
        }
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_round_trips(n in proptest::num::i64::ANY) {
            let d = nanos(n);
            proptest::prop_assert_eq!(parse(&format(d)), Ok(d));
        }

        #[test]
        fn parse_never_panics(text in "[-+0-9.a-zµ]{0,24}") {
            let _ = parse(&text);
        }
    }
}
