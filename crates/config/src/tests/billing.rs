//! End-to-end checks of the billing sections (`[[tariff]]`, `[billing]`, an
//! enterprise's `tariff` and `[enterprise.billing]`, a number's `tariff`): values as
//! resolved, and each kind of error with the exact `FILE:LINE:COL: FIELD: message`.

use std::time::Duration;

use sihai_billing::AccountPolicy;
use sihai_rating::{Call, Money, rate};

use super::{errors, parse};
use crate::*;

/// A valid file with a billed enterprise (acme) and one that is not (beta). Line
/// numbers are in the comments.
const BASE: &[&str] = &[
    "[sip]",                                   // 1
    "[[sip.listen]]",                          // 2
    "transport = \"udp\"",                     // 3
    "address = \"127.0.0.1:5060\"",            // 4
    "[[schedule]]",                            // 5
    "name = \"office\"",                       // 6
    "monday = [\"09:00-18:00\"]",              // 7
    "holidays = [\"2026-10-01\"]",             // 8
    "workdays = [\"2026-09-27\"]",             // 9
    "[[tariff]]",                              // 10
    "name = \"standard\"",                     // 11
    "rate_per_minute = \"0.30\"",              // 12
    "[[tariff.band]]",                         // 13
    "name = \"peak\"",                         // 14
    "rate_per_minute = \"0.40\"",              // 15
    "days = \"mon-fri\"",                      // 16
    "hours = [\"08:00-18:00\"]",               // 17
    "[[enterprise]]",                          // 18
    "id = \"acme\"",                           // 19
    "name = \"Acme\"",                         // 20
    "tariff = \"standard\"",                   // 21
    "[[enterprise]]",                          // 22
    "id = \"beta\"",                           // 23
    "name = \"Beta\"",                         // 24
    "[[group]]",                               // 25
    "name = \"sales\"",                        // 26
    "enterprise = \"acme\"",                   // 27
    "strategy = \"sequential\"",               // 28
    "phones = [{ number = \"13900000001\" }]", // 29
    "[[group]]",                               // 30
    "name = \"beta-desk\"",                    // 31
    "enterprise = \"beta\"",                   // 32
    "strategy = \"sequential\"",               // 33
    "phones = [{ number = \"13900000002\" }]", // 34
    "[[plan]]",                                // 35
    "name = \"acme-main\"",                    // 36
    "enterprise = \"acme\"",                   // 37
    "group = \"sales\"",                       // 38
    "[[plan]]",                                // 39
    "name = \"beta-main\"",                    // 40
    "enterprise = \"beta\"",                   // 41
    "group = \"beta-desk\"",                   // 42
    "[[number]]",                              // 43
    "number = \"4001234567\"",                 // 44
    "enterprise = \"acme\"",                   // 45
    "status = \"active\"",                     // 46
    "plan = \"acme-main\"",                    // 47
    "[[number]]",                              // 48
    "number = \"4007654321\"",                 // 49
    "enterprise = \"beta\"",                   // 50
    "status = \"active\"",                     // 51
    "plan = \"beta-main\"",                    // 52
];

/// `BASE` followed by `extra`, which starts at line 53.
fn with(extra: &[&str]) -> Vec<String> {
    BASE.iter().chain(extra).map(|l| l.to_string()).collect()
}

/// `BASE` with `extra` inserted after line `after`, so that it starts at `after + 1`.
fn inserting(after: usize, extra: &[&str]) -> Vec<String> {
    let mut lines = with(&[]);
    lines.splice(after..after, extra.iter().map(|l| l.to_string()));
    lines
}

/// `BASE` with line `line` (1-based) replaced by `text`.
fn replacing(line: usize, text: &str) -> Vec<String> {
    let mut lines = with(&[]);
    lines[line - 1] = text.to_owned();
    lines
}

fn ok(lines: &[String]) -> Config {
    parse(lines).unwrap_or_else(|errors| panic!("{errors}"))
}

