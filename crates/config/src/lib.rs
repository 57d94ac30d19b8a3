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
//!    references between sections (`names`): a number's plan and ringback, a plan's
//!    groups, menu and schedule, a menu's prompts, groups and nodes, an extension's
//!    group, each entry's enterprise, an enterprise's and a number's tariff, a tariff's
//!    schedule, and that an enterprise uses only its own plans, menus and groups.
//!    Sections are validated in dependency order (schedules, `[billing]`, tariffs,
//!    enterprises, prompts, groups, extensions, menus, plans, numbers), each handing the
//!    next a catalog of the names it declares. A tariff's rules are the rating crate's:
//!    this crate reads `[[tariff]]` into a `TariffSpec` and reports each `TariffError`
//!    of `Tariff::new` at the setting it is about.
//!
//! Relative paths of the media sections (`[media] recordings` and `prompts`, and so
//! every `[[prompt]] file`; an uploaded prompt's `audio` names a recording in the store) and `[alerts] ca_file` are resolved against the directory of
//! the configuration file, so a configuration and its recordings move together. The
//! files themselves are not opened here: a check must not depend on the machine it runs
//! on.
//!
//! Each top-level section has its own module; a new section adds a module, a field on
//! [`Config`] and one `take_section` (or `take_array`) call in [`Config::from_str`].
//!
//! ```
//! use sihai_config::{Config, MenuActionConfig, PromptSource};
//!
//! let text = r#"
//! [sip]
//! [[sip.listen]]
//! transport = "udp"
//! address = "192.0.2.10:5060"
//!
//! [[prompt]]
//! name = "main-menu"
//! file = "main-menu.wav"
//!
//! [[enterprise]]
//! id = "acme"
//! name = "Acme"
//!
//! [[group]]
//! name = "sales"
//! enterprise = "acme"
//! strategy = "sequential"
//! phones = [{ number = "13900000001" }]
//!
//! [[menu]]
//! name = "acme-menu"
//! enterprise = "acme"
//! root = "main"
//! [[menu.node]]
//! name = "main"
//! prompt = "main-menu"
//! default = "hangup"
//! options = { "1" = { group = "sales" }, "9" = "repeat" }
//! "#;
//! let config = Config::from_str(text, "/etc/sihai/sihai.toml").map_err(|e| e.to_string())?;
//! // The relay advertises the SIP address; prompts live beside the file.
//! assert_eq!(config.media.address.to_string(), "192.0.2.10");
//! assert_eq!(
//!     config.prompts[0].source,
//!     PromptSource::File("/etc/sihai/prompts/main-menu.wav".into())
//! );
//! let main = &config.menus[0].nodes[0];
//! assert_eq!(main.options[0], ('1', MenuActionConfig::Group("sales".into())));
//!
//! // A mistake names the file, line, column and field.
//! let broken = text.replace("group = \"sales\"", "group = \"sale\"");
//! let errors = Config::from_str(&broken, "sihai.toml").unwrap_err();
//! assert!(errors.to_string().starts_with(
//!     "sihai.toml:29:29: menu[0].node[0].options.1.group: no [[group]] with name \"sale\""
//! ));
//! # Ok::<(), String>(())
//! ```

mod alerts;
mod announcement;
mod api;
mod billing;
mod check;
mod diagnostics;
mod document;
mod duration;
mod enterprise;
mod error;
mod extension;
mod group;
mod log;
mod media;
mod menu;
mod names;
mod number;
mod plan;
mod prompt;
mod reload;
mod schedule;
mod sip;
mod store;
mod tariff;
pub mod tenant;
mod trunk;

use std::path::Path;
use std::sync::Arc;

