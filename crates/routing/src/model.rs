//! The routing table: the validated configuration compiled into the shape the per-call
//! decision reads — hash lookups by 400 number, shared `Arc`s for plans and groups, lists
//! as sets. One table is one immutable snapshot; the daemon swaps whole tables on reload
//! (behind `arc-swap`), and a call keeps the `Arc`s it started with.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sihai_config::{
    Announcements, Config, EnterpriseBilling, HuntStrategy, IpNet, NumberStatus, PhoneTarget,
};
use sihai_rating::{Money, Tariff};

use crate::lists::NumberList;
use crate::region_name;
use crate::schedule::Schedule;

#[derive(Debug, Clone)]
pub struct Trunk {
    pub name: String,
    pub sources: Vec<IpNet>,
    /// URI template with `{number}`.
    pub gateway: String,
}

impl Trunk {
    pub fn allows(&self, source: IpAddr) -> bool {
        self.sources.iter().any(|net| net.contains(source))
    }

    /// The Request-URI for a phone given by number.
    pub fn phone_uri(&self, number: &str) -> String {
        self.gateway.replace("{number}", number)
    }
}

#[derive(Debug, Clone)]
pub struct Phone {
    pub target: PhoneTarget,
    pub ring_timeout: Duration,
    pub capacity: u32,
    pub weight: u32,
    pub enabled: bool,
}

impl Phone {
    /// What the CDR and the phone's identity call it.
    pub fn label(&self) -> &str {
        match &self.target {
            PhoneTarget::Number(n) | PhoneTarget::Uri(n) => n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub enterprise: String,
    pub strategy: HuntStrategy,
    pub phones: Vec<Phone>,
    /// Position in [`RoutingTable::groups`], for per-group hunt state kept by the daemon.
    pub index: usize,
}

#[derive(Debug, Clone)]
pub struct RegionRoute {
    pub provinces: Vec<String>,
    pub cities: Vec<String>,
    pub group: Arc<Group>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub group: Arc<Group>,
    pub schedule: Option<Arc<Schedule>>,
    pub after_hours: Option<Arc<Group>>,
    pub hunt_timeout: Duration,
    pub max_call: Duration,
    pub regions: Vec<RegionRoute>,
    pub blacklist: NumberList,
    pub whitelist: NumberList,
    pub block_provinces: Vec<String>,
    pub block_cities: Vec<String>,
    pub reject_anonymous: bool,
    /// What an anchored caller hears while phones ring: our ringback, or the phone's
    /// own early media.
    pub early_media: sihai_config::EarlyMedia,
    /// The voice menu the call starts with, answered before any phone rings.
    pub menu: Option<Arc<sihai_ivr::MenuTree>>,
}

/// A switchboard extension (分机): the group its number rings.
#[derive(Debug, Clone)]
pub struct Extension {
    pub group: Arc<Group>,
    /// The `[[prompt]]` callers hear while it rings.
    pub ringback: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    pub alert_webhook: Option<String>,
    /// Its tariff and account policy; `None` = not billed by sihai (calls are admitted
    /// without a balance check and cost nothing).
    pub billing: Option<EnterpriseBilling>,
    /// Suspended by the operator: its numbers are not [`NumberEntry::active`].
    pub suspended: bool,
    /// The CRM asked for the caller's name before the phones ring; `None` = no lookup.
    pub crm: Option<sihai_config::CrmLookup>,
}

impl Enterprise {
    /// Whether sihai bills this enterprise's calls.
    pub fn is_billed(&self) -> bool {
        self.billing.is_some()
    }

    /// The balance a call needs to be admitted; `None` when not billed.
    pub fn min_balance(&self) -> Option<Money> {
        self.billing.as_ref().map(|b| b.policy.min_balance)
    }
}

#[derive(Debug, Clone)]
pub struct NumberEntry {
    pub number: String,
    pub enterprise: Arc<Enterprise>,
    /// In service: the number's own `status` is active and its enterprise is not
    /// suspended. Otherwise calls get the suspended answer (480, and the `suspended`
    /// announcement if there is one).
    pub active: bool,
    pub plan: Arc<Plan>,
    pub max_concurrent: Option<u32>,
    pub max_cps: Option<u32>,
    /// The `[[prompt]]` callers hear while phones ring, instead of the ringing tone.
    pub ringback: Option<String>,
    /// Whether answered calls to this number are recorded.
    pub record: bool,
    /// The prompts played instead of a bare error status: the number's own, else its
    /// plan's, per case.
    pub announcements: Announcements,
    /// How many times an announcement plays: the number's setting, else its plan's.
    pub announcement_plays: u32,
    /// What its answered calls are rated by: the number's own tariff, else its
    /// enterprise's; `None` = not billed. A call keeps the `Arc` it was set up with, so a
    /// reload's new prices apply to calls set up after it.
    pub tariff: Option<Arc<Tariff>>,
}

#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    pub trunks: Vec<Arc<Trunk>>,
    pub numbers: HashMap<String, Arc<NumberEntry>>,
    pub groups: Vec<Arc<Group>>,
    /// Extensions by (enterprise, extension number), for menus' extension dialling.
    pub extensions: HashMap<(String, String), Extension>,
}

impl RoutingTable {
    /// The enterprise's group called `name` (a menu's choice).
    pub fn group(&self, enterprise: &str, name: &str) -> Option<&Arc<Group>> {
        self.groups
            .iter()
            .find(|g| g.enterprise == enterprise && g.name == name)
    }

