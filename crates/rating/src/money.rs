//! Money: an exact, whole number of 1/10,000 yuan.
//!
//! Every amount in sihai is a [`Money`]: an `i64` count of 1/10,000 yuan (one hundredth
//! of a fen), fine enough that a per-second price such as ¥0.30/min (¥0.005/s, 50 units)
//! is exact. There is no float anywhere: amounts are parsed from decimal text digit by
//! digit, added with checked or saturating integer arithmetic, and shown by integer
//! division.

use std::fmt;
use std::str::FromStr;

/// An amount of money: a whole number of 1/10,000 yuan. Negative amounts are balances
/// below zero, refunds and adjustments.
///
/// There are no `+`/`-` operators, on purpose: an `i64` overflow wraps silently in a
/// release build, so every sum says what happens at the edge ([`Money::checked_add`],
/// [`Money::saturating_add`], ...).
///
/// `Display` shows yuan with two decimals, rounded half away from zero to the fen
/// (see [`Money::round_to_fen`]); [`Money::exact`] shows every decimal. `FromStr`
/// reads decimal yuan exactly (`"0.30"`, `"600"`, `"-12.5"`, at most 4 decimals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

impl Money {
    /// Units in one yuan.
    pub const UNITS_PER_YUAN: i64 = 10_000;
    /// Units in one fen (0.01 yuan), the smallest amount shown by `Display`.
    pub const UNITS_PER_FEN: i64 = 100;
    pub const ZERO: Money = Money(0);
    /// 922,337,203,685,477.5807 yuan.
    pub const MAX: Money = Money(i64::MAX);
    /// -922,337,203,685,477.5808 yuan.
    pub const MIN: Money = Money(i64::MIN);

    /// `units` 1/10,000 yuan.
    pub const fn from_units(units: i64) -> Money {
        Money(units)
    }

    /// The amount as a count of 1/10,000 yuan.
    pub const fn units(self) -> i64 {
        self.0
    }

    /// Whole yuan; `None` if out of range.
    pub const fn from_yuan(yuan: i64) -> Option<Money> {
        match yuan.checked_mul(Money::UNITS_PER_YUAN) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// Whole fen; `None` if out of range.
    pub const fn from_fen(fen: i64) -> Option<Money> {
        match fen.checked_mul(Money::UNITS_PER_FEN) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub const fn checked_add(self, other: Money) -> Option<Money> {
        match self.0.checked_add(other.0) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    pub const fn checked_sub(self, other: Money) -> Option<Money> {
        match self.0.checked_sub(other.0) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// `self × factor`, e.g. a yearly fee times a number of lines.
    pub const fn checked_mul(self, factor: i64) -> Option<Money> {
        match self.0.checked_mul(factor) {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    pub const fn checked_neg(self) -> Option<Money> {
        match self.0.checked_neg() {
            Some(units) => Some(Money(units)),
            None => None,
        }
    }

    /// Clamped to [`Money::MIN`]..=[`Money::MAX`].
    pub const fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    /// Clamped to [`Money::MIN`]..=[`Money::MAX`].
    pub const fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }

    /// Clamped to [`Money::MIN`]..=[`Money::MAX`].
    pub const fn saturating_mul(self, factor: i64) -> Money {
        Money(self.0.saturating_mul(factor))
    }

    /// The amount rounded to the fen, half away from zero (四舍五入, applied to the
    /// magnitude): ¥0.0050 → ¥0.01, ¥0.0049 → ¥0.00, -¥0.0050 → -¥0.01.
    ///
    /// Why this rule: it is the one a Chinese customer checks a statement with, and it is
    /// symmetric, so a refund shows as exactly the negation of the charge it reverses.
    /// Banker's rounding would be unbiased over many lines, but sihai never adds rounded
    /// amounts: balances, ledgers and totals are sums of exact units, rounded once when
    /// shown. Cannot overflow (the extremes of `i64` end in ...807/...808 units, which
    /// round towards zero).
    pub const fn round_to_fen(self) -> Money {
        let magnitude = self.0.unsigned_abs();
        let rest = magnitude % Money::UNITS_PER_FEN as u64;
        let down = magnitude - rest;
        let rounded = if rest >= Money::UNITS_PER_FEN as u64 / 2 {
            down + Money::UNITS_PER_FEN as u64
        } else {
            down
        };
        // `rounded` <= 9_223_372_036_854_775_800, which fits an i64.
        if self.0 < 0 {
            Money(-(rounded as i64))
        } else {
            Money(rounded as i64)
        }
    }

    /// Shows the amount with every significant decimal (at least two, at most four):
    /// `0.30`, `0.005`, `-12.3456`. Parsing it gives the same amount back.
    pub const fn exact(self) -> ExactMoney {
        ExactMoney(self)
    }
}

impl fmt::Display for Money {
    /// Yuan with two decimals, rounded half away from zero ([`Money::round_to_fen`]);
    /// never `-0.00`. Honours width and alignment (`{:>10}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fen = self.round_to_fen().0.unsigned_abs() / Money::UNITS_PER_FEN as u64;
        let mut text = StackText::new();
        let sign = if self.0 < 0 && fen != 0 { "-" } else { "" };
        fmt::write(
            &mut text,
            format_args!("{sign}{}.{:02}", fen / 100, fen % 100),
        )?;
        f.pad(text.as_str())
    }
}

/// [`Money`] shown with every significant decimal: see [`Money::exact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExactMoney(Money);

impl fmt::Display for ExactMoney {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = self.0.0;
        let magnitude = units.unsigned_abs();
        let per_yuan = Money::UNITS_PER_YUAN as u64;
        let (yuan, mut decimals) = (magnitude / per_yuan, magnitude % per_yuan);
        // Four decimals, then drop trailing zeros down to two.
        let mut digits: usize = 4;
        while digits > 2 && decimals % 10 == 0 {
            decimals /= 10;
            digits -= 1;
        }
        let sign = if units < 0 { "-" } else { "" };
        let mut text = StackText::new();
        fmt::write(&mut text, format_args!("{sign}{yuan}.{decimals:0digits$}"))?;
        f.pad(text.as_str())
    }
}

/// Why a decimal amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseMoneyError {
    #[error("empty amount: expected yuan such as `0.30`, `600` or `-12.5`")]
    Empty,
    #[error(
        "not an amount of yuan: expected digits, an optional leading `-` and an optional \
         `.` with 1 to 4 decimals, such as `0.30`, `600` or `-12.5`"
    )]
    Malformed,
    #[error("{0} decimals: amounts are exact to 1/10,000 yuan, so at most 4")]
    TooManyDecimals(usize),
    #[error("amount out of range: at most 922337203685477.5807 yuan either way")]
    OutOfRange,
}

