//! What an enterprise reads in its backend, through the built daemon's admin API after
//! real calls (sipp as the carrier and the phone): its call detail records page by page
//! (a keyset walk sees every call once), its missed calls (the unanswered call, not the
//! blacklisted one), the CSV export (byte for byte what `sihai cdr --csv` prints), its
//! prepaid account, the month's ledger and bill (every figure agreeing with the CDR's
//! cost and with `sihai account show`); bad filters are a `400` saying why, and another
//! enterprise sees none of it.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::api::{Session, add_user, http};
use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, free_port, sihai_ok};

/// A caller the plan blacklists: its call is refused with 603 and is no missed call.
const BLACKLISTED: &str = "13700000007";

/// `acme` billed per second at ¥0.60/min, its one phone `phone_uri`, a second enterprise
/// `beta`, and the API on `api_port`.
fn billed_routing(api_port: u16, phone_uri: &str) -> String {
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}\n[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n",
        routing(
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\n\
             suspend_below = \"0\"\nlow_balance_warning = \"0\"\nmin_recharge = \"0.01\"\n",
            &format!("group = \"sales\"\nblacklist = [\"{BLACKLISTED}\"]\n"),
            &format!(
                "{}\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
                group(
                    "sales",
                    "sequential",
                    &[phone(phone_uri, "ring_timeout_s = 2")]
                )
            ),
        )
    )
}

/// An exact decimal yuan string as ten-thousandths of a yuan, so that sums compare
/// exactly: `"-0.325"` is -3250.
fn units(yuan: &Value) -> i64 {
    let text = yuan
        .as_str()
        .unwrap_or_else(|| panic!("{yuan} is no amount"));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(fraction.len() <= 4, "{text}");
    let value = whole.parse::<i64>().expect("whole yuan") * 10_000
        + format!("{fraction:0<4}").parse::<i64>().expect("fraction");
    if negative { -value } else { value }
}

fn call_ids(page: &Value) -> Vec<String> {
    page["cdrs"]
        .as_array()
        .unwrap_or_else(|| panic!("no cdrs in {page}"))
        .iter()
        .map(|c| c["call_id"].as_str().expect("call_id").to_owned())
        .collect()
}

