//! End-to-end checks of the routing sections (`[store]`, `[alerts]`, `[[trunk]]`,
//! `[[enterprise]]`, `[[number]]`, `[[plan]]`, `[[group]]`, `[[schedule]]`): each kind of
//! error with the line, column, field and message an operator sees.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::date;

use super::{MINIMAL, assert_one_error, errors, parse};
use crate::*;

/// A valid file with every routing section; tests append to it or replace lines.
/// Line numbers are in the comments.
const BASE: &[&str] = &[
    "[sip]",                                            // 1
    "[[sip.listen]]",                                   // 2
    "transport = \"udp\"",                              // 3
    "address = \"127.0.0.1:5060\"",                     // 4
    "[[enterprise]]",                                   // 5
    "id = \"acme\"",                                    // 6
    "name = \"Acme\"",                                  // 7
    "[[enterprise]]",                                   // 8
    "id = \"beta\"",                                    // 9
    "name = \"Beta\"",                                  // 10
    "[[group]]",                                        // 11
    "name = \"sales\"",                                 // 12
    "enterprise = \"acme\"",                            // 13
    "strategy = \"sequential\"",                        // 14
    "phones = [{ number = \"13900000001\" }]",          // 15
    "[[group]]",                                        // 16
    "name = \"beta-desk\"",                             // 17
    "enterprise = \"beta\"",                            // 18
    "strategy = \"simultaneous\"",                      // 19
    "phones = [{ uri = \"sip:1001@127.0.0.1:5090\" }]", // 20
    "[[schedule]]",                                     // 21
    "name = \"office\"",                                // 22
    "monday = [\"09:00-18:00\"]",                       // 23
    "[[plan]]",                                         // 24
    "name = \"acme-main\"",                             // 25
    "enterprise = \"acme\"",                            // 26
    "group = \"sales\"",                                // 27
    "[[number]]",                                       // 28
    "number = \"4001234567\"",                          // 29
    "enterprise = \"acme\"",                            // 30
    "status = \"active\"",                              // 31
    "plan = \"acme-main\"",                             // 32
];

/// `BASE` followed by `extra`, which starts at line 33.
fn base_with(extra: &[&str]) -> Vec<String> {
    BASE.iter()
        .chain(extra)
        .map(|line| line.to_string())
        .collect()
}

/// `BASE` with line `line` (1-based) replaced by `text`.
fn base_replacing(line: usize, text: &str) -> Vec<String> {
    let mut lines = base_with(&[]);
    lines[line - 1] = text.to_owned();
    lines
}

/// `BASE` with lines replaced and `extra` appended.
fn base_edited(replacements: &[(usize, &str)], extra: &[&str]) -> Vec<String> {
    let mut lines = base_with(extra);
    for (line, text) in replacements {
        lines[line - 1] = (*text).to_owned();
    }
    lines
}

/// `BASE` with `extra` inserted after line `after`, so that it starts at `after + 1`.
fn inserting(after: usize, extra: &[&str]) -> Vec<String> {
    let mut lines = base_with(&[]);
    lines.splice(after..after, extra.iter().map(|line| line.to_string()));
    lines
}

/// Extra lines for `[[plan]]` (the plan ends at line 27): they start at line 28.
fn plan_with(extra: &[&str]) -> Vec<String> {
    inserting(27, extra)
}

/// Extra lines for `[[schedule]]` (it ends at line 23): they start at line 24.
fn schedule_with(extra: &[&str]) -> Vec<String> {
    inserting(23, extra)
}

fn ok(lines: &[impl AsRef<str>]) -> Config {
    parse(lines).unwrap_or_else(|errors| panic!("{errors}"))
}

