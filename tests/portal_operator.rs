//! The operator's pages of the web portal in headless Chromium, against the built daemon
//! and sipp: the node's live view (a held call in progress, then none), an enterprise
//! created (a bad id refused at its field), every enterprise's numbers listed, the
//! accounts page showing the suspended account, which is recharged in the page — its
//! number, which refused a call before, takes the next one — the same reference posted
//! again changes nothing, an adjustment without its reason is refused at the field, the
//! enterprise suspended (its number refuses) and resumed (it answers), and the recharge
//! is in the audit log.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::api::{add_user, api_key, http};
use support::portal::BrowserTest;
use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, free_port};

/// `acme` billed and suspended below ¥10 (it starts at zero, so the daemon's first review
/// suspends it), its number ringing the sipp phone at `phone_uri`; the API on `api_port`.
fn billed_routing(api_port: u16, phone_uri: &str) -> String {
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}",
        routing(
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"20\"\n\
             suspend_below = \"10\"\nlow_balance_warning = \"0\"\nmin_recharge = \"100\"\n",
            "group = \"sales\"",
            &format!(
                "{}\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
                group("sales", "sequential", &[phone(phone_uri, "")])
            ),
        )
    )
}

#[test]
fn the_operator_creates_an_enterprise_and_recharges_a_suspended_one_whose_number_then_works() {
    let mut desk = Phone::start("uas_answer.xml", 3, 0);
    let api_port = free_port();
    let daemon = Daemon::start_with("", &billed_routing(api_port, &desk.uri("13900000001")));
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    let key = api_key(&config, "ops");
    let status = || {
        let reply = http(
            addr,
            "GET",
            "/api/v1/enterprises/acme/account",
            &[("Authorization", &format!("Bearer {key}"))],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let mut browser = BrowserTest::start("operator.mjs", addr, &[]);
    browser.wait_step("acme refuses calls");
    let deadline = Instant::now() + Duration::from_secs(10);
    while status() != "suspended" {
        assert!(Instant::now() < deadline, "the account was not suspended");
        std::thread::sleep(Duration::from_millis(100));
    }
    Caller::refused(&daemon, 480).run();
    browser.go("refused");

    browser.wait_step("recharged");
    assert_eq!(status(), "active");
    Caller::new(&daemon, "uac_answered.xml").run();
    browser.go("answered");

    // Suspended in the page: the number refuses; resumed: it answers again.
    browser.wait_step("acme suspended");
    daemon.wait_tenant_reloaded(2);
    Caller::refused(&daemon, 480).run();
    browser.go("refused");
    browser.wait_step("acme resumed");
    daemon.wait_tenant_reloaded(3);
    Caller::new(&daemon, "uac_answered.xml").run();
    browser.go("answered");

    // A call held up while the page watches the node.
    browser.wait_step("hold a call");
    let mut held = Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(8000)
        .spawn();
    browser.go("holding");
    browser.wait_step("release the call");
    held.finish(Duration::from_secs(30), &daemon);
    desk.finish(&daemon);
    browser.go("released");
    browser.finish();

    // What the page did is what the API holds: gamma exists, one recharge of ¥100.
    let gamma = http(
        addr,
        "GET",
        "/api/v1/enterprises/gamma",
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    );
    assert_eq!(gamma.status, 200, "{}", gamma.body);
    assert_eq!(gamma.json()["data"]["name"], "伽马科技");
    let ledger = http(
        addr,
        "GET",
        "/api/v1/enterprises/acme/ledger",
        &[("Authorization", &format!("Bearer {key}"))],
        None,
    );
    let recharges: Vec<_> = ledger.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "recharge")
        .cloned()
        .collect();
    assert_eq!(recharges.len(), 1, "{recharges:?}");
    assert_eq!(recharges[0]["amount"], "100.00");
}