/// Every error of `lines`, each as `FILE:LINE:COL: FIELD: message`.
fn shown(lines: &[String]) -> Vec<String> {
    errors(lines).iter().map(ToString::to_string).collect()
}

#[track_caller]
fn assert_errors(lines: &[String], expected: &[&str]) {
    assert_eq!(shown(lines), expected);
}

fn yuan(text: &str) -> Money {
    text.parse().expect("test amount")
}

fn at(text: &str) -> jiff::Timestamp {
    text.parse().expect("test instant")
}

// ---- valid files ------------------------------------------------------------------

#[test]
fn tariffs_and_billing_resolve() {
    let config = ok(&with(&[]));
    assert_eq!(config.tariffs.len(), 1);
    let standard = config.tariff("standard").expect("declared");
    assert_eq!(standard.rate_per_minute(), yuan("0.30"));
    assert_eq!(standard.increment(), DEFAULT_INCREMENT_S);
    assert_eq!(standard.first_increment(), 60);
    assert_eq!(standard.connect_fee(), Money::ZERO);
    assert_eq!(standard.max_cost(), None);
    // Monday 2026-11-23 10:00 in Shanghai is peak, 20:00 is not.
    let call = |instant: &str| Call {
        answered_at: at(instant),
        seconds: 60,
        region: None,
    };
    assert_eq!(
        rate(standard, &call("2026-11-23T02:00:00Z")).cost,
        yuan("0.40")
    );
    assert_eq!(
        rate(standard, &call("2026-11-23T12:00:00Z")).cost,
        yuan("0.30")
    );

    // No [billing]: the seeds' figures and the node-wide defaults.
    assert_eq!(config.billing, BillingConfig::default());
    assert_eq!(config.billing.reservation_minutes, 5);
    assert_eq!(config.billing.lifecycle_interval, Duration::from_secs(60));

    let acme = config.enterprise("acme").expect("declared");
    let billing = acme.billing.as_ref().expect("acme names a tariff");
    assert!(std::sync::Arc::ptr_eq(&billing.tariff, standard));
    assert_eq!(billing.policy, AccountPolicy::default());
    assert_eq!(config.enterprise("beta").expect("declared").billing, None);

    let [acme_number, beta_number] = &config.numbers[..] else {
        panic!("two numbers")
    };
    assert_eq!(acme_number.tariff, None, "no tariff of its own");
    assert_eq!(config.number_tariff(acme_number), Some(standard));
    assert_eq!(
        config.number_tariff(beta_number),
        None,
        "beta is not billed"
    );
}

#[test]
fn billing_keys_money_as_strings_or_whole_yuan() {
    let config = ok(&with(&[
        "[billing]",                      // 53
        "reservation_minutes = 10",       // 54
        "lifecycle_interval_s = 300",     // 55
        "min_balance = 200",              // 56
        "suspend_below = \"20.5\"",       // 57
        "suspended_daily_fee = \"1.65\"", // 58
        "reclaim_after_days = 45",        // 59
        "monthly_minimum = \"0\"",        // 60
        "min_recharge = 1000",            // 61
        "low_balance_warning = \"300\"",  // 62
        "opening_fee = \"99.9999\"",      // 63
        "included_phones = 0",            // 64
        "extra_phone_fee = 100",          // 65
        "ringback_recording_fee = \"0\"", // 66
        "extension_fee = \"12.34\"",      // 67
    ]));
    assert_eq!(
        config.billing,
        BillingConfig {
            reservation_minutes: 10,
            lifecycle_interval: Duration::from_secs(300),
            policy: AccountPolicy {
                min_balance: yuan("200"),
                suspend_below: yuan("20.50"),
                suspended_daily_fee: yuan("1.65"),
                reclaim_after_days: 45,
                monthly_minimum: Money::ZERO,
                min_recharge: yuan("1000"),
                low_balance_warning: yuan("300"),
                opening_fee: yuan("99.9999"),
                included_phones: 0,
                extra_phone_fee: yuan("100"),
                ringback_recording_fee: Money::ZERO,
                extension_fee: yuan("12.34"),
            },
        }
    );
    // A billed enterprise without overrides runs by [billing]'s policy.
    let acme = config.enterprise("acme").and_then(|e| e.billing.as_ref());
    assert_eq!(acme.map(|b| &b.policy), Some(&config.billing.policy));
}