pub use alerts::AlertConfig;
pub use announcement::{
    AnnouncementCase, Announcements, DEFAULT_ANNOUNCEMENT_PLAYS, MAX_ANNOUNCEMENT_PLAYS,
};
pub use api::{ApiConfig, ApiTls, DEFAULT_API_LISTEN};
pub use billing::{BillingConfig, DEFAULT_LIFECYCLE_INTERVAL_S, DEFAULT_RESERVATION_MINUTES};
pub use enterprise::{
    AlertSecret, CrmLookup, DEFAULT_CRM_TIMEOUT_MS, DEFAULT_RECORDING_RETENTION_DAYS, Enterprise,
    EnterpriseBilling, MIN_ALERT_SECRET_CHARS,
};
pub use error::{ConfigError, ConfigErrors};
pub use extension::{ExtensionConfig, MAX_EXTENSION_DIGITS};
pub use group::{GroupConfig, HuntStrategy, MAX_PHONES, PhoneConfig, PhoneTarget};
pub use log::{LogConfig, LogFormat};
pub use media::{DEFAULT_RTP_PORTS, MediaConfig};
pub use menu::{MenuActionConfig, MenuConfig, MenuNodeConfig};
pub use number::{NumberConfig, NumberStatus, normalize_400};
pub use plan::{EarlyMedia, ListEntry, PROVINCES, PlanConfig, RegionRule};
pub use prompt::{AUDIO_DIGEST_PREFIX, PromptConfig, PromptSource};
pub use reload::{OnReload, ReloadRule, describe_reload_rules, reload_rules, rule_for};
pub use schedule::{ScheduleConfig, TimeRange, WEEKDAYS};
pub use sip::{Listen, SipConfig, TcpSettings, Timers, Untrusted};
pub use store::{PostgresStore, StoreConfig};
pub use tariff::DEFAULT_INCREMENT_S;
pub use trunk::{IpNet, IpNetError, NUMBER_PLACEHOLDER, Trunk};

use diagnostics::{Diagnostics, Source};
use document::Document;

/// The whole validated configuration.
///
/// Every name resolves: each number's enterprise, plan, ringback, announcements and
/// tariff; each enterprise's tariff; each plan's group, menu, schedule, after-hours
/// group, region groups and announcements; each menu's prompts, groups and nodes; each
/// extension's group and ringback; each entry's enterprise. A number, its
/// plan, the plan's menu and groups, and the menu's groups all belong to the same
/// enterprise. Lists keep the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub sip: SipConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    pub alerts: AlertConfig,
    /// `[api]`: the admin API's listener; `None` (no API) when the file has no `[api]`.
    pub api: Option<ApiConfig>,
    /// Always present: every setting has a default.
    pub media: MediaConfig,
    pub trunks: Vec<Trunk>,
    pub enterprises: Vec<Enterprise>,
    pub numbers: Vec<NumberConfig>,
    pub plans: Vec<PlanConfig>,
    pub groups: Vec<GroupConfig>,
    pub schedules: Vec<ScheduleConfig>,
    pub prompts: Vec<PromptConfig>,
    pub menus: Vec<MenuConfig>,
    pub extensions: Vec<ExtensionConfig>,
    /// `[billing]`: node-wide settings and the default account policy. Always present:
    /// every setting has a default.
    pub billing: BillingConfig,
    /// `[[tariff]]`, validated by [`sihai_rating::Tariff::new`], in file order; names
    /// are unique. Shared: enterprises and numbers hold the same `Arc`s.
    pub tariffs: Vec<Arc<sihai_rating::Tariff>>,
}

impl Config {
    /// The tariff called `name`.
    pub fn tariff(&self, name: &str) -> Option<&Arc<sihai_rating::Tariff>> {
        self.tariffs.iter().find(|t| t.name() == name)
    }

    /// The enterprise with id `id`.
    pub fn enterprise(&self, id: &str) -> Option<&Enterprise> {
        self.enterprises.iter().find(|e| e.id == id)
    }

    /// The tariff a number's calls are rated by: its own, else its enterprise's; `None`
    /// when its enterprise is not billed by sihai.
    pub fn number_tariff<'a>(
        &'a self,
        number: &'a NumberConfig,
    ) -> Option<&'a Arc<sihai_rating::Tariff>> {
        number.tariff.as_ref().or_else(|| {
            self.enterprise(&number.enterprise)
                .and_then(|e| e.billing.as_ref())
                .map(|b| &b.tariff)
        })
    }
}

