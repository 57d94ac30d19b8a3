//! Prepaid billing end to end, through the built daemon, sipp as the carrier and the
//! phones, and the `sihai account` commands in a process of their own (as an operator
//! runs them): a call is cut with BYE to both sides, carrying a `Reason`, the moment its
//! balance runs out; two calls on one balance share it; a call to an account below its
//! minimum is refused; a suspended account refuses calls until a recharge resumes it; a
//! daemon killed with SIGKILL during 20 answered calls charges each exactly once after
//! its restart, whatever the carrier's BYEs do; the month-end minimum a daemon
//! missed is posted once when it starts; and the price list's fees (opening, an extra
//! bound phone, a ringback recording, an extension) are posted once, across a restart.
//!
//! The tariff is ¥0.60 a minute billed per second (¥0.01 a second), so a balance in fen
//! is a number of seconds. The checks on time have margins of whole seconds.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sihai_store::{CdrFilter, CdrStore, EntryKind, LedgerStore, SqliteStore};
use support::routing::{group, phone, routing, routing_with_number};
use support::{Caller, Daemon, Phone, SIHAI, free_port, repo_path};

/// `acme` billed per second at ¥0.60/min, with thresholds low enough for fen
/// balances: calls need ¥0.01 available, suspension below `suspend_below`.
fn billed_routing(phone_uri: &str, suspend_below: &str, extra_plan: &str) -> String {
    routing(
        &format!(
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\n\
             suspend_below = \"{suspend_below}\"\nlow_balance_warning = \"0\"\n\
             min_recharge = \"0.01\"\nmonthly_minimum = \"50\"\n"
        ),
        &format!("group = \"sales\"\n{extra_plan}"),
        &format!(
            "{}\n[billing]\nreservation_minutes = 1\nlifecycle_interval_s = 1\n\n\
             [[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
            group("sales", "sequential", &[phone(phone_uri, "capacity = 30")])
        ),
    )
}

/// Runs `sihai ARGS -c CONFIG` and returns what it did.
fn sihai(config: &Path, args: &[&str]) -> Output {
    Command::new(SIHAI)
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run sihai")
}