#[test]
fn an_enterprise_overrides_keys_of_the_billing_policy() {
    let lines = inserting(
        21,
        &[
            "[enterprise.billing]", // 22
            "min_balance = \"50\"", // 23
            "included_phones = 40", // 24
        ],
    );
    let mut lines = lines;
    lines.extend(["[billing]", "suspended_daily_fee = \"2\""].map(String::from));
    let config = ok(&lines);
    let policy = &config
        .enterprise("acme")
        .and_then(|e| e.billing.as_ref())
        .expect("billed")
        .policy;
    assert_eq!(
        *policy,
        AccountPolicy {
            min_balance: yuan("50"),
            included_phones: 40,
            // From [billing], which the enterprise does not override.
            suspended_daily_fee: yuan("2"),
            ..AccountPolicy::default()
        }
    );
}

#[test]
fn a_number_may_name_its_own_tariff() {
    let lines = inserting(
        47,
        &["tariff = \"per-second\""], // 48
    );
    let mut lines = lines;
    lines.extend(
        [
            "[[tariff]]",
            "name = \"per-second\"",
            "rate_per_minute = 0",
            "increment = 1",
            "first_increment = 30",
            "connect_fee = \"0.10\"",
            "max_cost = 5",
            "holidays_from = \"office\"",
            "holidays = [2026-10-02]",
            "[[tariff.band]]",
            "name = \"guangdong\"",
            "rate_per_minute = \"0.06\"",
            "provinces = [\"广东省\"]",
            "cities = [\"深圳市\", \"上海\"]",
            "[[tariff.band]]",
            "name = \"holiday\"",
            "rate_per_minute = \"0.01\"",
            "days = [\"holidays\", \"sat-sun\"]",
        ]
        .map(String::from),
    );
    let config = ok(&lines);
    let own = config.numbers[0].tariff.as_ref().expect("its own tariff");
    assert_eq!(own.name(), "per-second");
    assert_eq!(
        config.number_tariff(&config.numbers[0]).map(|t| t.name()),
        Some("per-second")
    );
    assert_eq!((own.increment(), own.first_increment()), (1, 30));
    assert_eq!(own.connect_fee(), yuan("0.10"));
    assert_eq!(own.max_cost(), Some(yuan("5")));
    // Region names are kept as the region table gives them, so a caller from 深圳
    // matches; the holiday band applies on the schedule's holiday and the tariff's own.
    let call = |instant: &str, province: &'static str, city: &'static str| Call {
        answered_at: at(instant),
        seconds: 60,
        region: Some(sihai_rating::CallerRegion { province, city }),
    };
    // Thursday 2026-10-01 and Friday 2026-10-02 are holidays, the Wednesday is not.
    let cost = |instant| rate(own, &call(instant, "湖南", "长沙")).cost;
    assert_eq!(cost("2026-10-01T02:00:00Z"), yuan("0.11"));
    assert_eq!(cost("2026-10-02T02:00:00Z"), yuan("0.11"));
    assert_eq!(cost("2026-09-30T02:00:00Z"), yuan("0.10"));
    let from = |province, city| rate(own, &call("2026-09-30T02:00:00Z", province, city)).cost;
    assert_eq!(from("广东", "深圳"), yuan("0.16"));
    assert_eq!(from("上海", "上海"), yuan("0.16"));
}

// ---- errors -----------------------------------------------------------------------