/// (line, field) of every error, in order.
fn found(lines: &[impl AsRef<str>]) -> Vec<(usize, String)> {
    errors(lines)
        .into_iter()
        .map(|error| (error.line, error.field))
        .collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

// ---- valid files ------------------------------------------------------------------

#[test]
fn routing_sections_are_optional() {
    let config = ok(MINIMAL);
    assert_eq!(config.store, StoreConfig::default());
    assert_eq!(config.store.sqlite, PathBuf::from("var/sihai.db"));
    assert_eq!(config.store.commit_interval, Duration::from_millis(50));
    assert_eq!(
        config.alerts,
        AlertConfig {
            webhook_timeout: Duration::from_secs(3),
            max_attempts: 8,
            ca_file: None,
        }
    );
    assert!(config.trunks.is_empty());
    assert!(config.enterprises.is_empty());
    assert!(config.numbers.is_empty());
    assert!(config.plans.is_empty());
    assert!(config.groups.is_empty());
    assert!(config.schedules.is_empty());
}

#[test]
fn base_file_takes_the_defaults() {
    let config = ok(BASE);
    assert_eq!(
        config.numbers,
        vec![NumberConfig {
            number: "4001234567".into(),
            enterprise: "acme".into(),
            status: NumberStatus::Active,
            plan: "acme-main".into(),
            max_concurrent: None,
            max_cps: None,
            ringback: None,
            record: false,
            announcements: Announcements::default(),
            announcement_plays: None,
            tariff: None,
        }]
    );
    assert_eq!(
        config.plans,
        vec![PlanConfig {
            name: "acme-main".into(),
            enterprise: "acme".into(),
            group: "sales".into(),
            menu: None,
            early_media: EarlyMedia::Ringback,
            schedule: None,
            after_hours: None,
            hunt_timeout: Duration::from_secs(60),
            max_call: Duration::from_secs(7200),
            regions: vec![],
            blacklist: vec![],
            whitelist: vec![],
            block_provinces: vec![],
            block_cities: vec![],
            reject_anonymous: false,
            announcements: Announcements::default(),
            announcement_plays: 1,
        }]
    );
    assert_eq!(
        config.groups[0].phones,
        vec![PhoneConfig {
            target: PhoneTarget::Number("13900000001".into()),
            ring_timeout: Duration::from_secs(20),
            capacity: 1,
            weight: 1,
            enabled: true,
        }]
    );
    assert_eq!(config.groups[1].strategy, HuntStrategy::Simultaneous);
    assert_eq!(
        config.groups[1].phones[0].target,
        PhoneTarget::Uri("sip:1001@127.0.0.1:5090".into())
    );
    let schedule = &config.schedules[0];
    assert_eq!(
        schedule.weekly[0],
        vec![TimeRange {
            start: 540,
            end: 1080
        }]
    );
    assert!(schedule.weekly[1..].iter().all(Vec::is_empty));
    // Workday hours default to Monday's.
    assert_eq!(schedule.workday_hours, schedule.weekly[0]);
    assert_eq!(config.enterprises[1].alert_webhook, None);
    assert!(config.enterprises[1].alert_contacts.is_empty());
}

#[test]
fn every_setting_is_read() {
    let config = ok(&base_with(&[
        "[store]",                                                      // 33
        "sqlite = \"/var/lib/sihai/cdr.db\"",                           // 34
        "commit_interval_ms = 5000",                                    // 35
        "[alerts]",                                                     // 36
        "webhook_timeout_ms = 60000",                                   // 37
        "max_attempts = 1",                                             // 38
        "ca_file = \"certs/private-ca.pem\"",                           // 39
        "[[trunk]]",                                                    // 40
        "name = \"lab\"",                                               // 41
        "sources = [\"127.0.0.1\", \"10.0.0.0/8\", \"2001:db8::/32\"]", // 42
        "gateway = \"sips:{number}@gw.example.com;transport=tcp\"",     // 43
        "[[enterprise]]",
        "id = \"gamma_3-x\"",
        "name = \"上海某某科技有限公司\"",
        "alert_webhook = \"https://crm.example.com/missed?src=sihai\"",
        "alert_contacts = [\"13800138000\", \"02112345678\"]",
        "alert_secret = \"s3cret-s3cret-s3cret\"",
        "[[group]]",
        "name = \"bj\"",
        "enterprise = \"acme\"",
        "strategy = \"weighted\"",
        "phones = [",
        "  { number = \"13900000011\", ring_timeout_s = 300, capacity = 1000, weight = 1000, enabled = false },",
        "  { uri = \"sips:a@[::1]:5061\", ring_timeout_s = 1 },",
        "]",
        "[[group]]",
        "name = \"night\"",
        "enterprise = \"acme\"",
        "strategy = \"longest_idle\"",
        "phones = [{ number = \"13900000021\" }]",
        "[[group]]",
        "name = \"rr\"",
        "enterprise = \"acme\"",
        "strategy = \"round_robin\"",
        "phones = [{ number = \"13900000031\" }]",
        "[[group]]",
        "name = \"rnd\"",
        "enterprise = \"acme\"",
        "strategy = \"random\"",
        "phones = [{ number = \"13900000041\" }]",
        "[[schedule]]",
        "name = \"split\"",
        "tuesday = [\"13:30-18:00\", \"09:00-12:00\", \"12:00-12:30\"]",
        "sunday = [\"00:00-24:00\"]",
        "saturday = []",
        "holidays = [\"2026-10-01\", 2026-10-02]",
        "workdays = [\"2026-09-27\"]",
        "workday_hours = [\"10:00-16:00\"]",
        "[[plan]]",
        "name = \"acme-full\"",
        "enterprise = \"acme\"",
        "group = \"sales\"",
        "schedule = \"split\"",
        "after_hours = \"night\"",
        "hunt_timeout_s = 3600",
        "max_call_s = 86400",
        "regions = [",
        "  { provinces = [\"北京\", \"河北省\"], group = \"bj\" },",
        "  { cities = [\"上海\"], provinces = [\"广西壮族自治区\"], group = \"rr\" },",
        "]",
        "blacklist = [\"13900000000\", \"170*\"]",
        "whitelist = [\"139*\", \"13800138000\"]",
        "block_provinces = [\"新疆\"]",
        "block_cities = [\"深圳\"]",
        "reject_anonymous = true",
        "[[number]]",
        "number = \"400-123-4568\"",
        "enterprise = \"acme\"",
        "status = \"suspended\"",
        "plan = \"acme-full\"",
        "max_concurrent = 100000",
        "max_cps = 1",
    ]));
    assert_eq!(config.store.sqlite, PathBuf::from("/var/lib/sihai/cdr.db"));
    assert_eq!(config.store.commit_interval, Duration::from_secs(5));
    assert_eq!(config.alerts.webhook_timeout, Duration::from_secs(60));
    assert_eq!(config.alerts.max_attempts, 1);
    assert_eq!(
        config.alerts.ca_file.as_deref(),
        Some(Path::new("certs/private-ca.pem"))
    );

    let trunk = &config.trunks[0];
    assert_eq!(trunk.name, "lab");
    assert_eq!(
        trunk
            .sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"]
    );
    assert!(trunk.allows(ip("10.9.8.7")) && trunk.allows(ip("2001:db8::5")));
    assert!(!trunk.allows(ip("127.0.0.2")));
    assert_eq!(
        trunk.gateway_uri("139"),
        "sips:139@gw.example.com;transport=tcp"
    );

    let gamma = &config.enterprises[2];
    assert_eq!(gamma.id, "gamma_3-x");
    assert_eq!(gamma.name, "上海某某科技有限公司");
    assert_eq!(
        gamma.alert_webhook.as_deref(),
        Some("https://crm.example.com/missed?src=sihai")
    );
    assert_eq!(gamma.alert_contacts, ["13800138000", "02112345678"]);
    assert_eq!(
        gamma.alert_secret.as_ref().map(AlertSecret::expose),
        Some("s3cret-s3cret-s3cret")
    );
    assert_eq!(config.enterprises[0].alert_secret, None);

    let strategies: Vec<_> = config.groups.iter().map(|g| g.strategy).collect();
    assert_eq!(
        strategies,
        [
            HuntStrategy::Sequential,
            HuntStrategy::Simultaneous,
            HuntStrategy::Weighted,
            HuntStrategy::LongestIdle,
            HuntStrategy::RoundRobin,
            HuntStrategy::Random,
        ]
    );
    let bj = &config.groups[2];
    assert_eq!(
        bj.phones,
        vec![
            PhoneConfig {
                target: PhoneTarget::Number("13900000011".into()),
                ring_timeout: Duration::from_secs(300),
                capacity: 1000,
                weight: 1000,
                enabled: false,
            },
            PhoneConfig {
                target: PhoneTarget::Uri("sips:a@[::1]:5061".into()),
                ring_timeout: Duration::from_secs(1),
                capacity: 1,
                weight: 1,
                enabled: true,
            },
        ]
    );

    let split = &config.schedules[1];
    let range = |start, end| TimeRange { start, end };
    assert_eq!(split.weekly[0], vec![]);
    // Sorted, whatever the order written.
    assert_eq!(
        split.weekly[1],
        vec![range(540, 720), range(720, 750), range(810, 1080)]
    );
    assert_eq!(split.weekly[5], vec![]);
    assert_eq!(split.weekly[6], vec![range(0, 1440)]);
    // A string and a TOML date are both accepted.
    assert_eq!(split.holidays, [date(2026, 10, 1), date(2026, 10, 2)]);
    assert_eq!(split.workdays, [date(2026, 9, 27)]);
    assert_eq!(split.workday_hours, vec![range(600, 960)]);

    let plan = &config.plans[1];
    assert_eq!(plan.schedule.as_deref(), Some("split"));
    assert_eq!(plan.after_hours.as_deref(), Some("night"));
    assert_eq!(plan.hunt_timeout, Duration::from_secs(3600));
    assert_eq!(plan.max_call, Duration::from_secs(86400));
    assert_eq!(
        plan.regions,
        vec![
            RegionRule {
                provinces: vec!["北京".into(), "河北省".into()],
                cities: vec![],
                group: "bj".into(),
            },
            RegionRule {
                provinces: vec!["广西壮族自治区".into()],
                cities: vec!["上海".into()],
                group: "rr".into(),
            },
        ]
    );
    assert_eq!(
        plan.blacklist,
        [
            ListEntry::Exact("13900000000".into()),
            ListEntry::Prefix("170".into())
        ]
    );
    assert_eq!(
        plan.whitelist,
        [
            ListEntry::Prefix("139".into()),
            ListEntry::Exact("13800138000".into())
        ]
    );
    assert_eq!(plan.block_provinces, ["新疆"]);
    assert_eq!(plan.block_cities, ["深圳"]);
    assert!(plan.reject_anonymous);

    let number = &config.numbers[1];
    assert_eq!(number.number, "4001234568", "stored without the dashes");
    assert_eq!(number.status, NumberStatus::Suspended);
    assert_eq!(number.max_concurrent, Some(100_000));
    assert_eq!(number.max_cps, Some(1));
}

#[test]
fn sample_routing_configuration() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml");
    let config = Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.store, StoreConfig::default());
    assert_eq!(config.alerts, AlertConfig::default());

    assert_eq!(config.trunks.len(), 1);
    let trunk = &config.trunks[0];
    assert_eq!(trunk.name, "carrier-lab");
    assert_eq!(trunk.sources, ["127.0.0.1".parse().expect("net")]);
    assert_eq!(trunk.gateway, "sip:{number}@127.0.0.1:5080");
    assert_eq!(config.enterprises.len(), 2);

    // The number the end-to-end tests call: active, sequential, always open, and no
    // rule that refuses an ordinary mobile caller.
    let main = config
        .numbers
        .iter()
        .find(|n| n.number == "4001234567")
        .expect("4001234567 in the sample");
    assert_eq!(main.status, NumberStatus::Active);
    let plan = config
        .plans
        .iter()
        .find(|p| p.name == main.plan)
        .expect("plan");
    assert_eq!(plan.enterprise, main.enterprise);
    assert_eq!(plan.schedule, None);
    assert!(plan.whitelist.is_empty() && plan.block_provinces.is_empty());
    assert!(plan.block_cities.is_empty() && plan.regions.is_empty());
    let caller = "13812345678";
    assert!(!plan.blacklist.iter().any(|entry| entry.matches(caller)));
    let group = config
        .groups
        .iter()
        .find(|g| g.name == plan.group)
        .expect("group");
    assert_eq!(group.strategy, HuntStrategy::Sequential);
    assert_eq!(
        group.phones.iter().map(|p| &p.target).collect::<Vec<_>>(),
        [
            &PhoneTarget::Number("13900000001".into()),
            &PhoneTarget::Number("13900000002".into())
        ]
    );

    // Between them, the numbers show the main strategies.
    for strategy in [
        HuntStrategy::Sequential,
        HuntStrategy::RoundRobin,
        HuntStrategy::Simultaneous,
    ] {
        assert!(
            config.groups.iter().any(|g| g.strategy == strategy),
            "{strategy:?}"
        );
    }
    assert!(config.numbers.len() >= 3);

    // An office-hours number with an after-hours group.
    let office = config
        .plans
        .iter()
        .find(|p| p.schedule.is_some() && p.after_hours.is_some())
        .expect("an office-hours plan");
    let schedule = config
        .schedules
        .iter()
        .find(|s| Some(&s.name) == office.schedule.as_ref())
        .expect("schedule");
    let nine_to_six = vec![TimeRange {
        start: 9 * 60,
        end: 18 * 60,
    }];
    assert!(schedule.weekly[..5].iter().all(|day| *day == nine_to_six));
    assert!(schedule.weekly[5..].iter().all(Vec::is_empty));
    assert!(schedule.holidays.contains(&date(2026, 10, 1)));
    assert!(!schedule.workdays.is_empty());
    assert!(config.numbers.iter().any(|n| n.plan == office.name));

    // A number routed by region.
    let regional = config
        .plans
        .iter()
        .find(|p| !p.regions.is_empty())
        .expect("a plan with regions");
    assert_eq!(regional.regions[0].provinces, ["北京"]);
    assert_eq!(regional.regions[0].group, "beijing");
    assert_eq!(regional.regions[1].cities, ["上海"]);
    assert_eq!(regional.regions[1].group, "shanghai");
    assert!(config.numbers.iter().any(|n| n.plan == regional.name));
}