/// The top-level tables a configuration file may contain.
const SECTIONS: &[&str] = &[
    sip::SECTION,
    log::SECTION,
    store::SECTION,
    alerts::SECTION,
    api::SECTION,
    media::SECTION,
    trunk::SECTION,
    enterprise::SECTION,
    number::SECTION,
    plan::SECTION,
    group::SECTION,
    schedule::SECTION,
    prompt::SECTION,
    menu::SECTION,
    extension::SECTION,
    billing::SECTION,
    tariff::SECTION,
];

/// The sections that are tenant data (enterprises and what they own, and the tariffs
/// they are rated by), as opposed to the node's own settings: the store keeps them, and
/// `sihai export` / `sihai apply` carry them as TOML. Each is an array of tables whose
/// entries are named by the field beside it.
pub const TENANT_SECTIONS: &[&str] = &[
    enterprise::SECTION,
    tariff::SECTION,
    schedule::SECTION,
    prompt::SECTION,
    group::SECTION,
    extension::SECTION,
    menu::SECTION,
    plan::SECTION,
    number::SECTION,
];

/// The field that names an entry of each tenant section.
pub fn tenant_key_field(section: &str) -> Option<&'static str> {
    match section {
        s if s == enterprise::SECTION => Some("id"),
        s if s == number::SECTION || s == extension::SECTION => Some("number"),
        s if TENANT_SECTIONS.contains(&s) => Some("name"),
        _ => None,
    }
}

/// The tenant sections of one text, as taken in the structural pass.
struct TenantRaw {
    enterprises: document::ArraySection<enterprise::RawEnterprise>,
    numbers: document::ArraySection<number::RawNumber>,
    plans: document::ArraySection<plan::RawPlan>,
    groups: document::ArraySection<group::RawGroup>,
    schedules: document::ArraySection<schedule::RawSchedule>,
    prompts: document::ArraySection<prompt::RawPrompt>,
    menus: document::ArraySection<menu::RawMenu>,
    extensions: document::ArraySection<extension::RawExtension>,
    tariffs: document::ArraySection<tariff::RawTariff>,
}