#[test]
fn money_errors_name_the_setting() {
    assert_errors(
        &replacing(12, "rate_per_minute = \"0.30001\""),
        &[
            "test.toml:12:19: tariff[0].rate_per_minute: invalid amount \"0.30001\": 5 decimals: \
           amounts are exact to 1/10,000 yuan, so at most 4",
        ],
    );
    assert_errors(
        &replacing(12, "rate_per_minute = \"¥0.30\""),
        &[
            "test.toml:12:19: tariff[0].rate_per_minute: invalid amount \"¥0.30\": not an amount \
           of yuan: expected digits, an optional leading `-` and an optional `.` with 1 to 4 \
           decimals, such as `0.30`, `600` or `-12.5`",
        ],
    );
    assert_errors(
        &replacing(12, "rate_per_minute = 0.3"),
        &[
            "test.toml:12:19: tariff[0].rate_per_minute: 0.3 is a TOML float, which cannot hold \
           most amounts exactly; write money as a string, e.g. \"0.3\"",
        ],
    );
}

#[test]
fn the_rating_crates_rules_are_reported_at_their_setting() {
    assert_errors(
        &inserting(12, &["increment = 0"]),
        &["test.toml:13:13: tariff[0].increment: increment must be 1 to 3600 seconds, not 0"],
    );
    assert_errors(
        &inserting(12, &["first_increment = 7200"]),
        &[
            "test.toml:13:19: tariff[0].first_increment: first increment must be 1 to 3600 \
           seconds, not 7200",
        ],
    );
    assert_errors(
        &replacing(12, "rate_per_minute = \"-0.30\""),
        &[
            "test.toml:12:19: tariff[0].rate_per_minute: rate per minute must not be negative \
           (it is -0.30)",
        ],
    );
    assert_errors(
        &inserting(12, &["connect_fee = \"0.50\"", "max_cost = \"0.40\""]),
        &[
            "test.toml:14:12: tariff[0].max_cost: maximum cost per call (0.40) is below the \
           connect fee (0.50)",
        ],
    );
    assert_errors(
        &replacing(14, "name = \"base\""),
        &[
            "test.toml:14:8: tariff[0].band[0].name: `base` names the rate used when no band \
           applies; choose another name",
        ],
    );
    assert_errors(
        &inserting(
            17,
            &[
                "[[tariff.band]]",
                "name = \"peak\"",
                "rate_per_minute = 1",
                "days = \"sat\"",
            ],
        ),
        &["test.toml:19:8: tariff[0].band[1].name: another band has the same name"],
    );
    assert_errors(
        &inserting(
            17,
            &[
                "[[tariff.band]]",
                "name = \"nothing\"",
                "rate_per_minute = 1",
            ],
        ),
        &[
            "test.toml:18:1: tariff[0].band[1]: a band needs a time condition, a region \
           condition or both",
        ],
    );
    assert_errors(
        &replacing(17, "hours = []"),
        &["test.toml:17:9: tariff[0].band[0].hours: the time condition has no window"],
    );
    assert_errors(
        &replacing(17, "provinces = []"),
        &[
            "test.toml:17:13: tariff[0].band[0].provinces: the region condition names no \
           province and no city",
        ],
    );
    assert_errors(
        &inserting(
            12,
            &["holidays_from = \"office\"", "holidays = [\"2026-09-27\"]"],
        ),
        &[
            "test.toml:14:13: tariff[0].holidays[0]: 2026-09-27 is both a holiday and a make-up \
           working day; remove it from one of the lists",
        ],
    );
}