/// `sihai account recharge acme AMOUNT --ref REFERENCE`, which must succeed.
fn recharge(config: &Path, amount: &str, reference: &str) {
    let out = sihai(
        config,
        &["account", "recharge", "acme", amount, "--ref", reference],
    );
    assert!(
        out.status.success(),
        "recharge failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A string field of `sihai account show acme --json`.
fn account_field(config: &Path, field: &str) -> String {
    let out = sihai(config, &["account", "show", "acme", "--json"]);
    assert!(
        out.status.success(),
        "account show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let key = format!("\"{field}\":");
    let rest = text
        .split_once(&key)
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .1
        .trim_start();
    let value = rest
        .strip_prefix('"')
        .and_then(|r| r.split_once('"'))
        .map(|(v, _)| v.to_string());
    value.unwrap_or_else(|| panic!("{field} is not a string in {text}"))
}

/// `sihai account verify` must find the books clean.
fn assert_verified(config: &Path) {
    let out = sihai(config, &["account", "verify"]);
    assert!(
        out.status.success(),
        "account verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The store the daemon writes, opened by the test as another process would.
fn open_store(daemon_db: &Path) -> SqliteStore {
    SqliteStore::open(daemon_db, Duration::from_millis(20)).expect("open the daemon's store")
}

/// Every CDR, newest first, waiting (bounded) until there are `count`.
fn wait_for_billed_cdrs(db: &Path, count: usize) -> Vec<sihai_store::Cdr> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let store = open_store(db);
        let cdrs = store.query(&CdrFilter::default()).expect("query CDRs");
        if cdrs.len() >= count || Instant::now() >= deadline {
            return cdrs;
        }
        drop(store);
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_call_is_cut_with_bye_to_both_sides_when_its_balance_runs_out() {
    // Neither side hangs up: only the money ends the call.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with("", &billed_routing(&answers.uri("13900000001"), "0", ""));
    let config = daemon.config_path();
    // ¥0.05 at ¥0.01 a second: five seconds.
    recharge(&config, "0.05", "bank-1");
    let started = Instant::now();
    let caller = Caller::new(&daemon, "uac_phone_hangs_up.xml").run();
    let took = started.elapsed();
    answers.finish(&daemon);
    assert!(
        took >= Duration::from_secs(5),
        "¥0.05 pays for 5 s; cut after {took:?}"
    );
    assert!(took < Duration::from_secs(8), "cut late: {took:?}");
    for (side, messages) in [("caller", &caller.messages), ("phone", &answers.messages())] {
        assert!(
            messages.contains("Reason: Q.850;cause=16;text=\"Out of credit\""),
            "the {side}'s BYE says why:\n{messages}"
        );
    }

    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 1);
    let cdr = &cdrs[0];
    assert_eq!(cdr.outcome.as_str(), "out_of_credit", "{cdr:#?}");
    assert_eq!(
        cdr.hangup_cause.as_deref(),
        Some("out_of_credit"),
        "{cdr:#?}"
    );
    assert_eq!(cdr.billed_seconds, 5, "{cdr:#?}");
    assert_eq!(cdr.cost.map(|c| c.to_string()).as_deref(), Some("0.05"));
    assert_eq!(cdr.tariff.as_deref(), Some("per-second"));
    assert_eq!(account_field(&config, "balance"), "0.00");
    assert_eq!(account_field(&config, "available"), "0.00");
    assert_verified(&config);
}

#[test]
fn two_concurrent_calls_on_one_balance_share_it_and_never_spend_more() {
    // ¥0.70: the first call reserves a minute's worth (¥0.60), the second gets what is
    // left (¥0.10, ten seconds) and is cut then; the first hangs up after 20 s.
    let mut answers = Phone::start("uas_answer.xml", 2, 0);
    let daemon = Daemon::start_with("", &billed_routing(&answers.uri("13900000001"), "0", ""));
    let config = daemon.config_path();
    recharge(&config, "0.70", "bank-1");
    let mut first = Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(20_000)
        .within_s(40)
        .spawn();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let second = Caller::new(&daemon, "uac_phone_hangs_up.xml")
        .caller("13800138001")
        .run();
    let second_took = started.elapsed();
    assert!(
        second_took >= Duration::from_secs(10) && second_took < Duration::from_secs(13),
        "the second call holds ¥0.10 (10 s); it lasted {second_took:?}"
    );
    assert!(second.messages.contains("Reason: Q.850;cause=16"));
    first.finish(Duration::from_secs(40), &daemon);
    answers.finish(&daemon);

    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 2);
    let cut = cdrs
        .iter()
        .find(|c| c.caller == "13800138001")
        .expect("the second call's CDR");
    let whole = cdrs
        .iter()
        .find(|c| c.caller == "13800138000")
        .expect("the first call's CDR");
    assert_eq!(cut.outcome.as_str(), "out_of_credit", "{cut:#?}");
    assert_eq!(cut.billed_seconds, 10, "{cut:#?}");
    assert_eq!(whole.outcome.as_str(), "answered", "{whole:#?}");
    assert!(
        (19..=21).contains(&whole.billed_seconds),
        "the first call talked 20 s: {whole:#?}"
    );
    let spent: i64 = cdrs.iter().filter_map(|c| c.cost).map(|c| c.units()).sum();
    assert!(
        spent <= sihai_store::Money::from_fen(70).expect("fen").units(),
        "spent {spent} units of a ¥0.70 balance"
    );
    let left = 70 - cut.billed_seconds as i64 - whole.billed_seconds as i64;
    assert_eq!(
        account_field(&config, "balance"),
        format!("0.{left:02}"),
        "the balance is what the two calls left"
    );
    assert_verified(&config);
}

#[test]
fn a_call_to_an_account_below_its_minimum_balance_is_refused_as_out_of_credit() {
    let daemon = Daemon::start_with(
        "",
        &billed_routing("sip:13900000001@127.0.0.1:9", "0", "")
            .replace("min_balance = \"0.01\"", "min_balance = \"1\""),
    );
    let config = daemon.config_path();
    recharge(&config, "0.50", "bank-1");
    Caller::refused(&daemon, 480).run();
    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 1);
    assert_eq!(cdrs[0].outcome.as_str(), "out_of_credit", "{cdrs:#?}");
    assert_eq!(cdrs[0].hangup_cause.as_deref(), Some("out_of_credit"));
    // Nothing was reserved or spent.
    assert_eq!(account_field(&config, "balance"), "0.50");
    assert_eq!(account_field(&config, "available"), "0.50");
}

#[test]
fn a_suspended_account_refuses_calls_until_a_recharge_resumes_it() {
    // Below ¥15 the account is suspended: it starts at zero, so the daemon's first
    // review suspends it.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &billed_routing(&answers.uri("13900000001"), "15", "")
            .replace("min_balance = \"0.01\"", "min_balance = \"20\""),
    );
    let config = daemon.config_path();
    let deadline = Instant::now() + Duration::from_secs(10);
    while account_field(&config, "status") != "suspended" {
        assert!(Instant::now() < deadline, "the account was not suspended");
        std::thread::sleep(Duration::from_millis(100));
    }
    Caller::refused(&daemon, 480).run();

    // A recharge above the threshold resumes the numbers for the very next call.
    recharge(&config, "600", "bank-1");
    assert_eq!(account_field(&config, "status"), "active");
    Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(1000)
        .run();
    answers.finish(&daemon);

    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 2);
    assert_eq!(cdrs[1].outcome.as_str(), "out_of_credit", "{cdrs:#?}");
    assert_eq!(cdrs[1].hangup_cause.as_deref(), Some("suspended"));
    assert_eq!(cdrs[0].outcome.as_str(), "answered", "{cdrs:#?}");
    assert!(cdrs[0].cost.is_some_and(|c| !c.is_zero()), "{cdrs:#?}");
    assert_verified(&config);
}

