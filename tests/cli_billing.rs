//! The prepaid-account command line as an operator uses it, against the built binary
//! and a store in a temporary directory: `sihai account recharge` (idempotent on its
//! reference, refusing what it must), `adjust`, `show --json`, `list`, `ledger`,
//! `verify`, `sihai bill` (a statement that reconciles) and the billing columns of
//! `sihai cdr --csv`. Calls are seeded by recording CDRs with a cost straight into the
//! store (the daemon's billed call path is tested in the crates and in calls.rs).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use sihai_billing::Month;
use sihai_store::{Cdr, CdrStore, EntryKind, LedgerStore, Money, NewEntry, Outcome, SqliteStore};
use support::SIHAI;

/// A configuration with a billed enterprise (acme, at the `standard` tariff, default
/// policy: min_recharge 600, min_balance 100, suspend_below 15) and one that is not
/// billed (beta), storing in `dir`.
fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("sihai.toml");
    let text = format!(
        "[sip]\n\
         [[sip.listen]]\ntransport = \"udp\"\naddress = \"127.0.0.1:5060\"\n\
         [store]\nsqlite = \"{}\"\n\
         [[tariff]]\nname = \"standard\"\nrate_per_minute = \"0.30\"\n\
         [[enterprise]]\nid = \"acme\"\nname = \"Acme 贸易有限公司\"\ntariff = \"standard\"\n\
         [[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n\
         [[group]]\nname = \"sales\"\nenterprise = \"acme\"\nstrategy = \"sequential\"\n\
         phones = [{{ number = \"13900000001\" }}]\n\
         [[plan]]\nname = \"acme-main\"\nenterprise = \"acme\"\ngroup = \"sales\"\n\
         [[number]]\nnumber = \"4001234567\"\nenterprise = \"acme\"\nstatus = \"active\"\n\
         plan = \"acme-main\"\n",
        dir.join("sihai.db").display()
    );
    std::fs::write(&path, text).expect("write the configuration");
    path
}

