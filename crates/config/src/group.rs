//! `[[group]]`: hunt groups, the phones an enterprise's calls ring, and in what order.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "group";

/// Phones per group.
pub const MAX_PHONES: usize = 200;
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 5..=20;
const DEFAULT_RING_TIMEOUT_S: u64 = 20;
const MAX_RING_TIMEOUT_S: u64 = 300;
const DEFAULT_CAPACITY: u32 = 1;
const MAX_CAPACITY: u32 = 1_000;
const DEFAULT_WEIGHT: u32 = 1;
const MAX_WEIGHT: u32 = 1_000;

/// How a group's phones are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HuntStrategy {
    /// In the order listed, each until its ring timeout.
    Sequential,
    /// Like sequential, but each call starts after the phone the previous call started
    /// with (remembered across calls).
    RoundRobin,
    /// One phone at a time, in random order.
    Random,
    /// All phones at once; the first to answer takes the call.
    Simultaneous,
    /// One phone at a time, chosen at random in proportion to `weight`.
    Weighted,
    /// The phone idle the longest first.
    LongestIdle,
}

/// Where a phone is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PhoneTarget {
    /// A phone number (5 to 20 digits), called through a trunk's gateway.
    Number(String),
    /// A `sip:` or `sips:` URI, called directly.
    Uri(String),
}

/// One phone of a group, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneConfig {
    pub target: PhoneTarget,
    /// How long it rings before the hunt moves on; 1 to 300 s, default 20 s.
    pub ring_timeout: Duration,
    /// Calls it can take at once (a PBX trunk may take 30); 1 to 1000, default 1.
    pub capacity: u32,
    /// Share of calls under the weighted strategy; 1 to 1000, default 1.
    pub weight: u32,
    /// A disabled phone is kept in the file but never rung; default true.
    pub enabled: bool,
}

/// One hunt group, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Unique among groups.
    pub name: String,
    /// The [`crate::Enterprise`] id it belongs to.
    pub enterprise: String,
    pub strategy: HuntStrategy,
    /// 1 to [`MAX_PHONES`] phones, at least one enabled, none twice.
    pub phones: Vec<PhoneConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawStrategy {
    Sequential,
    RoundRobin,
    Random,
    Simultaneous,
    Weighted,
    LongestIdle,
}

impl From<RawStrategy> for HuntStrategy {
    fn from(raw: RawStrategy) -> Self {
        match raw {
            RawStrategy::Sequential => HuntStrategy::Sequential,
            RawStrategy::RoundRobin => HuntStrategy::RoundRobin,
            RawStrategy::Random => HuntStrategy::Random,
            RawStrategy::Simultaneous => HuntStrategy::Simultaneous,
            RawStrategy::Weighted => HuntStrategy::Weighted,
            RawStrategy::LongestIdle => HuntStrategy::LongestIdle,
        }
    }
}

/// One `[[group]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[group]] table")]
pub(crate) struct RawGroup {
    name: Spanned<String>,
    enterprise: Spanned<String>,
    strategy: Spanned<RawStrategy>,
    phones: Option<Spanned<Vec<Spanned<RawPhone>>>>,
}

/// One phone as written: `{ number = "139...", ring_timeout_s = 20 }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a phone table, e.g. { number = \"13900000001\" }"
)]
struct RawPhone {
    number: Option<Spanned<String>>,
    uri: Option<Spanned<String>>,
    ring_timeout_s: Option<Spanned<u64>>,
    capacity: Option<Spanned<u64>>,
    weight: Option<Spanned<u64>>,
    enabled: Option<bool>,
}

/// The validation pass for `[[group]]`: the groups, and the catalog of their names with
/// their enterprises.
pub(crate) fn validate(
    raw: ArraySection<RawGroup>,
    enterprises: &Catalog,
    diagnostics: &mut Diagnostics,
) -> (Vec<GroupConfig>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut groups = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let group_span = entry.span();
        let entry = entry.get_ref();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        enterprises.check_reference(
            &entry.enterprise,
            format!("{field}.enterprise"),
            None,
            diagnostics,
        );
        let owner = enterprises.owner(&entry.enterprise).map(str::to_owned);
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            owner,
            diagnostics,
        );
        let phones = validate_phones(entry.phones.as_ref(), group_span, &field, diagnostics);
        groups.push(GroupConfig {
            name: entry.name.get_ref().clone(),
            enterprise: entry.enterprise.get_ref().clone(),
            strategy: (*entry.strategy.get_ref()).into(),
            phones,
        });
    }
    names.add_malformed(&raw, diagnostics);
    (groups, names)
}