#[test]
fn sigkill_during_20_answered_calls_charges_each_exactly_once_after_the_restart() {
    const CALLS: u32 = 20;
    let answers = Phone::start("uas_answer.xml", CALLS, 0);
    let daemon = Daemon::start_with("", &billed_routing(&answers.uri("13900000001"), "0", ""));
    let config = daemon.config_path();
    let port = daemon.port;
    recharge(&config, "100", "bank-1");
    // The carrier's calls talk 8 s, then send BYE: to the restarted daemon.
    let carrier = Caller::new(&daemon, "uac_answered.xml")
        .calls(CALLS, 20)
        .talking_ms(8000)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.log_text().matches("call answered").count() < CALLS as usize {
        assert!(
            Instant::now() < deadline,
            "20 calls not answered:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(3));
    let (dir, log) = daemon.kill9();

    // Restarted on the same store: the open calls are settled before anything else.
    let daemon = Daemon::restart(dir, port);
    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), CALLS as usize);
    assert_eq!(cdrs.len(), CALLS as usize, "{cdrs:#?}\n{log}");
    for cdr in &cdrs {
        assert_eq!(cdr.hangup_cause.as_deref(), Some("restart"), "{cdr:#?}");
        assert_eq!(cdr.outcome.as_str(), "answered", "{cdr:#?}");
        assert!(
            (2..=6).contains(&cdr.billed_seconds),
            "charged from the answer to the last moment the daemon was known alive: {cdr:#?}"
        );
    }
    // The carrier's BYEs reach a daemon that no longer knows the calls: nothing more is
    // charged for them.
    drop(carrier);
    std::thread::sleep(Duration::from_secs(7));
    drop(answers);
    let daemon_dir_db = daemon.db_path();
    let store = open_store(&daemon_dir_db);
    let charges = store
        .ledger("acme", None, None)
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .count();
    assert_eq!(charges, CALLS as usize, "one charge per call");
    let spent: i64 = cdrs.iter().filter_map(|c| c.cost).map(|c| c.units()).sum();
    let account = store.account("acme").expect("read").expect("account");
    assert_eq!(
        account.balance.units(),
        sihai_store::Money::from_yuan(100).expect("yuan").units() - spent
    );
    assert!(account.reserved.is_zero(), "{account:#?}");
    drop(store);
    assert_verified(&config);

    // A second restart settles nothing again.
    let dir = daemon.stop_keeping_dir();
    let daemon = Daemon::restart(dir, port);
    std::thread::sleep(Duration::from_millis(500));
    let store = open_store(&daemon.db_path());
    let charges = store
        .ledger("acme", None, None)
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .count();
    assert_eq!(charges, CALLS as usize, "a restart settles nothing twice");
    assert_verified(&config);
}