#[test]
fn band_syntax_errors_point_at_the_item() {
    assert_errors(
        &replacing(16, "days = [\"mon-fri\", \"fry\"]"),
        &[
            "test.toml:16:20: tariff[0].band[0].days[1]: unknown days \"fry\": expected a day \
           (\"mon\" to \"sun\", or \"monday\"), a range such as \"mon-fri\", or \"holidays\"",
        ],
    );
    assert_errors(
        &replacing(16, "days = \"fri-mon\""),
        &[
            "test.toml:16:8: tariff[0].band[0].days: \"fri-mon\" runs backwards: a range goes \
           from Monday towards Sunday; write two, e.g. [\"fri-sun\", \"mon\"]",
        ],
    );
    let bad_hours = shown(&replacing(17, "hours = [\"08:00-18:00\", \"8:00-9:00\"]"));
    assert_eq!(bad_hours.len(), 1, "{bad_hours:?}");
    assert!(
        bad_hours[0].starts_with(
            "test.toml:17:25: tariff[0].band[0].hours[1]: invalid time range \"8:00-9:00\""
        ),
        "{bad_hours:?}"
    );
    assert_errors(
        &inserting(17, &["provinces = [\"广东\", \"广冬\"]"]),
        &[
            "test.toml:18:20: tariff[0].band[0].provinces[1]: unknown province \"广冬\": \
           expected a provincial-level division such as \"北京\", \"广东\" or \"广西壮族自治区\" \
           (a city goes in cities)",
        ],
    );
    assert_errors(
        &inserting(17, &["cities = [\"深证\"]"]),
        &[
            "test.toml:18:11: tariff[0].band[0].cities[0]: unknown city \"深证\": not in the \
           region table; write a prefecture-level city as it names them, e.g. \"深圳\" or \
           \"苏州\" (a province goes in provinces)",
        ],
    );
}

#[test]
fn tariff_names_are_unique_and_references_resolve() {
    assert_errors(
        &inserting(
            17,
            &["[[tariff]]", "name = \"standard\"", "rate_per_minute = 1"],
        ),
        &[
            "test.toml:19:8: tariff[1].name: duplicate tariff name \"standard\": already declared \
           by tariff[0] at line 11",
        ],
    );
    assert_errors(
        &replacing(21, "tariff = \"standrad\""),
        &[
            "test.toml:21:10: enterprise[0].tariff: no [[tariff]] with name \"standrad\"; the \
           tariffs are \"standard\"",
        ],
    );
    assert_errors(
        &inserting(12, &["holidays_from = \"ofice\""]),
        &[
            "test.toml:13:17: tariff[0].holidays_from: no [[schedule]] with name \"ofice\"; the \
           schedules are \"office\"",
        ],
    );
}

#[test]
fn billing_for_an_enterprise_that_is_not_billed_is_refused() {
    assert_errors(
        &inserting(24, &["[enterprise.billing]", "min_balance = 50"]),
        &[
            "test.toml:25:1: enterprise[1].billing: this enterprise names no tariff, so sihai \
           does not bill it and these settings would never apply; add tariff = \"...\" naming \
           a [[tariff]], or remove [enterprise.billing]",
        ],
    );
    assert_errors(
        &inserting(52, &["tariff = \"standard\""]),
        &[
            "test.toml:53:10: number[1].tariff: enterprise \"beta\" names no tariff, so sihai \
           does not bill it and a number's tariff would never apply; give the enterprise a \
           tariff first",
        ],
    );
}