// ---- structure ------------------------------------------------------------------------

#[test]
fn unknown_field_in_an_entry_is_indexed() {
    assert_one_error(
        &base_replacing(14, "strategi = \"sequential\""),
        14,
        1,
        "group[0].strategi",
        "unknown field \"strategi\"",
    );
}

#[test]
fn unknown_field_in_a_phone_is_indexed() {
    assert_one_error(
        &base_replacing(15, "phones = [{ number = \"13900000001\", timeout = 5 }]"),
        15,
        37,
        "group[0].phones[0].timeout",
        "unknown field \"timeout\"",
    );
}

#[test]
fn unknown_field_in_store_and_alerts() {
    assert_one_error(
        &base_with(&["[store]", "path = \"x.db\""]),
        34,
        1,
        "store.path",
        "unknown field \"path\", expected one of \"sqlite\", \"commit_interval_ms\", \"url\", \"node\", \"pool_size\", \"connect_timeout_ms\", \"spool\"",
    );
    assert_one_error(
        &base_with(&["[alerts]", "retries = 3"]),
        34,
        1,
        "alerts.retries",
        "unknown field \"retries\"",
    );
}

#[test]
fn missing_required_field_is_named() {
    assert_one_error(
        &base_replacing(31, ""),
        28,
        1,
        "number[0].status",
        "missing field \"status\"",
    );
}

