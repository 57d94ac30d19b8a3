//! Durations written the way people say them: `"5s"`, `"500ms"`, `"2m"`, `"1h"`.
//!
//! The older sections spell the unit in the key (`hunt_timeout_s = 60`); the media
//! sections (`media_timeout`, a menu node's `timeout`, extension dialling's
//! `inter_digit_timeout`) take a string with its unit, so that "30s" and "1m" read as
//! what they are. The value stays a string through the structural pass ([`RawDuration`])
//! so that every malformed duration is reported with its position by validation, not
//! just the first one by serde.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};
use toml::Spanned;

use crate::diagnostics::Diagnostics;

/// The units a duration may be written in, with their length in milliseconds. Longest
/// suffix first, so that `"5ms"` is not read as `"5m"` followed by junk.
const UNITS: [(&str, u64); 5] = [
    ("min", 60_000),
    ("ms", 1),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
];

/// An example shown in messages about a malformed duration.
const EXAMPLES: &str = "e.g. \"5s\", \"500ms\", \"2m\" or \"1h\"";

/// A duration as written: a string, checked by [`validated`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawDuration(String);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = RawDuration;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    formatter,
                    "a duration with its unit in a string, {EXAMPLES}"
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(text.to_owned()))
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}

/// Parses `"<digits><unit>"` with a unit of `ms`, `s`, `m` or `min`, or `h`. No spaces,
/// signs or fractions: `"1500ms"` rather than `"1.5s"`.
pub(crate) fn parse(text: &str) -> Option<Duration> {
    let (digits, unit_millis) = UNITS
        .iter()
        .find_map(|(unit, millis)| Some((text.strip_suffix(unit)?, *millis)))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: u64 = digits.parse().ok()?;
    Some(Duration::from_millis(count.checked_mul(unit_millis)?))
}

/// The shortest way to write `duration` that [`parse`] reads back exactly: `"1h"`,
/// `"90s"`, `"1500ms"`. Sub-millisecond parts are dropped.
pub(crate) fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    let (count, unit) = match millis {
        0 => (0, "s"),
        _ if millis.is_multiple_of(3_600_000) => (millis / 3_600_000, "h"),
        _ if millis.is_multiple_of(60_000) => (millis / 60_000, "m"),
        _ if millis.is_multiple_of(1_000) => (millis / 1_000, "s"),
        _ => (millis, "ms"),
    };
    format!("{count}{unit}")
}

/// A duration setting that must lie in `range`; `default` when absent (or invalid, in
/// which case an error has been reported and the value does not matter).
pub(crate) fn validated(
    raw: Option<&Spanned<RawDuration>>,
    default: Duration,
    range: RangeInclusive<Duration>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> Duration {
    let Some(raw) = raw else {
        return default;
    };
    let text = &raw.get_ref().0;
    let bounds = || {
        format!(
            "between {} and {}",
            format(*range.start()),
            format(*range.end())
        )
    };
    let problem = match parse(text) {
        Some(duration) if range.contains(&duration) => return duration,
        Some(_) => format!("{text:?} is out of range; must be {}", bounds()),
        None => format!(
            "invalid duration {text:?}: write a whole number and a unit (ms, s, m or h), \
             {EXAMPLES}; must be {}",
            bounds()
        ),
    };
    diagnostics.report(Some(raw.span()), field(), problem);
    default
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse("2min"), Some(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("007s"), Some(Duration::from_secs(7)));
    }

    #[test]
    fn malformed() {
        for bad in [
            "",
            "5",
            "s",
            "ms",
            "1.5s",
            "-1s",
            "+1s",
            "5 s",
            " 5s",
            "5S",
            "5sec",
            "1d",
            "5s5",
            "1h30m",
            "５s",
            "99999999999999999999s",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        // Fits in u64 as a count, but not in milliseconds.
        assert_eq!(parse(&format!("{}h", u64::MAX / 1000)), None);
    }

    #[test]
    fn formatting_picks_the_largest_whole_unit() {
        assert_eq!(format(Duration::from_secs(3600)), "1h");
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    proptest::proptest! {
        /// Whatever the duration (in whole milliseconds), formatting then parsing gives
        /// it back.
        #[test]
        fn format_then_parse_round_trips(millis in 0u64..=u64::MAX / 3_600_000) {
            let duration = Duration::from_millis(millis);
            proptest::prop_assert_eq!(parse(&format(duration)), Some(duration));
        }

        /// Any count in any unit reads as count × unit.
        #[test]
        fn written_durations_parse(count in 0u64..1_000_000, unit in 0usize..UNITS.len()) {
            let (suffix, millis) = UNITS[unit];
            proptest::prop_assert_eq!(
                parse(&format!("{count}{suffix}")),
                Some(Duration::from_millis(count * millis))
            );
        }
    }
}