#[test]
fn billing_rules() {
    assert_errors(
        &with(&["[billing]", "min_balance = 10"]),
        &[
            "test.toml:54:15: billing.min_balance: suspend_below (15.00) must not exceed \
           min_balance (10.00): calls are refused below min_balance, and only then, lower \
           still, is the account suspended",
        ],
    );
    assert_errors(
        &with(&["[billing]", "extension_fee = \"-150\""]),
        &[
            "test.toml:54:17: billing.extension_fee: must not be negative (it is -150.00): \
           accounts are prepaid, so thresholds and fees are 0 or more",
        ],
    );
    assert_errors(
        &with(&[
            "[billing]",
            "reservation_minutes = 0",
            "lifecycle_interval_s = 3601",
        ]),
        &[
            "test.toml:54:23: billing.reservation_minutes: 0 is out of range; must be between \
             1 and 60",
            "test.toml:55:24: billing.lifecycle_interval_s: 3601 is out of range; must be \
             between 1 and 3600",
        ],
    );
    assert_errors(
        &with(&["[billing]", "min_balance = \"lots\""]),
        &[
            "test.toml:54:15: billing.min_balance: invalid amount \"lots\": not an amount of \
           yuan: expected digits, an optional leading `-` and an optional `.` with 1 to 4 \
           decimals, such as `0.30`, `600` or `-12.5`",
        ],
    );
    assert_errors(
        &with(&["[billing]", "min_balanse = 10"]),
        &[
            "test.toml:54:1: billing.min_balanse: unknown field \"min_balanse\", expected one of \
           \"reservation_minutes\", \"lifecycle_interval_s\", \"min_balance\", \
           \"suspend_below\", \"suspended_daily_fee\", \"reclaim_after_days\", \
           \"monthly_minimum\", \"min_recharge\", \"low_balance_warning\", \"opening_fee\", \
           \"included_phones\", \"extra_phone_fee\", \"ringback_recording_fee\", \
           \"extension_fee\"",
        ],
    );
}

#[test]
fn an_override_is_checked_against_what_it_inherits() {
    // Lowering min_balance under [billing]'s suspend_below (the default ¥15).
    assert_errors(
        &inserting(21, &["[enterprise.billing]", "min_balance = \"10\""]),
        &[
            "test.toml:23:15: enterprise[0].billing.min_balance: suspend_below (15.00) must not \
           exceed min_balance (10.00): calls are refused below min_balance, and only then, \
           lower still, is the account suspended",
        ],
    );
    assert_errors(
        &inserting(21, &["[enterprise.billing]", "reservation_minutes = 2"]),
        &[
            "test.toml:23:23: enterprise[0].billing.reservation_minutes: reservation_minutes is \
           node-wide, not per enterprise; set it in [billing]",
        ],
    );
}

/// The sample spells out every billing default; the code must agree with its comments,
/// and its enterprises are billed at its "standard" tariff.
#[test]
fn the_sample_configuration_bills_at_the_seeds_prices() {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/sihai.toml");
    let config = Config::load(&path).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.billing, BillingConfig::default());
    let standard = config.tariff("standard").expect("the sample's tariff");
    assert_eq!(standard.rate_per_minute(), yuan("0.30"));
    assert_eq!(standard.increment(), 60);
    for enterprise in &config.enterprises {
        let billing = enterprise.billing.as_ref().expect("billed");
        assert_eq!(billing.tariff.name(), "standard", "{}", enterprise.id);
        assert_eq!(billing.policy, AccountPolicy::default());
    }
    // National Day is a holiday in the schedule the tariff takes its calendar from:
    // off-peak at 10:00 on Thursday 2026-10-01, peak on Thursday 2026-10-08.
    let minute = |instant: &str| {
        rate(
            standard,
            &Call {
                answered_at: at(instant),
                seconds: 60,
                region: None,
            },
        )
        .cost
    };
    assert_eq!(minute("2026-10-01T02:00:00Z"), yuan("0.30"));
    assert_eq!(minute("2026-10-08T02:00:00Z"), yuan("0.36"));
}

#[test]
fn a_tariff_takes_no_holidays_from_an_enterprise_s_own_schedule() {
    assert_errors(
        &inserting(
            12,
            &["holidays_from = \"office\""], // 13
        )
        .into_iter()
        .enumerate()
        .flat_map(|(i, line)| {
            // The schedule becomes acme's own (after its name, line 6).
            let mut out = vec![line];
            if i == 5 {
                out.push("enterprise = \"acme\"".to_owned());
            }
            out
        })
        .collect::<Vec<_>>(),
        &[
            "test.toml:14:17: tariff[0].holidays_from: schedule \"office\" is enterprise \"acme\"'s \
             own; a tariff takes its holidays from a schedule without an enterprise (the operator's)",
        ],
    );
}
