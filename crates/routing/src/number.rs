//! Number normalisation: the many ways a carrier writes the dialled 400 number and the
//! caller's number, reduced to one canonical form so that lookups, lists and CDRs agree.
//!
//! 400 numbers: `4001234567`, `+864001234567`, `864001234567`, `004001234567`,
//! `400-123-4567` (dashes, spaces, dots and parentheses are ignored) → `4001234567`.
//! Callers: mobiles → 11 digits starting with `1`; landlines → `0` + area code +
//! subscriber; no number, `anonymous` and friends → [`Caller::Anonymous`].

/// A 400 number in canonical form: 10 digits, starting `400`.
pub fn normalise_400(raw: &str) -> Option<String> {
    let digits = visible_digits(raw)?;
    // `00` + the number without a country code, as some switches write it.
    let digits = match digits.strip_prefix("00") {
        Some(rest) if rest.len() == 10 && rest.starts_with("400") => rest.to_string(),
        _ => strip_country(&digits)?,
    };
    (digits.len() == 10 && digits.starts_with("400")).then_some(digits)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// 11 digits starting with 1.
    Mobile(String),
    /// Leading 0, area code, subscriber number.
    Landline(String),
    /// Withheld or absent.
    Anonymous,
    /// Something else (a short code, a foreign number): kept as digits.
    Other(String),
}

impl Caller {
    /// The canonical text used in lists and CDRs.
    pub fn as_str(&self) -> &str {
        match self {
            Caller::Mobile(n) | Caller::Landline(n) | Caller::Other(n) => n,
            Caller::Anonymous => "anonymous",
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Caller::Anonymous)
    }

    /// The number a region lookup understands, if any.
    pub fn national(&self) -> Option<&str> {
        match self {
            Caller::Mobile(n) | Caller::Landline(n) => Some(n),
            _ => None,
        }
    }
}

/// Normalises the user part of the caller's identity (From, or P-Asserted-Identity).
pub fn normalise_caller(raw: &str) -> Caller {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || [
            "anonymous",
            "unknown",
            "restricted",
            "unavailable",
            "private",
        ]
        .iter()
        .any(|a| trimmed.eq_ignore_ascii_case(a))
    {
        return Caller::Anonymous;
    }
    let Some(digits) = visible_digits(trimmed) else {
        return Caller::Other(trimmed.to_string());
    };
    let international = trimmed.starts_with('+') || digits.starts_with("0086");
    let national = if international {
        match strip_country(&digits) {
            Some(n) => n,
            None => return Caller::Other(digits),
        }
    } else if digits.len() == 13 && digits.starts_with("861") {
        // 86 + mobile without a plus sign, as some trunks send it.
        digits[2..].to_string()
    } else {
        digits
    };
    classify_national(national, international)
}

fn classify_national(national: String, international: bool) -> Caller {
    if national.len() == 11 && national.starts_with('1') {
        return Caller::Mobile(national);
    }
    // A mobile dialled with a trunk prefix 0 from another area: 0 + 11 digits.
    if national.len() == 12
        && national.starts_with("01")
        && national.as_bytes()[2] != b'0'
        && !national.starts_with("010")
    {
        return Caller::Mobile(national[1..].to_string());
    }
    if international && !national.starts_with('0') && national.len() >= 9 {
        // +86 10 12345678: the international form drops the trunk prefix.
        return Caller::Landline(format!("0{national}"));
    }
    if national.starts_with('0')
        && !national.starts_with("00")
        && (10..=12).contains(&national.len())
    {
        return Caller::Landline(national);
    }
    Caller::Other(national)
}

/// The digits of a number written with separators (`-`, space, `.`, `(`, `)`) and an
/// optional leading `+`; `None` if anything else is in it.
fn visible_digits(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let body = raw.strip_prefix('+').unwrap_or(raw);
    let mut digits = String::with_capacity(body.len() + 2);
    if raw.starts_with('+') {
        digits.push_str("00");
    }
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | ' ' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some(digits)
}

/// Removes a `0086` / `86` country code where the rest is a Chinese national number.
fn strip_country(digits: &str) -> Option<String> {
    if let Some(rest) = digits.strip_prefix("0086") {
        return Some(rest.to_string());
    }
    if digits.starts_with("00") {
        // Another country's international prefix.
        return None;
    }
    if let Some(rest) = digits.strip_prefix("86")
        && (rest.len() == 10 && rest.starts_with("400")
            || rest.len() == 11 && rest.starts_with('1'))
    {
        return Some(rest.to_string());
    }
    Some(digits.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_hundred_numbers() {
        for raw in [
            "4001234567",
            "+864001234567",
            "864001234567",
            "004001234567",
            "400-123-4567",
            " 400 123 4567 ",
            "+86 400-123-4567",
        ] {
            assert_eq!(normalise_400(raw).as_deref(), Some("4001234567"), "{raw}");
        }
        for raw in [
            "",
            "400123456",
            "40012345678",
            "8001234567",
            "+14001234567",
            "400-12a-4567",
            "abc",
            "+",
            "0014001234567",
        ] {
            assert_eq!(normalise_400(raw), None, "{raw}");
        }
    }

    #[test]
    fn callers() {
        let mobile = Caller::Mobile("13800138000".into());
        for raw in [
            "13800138000",
            "+8613800138000",
            "8613800138000",
            "008613800138000",
            "138-0013-8000",
            "013800138000",
        ] {
            assert_eq!(normalise_caller(raw), mobile, "{raw}");
        }
        assert_eq!(
            normalise_caller("02112345678"),
            Caller::Landline("02112345678".into())
        );
        assert_eq!(
            normalise_caller("+862112345678"),
            Caller::Landline("02112345678".into())
        );
        assert_eq!(
            normalise_caller("+861012345678"),
            Caller::Landline("01012345678".into())
        );
        assert_eq!(
            normalise_caller("010-12345678"),
            Caller::Landline("01012345678".into())
        );
        assert_eq!(
            normalise_caller("075512345678"),
            Caller::Landline("075512345678".into())
        );
        for raw in ["", "anonymous", "Anonymous", "unknown"] {
            assert_eq!(normalise_caller(raw), Caller::Anonymous, "{raw}");
        }
        assert_eq!(normalise_caller("10086"), Caller::Other("10086".into()));
        assert_eq!(normalise_caller("alice"), Caller::Other("alice".into()));
        assert_eq!(
            normalise_caller("+12025550123"),
            Caller::Other("0012025550123".into())
        );
    }
}