fn validate_phones(
    raw: Option<&Spanned<Vec<Spanned<RawPhone>>>>,
    group_span: Range<usize>,
    group_field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<PhoneConfig> {
    let field = format!("{group_field}.phones");
    let Some(raw) = raw else {
        diagnostics.report(
            Some(group_span),
            field,
            "at least one phone is required, e.g. phones = [{ number = \"13900000001\" }]",
        );
        return Vec::new();
    };
    let entries = raw.get_ref();
    if entries.is_empty() {
        diagnostics.report(
            Some(raw.span()),
            field.clone(),
            "at least one phone is required, e.g. phones = [{ number = \"13900000001\" }]",
        );
    } else if entries.len() > MAX_PHONES {
        diagnostics.report(
            Some(raw.span()),
            field.clone(),
            format!(
                "{} phones is too many; a group has at most {MAX_PHONES} (split it into several groups)",
                entries.len()
            ),
        );
    }

    let mut phones = Vec::with_capacity(entries.len());
    let mut first_seen: HashMap<PhoneTarget, (usize, usize)> = HashMap::new();
    for (index, phone) in entries.iter().enumerate() {
        let phone_field = format!("{field}[{index}]");
        let phone_span = phone.span();
        let phone = phone.get_ref();
        let Some((target, target_span, target_key)) =
            validate_target(phone, phone_span, &phone_field, diagnostics)
        else {
            continue;
        };
        let line = diagnostics.source.line_of(&target_span);
        if let Some((first_index, first_line)) = first_seen.get(&target) {
            let shown = match &target {
                PhoneTarget::Number(number) | PhoneTarget::Uri(number) => number,
            };
            diagnostics.report(
                Some(target_span),
                format!("{phone_field}.{target_key}"),
                format!(
                    "duplicate phone {shown:?}: already {field}[{first_index}] at line {first_line}"
                ),
            );
        } else {
            first_seen.insert(target.clone(), (index, line));
        }
        phones.push(PhoneConfig {
            target,
            ring_timeout: check::seconds(
                phone.ring_timeout_s.as_ref(),
                DEFAULT_RING_TIMEOUT_S,
                1..=MAX_RING_TIMEOUT_S,
                || format!("{phone_field}.ring_timeout_s"),
                diagnostics,
            ),
            capacity: check::bounded_u32(
                phone.capacity.as_ref(),
                DEFAULT_CAPACITY,
                1..=MAX_CAPACITY,
                || format!("{phone_field}.capacity"),
                diagnostics,
            ),
            weight: check::bounded_u32(
                phone.weight.as_ref(),
                DEFAULT_WEIGHT,
                1..=MAX_WEIGHT,
                || format!("{phone_field}.weight"),
                diagnostics,
            ),
            enabled: phone.enabled.unwrap_or(true),
        });
    }
    if !entries.is_empty()
        && entries
            .iter()
            .all(|phone| phone.get_ref().enabled == Some(false))
    {
        diagnostics.report(
            Some(raw.span()),
            field,
            "group has no enabled phone; enable at least one (enabled = true is the default)",
        );
    }
    phones
}

/// The phone's target, its span and its key (`number` or `uri`), when valid.
fn validate_target(
    phone: &RawPhone,
    phone_span: Range<usize>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Option<(PhoneTarget, Range<usize>, &'static str)> {
    match (&phone.number, &phone.uri) {
        (Some(number), None) => {
            let digits = number.get_ref();
            if check::is_digits(digits, PHONE_DIGITS) {
                Some((PhoneTarget::Number(digits.clone()), number.span(), "number"))
            } else {
                diagnostics.report(
                    Some(number.span()),
                    format!("{field}.number"),
                    format!(
                        "invalid phone number {digits:?}: 5 to 20 digits with no separators, \
                         e.g. \"13900000001\" or \"02112345678\""
                    ),
                );
                None
            }
        }
        (None, Some(uri)) => match check::sip_uri_problem(uri.get_ref()) {
            None => Some((PhoneTarget::Uri(uri.get_ref().clone()), uri.span(), "uri")),
            Some(problem) => {
                diagnostics.report(
                    Some(uri.span()),
                    format!("{field}.uri"),
                    format!(
                        "invalid phone URI {:?}: {problem}; e.g. \"sip:1001@192.0.2.20:5060\"",
                        uri.get_ref()
                    ),
                );
                None
            }
        },
        (Some(_), Some(_)) => {
            diagnostics.report(
                Some(phone_span),
                field.to_owned(),
                "a phone has either a number or a uri, not both",
            );
            None
        }
        (None, None) => {
            diagnostics.report(
                Some(phone_span),
                field.to_owned(),
                "a phone needs a number (e.g. number = \"13900000001\") or a uri \
                 (e.g. uri = \"sip:1001@192.0.2.20\")",
            );
            None
        }
    }
}
