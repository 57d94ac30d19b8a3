//! `[[number]]`: the 400 numbers, each bound to an enterprise and one of its plans, with
//! what callers hear while phones ring (彩铃) and whether calls are recorded (通话录音).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use sihai_rating::Tariff;
use toml::Spanned;

use crate::announcement::{self, Announcements, RawAnnouncements};
use crate::check::entry_field;
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "number";

/// Upper bound for `max_concurrent`; far above what one number carries.
const MAX_CONCURRENT: u64 = 100_000;
/// Upper bound for `max_cps`.
const MAX_CPS: u64 = 10_000;

/// Whether a number takes calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberStatus {
    Active,
    /// E.g. in arrears: calls are refused (`480` or an announcement).
    Suspended,
}

/// One 400 number, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberConfig {
    /// Canonical: ten digits starting `400`, no separators. Unique.
    pub number: String,
    /// An [`crate::Enterprise`] id.
    pub enterprise: String,
    pub status: NumberStatus,
    /// A [`crate::PlanConfig`] name of the same enterprise.
    pub plan: String,
    /// Calls in progress at once; `None` = unlimited. At least 1.
    pub max_concurrent: Option<u32>,
    /// New calls per second; `None` = unlimited. At least 1.
    pub max_cps: Option<u32>,
    /// A [`crate::PromptConfig`] name played to callers while phones ring (彩铃);
    /// `None` = the ringing tone. A menu node's or an extension's ringback, when the
    /// call went through one, takes precedence.
    pub ringback: Option<String>,
    /// Record bridged calls (from answer to hang-up) into [`crate::MediaConfig::recordings`].
    pub record: bool,
    /// Announcements of this number's own, each case set here overriding the plan's.
    pub announcements: Announcements,
    /// How many times an announcement plays; `None` = the plan's setting.
    pub announcement_plays: Option<u32>,
    /// The number's own tariff, overriding its enterprise's; `None` = the enterprise's
    /// (see [`crate::Config::number_tariff`]). Only a billed enterprise's number has one.
    pub tariff: Option<Arc<Tariff>>,
}

/// The canonical form of a 400 number written with optional `-` or space separators
/// (`"400-123-4567"` → `"4001234567"`), if it is one.
pub fn normalize_400(text: &str) -> Option<String> {
    let digits: String = text.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    let valid = digits.len() == 10
        && digits.starts_with("400")
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !text.starts_with(['-', ' '])
        && !text.ends_with(['-', ' '])
        && !text.contains("--");
    valid.then_some(digits)
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawStatus {
    Active,
    Suspended,
}

/// One `[[number]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[number]] table")]
pub(crate) struct RawNumber {
    number: Spanned<String>,
    enterprise: Spanned<String>,
    status: Spanned<RawStatus>,
    plan: Spanned<String>,
    max_concurrent: Option<Spanned<u64>>,
    max_cps: Option<Spanned<u64>>,
    ringback: Option<Spanned<String>>,
    record: Option<bool>,
    announcements: Option<RawAnnouncements>,
    announcement_plays: Option<Spanned<u64>>,
    tariff: Option<Spanned<String>>,
}

/// What the numbers refer to.
pub(crate) struct Catalogs<'c> {
    pub enterprises: &'c Catalog,
    pub plans: &'c Catalog,
    pub prompts: &'c Catalog,
    pub tariffs: &'c Catalog,
    pub tariff_by_name: &'c HashMap<&'c str, &'c Arc<Tariff>>,
    /// Enterprises that name no tariff.
    pub unbilled: &'c HashSet<String>,
}

