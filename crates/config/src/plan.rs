//! `[[plan]]`: how an enterprise's calls are screened and routed: the default group,
//! an optional voice menu, business hours and what happens outside them, per-region
//! groups, caller lists, and what the caller hears while phones ring.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::announcement::{self, Announcements, DEFAULT_ANNOUNCEMENT_PLAYS, RawAnnouncements};
use crate::check::{self, entry_field};
use crate::diagnostics::Diagnostics;
use crate::document::ArraySection;
use crate::names::Catalog;

/// The top-level key of this section.
pub(crate) const SECTION: &str = "plan";

const DEFAULT_HUNT_TIMEOUT_S: u64 = 60;
const MAX_HUNT_TIMEOUT_S: u64 = 3_600;
const DEFAULT_MAX_CALL_S: u64 = 7_200;
const MAX_MAX_CALL_S: u64 = 86_400;
/// Longest caller number a list entry can match.
const MAX_LIST_DIGITS: usize = 20;

/// China's provincial-level divisions by their short names, as a caller's region is
/// resolved. In the file, the full name (`"广东省"`, `"广西壮族自治区"`, `"北京市"`) is
/// accepted too.
pub const PROVINCES: [&str; 34] = [
    "北京",
    "天津",
    "河北",
    "山西",
    "内蒙古",
    "辽宁",
    "吉林",
    "黑龙江",
    "上海",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "广西",
    "海南",
    "重庆",
    "四川",
    "贵州",
    "云南",
    "西藏",
    "陕西",
    "甘肃",
    "青海",
    "宁夏",
    "新疆",
    "台湾",
    "香港",
    "澳门",
];

/// Administrative suffixes a written region name may carry, longest first.
const REGION_SUFFIXES: [&str; 8] = [
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "特别行政区",
    "自治区",
    "自治州",
    "省",
    "市",
];

/// A caller-list entry: `"13900000000"` or `"170*"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListEntry {
    /// This caller number exactly (digits).
    Exact(String),
    /// Every caller number starting with these digits (the `*` removed; never empty).
    Prefix(String),
}

impl ListEntry {
    /// Whether `caller` (digits) matches this entry.
    pub fn matches(&self, caller: &str) -> bool {
        match self {
            ListEntry::Exact(number) => caller == number,
            ListEntry::Prefix(prefix) => caller.starts_with(prefix.as_str()),
        }
    }
}

/// Sends callers from some provinces or cities to their own group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RegionRule {
    /// Provinces as written (short or full names, see [`PROVINCES`]).
    pub provinces: Vec<String>,
    /// Cities as written, e.g. `"上海"`, `"深圳"`.
    pub cities: Vec<String>,
    /// A group of the plan's enterprise.
    pub group: String,
}

/// What the caller hears while the phones ring, before anyone answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EarlyMedia {
    /// sihai plays the ringback: the number's (or menu node's, or extension's) ringback
    /// prompt, else a ringing tone.
    #[default]
    Ringback,
    /// The ringing phone's own early media (its carrier's 彩铃 or tone) is passed through.
    Phone,
}

/// One routing plan, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    /// Unique among plans.
    pub name: String,
    /// The [`crate::Enterprise`] id it belongs to.
    pub enterprise: String,
    /// The default group (of the same enterprise).
    // TODO(menus): with a `menu`, the menu's outcome picks the group; `group` stays
    // required until sihai-routing's `Plan` can hold a plan without one.
    pub group: String,
    /// A [`crate::MenuConfig`] name of the same enterprise: the call is answered and the
    /// menu picks the group or extension. `None` = ring `group` (or a region's group).
    pub menu: Option<String>,
    /// Who provides what the caller hears while phones ring; default
    /// [`EarlyMedia::Ringback`].
    pub early_media: EarlyMedia,
    /// A [`crate::ScheduleConfig`] name; `None` = open at all hours.
    pub schedule: Option<String>,
    /// The group rung outside business hours; `None` = reject (480) and send a missed-call
    /// notice.
    pub after_hours: Option<String>,
    /// How long the hunt may take in all; 1 s to 1 h, default 60 s.
    pub hunt_timeout: Duration,
    /// Longest call; 1 s to 24 h, default 2 h.
    pub max_call: Duration,
    /// First matching rule wins; no match = `group`.
    pub regions: Vec<RegionRule>,
    pub blacklist: Vec<ListEntry>,
    /// Non-empty = only these callers get through.
    pub whitelist: Vec<ListEntry>,
    pub block_provinces: Vec<String>,
    pub block_cities: Vec<String>,
    /// Refuse callers who withhold their number.
    pub reject_anonymous: bool,
    /// The `[[prompt]]` played, per case, instead of a bare error status.
    pub announcements: Announcements,
    /// How many times an announcement plays; 1 to 5, default 1.
    pub announcement_plays: u32,
}