impl FromStr for Money {
    type Err = ParseMoneyError;

    /// Decimal yuan, exactly: `600`, `0.30`, `-12.5`, `0.0050`. The grammar is
    /// `-?[0-9]+(\.[0-9]{1,4})?`: no `+`, no spaces, no `¥`, no thousands separators, no
    /// exponent, no bare `.5` or `5.`; more than four decimals is an error rather than a
    /// silent rounding.
    fn from_str(text: &str) -> Result<Money, ParseMoneyError> {
        if text.is_empty() {
            return Err(ParseMoneyError::Empty);
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (unsigned, ""),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || (unsigned.contains('.') && !all_digits(fraction)) {
            return Err(ParseMoneyError::Malformed);
        }
        if fraction.len() > 4 {
            return Err(ParseMoneyError::TooManyDecimals(fraction.len()));
        }
        // u128 holds 38 digits; longer input overflows into OutOfRange, not a panic.
        let mut magnitude: u128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(digit - b'0')))
                .ok_or(ParseMoneyError::OutOfRange)?;
        }
        for _ in fraction.len()..4 {
            magnitude = magnitude
                .checked_mul(10)
                .ok_or(ParseMoneyError::OutOfRange)?;
        }
        let signed = if negative {
            -i128::try_from(magnitude).map_err(|_| ParseMoneyError::OutOfRange)?
        } else {
            i128::try_from(magnitude).map_err(|_| ParseMoneyError::OutOfRange)?
        };
        i64::try_from(signed)
            .map(Money)
            .map_err(|_| ParseMoneyError::OutOfRange)
    }
}