    /// The enterprise's extension `number` (digits a caller dialled in a menu).
    pub fn extension(&self, enterprise: &str, number: &str) -> Option<&Extension> {
        self.extensions
            .get(&(enterprise.to_owned(), number.to_owned()))
    }

    /// Compiles a validated configuration. Validation guarantees every name resolves; a
    /// name that does not (which validation should have caught) drops the entry that
    /// uses it rather than panicking.
    pub fn compile(config: &Config) -> RoutingTable {
        let trunks = config
            .trunks
            .iter()
            .map(|t| {
                Arc::new(Trunk {
                    name: t.name.clone(),
                    sources: t.sources.clone(),
                    gateway: t.gateway.clone(),
                })
            })
            .collect();
        let groups: Vec<Arc<Group>> = config
            .groups
            .iter()
            .enumerate()
            .map(|(index, g)| {
                Arc::new(Group {
                    name: g.name.clone(),
                    enterprise: g.enterprise.clone(),
                    strategy: g.strategy,
                    phones: g
                        .phones
                        .iter()
                        .map(|p| Phone {
                            target: p.target.clone(),
                            ring_timeout: p.ring_timeout,
                            capacity: p.capacity,
                            weight: p.weight,
                            enabled: p.enabled,
                        })
                        .collect(),
                    index,
                })
            })
            .collect();
        let menus: HashMap<&str, Arc<sihai_ivr::MenuTree>> = config
            .menus
            .iter()
            .filter_map(|m| Some((m.name.as_str(), Arc::new(m.tree().ok()?))))
            .collect();
        let group_by_name: HashMap<&str, Arc<Group>> = groups
            .iter()
            .map(|g| (g.name.as_str(), g.clone()))
            .collect();
        let schedules: HashMap<&str, Arc<Schedule>> = config
            .schedules
            .iter()
            .map(|s| (s.name.as_str(), Arc::new(Schedule::from_config(s))))
            .collect();
        let mut plans: HashMap<&str, Arc<Plan>> = HashMap::new();
        for p in &config.plans {
            let Some(group) = group_by_name.get(p.group.as_str()).cloned() else {
                continue;
            };
            let regions = p
                .regions
                .iter()
                .filter_map(|r| {
                    Some(RegionRoute {
                        provinces: r
                            .provinces
                            .iter()
                            .map(|s| region_name(s).to_string())
                            .collect(),
                        cities: r
                            .cities
                            .iter()
                            .map(|s| region_name(s).to_string())
                            .collect(),
                        group: group_by_name.get(r.group.as_str())?.clone(),
                    })
                })
                .collect();
            let plan = Plan {
                name: p.name.clone(),
                group,
                schedule: p
                    .schedule
                    .as_deref()
                    .and_then(|s| schedules.get(s).cloned()),
                after_hours: p
                    .after_hours
                    .as_deref()
                    .and_then(|g| group_by_name.get(g).cloned()),
                hunt_timeout: p.hunt_timeout,
                max_call: p.max_call,
                regions,
                blacklist: NumberList::new(&p.blacklist),
                whitelist: NumberList::new(&p.whitelist),
                block_provinces: p
                    .block_provinces
                    .iter()
                    .map(|s| region_name(s).to_string())
                    .collect(),
                block_cities: p
                    .block_cities
                    .iter()
                    .map(|s| region_name(s).to_string())
                    .collect(),
                reject_anonymous: p.reject_anonymous,
                early_media: p.early_media,
                // Validation built every menu once; one that would not build is dropped
                // (the plan then rings its group), never a panic.
                menu: p.menu.as_deref().and_then(|name| menus.get(name).cloned()),
            };
            plans.insert(p.name.as_str(), Arc::new(plan));
        }
        let enterprises: HashMap<&str, Arc<Enterprise>> = config
            .enterprises
            .iter()
            .map(|e| {
                (
                    e.id.as_str(),
                    Arc::new(Enterprise {
                        id: e.id.clone(),
                        name: e.name.clone(),
                        alert_webhook: e.alert_webhook.clone(),
                        billing: e.billing.clone(),
                        suspended: e.suspended,
                        crm: e.crm.clone(),
                    }),
                )
            })
            .collect();
        let plan_configs: HashMap<&str, &sihai_config::PlanConfig> =
            config.plans.iter().map(|p| (p.name.as_str(), p)).collect();
        let numbers = config
            .numbers
            .iter()
            .filter_map(|n| {
                let plan_config = plan_configs.get(n.plan.as_str())?;
                let enterprise = enterprises.get(n.enterprise.as_str())?.clone();
                let tariff = n
                    .tariff
                    .clone()
                    .or_else(|| enterprise.billing.as_ref().map(|b| Arc::clone(&b.tariff)));
                let active = n.status == NumberStatus::Active && !enterprise.suspended;
                let entry = NumberEntry {
                    number: n.number.clone(),
                    enterprise,
                    active,
                    plan: plans.get(n.plan.as_str())?.clone(),
                    max_concurrent: n.max_concurrent,
                    max_cps: n.max_cps,
                    ringback: n.ringback.clone(),
                    record: n.record,
                    announcements: n.announcements.or(&plan_config.announcements),
                    announcement_plays: n
                        .announcement_plays
                        .unwrap_or(plan_config.announcement_plays),
                    tariff,
                };
                Some((n.number.clone(), Arc::new(entry)))
            })
            .collect();
        let extensions = config
            .extensions
            .iter()
            .filter_map(|e| {
                let group = group_by_name.get(e.group.as_str())?.clone();
                Some((
                    (e.enterprise.clone(), e.number.clone()),
                    Extension {
                        group,
                        ringback: e.ringback.clone(),
                    },
                ))
            })
            .collect();
        RoutingTable {
            trunks,
            numbers,
            groups,
            extensions,
        }
    }