#[test]
fn unknown_strategy_lists_the_strategies() {
    assert_one_error(
        &base_replacing(14, "strategy = \"ring_all\""),
        14,
        12,
        "group[0].strategy",
        "unknown variant \"ring_all\", expected one of \"sequential\", \"round_robin\", \"random\", \
         \"simultaneous\", \"weighted\", \"longest_idle\"",
    );
}

#[test]
fn unknown_status_lists_the_statuses() {
    assert_one_error(
        &base_replacing(31, "status = \"arrears\""),
        31,
        10,
        "number[0].status",
        "unknown variant \"arrears\", expected \"active\" or \"suspended\"",
    );
}

#[test]
fn single_bracket_entry_section_is_explained() {
    assert_one_error(
        &[
            "[sip]",
            "[[sip.listen]]",
            "transport = \"udp\"",
            "address = \"127.0.0.1:5060\"",
            "[trunk]",
            "name = \"lab\"",
        ],
        5,
        1,
        "trunk",
        "must be an array of tables: write [[trunk]] (double brackets) once per trunk",
    );
}

#[test]
fn a_malformed_entry_hides_neither_the_others_nor_its_name() {
    // group[0] has a typo; group[1] has a semantic error. Both are reported, and the
    // plan using group[0] is not told that "sales" does not exist.
    let lines = base_edited(
        &[(14, "strategy = \"sequental\"")],
        &[
            "[[group]]",             // 33
            "name = \"support\"",    // 34
            "enterprise = \"acme\"", // 35
            "strategy = \"random\"", // 36
            "phones = []",           // 37
        ],
    );
    assert_eq!(
        found(&lines),
        [
            (14, "group[0].strategy".into()),
            (37, "group[2].phones".into())
        ]
    );
}

#[test]
fn an_unreadable_section_does_not_make_references_missing() {
    // [group] is not an array, so nothing is known of the groups: the plan's reference
    // to "sales" is not reported.
    let mut lines = base_with(&[]);
    lines.splice(
        10..20,
        ["[group]".to_owned(), "name = \"sales\"".to_owned()],
    );
    let errors = errors(&lines);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!((errors[0].line, errors[0].field.as_str()), (11, "group"));
}

// ---- store and alerts -----------------------------------------------------------------

#[test]
fn store_settings_are_checked() {
    assert_one_error(
        &base_with(&["[store]", "commit_interval_ms = 0"]),
        34,
        22,
        "store.commit_interval_ms",
        "0 is out of range; must be between 1 and 5000",
    );
    assert_one_error(
        &base_with(&["[store]", "sqlite = \"\""]),
        34,
        10,
        "store.sqlite",
        "must not be empty",
    );
    assert_one_error(
        &base_with(&["[store]", "sqlite = \"var/\""]),
        34,
        10,
        "store.sqlite",
        "names a directory",
    );
}

#[test]
fn alert_settings_are_checked() {
    assert_one_error(
        &base_with(&["[alerts]", "max_attempts = 0"]),
        34,
        16,
        "alerts.max_attempts",
        "0 is out of range; must be between 1 and 100",
    );
    assert_one_error(
        &base_with(&["[alerts]", "webhook_timeout_ms = 60001"]),
        34,
        22,
        "alerts.webhook_timeout_ms",
        "60001 is out of range; must be between 1 and 60000",
    );
    assert_one_error(
        &base_with(&["[alerts]", "ca_file = \"\""]),
        34,
        11,
        "alerts.ca_file",
        "must not be empty; remove the setting to trust the system's roots only",
    );
    assert_one_error(
        &base_with(&["[alerts]", "ca_file = \"certs/\""]),
        34,
        11,
        "alerts.ca_file",
        "\"certs/\" names a directory; give a PEM file of CA certificates",
    );
    assert_one_error(
        &base_with(&["[alerts]", "ca_file = \"ca\\u0007.pem\""]),
        34,
        11,
        "alerts.ca_file",
        "must not contain control characters",
    );
}

#[test]
fn ca_file_is_relative_to_the_configuration_file() {
    let text = base_with(&["[alerts]", "ca_file = \"certs/private-ca.pem\""]).join("\n");
    let config = Config::from_str(&text, "/etc/sihai/sihai.toml").expect("valid");
    assert_eq!(
        config.alerts.ca_file.as_deref(),
        Some(Path::new("/etc/sihai/certs/private-ca.pem"))
    );
    let text = base_with(&["[alerts]", "ca_file = \"/opt/ca.pem\""]).join("\n");
    let config = Config::from_str(&text, "/etc/sihai/sihai.toml").expect("valid");
    assert_eq!(
        config.alerts.ca_file.as_deref(),
        Some(Path::new("/opt/ca.pem"))
    );
}

// ---- trunks ---------------------------------------------------------------------------

/// A trunk whose line 34 is `sources`, 35 `gateway`.
fn trunk(sources: &str, gateway: &str) -> Vec<String> {
    let sources = format!("sources = {sources}");
    let gateway = format!("gateway = \"{gateway}\"");
    base_with(&["[[trunk]]", "name = \"lab\"", &sources, &gateway])
        .into_iter()
        .collect()
}

#[test]
fn trunk_without_number_placeholder_is_rejected() {
    assert_one_error(
        &trunk("[\"127.0.0.1\"]", "sip:127.0.0.1:5080"),
        36,
        11,
        "trunk[0].gateway",
        "must contain {number}",
    );
}

#[test]
fn trunk_gateway_must_make_a_sip_uri() {
    assert_one_error(
        &trunk("[\"127.0.0.1\"]", "http://{number}@127.0.0.1/"),
        36,
        11,
        "trunk[0].gateway",
        "does not make a valid SIP URI (\"http://13900000001@127.0.0.1/\")",
    );
    assert_one_error(
        &trunk("[\"127.0.0.1\"]", "sip:{number}@"),
        36,
        11,
        "trunk[0].gateway",
        "does not make a valid SIP URI",
    );
}