/// A formatting buffer on the stack, so that `Display` can honour padding without
/// allocating. The longest text is `-922337203685477.5808` (21 bytes).
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn new() -> StackText {
        StackText {
            bytes: [0; 32],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so this is always UTF-8.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Serialized as its exact decimal yuan (`"0.30"`, `"-12.3456"`), never a JSON number:
/// a float on the other side must not be able to round it.
#[cfg(feature = "serde")]
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.exact())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Money, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        text.parse().expect(text)
    }

    #[test]
    fn parses_decimal_yuan_exactly() {
        assert_eq!(money("0.30"), Money::from_units(3_000));
        assert_eq!(money("600"), Money::from_units(6_000_000));
        assert_eq!(money("-12.5"), Money::from_units(-125_000));
        assert_eq!(money("0.0050"), Money::from_units(50));
        assert_eq!(money("0.0001"), Money::from_units(1));
        assert_eq!(money("1.65"), Money::from_units(16_500));
        assert_eq!(money("007.1"), Money::from_units(71_000));
        assert_eq!(money("-0"), Money::ZERO);
        assert_eq!(money("922337203685477.5807"), Money::MAX);
        assert_eq!(money("-922337203685477.5808"), Money::MIN);
    }

    #[test]
    fn rejects_malformed_amounts() {
        use ParseMoneyError::*;
        let cases: &[(&str, ParseMoneyError)] = &[
            ("", Empty),
            ("-", Malformed),
            ("+1", Malformed),
            (".5", Malformed),
            ("5.", Malformed),
            ("1.2.3", Malformed),
            ("1,000", Malformed),
            (" 1", Malformed),
            ("1 ", Malformed),
            ("¥1", Malformed),
            ("1e3", Malformed),
            ("--1", Malformed),
            ("0x10", Malformed),
            ("１", Malformed),
            ("0.00001", TooManyDecimals(5)),
            ("1.123456", TooManyDecimals(6)),
            ("922337203685477.5808", OutOfRange),
            ("-922337203685477.5809", OutOfRange),
            ("99999999999999999999999999999999999999999", OutOfRange),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Money>(), Err(expected.clone()), "{text:?}");
        }
        assert!(
            ParseMoneyError::TooManyDecimals(5)
                .to_string()
                .contains("at most 4")
        );
    }

    #[test]
    fn display_rounds_half_away_from_zero_to_the_fen() {
        let shown = |units: i64| Money::from_units(units).to_string();
        assert_eq!(shown(0), "0.00");
        assert_eq!(shown(3_000), "0.30");
        assert_eq!(shown(50), "0.01", "half a fen rounds up");
        assert_eq!(shown(49), "0.00");
        assert_eq!(shown(150), "0.02");
        assert_eq!(shown(-50), "-0.01", "symmetric: away from zero");
        assert_eq!(shown(-49), "0.00", "never -0.00");
        assert_eq!(shown(19_950), "2.00", "carries into the yuan");
        assert_eq!(shown(-19_950), "-2.00");
        assert_eq!(shown(874_000), "87.40");
        assert_eq!(shown(i64::MAX), "922337203685477.58");
        assert_eq!(shown(i64::MIN), "-922337203685477.58");
        assert_eq!(
            format!("{:>8}|{:<6}|", money("1.5"), money("-2")),
            "    1.50|-2.00 |"
        );
    }

    #[test]
    fn round_to_fen_is_the_display_rule() {
        assert_eq!(
            Money::from_units(12_349).round_to_fen(),
            Money::from_units(12_300)
        );
        assert_eq!(
            Money::from_units(12_350).round_to_fen(),
            Money::from_units(12_400)
        );
        assert_eq!(
            Money::from_units(-12_350).round_to_fen(),
            Money::from_units(-12_400)
        );
        assert_eq!(Money::MAX.round_to_fen(), Money::from_units(i64::MAX - 7));
        assert_eq!(Money::MIN.round_to_fen(), Money::from_units(i64::MIN + 8));
    }

    #[test]
    fn exact_display_keeps_every_decimal() {
        let exact = |units: i64| Money::from_units(units).exact().to_string();
        assert_eq!(exact(3_000), "0.30");
        assert_eq!(exact(50), "0.005");
        assert_eq!(exact(1), "0.0001");
        assert_eq!(exact(-123_456), "-12.3456");
        assert_eq!(exact(6_000_000), "600.00");
        assert_eq!(exact(i64::MIN), "-922337203685477.5808");
        assert_eq!(money(&exact(i64::MIN)), Money::MIN);
    }

    #[test]
    fn arithmetic_says_what_happens_at_the_edges() {
        let one = Money::from_units(1);
        assert_eq!(Money::MAX.checked_add(one), None);
        assert_eq!(Money::MIN.checked_sub(one), None);
        assert_eq!(Money::MAX.saturating_add(one), Money::MAX);
        assert_eq!(Money::MIN.saturating_sub(one), Money::MIN);
        assert_eq!(Money::MIN.checked_neg(), None);
        assert_eq!(money("240").checked_mul(3), Some(money("720")));
        assert_eq!(Money::MAX.checked_mul(2), None);
        assert_eq!(Money::MAX.saturating_mul(-2), Money::MIN);
        assert_eq!(Money::from_yuan(600), Some(money("600")));
        assert_eq!(Money::from_fen(165), Some(money("1.65")));
        assert_eq!(Money::from_yuan(i64::MAX), None);
    }
}