impl Config {
    /// Reads and validates a file; errors carry the path, and relative media paths are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = read_text(path)?;
        Config::from_str(&text, &path.display().to_string())
    }

    /// Parses and validates text; `origin` is the name used in messages, the file's
    /// path: relative media paths (`[media] recordings` and `prompts`, and so the
    /// `[[prompt]]` files) are resolved against its directory, e.g. `recordings`
    /// against `"config/sihai.toml"` is `config/recordings`.
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigErrors> {
        Config::assemble(text, origin, None)
    }

    /// A configuration assembled from two texts: the node's own settings (listeners,
    /// timers, trunks, media, store, `[billing]`...) from `node_text`, whose tenant
    /// sections ([`TENANT_SECTIONS`]) are ignored, and the tenant data from
    /// `tenant_text`, which may hold only tenant sections. Validated as one: the same
    /// checks as [`Config::from_str`], each problem reported against the text it is in
    /// (`tenant_origin:LINE:COL` for the tenant data). Relative paths resolve against
    /// the node file's directory.
    pub fn from_parts(
        node_text: &str,
        node_origin: &str,
        tenant_text: &str,
        tenant_origin: &str,
    ) -> Result<Config, ConfigErrors> {
        Config::assemble(node_text, node_origin, Some((tenant_text, tenant_origin)))
    }

    fn assemble(
        text: &str,
        origin: &str,
        tenant: Option<(&str, &str)>,
    ) -> Result<Config, ConfigErrors> {
        let base_dir = Path::new(origin).parent().unwrap_or(Path::new(""));
        let mut diagnostics = Diagnostics::new(Source::new(origin, text));
        let node_document = Document::parse(text, &mut diagnostics);
        // The source the tenant sections' spans refer to, swapped into `diagnostics`
        // while they are taken and validated (and the node's source parked here).
        let mut other_source = tenant.map(|(text, origin)| Source::new(origin, text));
        let tenant_document = match (tenant, other_source.as_mut()) {
            (Some((tenant_text, _)), Some(other)) => {
                diagnostics.swap_source(other);
                let parsed = Document::parse(tenant_text, &mut diagnostics);
                diagnostics.swap_source(other);
                Some(parsed)
            }
            _ => None,
        };
        let Some(mut document) = node_document else {
            return diagnostics.finish(None);
        };
        let mut tenant_document = match tenant_document {
            None => None,
            Some(Some(parsed)) => Some(parsed),
            Some(None) => return diagnostics.finish(None),
        };
        let d = &mut diagnostics;

        // Pass 1, structure: a malformed section (or entry) is reported and skipped.
        let raw_sip = document.take_section::<sip::RawSip>(sip::SECTION, d);
        let raw_log = document.take_section::<log::RawLog>(log::SECTION, d);
        let raw_store = document.take_section::<store::RawStore>(store::SECTION, d);
        let raw_alerts = document.take_section::<alerts::RawAlerts>(alerts::SECTION, d);
        let raw_api = document.take_section::<api::RawApi>(api::SECTION, d);
        let raw_media = document.take_section::<media::RawMedia>(media::SECTION, d);
        let raw_trunks = document.take_array::<trunk::RawTrunk>(trunk::SECTION, "name", d);
        let raw_billing = document.take_section::<billing::RawBilling>(billing::SECTION, d);
        if let Some(other) = other_source.as_mut() {
            d.swap_source(other);
        }
        let tenant_sections = {
            let source = match tenant_document.as_mut() {
                Some(tenant) => tenant,
                None => &mut document,
            };
            TenantRaw {
                enterprises: source.take_array(enterprise::SECTION, "id", d),
                numbers: source.take_array(number::SECTION, "number", d),
                plans: source.take_array(plan::SECTION, "name", d),
                groups: source.take_array(group::SECTION, "name", d),
                schedules: source.take_array(schedule::SECTION, "name", d),
                prompts: source.take_array(prompt::SECTION, "name", d),
                menus: source.take_array(menu::SECTION, "name", d),
                extensions: source.take_array(extension::SECTION, "number", d),
                tariffs: source.take_array(tariff::SECTION, "name", d),
            }
        };
        if let Some(tenant) = tenant_document {
            tenant.reject_node_sections(TENANT_SECTIONS, d);
        }
        if let Some(other) = other_source.as_mut() {
            d.swap_source(other);
            for section in TENANT_SECTIONS {
                document.discard(section);
            }
        }
        document.reject_unknown_sections(SECTIONS, d);
        let TenantRaw {
            enterprises: raw_enterprises,
            numbers: raw_numbers,
            plans: raw_plans,
            groups: raw_groups,
            schedules: raw_schedules,
            prompts: raw_prompts,
            menus: raw_menus,
            extensions: raw_extensions,
            tariffs: raw_tariffs,
        } = tenant_sections;
        let arrays_malformed = raw_trunks.is_malformed()
            || raw_enterprises.is_malformed()
            || raw_numbers.is_malformed()
            || raw_plans.is_malformed()
            || raw_groups.is_malformed()
            || raw_schedules.is_malformed()
            || raw_prompts.is_malformed()
            || raw_menus.is_malformed()
            || raw_extensions.is_malformed()
            || raw_tariffs.is_malformed();
        let first_listen_span = raw_sip
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|raw| raw.get_ref().first_listen_address_span());

        // Pass 2, meaning: every well-formed section and entry is validated, whatever
        // else failed; later sections resolve names against the catalogs of earlier ones.
        let sip = raw_sip.ok().map(|raw| sip::validate(raw, d));
        let log = raw_log.ok().map(|raw| log::validate(raw, d));
        let store = raw_store.ok().map(|raw| store::validate(raw, d));
        let alerts = raw_alerts
            .ok()
            .map(|raw| alerts::validate(raw, base_dir, d));
        let api_malformed = raw_api.is_err();
        let api = raw_api.ok().and_then(|raw| api::validate(raw, base_dir, d));
        let media_context = media::Context {
            first_listen: sip
                .as_ref()
                .and_then(|sip| sip.listen.first())
                .map(|listen| listen.address.ip()),
            first_listen_span,
            base_dir,
        };
        let media = raw_media
            .ok()
            .map(|raw| media::validate(raw, &media_context, d));
        let trunks = trunk::validate(raw_trunks, d);
        // [billing] before enterprises (which override its policy); then the tenant
        // sections, against their own text when they come from elsewhere.
        let billing_malformed = raw_billing.is_err();
        let billing = raw_billing
            .ok()
            .map(|raw| billing::validate(raw, d))
            .unwrap_or_default();
        if let Some(other) = other_source.as_mut() {
            d.swap_source(other);
        }
        // Schedules before tariffs (a tariff may take a schedule's holidays), tariffs
        // before enterprises (which name one).
        let (schedules, schedule_names, schedule_owners) = schedule::validate(raw_schedules, d);
        let tariff_catalogs = tariff::Catalogs {
            schedules: &schedule_names,
            schedule_configs: &schedules,
        };
        let (tariffs, tariff_names) = tariff::validate(raw_tariffs, &tariff_catalogs, d);
        let tariff_by_name = tariff::by_name(&tariffs);
        let enterprise_catalogs = enterprise::Catalogs {
            tariffs: &tariff_names,
            tariff_by_name: &tariff_by_name,
            policy: &billing.policy,
        };
        let enterprise::Validated {
            enterprises,
            ids: enterprise_ids,
            unbilled,
        } = enterprise::validate(raw_enterprises, &enterprise_catalogs, d);
        schedule::check_owners(&schedule_owners, &enterprise_ids, d);
        // With [media] malformed the configuration is rejected anyway; resolving
        // against the default keeps the prompts checked meanwhile.
        let prompts_dir = media.as_ref().map_or_else(
            || base_dir.join("prompts"),
            |media| media.prompts_dir.clone(),
        );
        let (prompts, prompt_names) =
            prompt::validate(raw_prompts, &prompts_dir, &enterprise_ids, d);
        let (groups, group_names) = group::validate(raw_groups, &enterprise_ids, d);
        let extension_catalogs = extension::Catalogs {
            enterprises: &enterprise_ids,
            groups: &group_names,
            prompts: &prompt_names,
        };
        let (extensions, extension_owners) =
            extension::validate(raw_extensions, &extension_catalogs, d);
        let menu_catalogs = menu::Catalogs {
            enterprises: &enterprise_ids,
            groups: &group_names,
            prompts: &prompt_names,
            extensions: &extension_owners,
        };
        let (menus, menu_names) = menu::validate(raw_menus, &menu_catalogs, d);
        let plan_catalogs = plan::Catalogs {
            enterprises: &enterprise_ids,
            groups: &group_names,
            schedules: &schedule_names,
            menus: &menu_names,
            prompts: &prompt_names,
        };
        let (plans, plan_names) = plan::validate(raw_plans, &plan_catalogs, d);
        let number_catalogs = number::Catalogs {
            enterprises: &enterprise_ids,
            plans: &plan_names,
            prompts: &prompt_names,
            tariffs: &tariff_names,
            tariff_by_name: &tariff_by_name,
            unbilled: &unbilled,
        };
        let numbers = number::validate(raw_numbers, &number_catalogs, d);
        if let Some(other) = other_source.as_mut() {
            d.swap_source(other);
        }

        let config = match (sip, log, store, alerts, media) {
            (Some(sip), Some(log), Some(store), Some(alerts), Some(media))
                if !arrays_malformed && !billing_malformed && !api_malformed =>
            {
                Some(Config {
                    sip,
                    log,
                    store,
                    alerts,
                    api,
                    media,
                    trunks,
                    enterprises,
                    numbers,
                    plans,
                    groups,
                    schedules,
                    prompts,
                    menus,
                    extensions,
                    billing,
                    tariffs,
                })
            }
            _ => None,
        };
        diagnostics.finish(config)
    }
}

/// The file's text; an unreadable or non-UTF-8 file is an error naming the file (and
/// where the UTF-8 breaks).
fn read_text(path: &Path) -> Result<String, ConfigErrors> {
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
    Ok(text)
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
