//! Recharges and adjustments through the built daemon's admin API, as the operator:
//! posted by the rules `sihai account recharge` / `adjust` use (the same code), so a
//! recharge lifts the suspended account at once, a retry with the same reference posts
//! nothing twice (through either door), another amount under a used reference is
//! refused, an amount below `min_recharge` needs `force`, a bad amount is a `422`
//! naming the field; the account and ledger routes and `sihai account show --json`
//! agree; every posting is audited; an enterprise's own admin gets `403`, another
//! enterprise's `404`.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::api::{Reply, Session, add_user, api_key, http};
use support::routing::{group, phone, routing};
use support::{Daemon, free_port, sihai_ok};

/// `acme` billed, its calls refused below ¥20 and the account suspended below ¥10 (it
/// starts at zero, so the daemon's first review suspends it), recharges of at least
/// ¥100; a second enterprise `beta`, not billed; the API on `api_port`.
fn billed_routing(api_port: u16) -> String {
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}\n[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n",
        routing(
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"20\"\n\
             suspend_below = \"10\"\nlow_balance_warning = \"0\"\nmin_recharge = \"100\"\n",
            "group = \"sales\"",
            &format!(
                "{}\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
                group(
                    "sales",
                    "sequential",
                    &[phone("sip:13900000001@127.0.0.1:5999", "")]
                )
            ),
        )
    )
}

/// A POST with the operator's API key.
fn post(addr: SocketAddr, key: &str, path: &str, body: &str) -> Reply {
    http(
        addr,
        "POST",
        path,
        &[("Authorization", &format!("Bearer {key}"))],
        Some(body),
    )
}