/// The validation pass for `[[number]]`; enterprises, plans and prompts are known.
pub(crate) fn validate(
    raw: ArraySection<RawNumber>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> Vec<NumberConfig> {
    let Catalogs {
        enterprises,
        plans,
        prompts,
        tariffs,
        tariff_by_name,
        unbilled,
    } = catalogs;
    let mut declared = Catalog::new(SECTION, SECTION, &raw);
    let mut numbers = Vec::with_capacity(raw.entries.len());
    for (index, entry) in raw.entries {
        let field = entry_field(SECTION, index);
        let entry = entry.into_inner();
        let written = entry.number.get_ref();
        let number = match normalize_400(written) {
            Some(number) => {
                declared.declare(
                    &number,
                    entry.number.span(),
                    field.clone(),
                    None,
                    diagnostics,
                );
                number
            }
            None => {
                diagnostics.report(
                    Some(entry.number.span()),
                    format!("{field}.number"),
                    format!(
                        "invalid 400 number {written:?}: expected 10 digits starting with 400, \
                         e.g. \"4001234567\" or \"400-123-4567\""
                    ),
                );
                written.clone()
            }
        };
        enterprises.check_reference(
            &entry.enterprise,
            format!("{field}.enterprise"),
            None,
            diagnostics,
        );
        let owner = enterprises.owner(&entry.enterprise);
        plans.check_reference(&entry.plan, format!("{field}.plan"), owner, diagnostics);
        if let Some(ringback) = &entry.ringback {
            prompts.check_reference(ringback, format!("{field}.ringback"), owner, diagnostics);
        }
        let announcements = announcement::validate(
            entry.announcements.as_ref(),
            &format!("{field}.announcements"),
            prompts,
            owner,
            diagnostics,
        );
        let announcement_plays = announcement::plays(
            entry.announcement_plays.as_ref(),
            || format!("{field}.announcement_plays"),
            diagnostics,
        );
        let max_concurrent = limit(
            entry.max_concurrent.as_ref(),
            MAX_CONCURRENT,
            format!("{field}.max_concurrent"),
            diagnostics,
        );
        let max_cps = limit(
            entry.max_cps.as_ref(),
            MAX_CPS,
            format!("{field}.max_cps"),
            diagnostics,
        );
        let tariff = entry.tariff.as_ref().and_then(|tariff| {
            let field = format!("{field}.tariff");
            if unbilled.contains(entry.enterprise.get_ref()) {
                // A number's tariff only replaces its enterprise's rates; an enterprise
                // with none has no account to charge, so the price could not apply.
                diagnostics.report(
                    Some(tariff.span()),
                    field,
                    format!(
                        "enterprise {:?} names no tariff, so sihai does not bill it and a \
                         number's tariff would never apply; give the enterprise a tariff \
                         first",
                        entry.enterprise.get_ref()
                    ),
                );
                return None;
            }
            if !tariffs.check_reference(tariff, field, None, diagnostics) {
                return None;
            }
            tariff_by_name
                .get(tariff.get_ref().as_str())
                .map(|t| Arc::clone(t))
        });
        numbers.push(NumberConfig {
            number,
            enterprise: entry.enterprise.into_inner(),
            status: match entry.status.into_inner() {
                RawStatus::Active => NumberStatus::Active,
                RawStatus::Suspended => NumberStatus::Suspended,
            },
            plan: entry.plan.into_inner(),
            max_concurrent,
            max_cps,
            ringback: entry.ringback.map(Spanned::into_inner),
            record: entry.record.unwrap_or(false),
            announcements,
            announcement_plays,
            tariff,
        });
    }
    numbers
}

/// An optional per-number limit: 1 to `max`; absent means unlimited.
fn limit(
    raw: Option<&Spanned<u64>>,
    max: u64,
    field: String,
    diagnostics: &mut Diagnostics,
) -> Option<u32> {
    let raw = raw?;
    let value = *raw.get_ref();
    if value == 0 {
        diagnostics.report(
            Some(raw.span()),
            field,
            "0 would refuse every call; leave the setting out for no limit, or set \
             status = \"suspended\" to stop the number",
        );
        return None;
    }
    if value > max {
        diagnostics.report(
            Some(raw.span()),
            field,
            format!(
                "{value} is out of range; must be between 1 and {max} (leave it out for no limit)"
            ),
        );
        return None;
    }
    u32::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalized() {
        assert_eq!(normalize_400("4001234567").as_deref(), Some("4001234567"));
        assert_eq!(normalize_400("400-123-4567").as_deref(), Some("4001234567"));
        assert_eq!(normalize_400("400 123 4567").as_deref(), Some("4001234567"));
        for bad in [
            "",
            "400123456",
            "40012345678",
            "8001234567",
            "400-123-456x",
            "-4001234567",
            "400--1234567",
            "４００1234567",
            "+864001234567",
        ] {
            assert_eq!(normalize_400(bad), None, "{bad:?}");
        }
    }
}
