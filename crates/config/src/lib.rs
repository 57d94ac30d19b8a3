//! Loading and validating sihai's TOML configuration.
//!
//! The daemon, `sihai check` and the reload path all need the same answer to "is this
//! file usable, and if not, exactly what is wrong with it?". This crate gives it:
//! [`Config::load`] returns either a fully validated [`Config`] or [`ConfigErrors`]
//! listing every problem as `FILE:LINE:COL: FIELD: message`.
//!
//! Checking happens in two passes over one parse:
//! 1. structure (`document`): TOML syntax, then each section into raw serde structs
//!    that reject unknown fields, wrong types and missing required fields; arrays of
//!    tables (`[[group]]`) entry by entry, so one bad entry does not hide the others;
//! 2. meaning (each section's `validate`): ranges, cross-field rules, duplicates, and
//!    references between sections (`names`): a number's plan, a plan's groups and
//!    schedule, each entry's enterprise, and that an enterprise uses only its own plans
//!    and groups. Sections are validated in dependency order (enterprises, schedules,
//!    groups, plans, numbers), each handing the next a catalog of the names it declares.
//!
//! Each top-level section has its own module; a new section adds a module, a field on
//! [`Config`] and one `take_section` (or `take_array`) call in [`Config::from_str`].

mod alerts;
mod check;
mod diagnostics;
mod document;
mod enterprise;
mod error;
mod group;
mod log;
mod names;
mod number;
mod plan;
mod schedule;
mod sip;
mod store;
mod trunk;

use std::path::Path;

pub use alerts::AlertConfig;
pub use enterprise::Enterprise;
pub use error::{ConfigError, ConfigErrors};
pub use group::{GroupConfig, HuntStrategy, MAX_PHONES, PhoneConfig, PhoneTarget};
pub use log::LogConfig;
pub use number::{NumberConfig, NumberStatus, normalize_400};
pub use plan::{ListEntry, PROVINCES, PlanConfig, RegionRule};
pub use schedule::{ScheduleConfig, TimeRange, WEEKDAYS};
pub use sip::{Listen, SipConfig, TcpSettings, Timers};
pub use store::StoreConfig;
pub use trunk::{IpNet, IpNetError, NUMBER_PLACEHOLDER, Trunk};

use diagnostics::{Diagnostics, Source};
use document::Document;

/// The whole validated configuration.
///
/// Every name resolves: each number's enterprise and plan, each plan's group, schedule,
/// after-hours group and region groups, each group's enterprise; and a number, its plan
/// and the plan's groups all belong to the same enterprise. Lists keep the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sip: SipConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub alerts: AlertConfig,
    pub trunks: Vec<Trunk>,
    pub enterprises: Vec<Enterprise>,
    pub numbers: Vec<NumberConfig>,
    pub plans: Vec<PlanConfig>,
    pub groups: Vec<GroupConfig>,
    pub schedules: Vec<ScheduleConfig>,
}

/// The top-level tables a configuration file may contain.
const SECTIONS: &[&str] = &[
    sip::SECTION,
    log::SECTION,
    store::SECTION,
    alerts::SECTION,
    trunk::SECTION,
    enterprise::SECTION,
    number::SECTION,
    plan::SECTION,
    group::SECTION,
    schedule::SECTION,
];

impl Config {
    /// Reads and validates a file; errors carry the path.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path)
            .map_err(|error| file_error(&origin, 0, 0, format!("cannot read the file: {error}")))?;
        let text = String::from_utf8(bytes).map_err(|error| {
            let valid = error.utf8_error().valid_up_to();
            let bytes = error.as_bytes();
            let text = String::from_utf8_lossy(bytes.get(..valid).unwrap_or_default());
            let (line, column) = Source::new(&origin, &text).position(valid);
            file_error(
                &origin,
                line,
                column,
                "the file is not valid UTF-8".to_owned(),
            )
        })?;
        Config::from_str(&text, &origin)
    }

    /// Parses and validates text; `origin` is the name used in messages (a path).
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        let mut diagnostics = Diagnostics::new(Source::new(origin, text));
        let Some(mut document) = Document::parse(text, &mut diagnostics) else {
            return diagnostics.finish(None);
        };
        let d = &mut diagnostics;

        // Pass 1, structure: a malformed section (or entry) is reported and skipped.
        let raw_sip = document.take_section::<sip::RawSip>(sip::SECTION, d);
        let raw_log = document.take_section::<log::RawLog>(log::SECTION, d);
        let raw_store = document.take_section::<store::RawStore>(store::SECTION, d);
        let raw_alerts = document.take_section::<alerts::RawAlerts>(alerts::SECTION, d);
        let raw_trunks = document.take_array::<trunk::RawTrunk>(trunk::SECTION, "name", d);
        let raw_enterprises =
            document.take_array::<enterprise::RawEnterprise>(enterprise::SECTION, "id", d);
        let raw_numbers = document.take_array::<number::RawNumber>(number::SECTION, "number", d);
        let raw_plans = document.take_array::<plan::RawPlan>(plan::SECTION, "name", d);
        let raw_groups = document.take_array::<group::RawGroup>(group::SECTION, "name", d);
        let raw_schedules =
            document.take_array::<schedule::RawSchedule>(schedule::SECTION, "name", d);
        document.reject_unknown_sections(SECTIONS, d);
        let arrays_malformed = raw_trunks.is_malformed()
            || raw_enterprises.is_malformed()
            || raw_numbers.is_malformed()
            || raw_plans.is_malformed()
            || raw_groups.is_malformed()
            || raw_schedules.is_malformed();

        // Pass 2, meaning: every well-formed section and entry is validated, whatever
        // else failed; later sections resolve names against the catalogs of earlier ones.
        let sip = raw_sip.ok().map(|raw| sip::validate(raw, d));
        let log = raw_log.ok().map(|raw| log::validate(raw, d));
        let store = raw_store.ok().map(|raw| store::validate(raw, d));
        let alerts = raw_alerts.ok().map(|raw| alerts::validate(raw, d));
        let trunks = trunk::validate(raw_trunks, d);
        let (enterprises, enterprise_ids) = enterprise::validate(raw_enterprises, d);
        let (schedules, schedule_names) = schedule::validate(raw_schedules, d);
        let (groups, group_names) = group::validate(raw_groups, &enterprise_ids, d);
        let catalogs = plan::Catalogs {
            enterprises: &enterprise_ids,
            groups: &group_names,
            schedules: &schedule_names,
        };
        let (plans, plan_names) = plan::validate(raw_plans, &catalogs, d);
        let numbers = number::validate(raw_numbers, &enterprise_ids, &plan_names, d);

        let config = match (sip, log, store, alerts) {
            (Some(sip), Some(log), Some(store), Some(alerts)) if !arrays_malformed => {
                Some(Config {
                    sip,
                    log,
                    store,
                    alerts,
                    trunks,
                    enterprises,
                    numbers,
                    plans,
                    groups,
                    schedules,
                })
            }
            _ => None,
        };
        diagnostics.finish(config)
    }
}

fn file_error(origin: &str, line: usize, column: usize, message: String) -> ConfigErrors {
    ConfigErrors {
        errors: vec![ConfigError {
            file: origin.to_owned(),
            line,
            column,
            field: String::new(),
            message,
        }],
    }
}

#[cfg(test)]
mod tests;