/// Runs `sihai ARGS -c CONFIG`.
fn sihai(config: &Path, args: &[&str]) -> Output {
    Command::new(SIHAI)
        .args(args)
        .arg("-c")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("run sihai")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the command and insists it exits 0; its stdout.
fn ok(config: &Path, args: &[&str]) -> String {
    let out = sihai(config, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "sihai {args:?}:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs the command and insists it exits 1; its stderr.
fn fails(config: &Path, args: &[&str]) -> String {
    let out = sihai(config, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "sihai {args:?} should fail:\n{}{}",
        stdout(&out),
        stderr(&out)
    );
    stderr(&out)
}

fn yuan(text: &str) -> Money {
    Money::from_str(text).expect("an amount")
}

/// `show --json` parsed.
fn shown(config: &Path, enterprise: &str) -> serde_json::Value {
    let text = ok(config, &["account", "show", enterprise, "--json"]);
    serde_json::from_str(&text).expect("JSON")
}

#[test]
fn a_recharge_is_posted_once_per_reference_and_refused_when_it_must_be() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());

    let out = ok(
        &config,
        &[
            "account",
            "recharge",
            "acme",
            "600.50",
            "--ref",
            "bank-0001",
            "--note",
            "transfer",
        ],
    );
    assert!(
        out.contains("posted recharge 600.50 to acme (ref bank-0001): balance 600.50"),
        "{out}"
    );

    // The same payment again: nothing changes, and that is no error.
    let out = ok(
        &config,
        &[
            "account",
            "recharge",
            "acme",
            "600.50",
            "--ref",
            "bank-0001",
        ],
    );
    assert!(out.contains("already posted"), "{out}");
    assert_eq!(shown(&config, "acme")["balance"], "600.50");

    // The same reference with another amount is a mistake, not a new payment.
    let err = fails(
        &config,
        &["account", "recharge", "acme", "700", "--ref", "bank-0001"],
    );
    assert!(
        err.contains("already posted with a different amount"),
        "{err}"
    );

    // Below the enterprise's min_recharge (600): refused unless forced.
    let err = fails(
        &config,
        &["account", "recharge", "acme", "100", "--ref", "bank-0002"],
    );
    assert!(
        err.contains("below acme's minimum recharge of 600.00"),
        "{err}"
    );
    ok(
        &config,
        &[
            "account",
            "recharge",
            "acme",
            "100",
            "--ref",
            "bank-0002",
            "--force",
        ],
    );

    // Never zero or negative, forced or not.
    let err = fails(
        &config,
        &[
            "account",
            "recharge",
            "acme",
            "0",
            "--ref",
            "bank-0003",
            "--force",
        ],
    );
    assert!(err.contains("must be more than 0"), "{err}");

    // An enterprise sihai does not bill, and one that does not exist.
    let err = fails(
        &config,
        &["account", "recharge", "beta", "600", "--ref", "bank-0004"],
    );
    assert!(err.contains("\"beta\" is not billed by sihai"), "{err}");
    let err = fails(
        &config,
        &["account", "recharge", "nobody", "600", "--ref", "bank-0005"],
    );
    assert!(err.contains("unknown enterprise \"nobody\""), "{err}");

    assert_eq!(shown(&config, "acme")["balance"], "700.50");
    let out = ok(&config, &["account", "verify"]);
    assert_eq!(out, "ok: 1 accounts, 2 entries\n");
}

#[test]
fn show_prints_the_account_and_its_policy_as_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    ok(
        &config,
        &["account", "recharge", "acme", "600", "--ref", "bank-1"],
    );
    ok(
        &config,
        &[
            "account",
            "adjust",
            "acme",
            "-512.60",
            "--ref",
            "fix-1",
            "--note",
            "wrong transfer",
        ],
    );

    let json = shown(&config, "acme");
    assert_eq!(json["enterprise"], "acme");
    assert_eq!(json["name"], "Acme 贸易有限公司");
    assert_eq!(json["tariff"], "standard");
    assert_eq!(json["balance"], "87.40");
    assert_eq!(json["reserved"], "0.00");
    assert_eq!(json["available"], "87.40");
    // Above 15 (suspend_below), below 200 (low_balance_warning): active and warned.
    assert_eq!(json["status"], "active");
    assert_eq!(json["low_balance_warned"], true);
    assert_eq!(json["min_balance"], "100.00");
    assert_eq!(json["suspend_below"], "15.00");
    assert_eq!(json["min_recharge"], "600.00");
    assert!(
        json["status_since"]
            .as_str()
            .is_some_and(|t| t.parse::<Timestamp>().is_ok()),
        "{json}"
    );

    let list = ok(&config, &["account", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(
        lines,
        [
            "enterprise  status  balance  reserved  available  low_balance",
            "----------  ------  -------  --------  ---------  -----------",
            "acme        active    87.40      0.00      87.40  warned",
        ],
        "\n{list}"
    );

    // An enterprise without an account: not billed, or not there at all.
    let err = fails(&config, &["account", "show", "beta"]);
    assert!(err.contains("\"beta\" has no prepaid account"), "{err}");
    let err = fails(&config, &["account", "show", "nobody", "--json"]);
    assert!(err.contains("unknown enterprise \"nobody\""), "{err}");

    // An adjustment needs a reason.
    let out = sihai(
        &config,
        &["account", "adjust", "acme", "5", "--ref", "fix-2"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--note"), "{}", stderr(&out));
}

#[test]
fn a_recharge_resumes_a_suspended_account_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    ok(
        &config,
        &["account", "recharge", "acme", "600", "--ref", "bank-1"],
    );
    // Below suspend_below (15): the review after the post suspends the account.
    let out = ok(
        &config,
        &[
            "account",
            "adjust",
            "acme",
            "-590",
            "--ref",
            "fix-1",
            "--note",
            "test suspension",
        ],
    );
    assert!(out.contains("acme: suspended"), "{out}");
    assert_eq!(shown(&config, "acme")["status"], "suspended");

    let out = ok(
        &config,
        &["account", "recharge", "acme", "600", "--ref", "bank-2"],
    );
    assert!(out.contains("acme: resumed"), "{out}");
    let json = shown(&config, "acme");
    assert_eq!(json["status"], "active");
    assert_eq!(json["balance"], "610.00");
}

/// A CDR of an answered call of acme's 4001234567 set up at `setup`, with `cost`.
fn call(id: &str, setup: Timestamp, seconds: u32, cost: Option<&str>) -> Cdr {
    let end = setup + SignedDuration::from_secs(i64::from(seconds) + 5);
    Cdr {
        call_id: id.into(),
        number: "4001234567".into(),
        enterprise: "acme".into(),
        caller: "13812345678".into(),
        caller_province: Some("广东".into()),
        caller_city: Some("深圳".into()),
        answered_by: Some("13900000001".into()),
        attempts: vec![],
        setup_at: setup,
        ring_at: None,
        answer_at: Some(setup + SignedDuration::from_secs(5)),
        end_at: end,
        talk_seconds: seconds,
        outcome: Outcome::Answered,
        hangup_side: None,
        hangup_cause: None,
        recording: None,
        menu_path: None,
        announcement: None,
        billed_seconds: if cost.is_some() {
            seconds.div_ceil(60) * 60
        } else {
            0
        },
        cost: cost.map(yuan),
        tariff: cost.map(|_| "standard".into()),
        customer_id: None,
    }
}

/// The amount after `label` on its line of the statement's totals.
fn total(statement: &str, label: &str) -> Money {
    let line = statement
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} line in\n{statement}"));
    yuan(line.rsplit(' ').next().expect("an amount"))
}

#[test]
fn the_monthly_statement_lists_the_charged_calls_and_reconciles() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    // The calls and the posts below fall in the current month; the opening balance
    // comes from a recharge in the month before.
    let now = Timestamp::now();
    let month = Month::containing(now);
    let month_text = month.to_string();
    let before = month.start() - SignedDuration::from_hours(24);
    let setup = (now - SignedDuration::from_secs(600)).max(month.start());
    {
        let store = SqliteStore::open(
            &dir.path().join("sihai.db"),
            std::time::Duration::from_millis(5),
        )
        .expect("open the store");
        store
            .open_account("acme", before)
            .expect("open the account");
        store
            .post(NewEntry {
                enterprise: "acme".into(),
                kind: EntryKind::Recharge,
                amount: yuan("1000"),
                reference: "bank-0".into(),
                at: before,
                actor: "cli".into(),
                note: None,
            })
            .expect("post last month's recharge");
        store
            .record(call("c1", setup, 100, Some("0.60")), None)
            .expect("record");
        store
            .record(
                call(
                    "c2",
                    setup + SignedDuration::from_secs(200),
                    250,
                    Some("1.25"),
                ),
                None,
            )
            .expect("record");
        // Neither of these is on the statement: one was free, one was not billed.
        store
            .record(
                call("c3", setup + SignedDuration::from_secs(300), 3, Some("0")),
                None,
            )
            .expect("record");
        store
            .record(
                call("c4", setup + SignedDuration::from_secs(400), 30, None),
                None,
            )
            .expect("record");
        store.flush().expect("flush");
        store.close().expect("close");
    }
    ok(
        &config,
        &["account", "recharge", "acme", "600", "--ref", "bank-1"],
    );
    ok(
        &config,
        &[
            "account",
            "adjust",
            "acme",
            "-10.50",
            "--ref",
            "fix-1",
            "--note",
            "dropped call, refunded",
        ],
    );

    let statement = ok(&config, &["bill", "acme", "--month", &month_text]);
    assert!(
        statement.contains("Enterprise:       Acme 贸易有限公司 (acme)"),
        "{statement}"
    );
    assert!(
        statement.contains(&format!("Month:            {month_text}")),
        "{statement}"
    );
    assert!(statement.contains("Calls (2, 1.85 in all):"), "{statement}");
    let opening = total(&statement, "opening balance");
    let closing = total(&statement, "closing balance");
    assert_eq!(opening, yuan("1000"));
    assert_eq!(total(&statement, "call_charge"), yuan("-1.85"));
    assert_eq!(total(&statement, "recharge"), yuan("600"));
    assert_eq!(total(&statement, "adjustment"), yuan("-10.50"));
    // Whatever else the month holds (a month-end minimum the review posted), the
    // totals add up: opening + every kind's total = closing.
    let kinds = EntryKind::ALL
        .into_iter()
        .filter(|k| statement.contains(&format!("\n  {} ", k.as_str())))
        .fold(Money::ZERO, |sum, k| {
            sum.saturating_add(total(&statement, k.as_str()))
        });
    assert_eq!(opening.saturating_add(kinds), closing, "{statement}");
    assert_eq!(shown(&config, "acme")["balance"], closing.to_string());
    assert_eq!(closing, yuan("1587.65"), "{statement}");

    let csv = ok(&config, &["bill", "acme", "--month", &month_text, "--csv"]);
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "time,caller,caller_region,number,answered_by,billed_seconds,cost"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].ends_with(",13812345678,广东 深圳,4001234567,13900000001,120,0.60"),
        "{csv}"
    );
    assert!(lines[2].ends_with(",300,1.25"), "{csv}");

    // The month before: only its recharge; it closes where this month opens.
    let previous = month.prev().expect("a month before").to_string();
    let statement = ok(&config, &["bill", "acme", "--month", &previous]);
    assert_eq!(total(&statement, "opening balance"), Money::ZERO);
    assert_eq!(total(&statement, "closing balance"), yuan("1000"));

    // The ledger of the month: oldest first, with the balance after each.
    let ledger = ok(
        &config,
        &["account", "ledger", "acme", "--month", &month_text, "--csv"],
    );
    let rows: Vec<Vec<&str>> = ledger
        .split_terminator("\r\n")
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "time",
            "kind",
            "amount",
            "balance_after",
            "reference",
            "actor",
            "note"
        ]
    );
    let kinds: Vec<(&str, &str, &str)> = rows[1..].iter().map(|r| (r[1], r[2], r[3])).collect();
    assert_eq!(
        kinds,
        [
            ("call_charge", "-0.60", "999.40"),
            ("call_charge", "-1.25", "998.15"),
            ("recharge", "600.00", "1598.15"),
            ("adjustment", "-10.50", "1587.65"),
        ],
        "\n{ledger}"
    );
    let all = ok(&config, &["account", "ledger", "acme"]);
    assert_eq!(all.lines().count(), 2 + 5, "\n{all}");

    assert_eq!(
        ok(&config, &["account", "verify"]),
        "ok: 1 accounts, 5 entries\n"
    );

    // sihai cdr shows what each call was charged.
    let cdrs = ok(&config, &["cdr", "--csv"]);
    let header = cdrs.lines().next().expect("a header");
    assert!(
        header.contains(",talk_s,billed_seconds,cost,outcome,"),
        "{header}"
    );
    assert!(cdrs.contains(",250,300,1.25,answered,"), "{cdrs}");
    assert!(cdrs.contains(",30,0,,answered,"), "{cdrs}");
}

#[test]
fn a_month_that_is_not_yyyy_mm_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    let out = sihai(&config, &["bill", "acme", "--month", "2026-13"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a month"), "{}", stderr(&out));
}

#[test]
fn verify_names_a_balance_that_is_not_the_sum_of_its_entries_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    ok(
        &config,
        &["account", "recharge", "acme", "600", "--ref", "bank-1"],
    );
    // Someone edits the balance behind the ledger's back (+¥1.2345).
    let db = rusqlite::Connection::open(dir.path().join("sihai.db")).expect("open the database");
    db.execute(
        "UPDATE account SET balance = balance + 12345 WHERE enterprise = 'acme'",
        [],
    )
    .expect("tamper");
    drop(db);
    let out = sihai(&config, &["account", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("acme: balance 601.2345 but the ledger sums to 600.00"),
        "{}",
        stdout(&out)
    );
}