#[test]
fn trunk_sources_must_be_addresses_or_networks() {
    assert_one_error(
        &trunk("[\"127.0.0.1\", \"10.1.0.0/8\"]", "sip:{number}@127.0.0.1"),
        35,
        25,
        "trunk[0].sources[1]",
        "invalid source \"10.1.0.0/8\": the address has bits set after the /8 prefix; did you mean \"10.0.0.0/8\"?",
    );
    assert_one_error(
        &trunk("[\"300.0.0.1\"]", "sip:{number}@127.0.0.1"),
        35,
        12,
        "trunk[0].sources[0]",
        "invalid source \"300.0.0.1\": not an IP address or CIDR network",
    );
    assert_one_error(
        &trunk("[\"::1/129\"]", "sip:{number}@127.0.0.1"),
        35,
        12,
        "trunk[0].sources[0]",
        "prefix length 129 is too long; at most 128 for IPv6",
    );
    assert_one_error(
        &trunk("[]", "sip:{number}@127.0.0.1"),
        35,
        11,
        "trunk[0].sources",
        "at least one source address is required",
    );
}

#[test]
fn duplicate_trunk_names_are_rejected() {
    assert_one_error(
        &base_with(&[
            "[[trunk]]",                            // 33
            "name = \"lab\"",                       // 34
            "sources = [\"127.0.0.1\"]",            // 35
            "gateway = \"sip:{number}@127.0.0.1\"", // 36
            "[[trunk]]",                            // 37
            "name = \"lab\"",                       // 38
            "sources = [\"127.0.0.2\"]",            // 39
            "gateway = \"sip:{number}@127.0.0.2\"", // 40
        ]),
        38,
        8,
        "trunk[1].name",
        "duplicate trunk name \"lab\": already declared by trunk[0] at line 34",
    );
}

// ---- enterprises ----------------------------------------------------------------------

#[test]
fn duplicate_enterprise_ids_are_rejected() {
    let lines = base_replacing(9, "id = \"acme\"");
    let errors = errors(&lines);
    assert_eq!(
        errors[0].to_string(),
        "test.toml:9:6: enterprise[1].id: duplicate enterprise id \"acme\": already declared by \
         enterprise[0] at line 6"
    );
    // With "beta" gone, its group's enterprise is missing too.
    assert_eq!(
        found(&lines),
        [
            (9, "enterprise[1].id".into()),
            (18, "group[1].enterprise".into())
        ]
    );
}

#[test]
fn enterprise_ids_are_lowercase_words() {
    let errors = errors(&base_replacing(9, "id = \"Beta Co\""));
    // The bad id is reported once; entries naming "beta" are then reported as missing.
    let fields: Vec<_> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        fields,
        [(9, "enterprise[1].id"), (18, "group[1].enterprise")],
        "{errors:#?}"
    );
    assert!(
        errors[0]
            .message
            .contains("invalid enterprise id \"Beta Co\": use lowercase letters")
    );
}

#[test]
fn enterprise_webhook_and_contacts_are_checked() {
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "alert_webhook = \"ftp://x/\"",
        ]),
        36,
        17,
        "enterprise[2].alert_webhook",
        "invalid webhook URL \"ftp://x/\": must start with http:// or https://",
    );
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "alert_contacts = [\"138-0013-8000\"]",
        ]),
        36,
        19,
        "enterprise[2].alert_contacts[0]",
        "invalid contact \"138-0013-8000\"",
    );
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "alert_secret = \"short-secret\"",
        ]),
        36,
        16,
        "enterprise[2].alert_secret",
        "too short (12 characters); use at least 16 random characters",
    );
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "alert_secret = \"0123456789abcdef\\t\"",
        ]),
        36,
        16,
        "enterprise[2].alert_secret",
        "must not contain control characters",
    );
    let errors = errors(&base_with(&[
        "[[enterprise]]",
        "id = \"c\"",
        "name = \"C\"",
        "alert_secret = \"hunter2-hunter2\"",
    ]));
    assert!(
        !errors[0].to_string().contains("hunter2"),
        "an error never repeats the secret: {}",
        errors[0]
    );
    assert_one_error(
        &base_replacing(7, "name = \" \""),
        7,
        8,
        "enterprise[0].name",
        "must not be empty",
    );
}

#[test]
fn enterprise_api_sources_are_networks_and_default_to_anywhere() {
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "api_sources = [\"10.0.0.0/8\", \"10.0.0.1/8\"]",
        ]),
        36,
        30,
        "enterprise[2].api_sources[1]",
        "invalid source network \"10.0.0.1/8\": the address has bits set after the /8 prefix",
    );
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "api_sources = [\"localhost\"]",
        ]),
        36,
        16,
        "enterprise[2].api_sources[0]",
        "not an IP address or CIDR network",
    );
    let config = ok(&base_with(&[
        "[[enterprise]]",
        "id = \"c\"",
        "name = \"C\"",
        "api_sources = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]",
    ]));
    let c = &config.enterprises[2];
    let ip = |text: &str| text.parse::<std::net::IpAddr>().expect("test address");
    assert_eq!(c.api_sources.len(), 3);
    assert!(c.api_sources.iter().any(|n| n.contains(ip("10.1.2.3"))));
    assert!(c.api_sources.iter().any(|n| n.contains(ip("192.0.2.7"))));
    assert!(!c.api_sources.iter().any(|n| n.contains(ip("192.0.2.8"))));
    assert!(
        config.enterprises[0].api_sources.is_empty(),
        "absent: anywhere"
    );
}

// ---- numbers --------------------------------------------------------------------------

/// A second number at lines 33–37 with the given `number` line.
fn second_number(number: &str) -> Vec<String> {
    base_with(&[
        "[[number]]",            // 33
        number,                  // 34
        "enterprise = \"acme\"", // 35
        "status = \"active\"",   // 36
        "plan = \"acme-main\"",  // 37
    ])
}

#[test]
fn duplicate_numbers_are_found_after_normalisation() {
    assert_one_error(
        &second_number("number = \"400-123-4567\""),
        34,
        10,
        "number[1].number",
        "duplicate number \"4001234567\": already declared by number[0] at line 29",
    );
}

#[test]
fn malformed_400_numbers_are_rejected() {
    for bad in [
        "400123456",
        "8001234567",
        "400-123-456x",
        "+864001234567",
        "4001234567 ",
    ] {
        let line = format!("number = \"{bad}\"");
        assert_one_error(
            &second_number(&line),
            34,
            10,
            "number[1].number",
            &format!("invalid 400 number {bad:?}: expected 10 digits starting with 400"),
        );
    }
}