/// One `[[plan]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[plan]] table")]
pub(crate) struct RawPlan {
    name: Spanned<String>,
    enterprise: Spanned<String>,
    group: Spanned<String>,
    menu: Option<Spanned<String>>,
    early_media: Option<RawEarlyMedia>,
    schedule: Option<Spanned<String>>,
    after_hours: Option<Spanned<String>>,
    hunt_timeout_s: Option<Spanned<u64>>,
    max_call_s: Option<Spanned<u64>>,
    regions: Option<Vec<Spanned<RawRegion>>>,
    blacklist: Option<Vec<Spanned<String>>>,
    whitelist: Option<Vec<Spanned<String>>>,
    block_provinces: Option<Vec<Spanned<String>>>,
    block_cities: Option<Vec<Spanned<String>>>,
    reject_anonymous: Option<bool>,
    announcements: Option<RawAnnouncements>,
    announcement_plays: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawEarlyMedia {
    Ringback,
    Phone,
}

/// One region rule as written: `{ provinces = ["北京"], group = "beijing" }`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a region rule, e.g. { provinces = [\"北京\"], group = \"beijing\" }"
)]
struct RawRegion {
    provinces: Option<Vec<Spanned<String>>>,
    cities: Option<Vec<Spanned<String>>>,
    group: Spanned<String>,
}

/// What the plans refer to.
pub(crate) struct Catalogs<'c> {
    pub enterprises: &'c Catalog,
    pub groups: &'c Catalog,
    pub schedules: &'c Catalog,
    pub menus: &'c Catalog,
    pub prompts: &'c Catalog,
}