/// One number the daemon's database answers `sql` with.
fn query_i64(daemon: &Daemon, sql: &str) -> i64 {
    let db = rusqlite::Connection::open_with_flags(
        daemon.db_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the daemon's database");
    db.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    db.query_row(sql, [], |row| row.get(0)).expect(sql)
}

/// The analytics watermark once it covers every CDR, or as it is after `seconds`.
fn rolled_up_through(daemon: &Daemon, seconds: u64) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        let through = query_i64(
            daemon,
            "SELECT through_cdr FROM analytics_watermark WHERE id = 1",
        );
        let last = query_i64(daemon, "SELECT COALESCE(max(id), 0) FROM cdr");
        if through >= last || std::time::Instant::now() > deadline {
            return through;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn an_enterprise_reads_its_calls_missed_calls_csv_account_ledger_and_bill() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let phone_uri = answers.uri("13900000001");
    let api_port = free_port();
    let daemon = Daemon::start_with("", &billed_routing(api_port, &phone_uri));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-viewer", "enterprise_viewer", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    sihai_ok(
        &config,
        &["account", "recharge", "acme", "10", "--ref", "bank-1"],
    );

    // Answered and charged; then unanswered (the phone has gone: a missed call); then
    // refused for the blacklist (not a missed call).
    Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(1500)
        .run();
    answers.finish(&daemon);
    Caller::refused(&daemon, 480).run();
    Caller::refused(&daemon, 603).caller(BLACKLISTED).run();
    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");

    let viewer = Session::login(addr, "acme-viewer");
    let all = viewer.get("/api/v1/enterprises/acme/cdrs");
    assert_eq!(all.status, 200, "{}", all.body);
    let all = all.json();
    let outcomes: Vec<&str> = all["cdrs"]
        .as_array()
        .expect("cdrs")
        .iter()
        .map(|c| c["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(outcomes.len(), 3, "{all}");
    assert_eq!(outcomes[0], "blacklisted", "newest first: {all}");
    assert_eq!(outcomes[2], "answered", "{all}");
    assert!(all["next"].is_null(), "one page holds them: {all}");
    let answered = &all["cdrs"][2];
    assert_eq!(answered["number"], "4001234567");
    assert_eq!(answered["caller"], "13800138000");
    assert_eq!(answered["tariff"], "per-second");
    assert!(answered["billed_seconds"].as_u64() >= Some(1), "{answered}");
    let cost = units(&answered["cost"]);
    assert!(cost > 0, "{answered}");
    assert_eq!(
        cost,
        answered["billed_seconds"].as_i64().unwrap_or(0) * 100,
        "¥0.01 a second: {answered}"
    );

    // One call a page: following `next` walks the same calls in the same order, once.
    let mut walked = Vec::new();
    let mut path = "/api/v1/enterprises/acme/cdrs?limit=1".to_owned();
    for _ in 0..5 {
        let page = viewer.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        walked.extend(call_ids(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/enterprises/acme/cdrs?limit=1&before={next}"),
            None => break,
        }
    }
    assert_eq!(walked, call_ids(&all));

    // The missed calls: the unanswered one only.
    let missed = viewer.get("/api/v1/enterprises/acme/missed-calls").json();
    assert_eq!(
        call_ids(&missed),
        vec![call_ids(&all)[1].clone()],
        "{missed}"
    );
    assert_ne!(missed["cdrs"][0]["outcome"], "answered");
    // Filters combine: answered calls from the caller, in a range that holds them.
    let filtered = viewer
        .get("/api/v1/enterprises/acme/cdrs?outcome=answered&caller=%2B86%20138-0013-8000&since=2020-01-01T00:00:00%2B08:00")
        .json();
    assert_eq!(
        call_ids(&filtered),
        vec![call_ids(&all)[2].clone()],
        "{filtered}"
    );
    let none = viewer
        .get("/api/v1/enterprises/acme/cdrs?until=2020-01-01T00:00:00Z")
        .json();
    assert_eq!(call_ids(&none), Vec::<String>::new());

    // The CSV export is what the operator's `sihai cdr --csv` prints, byte for byte.
    let csv = viewer.get("/api/v1/enterprises/acme/cdrs.csv");
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert!(
        csv.header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "{}",
        csv.headers
    );
    assert_eq!(
        csv.body,
        sihai_ok(&config, &["cdr", "--csv", "--enterprise", "acme"])
    );

    // The account agrees with the operator's view and with the call's cost.
    let account = viewer.get("/api/v1/enterprises/acme/account");
    assert_eq!(account.status, 200, "{}", account.body);
    let account = account.json();
    assert_eq!(units(&account["balance"]), 10 * 10_000 - cost, "{account}");
    assert_eq!(units(&account["reserved"]), 0, "{account}");
    assert_eq!(account["status"], "active");
    let shown: Value =
        serde_json::from_str(&sihai_ok(&config, &["account", "show", "acme", "--json"]))
            .expect("account show --json");
    assert_eq!(units(&shown["balance"]), units(&account["balance"]));

    // The month's ledger: the recharge and the call's charge, each balance following.
    let ledger = viewer.get("/api/v1/enterprises/acme/ledger");
    assert_eq!(ledger.status, 200, "{}", ledger.body);
    let ledger = ledger.json();
    let entries = ledger["entries"].as_array().cloned().unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "recharge" && units(&e["amount"]) == 100_000),
        "{ledger}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "call_charge" && units(&e["amount"]) == -cost),
        "{ledger}"
    );
    assert!(ledger["next"].is_null(), "one page holds them: {ledger}");
    // One entry a page: following `next` gives the same entries, once each.
    let mut walked = Vec::new();
    let mut path = "/api/v1/enterprises/acme/ledger?limit=1".to_owned();
    for _ in 0..entries.len() + 1 {
        let page = viewer.get(&path).json();
        walked.extend(page["entries"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/enterprises/acme/ledger?limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked, entries);
    let mut running = 0;
    for entry in &entries {
        running += units(&entry["amount"]);
        assert_eq!(running, units(&entry["balance_after"]), "{ledger}");
    }
    assert_eq!(running, units(&account["balance"]));

    // The bill of the month: one charged call, closing at the balance.
    let bill = viewer.get("/api/v1/enterprises/acme/bill");
    assert_eq!(bill.status, 200, "{}", bill.body);
    let bill = bill.json();
    assert_eq!(bill["name"], "Acme");
    assert_eq!(bill["calls"], 1, "{bill}");
    assert_eq!(units(&bill["calls_cost"]), cost, "{bill}");
    assert_eq!(units(&bill["opening"]), 0, "{bill}");
    assert_eq!(
        units(&bill["closing"]),
        units(&account["balance"]),
        "{bill}"
    );
    assert_eq!(units(&bill["entries_sum"]), units(&account["balance"]));
    let charges = bill["totals"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["kind"] == "call_charge"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(charges["entries"], 1, "{bill}");
    assert_eq!(units(&charges["amount"]), -cost, "{bill}");

    // The traffic analysis of the days around now (Shanghai) holds the three calls.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("Asia/Shanghai"))
        .date();
    let yesterday = today.yesterday().expect("a day");
    let analytics = viewer.get(&format!(
        "/api/v1/enterprises/acme/analytics?from={yesterday}&to={today}&number=400-123-4567"
    ));
    assert_eq!(analytics.status, 200, "{}", analytics.body);
    let report = analytics.json();
    assert_eq!(report["totals"]["calls"], 3, "{report}");
    assert_eq!(report["totals"]["answered"], 1, "{report}");
    assert_eq!(report["totals"]["missed"], 1, "{report}");
    assert_eq!(report["totals"]["refused"], 1, "{report}");
    assert_eq!(report["refused_by_reason"]["blacklisted"], 1, "{report}");
    assert_eq!(report["answer_rate"], 0.5, "{report}");
    assert_eq!(report["days"].as_object().map(|d| d.len()), Some(2));
    let hourly: u64 = report["hours"]
        .as_array()
        .map(|h| h.iter().filter_map(|c| c["calls"].as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(hourly, 3, "{report}");
    // Two distinct callers, neither seen before the range.
    assert_eq!(report["new_callers"], 2, "{report}");
    assert_eq!(report["returning_callers"], 0, "{report}");
    assert_eq!(report["phones"][&phone_uri]["answered"], 1, "{report}");
    assert_eq!(units(&report["cost"]), cost, "{report}");
    // Another number of the enterprise had none of them.
    let other = viewer
        .get(&format!(
            "/api/v1/enterprises/acme/analytics?from={yesterday}&to={today}&number=4009999999"
        ))
        .json();
    assert_eq!(other["totals"]["calls"], 0, "{other}");
    // The daemon's rollup job (every 2 s) folds the calls into the day rollups; the
    // figures from its rollups are those folded from the CDRs a moment ago.
    let through = rolled_up_through(&daemon, 10);
    let last_cdr = query_i64(&daemon, "SELECT max(id) FROM cdr");
    assert!(
        through >= last_cdr,
        "rolled up through {through} of {last_cdr}"
    );
    assert!(
        query_i64(
            &daemon,
            "SELECT count(*) FROM analytics_day WHERE enterprise = 'acme'"
        ) > 0
    );
    let rolled = viewer
        .get(&format!(
            "/api/v1/enterprises/acme/analytics?from={yesterday}&to={today}&number=400-123-4567"
        ))
        .json();
    assert_eq!(rolled, report);

    // Bad filters are refused with the reason, never ignored.
    for (query, says) in [
        ("cdrs?outcome=missed", "outcome must be one of"),
        ("cdrs?limit=0", "limit must be"),
        ("cdrs?limit=501", "limit must be"),
        ("cdrs?since=yesterday", "since must be an RFC 3339"),
        ("cdrs?before=nonsense", "before must be"),
        ("ledger?month=2026-13", "month"),
        ("ledger?after=yesterday", "after must be"),
        ("bill?month=march", "month"),
        ("analytics?from=2026-03-01", "to is needed"),
        (
            "analytics?from=2026-03-31&to=2026-03-01",
            "before it starts",
        ),
        ("analytics?from=2025-01-01&to=2026-03-01", "at most 366"),
    ] {
        let reply = viewer.get(&format!("/api/v1/enterprises/acme/{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(reply.body.contains(says), "{query}: {}", reply.body);
    }

    // Beta sees its own (empty) records and nothing of acme's; it has no account.
    let beta = Session::login(addr, "beta-admin");
    let own = beta.get("/api/v1/enterprises/beta/cdrs");
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(call_ids(&own.json()), Vec::<String>::new());
    assert_eq!(beta.get("/api/v1/enterprises/beta/account").status, 404);
    for route in [
        "cdrs",
        "cdrs.csv",
        "missed-calls",
        "account",
        "ledger",
        "bill",
    ] {
        let path = format!("/api/v1/enterprises/acme/{route}");
        assert_eq!(beta.get(&path).status, 404, "{path}");
    }
    // Without a session, nothing.
    assert_eq!(
        http(addr, "GET", "/api/v1/enterprises/acme/cdrs", &[], None).status,
        401
    );
    daemon.stop();
}