#[test]
fn number_references_are_checked() {
    assert_one_error(
        &base_replacing(30, "enterprise = \"acm\""),
        30,
        14,
        "number[0].enterprise",
        "no [[enterprise]] with id \"acm\"; the enterprises are \"acme\", \"beta\"",
    );
    assert_one_error(
        &base_replacing(32, "plan = \"acme-mian\""),
        32,
        8,
        "number[0].plan",
        "no [[plan]] with name \"acme-mian\"; the plans of enterprise \"acme\" are \"acme-main\"",
    );
}

#[test]
fn number_plan_of_another_enterprise_is_rejected() {
    assert_one_error(
        &base_replacing(30, "enterprise = \"beta\""),
        32,
        8,
        "number[0].plan",
        "plan \"acme-main\" belongs to enterprise \"acme\", not to \"beta\"",
    );
}

#[test]
fn number_limits_are_checked() {
    assert_one_error(
        &base_with(&["max_concurrent = 0"]),
        33,
        18,
        "number[0].max_concurrent",
        "0 would refuse every call",
    );
    assert_one_error(
        &base_with(&["max_cps = 10001"]),
        33,
        11,
        "number[0].max_cps",
        "10001 is out of range; must be between 1 and 10000",
    );
}

// ---- plans ----------------------------------------------------------------------------

#[test]
fn duplicate_plan_names_are_rejected() {
    assert_one_error(
        &base_with(&[
            "[[plan]]",              // 33
            "name = \"acme-main\"",  // 34
            "enterprise = \"acme\"", // 35
            "group = \"sales\"",     // 36
        ]),
        34,
        8,
        "plan[1].name",
        "duplicate plan name \"acme-main\": already declared by plan[0] at line 25",
    );
}

#[test]
fn plan_references_must_exist() {
    assert_one_error(
        &base_replacing(26, "enterprise = \"nobody\""),
        26,
        14,
        "plan[0].enterprise",
        "no [[enterprise]] with id \"nobody\"",
    );
    assert_one_error(
        &base_replacing(27, "group = \"sale\""),
        27,
        9,
        "plan[0].group",
        "no [[group]] with name \"sale\"; the groups of enterprise \"acme\" are \"sales\"",
    );
    assert_one_error(
        &plan_with(&["schedule = \"ofice\""]),
        28,
        12,
        "plan[0].schedule",
        "no [[schedule]] with name \"ofice\"; the schedules of enterprise \"acme\" are \"office\"",
    );
    assert_one_error(
        &plan_with(&["after_hours = \"night\""]),
        28,
        15,
        "plan[0].after_hours",
        "no [[group]] with name \"night\"",
    );
}

#[test]
fn plan_groups_must_belong_to_its_enterprise() {
    assert_one_error(
        &base_replacing(27, "group = \"beta-desk\""),
        27,
        9,
        "plan[0].group",
        "group \"beta-desk\" belongs to enterprise \"beta\", not to \"acme\"",
    );
    assert_one_error(
        &plan_with(&["after_hours = \"beta-desk\""]),
        28,
        15,
        "plan[0].after_hours",
        "group \"beta-desk\" belongs to enterprise \"beta\", not to \"acme\"",
    );
    assert_one_error(
        &plan_with(&["regions = [{ cities = [\"上海\"], group = \"beta-desk\" }]"]),
        28,
        39,
        "plan[0].regions[0].group",
        "group \"beta-desk\" belongs to enterprise \"beta\", not to \"acme\"",
    );
}

#[test]
fn a_misspelt_enterprise_is_reported_once() {
    // The plan's enterprise does not exist: its group is not also blamed for belonging
    // to another enterprise.
    assert_eq!(
        found(&base_edited(&[(26, "enterprise = \"acm\"")], &[])),
        [(26, "plan[0].enterprise".into())]
    );
}

#[test]
fn region_rules_are_checked() {
    assert_one_error(
        &plan_with(&["regions = [{ group = \"sales\" }]"]),
        28,
        12,
        "plan[0].regions[0]",
        "a region rule needs provinces or cities (or both)",
    );
    assert_one_error(
        &plan_with(&["regions = [{ provinces = [\"Beijing\"], group = \"sales\" }]"]),
        28,
        27,
        "plan[0].regions[0].provinces[0]",
        "unknown province \"Beijing\"",
    );
    assert_one_error(
        &plan_with(&["regions = [{ cities = [\"上海\"], group = \"shanghai\" }]"]),
        28,
        39,
        "plan[0].regions[0].group",
        "no [[group]] with name \"shanghai\"",
    );
    assert_one_error(
        &plan_with(&["regions = [{ cities = [\"上海\"] }]"]),
        28,
        12,
        "plan[0].regions[0].group",
        "missing field \"group\"",
    );
}

#[test]
fn list_entries_must_be_digits_or_prefixes() {
    assert_one_error(
        &plan_with(&["blacklist = [\"13900000000\", \"139-0000-0001\"]"]),
        28,
        29,
        "plan[0].blacklist[1]",
        "invalid blacklist entry \"139-0000-0001\": expected a caller number (digits only) or a prefix ending in *",
    );
    assert_one_error(
        &plan_with(&["whitelist = [\"*\"]"]),
        28,
        14,
        "plan[0].whitelist[0]",
        "\"*\" alone would match every caller",
    );
    assert_one_error(
        &plan_with(&["whitelist = [\"1*0\"]"]),
        28,
        14,
        "plan[0].whitelist[0]",
        "invalid whitelist entry \"1*0\"",
    );
}

#[test]
fn blocked_regions_are_checked() {
    assert_one_error(
        &plan_with(&["block_provinces = [\"北京\", \"深圳\"]"]),
        28,
        26,
        "plan[0].block_provinces[1]",
        "unknown province \"深圳\"",
    );
    assert_one_error(
        &plan_with(&["block_cities = [\"\"]"]),
        28,
        17,
        "plan[0].block_cities[0]",
        "invalid city \"\"",
    );
}

#[test]
fn plan_durations_are_checked() {
    assert_one_error(
        &plan_with(&["hunt_timeout_s = 0"]),
        28,
        18,
        "plan[0].hunt_timeout_s",
        "0 is out of range; must be between 1 and 3600",
    );
    assert_one_error(
        &plan_with(&["max_call_s = 86401"]),
        28,
        14,
        "plan[0].max_call_s",
        "86401 is out of range; must be between 1 and 86400",
    );
}

// ---- groups ---------------------------------------------------------------------------

#[test]
fn duplicate_group_names_are_rejected() {
    assert_one_error(
        &base_replacing(17, "name = \"sales\""),
        17,
        8,
        "group[1].name",
        "duplicate group name \"sales\": already declared by group[0] at line 12",
    );
}