#[test]
fn the_month_end_minimum_a_daemon_missed_is_posted_once_when_it_starts() {
    // The account was opened two months ago (its first month is exempt); last month's
    // minimum (¥50, no calls) is due, and this daemon never ran at that month's end.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sihai.db");
    let zone = jiff::tz::TimeZone::get("Asia/Shanghai").expect("Asia/Shanghai");
    let today = zone.to_datetime(Timestamp::now()).date();
    let this_month = today.first_of_month();
    let opened = this_month
        .checked_sub(jiff::Span::new().months(2))
        .expect("two months ago")
        .at(12, 0, 0, 0)
        .to_zoned(zone.clone())
        .expect("zoned")
        .timestamp();
    let last_month = this_month
        .checked_sub(jiff::Span::new().months(1))
        .expect("last month");
    {
        let store = SqliteStore::open(&db, Duration::from_millis(20)).expect("store");
        store
            .open_account("acme", opened)
            .expect("open the account");
        store
            .post(sihai_store::NewEntry {
                enterprise: "acme".into(),
                kind: EntryKind::Recharge,
                amount: sihai_store::Money::from_yuan(600).expect("yuan"),
                reference: "bank-1".into(),
                at: opened,
                actor: "test".into(),
                note: None,
            })
            .expect("recharge");
    }
    let daemon = Daemon::start_in(
        dir,
        "",
        &billed_routing("sip:13900000001@127.0.0.1:9", "0", ""),
    );
    let reference = format!(
        "monthly-minimum/4001234567/{}",
        last_month.strftime("%Y-%m")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let minimum = loop {
        let store = open_store(&daemon.db_path());
        let entries = store.ledger("acme", None, None).expect("ledger");
        if let Some(e) = entries.iter().find(|e| e.kind == EntryKind::MonthlyMinimum) {
            break e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no monthly minimum posted: {entries:#?}\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(minimum.reference, reference);
    assert_eq!(minimum.amount.to_string(), "-50.00");
    // Reviews every second, and a restart: still one.
    std::thread::sleep(Duration::from_secs(2));
    let port = daemon.port;
    let dir = daemon.stop_keeping_dir();
    let daemon = Daemon::restart(dir, port);
    std::thread::sleep(Duration::from_secs(2));
    let store = open_store(&daemon.db_path());
    let minimums = store
        .ledger("acme", None, None)
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == EntryKind::MonthlyMinimum)
        .count();
    assert_eq!(
        minimums, 1,
        "the minimum is posted once per number and month"
    );
    assert_eq!(account_field(&daemon.config_path(), "balance"), "550.00");
}

/// The `fee` lines of `sihai account ledger acme --csv`, as (amount, reference, note).
fn fee_lines(config: &Path) -> Vec<(String, String, String)> {
    let out = sihai(config, &["account", "ledger", "acme", "--csv"]);
    assert!(
        out.status.success(),
        "account ledger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|line| {
            // time,kind,amount,balance_after,reference,actor,note: only the note may be
            // quoted, and it comes last.
            let fields: Vec<&str> = line.splitn(7, ',').collect();
            (fields.get(1) == Some(&"fee")).then(|| {
                let field = |i: usize| fields.get(i).copied().unwrap_or_default().to_owned();
                (field(2), field(4), field(6))
            })
        })
        .collect()
}

#[test]
fn the_price_list_fees_are_posted_once_and_again_once_after_a_restart() {
    // acme: ¥500 to open, one bound phone included and ¥240 a year for each other, ¥150
    // per ringback recording, ¥200 a year per extension. It has two distinct phones
    // (one of them in two groups), a number whose ringback is the shipped hold prompt,
    // and extension 8001; its balance is zero, so the fees suspend it in the same pass.
    let billing = "tariff = \"per-second\"\n[enterprise.billing]\nopening_fee = \"500\"\n\
                   included_phones = 1\nextra_phone_fee = \"240\"\n\
                   ringback_recording_fee = \"150\"\nextension_fee = \"200\"\n\
                   low_balance_warning = \"0\"\nmonthly_minimum = \"0\"\n";
    let rest = format!(
        "{}\n{}\n[[extension]]\nenterprise = \"acme\"\nnumber = \"8001\"\ngroup = \"desk\"\n\n\
         [[prompt]]\nname = \"please-hold\"\nfile = \"please-hold.wav\"\n\n\
         [billing]\nlifecycle_interval_s = 1\n\n\
         [[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n\n\
         [media]\nprompts = \"{}\"\n",
        group(
            "sales",
            "sequential",
            &[
                "{ number = \"13900000001\" }".to_owned(),
                "{ number = \"13900000002\" }".to_owned(),
            ]
        ),
        group(
            "desk",
            "sequential",
            &["{ number = \"13900000002\" }".to_owned()]
        ),
        repo_path("config/prompts").display()
    );
    let daemon = Daemon::start_with(
        "",
        &routing_with_number(
            free_port(),
            billing,
            "ringback = \"please-hold\"",
            "group = \"sales\"",
            &rest,
        ),
    );
    let config = daemon.config_path();
    let year = Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("Asia/Shanghai"))
        .year();
    let mut expected = vec![
        ("-500.00".to_owned(), "fee/opening".to_owned()),
        ("-150.00".to_owned(), "fee/ringback/please-hold".to_owned()),
        (
            "-240.00".to_owned(),
            format!("fee/extra-phone/{year}/13900000002"),
        ),
        ("-200.00".to_owned(), format!("fee/extension/{year}/8001")),
    ];
    expected.sort();
    let amounts_and_references = |lines: Vec<(String, String, String)>| {
        let mut got: Vec<(String, String)> = lines.into_iter().map(|(a, r, _)| (a, r)).collect();
        got.sort();
        got
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let first = loop {
        let lines = fee_lines(&config);
        if lines.len() >= expected.len() || Instant::now() >= deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        first
            .iter()
            .any(|(_, r, note)| r.starts_with("fee/extra-phone/")
                && note.contains("extra bound phone 13900000002")),
        "each fee's note names it: {first:#?}"
    );
    assert_eq!(
        amounts_and_references(first),
        expected,
        "{}",
        daemon.log_text()
    );
    // The fees took the balance to -¥1,090 and the same pass suspended the account.
    assert_eq!(account_field(&config, "balance"), "-1090.00");
    assert_eq!(account_field(&config, "status"), "suspended");

    // Reviews every second, then a restart: still once each.
    std::thread::sleep(Duration::from_secs(2));
    let port = daemon.port;
    let dir = daemon.stop_keeping_dir();
    let daemon = Daemon::restart(dir, port);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        amounts_and_references(fee_lines(&config)),
        expected,
        "{}",
        daemon.log_text()
    );
    assert_eq!(account_field(&config, "balance"), "-1090.00");
    assert_verified(&config);
}

#[test]
fn an_account_negative_for_reclaim_after_days_is_reclaimed_told_and_its_number_answers_404() {
    // Negative since two days ago, reclaim after one day: the daemon's first review
    // reclaims the numbers, tells the enterprise's webhook, and calls get 404.
    let webhook = support::webhook::Webhook::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("sihai.db");
    let two_days_ago = Timestamp::now() - jiff::SignedDuration::from_hours(48);
    {
        let store = SqliteStore::open(&db, Duration::from_millis(20)).expect("store");
        store
            .open_account("acme", two_days_ago - jiff::SignedDuration::from_hours(24))
            .expect("open the account");
        store
            .post(sihai_store::NewEntry {
                enterprise: "acme".into(),
                kind: EntryKind::Adjustment,
                amount: sihai_store::Money::from_yuan(-10).expect("yuan"),
                reference: "unpaid".into(),
                at: two_days_ago,
                actor: "test".into(),
                note: Some("arrears".into()),
            })
            .expect("post the arrears");
    }
    let routing = billed_routing("sip:13900000001@127.0.0.1:9", "15", "")
        .replace(
            "tariff = \"per-second\"\n",
            &format!(
                "tariff = \"per-second\"\nalert_webhook = \"http://127.0.0.1:{}/account\"\n",
                webhook.port
            ),
        )
        .replace(
            "min_balance = \"0.01\"",
            "min_balance = \"20\"\nreclaim_after_days = 1",
        );
    let daemon = Daemon::start_in(dir, "", &routing);
    let config = daemon.config_path();
    let deadline = Instant::now() + Duration::from_secs(10);
    while account_field(&config, "status") != "reclaimed" {
        assert!(
            Instant::now() < deadline,
            "not reclaimed:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Caller::refused(&daemon, 404).run();
    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 1);
    assert_eq!(
        cdrs[0].hangup_cause.as_deref(),
        Some("reclaimed"),
        "{cdrs:#?}"
    );

    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !events
        .iter()
        .any(|b: &String| b.contains("numbers_reclaimed"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reclaim notice; got {events:#?}");
        if let Ok((_, body)) = webhook.bodies.recv_timeout(left) {
            events.push(body);
        }
    }
    let notice = events
        .iter()
        .find(|b| b.contains("numbers_reclaimed"))
        .expect("the notice");
    assert!(notice.contains("\"enterprise\":\"acme\""), "{notice}");
    assert!(notice.contains("\"balance\":\"-10.00\""), "{notice}");
    // A recharge alone does not bring reclaimed numbers back: an operator does.
    recharge(&config, "600", "bank-1");
    assert_eq!(account_field(&config, "status"), "reclaimed");
    let out = sihai(&config, &["account", "restore", "acme"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(account_field(&config, "status"), "active");
    // Refused now only for want of the ¥20 minimum: the ¥590 balance admits the call,
    // which rings a phone that is not there (the gateway's port 9 is closed).
    Caller::refused(&daemon, 480).run();
    let cdrs = wait_for_billed_cdrs(&daemon.db_path(), 2);
    assert_ne!(
        cdrs[0].hangup_cause.as_deref(),
        Some("reclaimed"),
        "{cdrs:#?}"
    );
    assert_verified(&config);
}

/// The billing lifecycle's low-balance warning goes to the enterprise's webhook through
/// the alert outbox, and the log calls it an account alert, not a missed call.
#[test]
fn a_low_balance_warning_is_posted_to_the_webhook_and_logged_as_an_account_alert() {
    let hook = support::webhook::Webhook::start();
    let enterprise = format!(
        "alert_webhook = \"http://127.0.0.1:{}/alerts\"\ntariff = \"per-second\"\n\
         [enterprise.billing]\nlow_balance_warning = \"50\"\nsuspend_below = \"0\"\n",
        hook.port
    );
    let rest = format!(
        "{}\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
        group(
            "sales",
            "sequential",
            &[phone("sip:13900000001@127.0.0.1:5999", "")]
        )
    );
    let daemon = Daemon::start_with("", &routing(&enterprise, "group = \"sales\"", &rest));

    // The account opens at zero, below ¥50: the daemon's first review warns.
    let (line, body) = hook
        .bodies
        .recv_timeout(Duration::from_secs(15))
        .unwrap_or_else(|_| panic!("no low-balance warning posted:\n{}", daemon.plain_log()));
    assert!(line.starts_with("POST /alerts "), "{line}");
    assert!(body.contains("\"event\":\"low_balance\""), "{body}");
    assert!(body.contains("\"enterprise\":\"acme\""), "{body}");
    daemon.wait_for_log("account alert delivered", 1, Duration::from_secs(10));
    let log = daemon.plain_log();
    assert!(
        log.contains("event=\"low_balance\"") || log.contains("event=low_balance"),
        "{log}"
    );
    assert!(!log.contains("missed-call alert"), "{log}");
}