    pub fn trunk_for(&self, source: IpAddr) -> Option<&Arc<Trunk>> {
        self.trunks.iter().find(|t| t.allows(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// acme is billed at "standard"; one of its numbers has "premium" of its own; beta
    /// names no tariff and is not billed.
    const CONFIG: &str = r#"
[sip]
[[sip.listen]]
transport = "udp"
address = "127.0.0.1:5060"
[billing]
min_balance = 100
[[tariff]]
name = "standard"
rate_per_minute = "0.30"
[[tariff]]
name = "premium"
rate_per_minute = "1.00"
[[enterprise]]
id = "acme"
name = "Acme"
tariff = "standard"
[enterprise.billing]
min_balance = "250.50"
[[enterprise]]
id = "beta"
name = "Beta"
[[group]]
name = "sales"
enterprise = "acme"
strategy = "sequential"
phones = [{ number = "13900000001" }]
[[group]]
name = "desk"
enterprise = "beta"
strategy = "sequential"
phones = [{ number = "13900000002" }]
[[plan]]
name = "acme-main"
enterprise = "acme"
group = "sales"
[[plan]]
name = "beta-main"
enterprise = "beta"
group = "desk"
[[number]]
number = "4000000001"
enterprise = "acme"
status = "active"
plan = "acme-main"
[[number]]
number = "4000000002"
enterprise = "acme"
status = "active"
plan = "acme-main"
tariff = "premium"
[[number]]
number = "4000000003"
enterprise = "beta"
status = "active"
plan = "beta-main"
"#;

    #[test]
    fn a_numbers_tariff_is_its_own_else_its_enterprises() {
        let config = Config::from_str(CONFIG, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let table = RoutingTable::compile(&config);
        let tariff = |number: &str| {
            table.numbers[number]
                .tariff
                .as_ref()
                .map(|t| t.name().to_owned())
        };
        assert_eq!(tariff("4000000001").as_deref(), Some("standard"));
        assert_eq!(tariff("4000000002").as_deref(), Some("premium"));
        assert_eq!(tariff("4000000003"), None, "beta is not billed");

        // The table shares the configuration's tariffs rather than copying them.
        let standard = config.tariff("standard").expect("declared");
        let entry = &table.numbers["4000000001"];
        assert!(
            entry
                .tariff
                .as_ref()
                .is_some_and(|t| Arc::ptr_eq(t, standard))
        );

        assert!(entry.enterprise.is_billed());
        assert_eq!(
            entry.enterprise.min_balance(),
            Some("250.50".parse().expect("amount"))
        );
        let beta = &table.numbers["4000000003"].enterprise;
        assert!(!beta.is_billed());
        assert_eq!(beta.min_balance(), None);
    }

    #[test]
    fn a_suspended_enterprise_takes_its_numbers_out_of_service_without_their_status() {
        let suspended = CONFIG.replace(
            "id = \"acme\"\nname = \"Acme\"\n",
            "id = \"acme\"\nname = \"Acme\"\nsuspended = true\n",
        );
        assert_ne!(suspended, CONFIG);
        let config = Config::from_str(&suspended, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let table = RoutingTable::compile(&config);
        assert!(!table.numbers["4000000001"].active);
        assert!(!table.numbers["4000000002"].active);
        assert!(table.numbers["4000000003"].active, "beta is not suspended");
        // Each number keeps its own status: resuming restores it.
        assert!(
            config
                .numbers
                .iter()
                .all(|n| n.status == NumberStatus::Active)
        );
        let resumed = Config::from_str(CONFIG, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let table = RoutingTable::compile(&resumed);
        assert!(table.numbers["4000000001"].active);
    }
}