#[test]
fn group_enterprise_must_exist() {
    assert_one_error(
        &base_replacing(18, "enterprise = \"bet\""),
        18,
        14,
        "group[1].enterprise",
        "no [[enterprise]] with id \"bet\"",
    );
}

#[test]
fn phone_needs_exactly_one_target() {
    assert_one_error(
        &base_replacing(
            15,
            "phones = [{ number = \"13900000001\", uri = \"sip:a@b\" }]",
        ),
        15,
        11,
        "group[0].phones[0]",
        "a phone has either a number or a uri, not both",
    );
    assert_one_error(
        &base_replacing(
            15,
            "phones = [{ number = \"13900000001\" }, { ring_timeout_s = 5 }]",
        ),
        15,
        39,
        "group[0].phones[1]",
        "a phone needs a number",
    );
}

#[test]
fn phone_targets_are_checked() {
    assert_one_error(
        &base_replacing(15, "phones = [{ number = \"1390\" }]"),
        15,
        22,
        "group[0].phones[0].number",
        "invalid phone number \"1390\": 5 to 20 digits",
    );
    assert_one_error(
        &base_replacing(20, "phones = [{ uri = \"tel:+8613900000001\" }]"),
        20,
        19,
        "group[1].phones[0].uri",
        "invalid phone URI \"tel:+8613900000001\": must be a sip: or sips: URI",
    );
    assert_one_error(
        &base_replacing(20, "phones = [{ uri = \"sip:1001@bad host\" }]"),
        20,
        19,
        "group[1].phones[0].uri",
        "invalid phone URI \"sip:1001@bad host\"",
    );
}

#[test]
fn phone_settings_are_checked() {
    let errors = found(&base_replacing(
        15,
        "phones = [{ number = \"13900000001\", ring_timeout_s = 0, capacity = 1001, weight = 0 }]",
    ));
    assert_eq!(
        errors,
        [
            (15, "group[0].phones[0].ring_timeout_s".into()),
            (15, "group[0].phones[0].capacity".into()),
            (15, "group[0].phones[0].weight".into()),
        ]
    );
}

#[test]
fn duplicate_phones_in_a_group_are_rejected() {
    assert_one_error(
        &base_replacing(
            15,
            "phones = [{ number = \"13900000001\" }, { number = \"13900000002\" }, { number = \"13900000001\" }]",
        ),
        15,
        78,
        "group[0].phones[2].number",
        "duplicate phone \"13900000001\": already group[0].phones[0] at line 15",
    );
}

#[test]
fn group_needs_an_enabled_phone() {
    assert_one_error(
        &base_replacing(
            15,
            "phones = [{ number = \"13900000001\", enabled = false }]",
        ),
        15,
        10,
        "group[0].phones",
        "group has no enabled phone",
    );
    assert_one_error(
        &base_replacing(15, "phones = []"),
        15,
        10,
        "group[0].phones",
        "at least one phone is required",
    );
    assert_one_error(
        &base_replacing(15, ""),
        11,
        1,
        "group[0].phones",
        "at least one phone is required",
    );
}

#[test]
fn group_has_at_most_200_phones() {
    let phones: Vec<String> = (0..=MAX_PHONES)
        .map(|i| format!("{{ number = \"139{i:08}\" }}"))
        .collect();
    let line = format!("phones = [{}]", phones.join(", "));
    assert_one_error(
        &base_replacing(15, &line),
        15,
        10,
        "group[0].phones",
        "201 phones is too many; a group has at most 200",
    );
    let line = format!("phones = [{}]", phones[..MAX_PHONES].join(", "));
    assert!(parse(&base_replacing(15, &line)).is_ok());
}

// ---- schedules ------------------------------------------------------------------------

#[test]
fn duplicate_schedule_names_are_rejected() {
    assert_one_error(
        &base_with(&["[[schedule]]", "name = \"office\""]),
        34,
        8,
        "schedule[1].name",
        "duplicate schedule name \"office\": already declared by schedule[0] at line 22",
    );
}

#[test]
fn malformed_time_ranges_are_rejected() {
    for bad in ["9:00-18:00", "09:00~18:00", "09:00-18:00 "] {
        let line = format!("monday = [\"{bad}\"]");
        assert_one_error(
            &base_replacing(23, &line),
            23,
            11,
            "schedule[0].monday[0]",
            &format!("invalid time range {bad:?}: expected \"HH:MM-HH:MM\""),
        );
    }
    assert_one_error(
        &base_replacing(23, "monday = [\"09:00-24:30\"]"),
        23,
        11,
        "schedule[0].monday[0]",
        "24:30: hours must be 00 to 24, and 24 only as 24:00",
    );
    assert_one_error(
        &base_replacing(23, "monday = [\"09:61-10:00\"]"),
        23,
        11,
        "schedule[0].monday[0]",
        "09:61: minutes must be 00 to 59",
    );
}

#[test]
fn time_range_must_start_before_it_ends() {
    assert_one_error(
        &base_replacing(23, "monday = [\"18:00-09:00\"]"),
        23,
        11,
        "schedule[0].monday[0]",
        "the start must be before the end",
    );
    assert_one_error(
        &schedule_with(&["sunday = [\"12:00-12:00\"]"]),
        24,
        11,
        "schedule[0].sunday[0]",
        "the start must be before the end",
    );
}

#[test]
fn overlapping_ranges_in_a_day_are_rejected() {
    assert_one_error(
        &base_replacing(
            23,
            "monday = [\"09:00-12:00\", \"13:00-18:00\", \"11:30-13:30\"]",
        ),
        23,
        41,
        "schedule[0].monday[2]",
        "11:30-13:30 overlaps 09:00-12:00 (schedule[0].monday[0] at line 23)",
    );
    // Touching ranges do not overlap.
    assert!(
        parse(&base_replacing(
            23,
            "monday = [\"09:00-12:00\", \"12:00-18:00\"]"
        ))
        .is_ok()
    );
}

#[test]
fn holiday_and_workday_on_the_same_date_are_rejected() {
    assert_one_error(
        &schedule_with(&[
            "holidays = [\"2026-10-01\", \"2026-10-02\"]", // 24
            "workdays = [\"2026-09-27\", \"2026-10-02\"]", // 25
        ]),
        25,
        27,
        "schedule[0].workdays[1]",
        "2026-10-02 is both a holiday (schedule[0].holidays[1] at line 24) and a make-up working day",
    );
}