/// The validation pass for `[[plan]]`: the plans, and the catalog of their names with
/// their enterprises.
pub(crate) fn validate(
    raw: ArraySection<RawPlan>,
    catalogs: &Catalogs<'_>,
    diagnostics: &mut Diagnostics,
) -> (Vec<PlanConfig>, Catalog) {
    let mut names = Catalog::new(SECTION, "name", &raw);
    let mut plans = Vec::with_capacity(raw.entries.len());
    for (index, entry) in &raw.entries {
        let field = entry_field(SECTION, *index);
        let entry = entry.get_ref();
        check::name(&entry.name, || format!("{field}.name"), diagnostics);
        catalogs.enterprises.check_reference(
            &entry.enterprise,
            format!("{field}.enterprise"),
            None,
            diagnostics,
        );
        let owner = catalogs.enterprises.owner(&entry.enterprise);
        names.declare(
            entry.name.get_ref(),
            entry.name.span(),
            field.clone(),
            owner.map(str::to_owned),
            diagnostics,
        );
        catalogs
            .groups
            .check_reference(&entry.group, format!("{field}.group"), owner, diagnostics);
        if let Some(menu) = &entry.menu {
            catalogs
                .menus
                .check_reference(menu, format!("{field}.menu"), owner, diagnostics);
        }
        if let Some(schedule) = &entry.schedule {
            catalogs.schedules.check_reference(
                schedule,
                format!("{field}.schedule"),
                owner,
                diagnostics,
            );
        }
        if let Some(after_hours) = &entry.after_hours {
            catalogs.groups.check_reference(
                after_hours,
                format!("{field}.after_hours"),
                owner,
                diagnostics,
            );
        }
        let regions = entry
            .regions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(position, rule)| {
                let rule_field = format!("{field}.regions[{position}]");
                validate_region(rule, &rule_field, catalogs.groups, owner, diagnostics)
            })
            .collect();
        plans.push(PlanConfig {
            name: entry.name.get_ref().clone(),
            enterprise: entry.enterprise.get_ref().clone(),
            group: entry.group.get_ref().clone(),
            menu: entry.menu.as_ref().map(|m| m.get_ref().clone()),
            early_media: match entry.early_media {
                None | Some(RawEarlyMedia::Ringback) => EarlyMedia::Ringback,
                Some(RawEarlyMedia::Phone) => EarlyMedia::Phone,
            },
            schedule: entry.schedule.as_ref().map(|s| s.get_ref().clone()),
            after_hours: entry.after_hours.as_ref().map(|g| g.get_ref().clone()),
            hunt_timeout: check::seconds(
                entry.hunt_timeout_s.as_ref(),
                DEFAULT_HUNT_TIMEOUT_S,
                1..=MAX_HUNT_TIMEOUT_S,
                || format!("{field}.hunt_timeout_s"),
                diagnostics,
            ),
            max_call: check::seconds(
                entry.max_call_s.as_ref(),
                DEFAULT_MAX_CALL_S,
                1..=MAX_MAX_CALL_S,
                || format!("{field}.max_call_s"),
                diagnostics,
            ),
            regions,
            blacklist: validate_list(entry.blacklist.as_deref(), &field, "blacklist", diagnostics),
            whitelist: validate_list(entry.whitelist.as_deref(), &field, "whitelist", diagnostics),
            block_provinces: validate_provinces(
                entry.block_provinces.as_deref(),
                &format!("{field}.block_provinces"),
                diagnostics,
            ),
            block_cities: validate_cities(
                entry.block_cities.as_deref(),
                &format!("{field}.block_cities"),
                diagnostics,
            ),
            reject_anonymous: entry.reject_anonymous.unwrap_or(false),
            announcements: announcement::validate(
                entry.announcements.as_ref(),
                &format!("{field}.announcements"),
                catalogs.prompts,
                owner,
                diagnostics,
            ),
            announcement_plays: announcement::plays(
                entry.announcement_plays.as_ref(),
                || format!("{field}.announcement_plays"),
                diagnostics,
            )
            .unwrap_or(DEFAULT_ANNOUNCEMENT_PLAYS),
        });
    }
    names.add_malformed(&raw, diagnostics);
    (plans, names)
}

fn validate_region(
    raw: &Spanned<RawRegion>,
    field: &str,
    groups: &Catalog,
    owner: Option<&str>,
    diagnostics: &mut Diagnostics,
) -> RegionRule {
    let rule = raw.get_ref();
    let provinces = validate_provinces(
        rule.provinces.as_deref(),
        &format!("{field}.provinces"),
        diagnostics,
    );
    let cities = validate_cities(
        rule.cities.as_deref(),
        &format!("{field}.cities"),
        diagnostics,
    );
    let empty = |list: &Option<Vec<Spanned<String>>>| list.as_ref().is_none_or(Vec::is_empty);
    if empty(&rule.provinces) && empty(&rule.cities) {
        diagnostics.report(
            Some(raw.span()),
            field.to_owned(),
            "a region rule needs provinces or cities (or both), e.g. \
             { provinces = [\"北京\"], group = \"beijing\" }",
        );
    }
    groups.check_reference(&rule.group, format!("{field}.group"), owner, diagnostics);
    RegionRule {
        provinces,
        cities,
        group: rule.group.get_ref().clone(),
    }
}

