//! Small checks shared by the sections: bounded integers, names, digit strings, SIP
//! URIs. Each reports to [`Diagnostics`] and returns a value to carry on with, so one bad
//! setting never hides the next.

use std::ops::RangeInclusive;
use std::time::Duration;

use sihai_sip::Uri;
use toml::Spanned;

use crate::diagnostics::Diagnostics;

/// An integer setting that must lie in `range`; `default` when absent (or invalid, in
/// which case an error has been reported and the value does not matter).
pub(crate) fn bounded(
    raw: Option<&Spanned<u64>>,
    default: u64,
    range: RangeInclusive<u64>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> u64 {
    let Some(raw) = raw else {
        return default;
    };
    let value = *raw.get_ref();
    if range.contains(&value) {
        return value;
    }
    diagnostics.report(
        Some(raw.span()),
        field(),
        format!(
            "{value} is out of range; must be between {} and {}",
            range.start(),
            range.end()
        ),
    );
    default
}

/// [`bounded`] for a setting that fits in a `u32` (every bound used here does).
pub(crate) fn bounded_u32(
    raw: Option<&Spanned<u64>>,
    default: u32,
    range: RangeInclusive<u32>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> u32 {
    let range = u64::from(*range.start())..=u64::from(*range.end());
    let value = bounded(raw, u64::from(default), range, field, diagnostics);
    u32::try_from(value).unwrap_or(default)
}

/// [`bounded`] in seconds.
pub(crate) fn seconds(
    raw: Option<&Spanned<u64>>,
    default: u64,
    range: RangeInclusive<u64>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> Duration {
    Duration::from_secs(bounded(raw, default, range, field, diagnostics))
}

/// [`bounded`] in milliseconds.
pub(crate) fn millis(
    raw: Option<&Spanned<u64>>,
    default: u64,
    range: RangeInclusive<u64>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) -> Duration {
    Duration::from_millis(bounded(raw, default, range, field, diagnostics))
}

/// A name other entries refer to (a trunk, plan, group or schedule name; an enterprise's
/// display name): not empty, no control characters, no white space at either end (which
/// would make `"sales "` and `"sales"` two different names that look the same).
pub(crate) fn name(
    raw: &Spanned<String>,
    field: impl FnOnce() -> String,
    diagnostics: &mut Diagnostics,
) {
    let text = raw.get_ref();
    let problem = if text.trim().is_empty() {
        "must not be empty"
    } else if text.chars().any(char::is_control) {
        "must not contain control characters"
    } else if text.trim() != text {
        "must not start or end with white space"
    } else {
        return;
    };
    diagnostics.report(Some(raw.span()), field(), problem);
}

/// ASCII digits only, between `lengths` long.
pub(crate) fn is_digits(text: &str, lengths: RangeInclusive<usize>) -> bool {
    lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

/// Why `text` is not a `sip:` or `sips:` URI, if it is not one.
pub(crate) fn sip_uri_problem(text: &str) -> Option<String> {
    match Uri::parse(text) {
        Ok(uri) if uri.is_sip() => None,
        Ok(_) => Some("must be a sip: or sips: URI".to_owned()),
        Err(error) => Some(error.to_string()),
    }
}

/// Field path of an entry of a top-level array: `group[2]`.
pub(crate) fn entry_field(section: &str, index: usize) -> String {
    format!("{section}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_lengths() {
        assert!(is_digits("13900000001", 5..=20));
        assert!(!is_digits("1390", 5..=20));
        assert!(!is_digits("139-0000-0001", 5..=20));
        assert!(!is_digits("", 1..=20));
        assert!(
            !is_digits("１２３４５", 5..=20),
            "full-width digits are not ASCII"
        );
    }

    #[test]
    fn sip_uris() {
        assert_eq!(sip_uri_problem("sip:1001@127.0.0.1:5090"), None);
        assert_eq!(sip_uri_problem("sips:a@example.com"), None);
        assert!(sip_uri_problem("tel:+8613900000001").is_some());
        assert!(sip_uri_problem("http://example.com/").is_some());
        assert!(sip_uri_problem("sip:").is_some());
        assert!(sip_uri_problem("1001@127.0.0.1").is_some());
    }
}