fn get(addr: SocketAddr, key: &str, path: &str) -> Value {
    let reply = http(
        addr,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    );
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

fn refused_field(reply: &Reply) -> String {
    assert_eq!(reply.status, 422, "{}", reply.body);
    reply.json()["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_operator_recharges_and_adjusts_through_the_api_once_per_reference() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &billed_routing(api_port));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    let ops = api_key(&config, "ops");
    let recharges = "/api/v1/enterprises/acme/recharges";

    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, &ops, "/api/v1/enterprises/acme/account")["status"] != "suspended" {
        assert!(Instant::now() < deadline, "the account was not suspended");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The recharge is posted and lifts the suspension at once.
    let body = r#"{"amount":"600.50","reference":"bank-1","note":"March"}"#;
    let first = post(addr, &ops, recharges, body);
    assert_eq!(first.status, 201, "{}", first.body);
    let first = first.json();
    assert_eq!(first["replayed"], false);
    assert_eq!(first["entry"]["kind"], "recharge");
    assert_eq!(first["entry"]["amount"], "600.50");
    assert_eq!(first["entry"]["reference"], "bank-1");
    assert_eq!(first["entry"]["actor"], "ops");
    assert_eq!(first["entry"]["note"], "March");
    assert_eq!(first["account"]["balance"], "600.50");
    assert_eq!(first["account"]["status"], "active", "{first}");
    assert!(
        first["reviewed"]
            .as_array()
            .is_some_and(|lines| lines.iter().any(|l| l == "acme: resumed")),
        "{first}"
    );

    // A retry (the answer was lost) posts nothing and answers the same entry.
    let retry = post(addr, &ops, recharges, body);
    assert_eq!(retry.status, 200, "{}", retry.body);
    let retry = retry.json();
    assert_eq!(retry["replayed"], true);
    assert_eq!(retry["entry"], first["entry"]);
    assert_eq!(retry["account"]["balance"], "600.50");
    // So does the same payment through the other door.
    let cli = sihai_ok(
        &config,
        &["account", "recharge", "acme", "600.50", "--ref", "bank-1"],
    );
    assert!(cli.contains("already posted"), "{cli}");
    // Another amount under the same reference is refused; nothing changes.
    let reused = post(
        addr,
        &ops,
        recharges,
        r#"{"amount":"700","reference":"bank-1"}"#,
    );
    assert_eq!(reused.status, 409, "{}", reused.body);
    assert!(reused.body.contains("different amount"), "{}", reused.body);

    // Bad amounts are a 422 naming the field, before anything is posted.
    for bad in [
        r#"{"amount":"six hundred","reference":"bank-9"}"#,
        r#"{"amount":600.5,"reference":"bank-9"}"#,
        r#"{"amount":"600.12345","reference":"bank-9"}"#,
        r#"{"amount":"-5","reference":"bank-9"}"#,
        r#"{"amount":"0","reference":"bank-9"}"#,
        r#"{"reference":"bank-9"}"#,
    ] {
        assert_eq!(
            refused_field(&post(addr, &ops, recharges, bad)),
            "amount",
            "{bad}"
        );
    }
    let below = post(
        addr,
        &ops,
        recharges,
        r#"{"amount":"50","reference":"bank-2"}"#,
    );
    assert_eq!(refused_field(&below), "amount");
    assert!(
        below.body.contains("minimum recharge of 100.00"),
        "{}",
        below.body
    );
    // As with `sihai account recharge --force`, the operator may post it anyway.
    let forced = post(
        addr,
        &ops,
        recharges,
        r#"{"amount":"50","reference":"bank-2","force":true}"#,
    );
    assert_eq!(forced.status, 201, "{}", forced.body);
    assert_eq!(forced.json()["account"]["balance"], "650.50");

    // An adjustment, of either sign, says why.
    let adjustments = "/api/v1/enterprises/acme/adjustments";
    let no_note = post(
        addr,
        &ops,
        adjustments,
        r#"{"amount":"-0.50","reference":"fix-1"}"#,
    );
    assert_eq!(refused_field(&no_note), "note");
    let zero = post(
        addr,
        &ops,
        adjustments,
        r#"{"amount":"0","reference":"fix-1","note":"x"}"#,
    );
    assert_eq!(refused_field(&zero), "amount");
    let adjusted = post(
        addr,
        &ops,
        adjustments,
        r#"{"amount":"-0.50","reference":"fix-1","note":"bank fee"}"#,
    );
    assert_eq!(adjusted.status, 201, "{}", adjusted.body);
    assert_eq!(adjusted.json()["entry"]["kind"], "adjustment");

    // The account, the ledger and the command line agree: 600.50 + 50 - 0.50.
    let account = get(addr, &ops, "/api/v1/enterprises/acme/account");
    assert_eq!(account["balance"], "650.00", "{account}");
    assert_eq!(account["status"], "active");
    let shown: Value =
        serde_json::from_str(&sihai_ok(&config, &["account", "show", "acme", "--json"]))
            .expect("account show --json");
    assert_eq!(shown["balance"], account["balance"], "{shown}");
    assert_eq!(shown["status"], account["status"]);
    let ledger = get(addr, &ops, "/api/v1/enterprises/acme/ledger");
    let entries: Vec<(String, String, String)> = ledger["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("{ledger}"))
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap_or_default().to_owned(),
                e["amount"].as_str().unwrap_or_default().to_owned(),
                e["balance_after"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let owned = |k: &str, a: &str, b: &str| (k.to_owned(), a.to_owned(), b.to_owned());
    assert_eq!(
        entries,
        vec![
            owned("recharge", "600.50", "600.50"),
            owned("recharge", "50.00", "650.50"),
            owned("adjustment", "-0.50", "650.00"),
        ],
        "each payment once: {ledger}"
    );

    // Each accepted request is audited: who, from where, amount and reference.
    let audit = get(addr, &ops, "/api/v1/audit");
    let of = |target: &str| -> Vec<Value> {
        audit
            .as_array()
            .unwrap_or_else(|| panic!("{audit}"))
            .iter()
            .filter(|e| e["target"] == target)
            .cloned()
            .collect()
    };
    let bank_1 = of("recharge/bank-1");
    assert_eq!(bank_1.len(), 2, "the posting and its retry: {audit}");
    for entry in &bank_1 {
        assert_eq!(entry["action"], "account.recharge");
        assert_eq!(entry["actor"], "ops");
        assert_eq!(entry["source"], "127.0.0.1");
        assert_eq!(entry["enterprise"], "acme");
        let after: Value =
            serde_json::from_str(entry["after"].as_str().unwrap_or("null")).expect("JSON");
        assert_eq!(after["amount"], "600.50", "{entry}");
        assert_eq!(after["reference"], "bank-1", "{entry}");
    }
    assert_eq!(of("adjustment/fix-1")[0]["action"], "account.adjustment");

    // Only the operator posts: the enterprise's own admin is refused (403), another
    // enterprise's admin is told nothing exists (404); the balance is untouched.
    let admin = Session::login(addr, "acme-admin");
    let by_admin = http(
        addr,
        "POST",
        recharges,
        &[("Cookie", &admin.cookie), ("X-CSRF-Token", &admin.csrf)],
        Some(r#"{"amount":"1000","reference":"self-1"}"#),
    );
    assert_eq!(by_admin.status, 403, "{}", by_admin.body);
    let beta = Session::login(addr, "beta-admin");
    for route in ["recharges", "adjustments"] {
        let foreign = http(
            addr,
            "POST",
            &format!("/api/v1/enterprises/acme/{route}"),
            &[("Cookie", &beta.cookie), ("X-CSRF-Token", &beta.csrf)],
            Some(r#"{"amount":"1000","reference":"beta-1","note":"x"}"#),
        );
        assert_eq!(foreign.status, 404, "{route}: {}", foreign.body);
    }
    // Beta is not billed: it has no account to recharge, even for the operator.
    let unbilled = post(
        addr,
        &ops,
        "/api/v1/enterprises/beta/recharges",
        r#"{"amount":"1000","reference":"b-1"}"#,
    );
    assert_eq!(unbilled.status, 404, "{}", unbilled.body);
    assert_eq!(
        get(addr, &ops, "/api/v1/enterprises/acme/account")["balance"],
        "650.00"
    );
    daemon.stop();
}

/// `acme` billed with one bound phone included and ¥240 a year for each other, its
/// lifecycle reviewed every second; the API on `api_port`.
fn fee_routing(api_port: u16) -> String {
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}",
        routing(
            "tariff = \"per-second\"\n[enterprise.billing]\nincluded_phones = 1\n\
             extra_phone_fee = \"240\"\nlow_balance_warning = \"0\"\nmonthly_minimum = \"0\"\n",
            "group = \"sales\"",
            &format!(
                "{}\n[billing]\nlifecycle_interval_s = 1\n\n\
                 [[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
                group(
                    "sales",
                    "sequential",
                    &["{ number = \"13900000001\" }".to_owned()]
                )
            ),
        )
    )
}

#[test]
fn a_bound_phone_added_through_the_api_beyond_the_included_one_posts_its_fee_once() {
    let api_port = free_port();
    let daemon = Daemon::start_with("", &fee_routing(api_port));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let admin = Session::login(addr, "acme-admin");
    let fees = || -> Vec<Value> {
        let ledger = admin.get("/api/v1/enterprises/acme/ledger?limit=500");
        assert_eq!(ledger.status, 200, "{}", ledger.body);
        ledger.json()["entries"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|e| {
                        e["reference"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("fee/extra-phone/"))
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    // One phone: included, no fee, through the reviews of the account's first seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.get("/api/v1/enterprises/acme/account").status != 200 {
        assert!(Instant::now() < deadline, "acme's account was not opened");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(fees(), Vec::<Value>::new());

    // The enterprise binds a second phone itself.
    let put = admin.put(
        "/api/v1/enterprises/acme/groups/sales",
        r#"{"strategy":"sequential","phones":[{"number":"13900000001"},{"number":"13900000002"}]}"#,
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while fees().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no extra-phone fee within 10 s:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Later reviews post it no second time.
    std::thread::sleep(Duration::from_millis(2500));
    let posted = fees();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["kind"], "fee");
    assert_eq!(posted[0]["amount"], "-240.00");
    assert!(
        posted[0]["reference"]
            .as_str()
            .is_some_and(|r| r.ends_with("/13900000002")),
        "{posted:?}"
    );
    daemon.stop();
}