/// A region name without its administrative suffix: `"广东省"` → `"广东"`.
pub(crate) fn region_stem(name: &str) -> &str {
    for suffix in REGION_SUFFIXES {
        if let Some(stem) = name.strip_suffix(suffix)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    name
}

pub(crate) fn validate_provinces(
    raw: Option<&[Spanned<String>]>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<String> {
    let raw = raw.unwrap_or_default();
    for (index, province) in raw.iter().enumerate() {
        let name = province.get_ref();
        if !PROVINCES.contains(&region_stem(name)) {
            diagnostics.report(
                Some(province.span()),
                format!("{field}[{index}]"),
                format!(
                    "unknown province {name:?}: expected a provincial-level division such as \
                     \"北京\", \"广东\" or \"广西壮族自治区\" (a city goes in cities)"
                ),
            );
        }
    }
    raw.iter().map(|p| p.get_ref().clone()).collect()
}

fn validate_cities(
    raw: Option<&[Spanned<String>]>,
    field: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<String> {
    let raw = raw.unwrap_or_default();
    for (index, city) in raw.iter().enumerate() {
        let name = city.get_ref();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            diagnostics.report(
                Some(city.span()),
                format!("{field}[{index}]"),
                format!("invalid city {name:?}: a city name such as \"上海\" or \"深圳\", without spaces"),
            );
        }
    }
    raw.iter().map(|c| c.get_ref().clone()).collect()
}

/// Parses `"13900000000"` (exact) and `"170*"` (prefix).
pub(crate) fn parse_list_entry(text: &str) -> Option<ListEntry> {
    match text.strip_suffix('*') {
        Some(prefix) => check::is_digits(prefix, 1..=MAX_LIST_DIGITS - 1)
            .then(|| ListEntry::Prefix(prefix.to_owned())),
        None => {
            check::is_digits(text, 1..=MAX_LIST_DIGITS).then(|| ListEntry::Exact(text.to_owned()))
        }
    }
}

fn validate_list(
    raw: Option<&[Spanned<String>]>,
    plan_field: &str,
    list: &str,
    diagnostics: &mut Diagnostics,
) -> Vec<ListEntry> {
    let mut entries = Vec::new();
    for (index, entry) in raw.unwrap_or_default().iter().enumerate() {
        let text = entry.get_ref();
        match parse_list_entry(text) {
            Some(parsed) => entries.push(parsed),
            None => diagnostics.report(
                Some(entry.span()),
                format!("{plan_field}.{list}[{index}]"),
                if text == "*" {
                    format!("{text:?} alone would match every caller; list numbers or prefixes such as \"170*\"")
                } else {
                    format!(
                        "invalid {list} entry {text:?}: expected a caller number (digits only) or a \
                         prefix ending in *, e.g. \"13900000000\" or \"170*\""
                    )
                },
            ),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries() {
        assert_eq!(
            parse_list_entry("13900000000"),
            Some(ListEntry::Exact("13900000000".into()))
        );
        assert_eq!(
            parse_list_entry("170*"),
            Some(ListEntry::Prefix("170".into()))
        );
        assert_eq!(parse_list_entry("0*"), Some(ListEntry::Prefix("0".into())));
        for bad in [
            "",
            "*",
            "17*0",
            "170**",
            "+8613900000000",
            "139 0000 0000",
            "1".repeat(21).as_str(),
            "a*",
        ] {
            assert_eq!(parse_list_entry(bad), None, "{bad:?}");
        }
        assert!(ListEntry::Prefix("170".into()).matches("17012345678"));
        assert!(!ListEntry::Exact("170".into()).matches("17012345678"));
    }

    #[test]
    fn provinces_short_and_full() {
        assert_eq!(PROVINCES.len(), 34);
        for name in [
            "北京",
            "北京市",
            "广东省",
            "广西壮族自治区",
            "新疆维吾尔自治区",
            "宁夏回族自治区",
            "西藏自治区",
            "内蒙古自治区",
            "香港特别行政区",
        ] {
            assert!(PROVINCES.contains(&region_stem(name)), "{name}");
        }
        for name in ["深圳", "广东省省", "", "Beijing"] {
            assert!(!PROVINCES.contains(&region_stem(name)), "{name}");
        }
    }
}