#[test]
fn bad_dates_are_rejected() {
    assert_one_error(
        &schedule_with(&["holidays = [\"2026-02-30\"]"]),
        24,
        13,
        "schedule[0].holidays[0]",
        "invalid date \"2026-02-30\": there is no day 30 in month 2 of 2026",
    );
    assert_one_error(
        &schedule_with(&["workdays = [\"2026/09/27\"]"]),
        24,
        13,
        "schedule[0].workdays[0]",
        "invalid date \"2026/09/27\": expected \"YYYY-MM-DD\"",
    );
    assert_one_error(
        &schedule_with(&["holidays = [2026-10-01T09:00:00]"]),
        24,
        13,
        "schedule[0].holidays[0]",
        "expected a date alone, without a time",
    );
    assert_one_error(
        &schedule_with(&["holidays = [20261001]"]),
        24,
        13,
        "schedule[0].holidays[0]",
        "invalid type: integer `20261001`, expected a date such as \"2026-10-01\"",
    );
}

#[test]
fn workdays_need_hours() {
    assert_one_error(
        &{
            let mut lines = schedule_with(&["workdays = [\"2026-09-27\"]"]);
            lines[22] = "sunday = [\"10:00-12:00\"]".to_owned();
            lines
        },
        24,
        12,
        "schedule[0].workdays",
        "make-up working days take workday_hours, or Monday's hours",
    );
}

// ---- everything at once -------------------------------------------------------------

#[test]
fn errors_in_every_section_are_collected_in_file_order() {
    let lines = base_edited(
        &[
            (9, "id = \"acme\""),                  // duplicate enterprise
            (15, "phones = [{ number = \"1\" }]"), // bad phone number
            (23, "monday = [\"9-18\"]"),           // bad range
            (27, "group = \"beta-desk\""),         // another enterprise's group
            (29, "number = \"4001234\""),          // bad 400 number
        ],
        &[
            "[store]",                   // 33
            "commit_interval_ms = 0",    // 34
            "[[trunk]]",                 // 35
            "name = \"lab\"",            // 36
            "sources = [\"localhost\"]", // 37
            "gateway = \"sip:gw\"",      // 38
        ],
    );
    assert_eq!(
        found(&lines),
        [
            (9, "enterprise[1].id".into()),
            (15, "group[0].phones[0].number".into()),
            (18, "group[1].enterprise".into()),
            (23, "schedule[0].monday[0]".into()),
            (29, "number[0].number".into()),
            (34, "store.commit_interval_ms".into()),
            (37, "trunk[0].sources[0]".into()),
            (38, "trunk[0].gateway".into()),
        ]
    );
}

#[test]
fn an_enterprise_s_own_schedule_serves_its_plans_only() {
    // acme's own schedule (kept by its admin through the API) for acme's plan.
    let config = ok(&inserting(
        22,
        &["enterprise = \"acme\""], // 23
    ));
    assert_eq!(config.schedules[0].enterprise.as_deref(), Some("acme"));
    let mut own = inserting(22, &["enterprise = \"acme\""]);
    own.insert(28, "schedule = \"office\"".to_owned()); // the plan's line 29
    let config = ok(&own);
    assert_eq!(config.plans[0].schedule.as_deref(), Some("office"));
    // Without one it is the operator's, as before.
    assert_eq!(ok(&base_with(&[])).schedules[0].enterprise, None);

    // beta's plan may not use it.
    let mut other = inserting(22, &["enterprise = \"acme\""]);
    other.extend(
        [
            "[[plan]]",              // 34
            "name = \"beta-main\"",  // 35
            "enterprise = \"beta\"", // 36
            "group = \"beta-desk\"", // 37
            "schedule = \"office\"", // 38
        ]
        .map(String::from),
    );
    let problems = errors(&other);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].line, problems[0].field.as_str()),
        (38, "plan[1].schedule")
    );
    assert!(
        problems[0]
            .message
            .contains("belongs to enterprise \"acme\", not to \"beta\""),
        "{}",
        problems[0].message
    );

    // An enterprise that does not exist.
    assert_eq!(
        found(&inserting(22, &["enterprise = \"acne\""])),
        [(23, "schedule[0].enterprise".to_owned())]
    );
}

#[test]
fn enterprise_crm_lookup_is_validated_and_defaults_its_timeout() {
    let config = parse(&base_with(&[
        "[[enterprise]]",
        "id = \"c\"",
        "name = \"C\"",
        "crm_lookup_url = \"https://crm.example.com/lookup?key=1\"",
        "[[enterprise]]",
        "id = \"d\"",
        "name = \"D\"",
        "crm_lookup_url = \"http://127.0.0.1:8090/who\"",
        "crm_timeout_ms = 2000",
    ]))
    .expect("valid");
    let crm = |id: &str| {
        config
            .enterprises
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.crm.clone())
    };
    assert_eq!(
        crm("c"),
        Some(crate::CrmLookup {
            url: "https://crm.example.com/lookup?key=1".into(),
            timeout: std::time::Duration::from_millis(300),
        })
    );
    assert_eq!(
        crm("d").map(|c| c.timeout),
        Some(std::time::Duration::from_millis(2000))
    );
    assert_eq!(config.enterprises[0].crm, None);

    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "crm_lookup_url = \"crm.example.com/lookup\"",
        ]),
        36,
        18,
        "enterprise[2].crm_lookup_url",
        "invalid CRM lookup URL \"crm.example.com/lookup\": must start with http:// or https://",
    );
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "crm_lookup_url = \"https://crm.example.com/#who\"",
        ]),
        36,
        18,
        "enterprise[2].crm_lookup_url",
        "must not contain a fragment",
    );
    for (timeout, column) in [("49", 18), ("2001", 18)] {
        assert_one_error(
            &base_with(&[
                "[[enterprise]]",
                "id = \"c\"",
                "name = \"C\"",
                "crm_lookup_url = \"https://crm.example.com/\"",
                &format!("crm_timeout_ms = {timeout}"),
            ]),
            37,
            column,
            "enterprise[2].crm_timeout_ms",
            "2000",
        );
    }
    assert_one_error(
        &base_with(&[
            "[[enterprise]]",
            "id = \"c\"",
            "name = \"C\"",
            "crm_timeout_ms = 500",
        ]),
        36,
        18,
        "enterprise[2].crm_timeout_ms",
        "no crm_lookup_url",
    );
}
