//! The operator's pages of the admin API through the built daemon: suspending and
//! resuming an enterprise (its number answers a sipp call as a suspended number does,
//! then rings again, its own status untouched; the enterprise's admin cannot lift it),
//! every account's standing as `sihai account list --json` computes it, and the live
//! node view while a sipp call is held up.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::api::{Reply, Session, add_user, api_key, http};
use support::routing::{group, phone, routing};
use support::{Caller, Daemon, Phone, free_port, sihai_ok};

/// `acme` (its number 4001234567 rings `phone_uri`, billed per second when `billed`)
/// and `beta` (not billed), the API on `api_port`. A billed acme starts at ¥0, below
/// its `suspend_below` of ¥10, so the daemon's first review suspends its account.
fn operator_routing(api_port: u16, phone_uri: &str, billed: bool) -> String {
    let (enterprise, tariff) = if billed {
        (
            "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"20\"\n\
             suspend_below = \"10\"\nlow_balance_warning = \"50\"\n",
            "[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
        )
    } else {
        ("", "")
    };
    format!(
        "[api]\nlisten = \"127.0.0.1:{api_port}\"\n{}\n[[enterprise]]\nid = \"beta\"\nname = \"Beta\"\n",
        routing(
            enterprise,
            "group = \"sales\"",
            &format!(
                "{}\n{tariff}",
                group("sales", "sequential", &[phone(phone_uri, "")])
            ),
        )
    )
}

fn with_key(addr: SocketAddr, key: &str, method: &str, path: &str, body: Option<&str>) -> Reply {
    http(
        addr,
        method,
        path,
        &[("Authorization", &format!("Bearer {key}"))],
        body,
    )
}

fn get_json(addr: SocketAddr, key: &str, path: &str) -> Value {
    let reply = with_key(addr, key, "GET", path, None);
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

/// The audit entries of `target` by `actor` (newest first).
fn audited(addr: SocketAddr, key: &str, actor: &str, target: &str) -> Vec<Value> {
    get_json(addr, key, "/api/v1/audit")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|a| a["target"] == target && a["actor"] == actor)
        .collect()
}

#[test]
fn the_operator_suspends_an_enterprise_and_its_number_answers_suspended_until_resumed() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let api_port = free_port();
    let daemon = Daemon::start_with(
        "",
        &operator_routing(api_port, &answers.uri("13900000001"), false),
    );
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "beta-admin", "enterprise_admin", Some("beta"));
    let ops = api_key(&config, "ops");
    let acme = Session::login(addr, "acme-admin");
    let beta = Session::login(addr, "beta-admin");

    // Only the operator suspends: the enterprise's own admin 403, another's 404.
    assert_eq!(
        acme.post("/api/v1/enterprises/acme/suspend", "").status,
        403
    );
    assert_eq!(
        beta.post("/api/v1/enterprises/acme/suspend", "").status,
        404
    );
    let suspended = with_key(addr, &ops, "POST", "/api/v1/enterprises/acme/suspend", None);
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let entry = suspended.json();
    assert_eq!(entry["data"]["suspended"], true, "{entry}");
    assert_eq!(entry["data"]["name"], "Acme", "the other fields are kept");
    let revision = entry["revision"].as_i64().expect("a revision");
    assert_eq!(
        suspended.header("ETag").as_deref(),
        Some(format!("\"{revision}\"").as_str())
    );
    daemon.wait_tenant_reloaded(1);

    // The number answers as a suspended number does, ringing nobody.
    Caller::refused(&daemon, 480).run();
    // Its own status is untouched: resuming restores it as it was.
    let number = get_json(addr, &ops, "/api/v1/enterprises/acme/numbers/4001234567");
    assert_eq!(number["data"]["status"], "active", "{number}");

    // Idempotent: suspending again writes nothing (same revision, one audit entry).
    let again = with_key(addr, &ops, "POST", "/api/v1/enterprises/acme/suspend", None);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["revision"].as_i64(), Some(revision));
    let audit = audited(addr, &ops, "ops", "enterprise/acme");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(
        audit[0]["after"]
            .as_str()
            .is_some_and(|t| t.contains("suspended = true")),
        "{audit:?}"
    );

    // The enterprise's admin cannot lift it: not by a PUT of the field (403 naming it),
    // not by the resume route; its profile fields it still changes, and the suspension
    // stays.
    let lifted = acme.put(
        "/api/v1/enterprises/acme",
        r#"{"name":"Acme","suspended":false}"#,
    );
    assert_eq!(lifted.status, 403, "{}", lifted.body);
    assert_eq!(lifted.json()["errors"][0]["field"], "suspended");
    assert_eq!(acme.post("/api/v1/enterprises/acme/resume", "").status, 403);
    let renamed = acme.put("/api/v1/enterprises/acme", r#"{"name":"Acme Ltd"}"#);
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        renamed.json()["data"]["suspended"],
        true,
        "{}",
        renamed.body
    );
    daemon.wait_tenant_reloaded(2);
    Caller::refused(&daemon, 480).run();

    // The operator resumes it: the field is gone and the next call rings the phone.
    let resumed = with_key(addr, &ops, "POST", "/api/v1/enterprises/acme/resume", None);
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    let entry = resumed.json();
    assert!(entry["data"].get("suspended").is_none(), "{entry}");
    assert_eq!(entry["data"]["name"], "Acme Ltd");
    daemon.wait_tenant_reloaded(3);
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);

    // The same field through a PUT of the whole entry, by the operator.
    let put = with_key(
        addr,
        &ops,
        "PUT",
        "/api/v1/enterprises/acme",
        Some(r#"{"name":"Acme Ltd","suspended":true}"#),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    daemon.wait_tenant_reloaded(4);
    Caller::refused(&daemon, 480).run();
    // Not a boolean: the validator's 422 at the field.
    let bad = with_key(
        addr,
        &ops,
        "PUT",
        "/api/v1/enterprises/acme",
        Some(r#"{"name":"Acme Ltd","suspended":"yes"}"#),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        bad.json()["errors"][0]["field"],
        "suspended",
        "{}",
        bad.body
    );
    // The export carries it, as any field of the entry.
    let export = sihai_ok(&config, &["export", "--enterprise", "acme"]);
    assert!(export.contains("suspended = true"), "{export}");
}

#[test]
fn the_operator_lists_every_accounts_standing_as_the_command_line_computes_it() {
    let api_port = free_port();
    let daemon = Daemon::start_with(
        "",
        &operator_routing(api_port, "sip:13900000001@127.0.0.1:5999", true),
    );
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    add_user(&config, "acme-viewer", "enterprise_viewer", Some("acme"));
    let ops = api_key(&config, "ops");

    // The daemon's first review suspends the account (¥0 < ¥10).
    let deadline = Instant::now() + Duration::from_secs(10);
    let acme = loop {
        let all = get_json(addr, &ops, "/api/v1/accounts");
        let list = all.as_array().cloned().unwrap_or_default();
        assert_eq!(list.len(), 1, "beta is not billed: {all}");
        if list[0]["status"] == "suspended" {
            break list[0].clone();
        }
        assert!(Instant::now() < deadline, "not suspended: {all}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(acme["enterprise"], "acme");
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["billed"], true);
    assert_eq!(acme["tariff"], "per-second");
    assert_eq!(acme["balance"], "0.00");
    assert_eq!(acme["available"], "0.00");
    assert_eq!(acme["negative"], false);
    assert_eq!(acme["reclaim_at"], Value::Null, "not below zero: no clock");
    assert_eq!(acme["days_until_reclaim"], Value::Null);
    assert_eq!(acme["enterprise_suspended"], false);
    assert_eq!(acme["suspend_below"], "10.00");
    assert_eq!(acme["low_balance_warning"], "50.00");

    // Below zero, the reclaim clock runs: 30 days (the default) from now.
    let adjusted = with_key(
        addr,
        &ops,
        "POST",
        "/api/v1/enterprises/acme/adjustments",
        Some(r#"{"amount":"-12.50","reference":"fix-1","note":"a correction"}"#),
    );
    assert_eq!(adjusted.status, 201, "{}", adjusted.body);
    let acme = get_json(addr, &ops, "/api/v1/accounts")[0].clone();
    assert_eq!(acme["balance"], "-12.50", "{acme}");
    assert_eq!(acme["status"], "suspended");
    assert_eq!(acme["negative"], true);
    assert!(acme["negative_since"].is_string(), "{acme}");
    assert_eq!(acme["days_until_reclaim"], 30, "{acme}");
    // The same figures as the command line's, from the same code.
    let cli: Value =
        serde_json::from_str(&sihai_ok(&config, &["account", "list", "--json"])).expect("JSON");
    let line = &cli[0];
    assert_eq!(line["enterprise"], "acme");
    assert_eq!(line["reclaim_at"], acme["reclaim_at"], "{line}");
    assert_eq!(line["days_until_reclaim"], 30);
    assert_eq!(line["negative"], true);
    assert_eq!(line["status"], acme["status"]);
    assert_eq!(line["low_balance_warned"], acme["low_balance_warned"]);
    // The enterprise's own account route carries the same warning flag (the portal's
    // low-balance banner).
    let own = get_json(addr, &ops, "/api/v1/enterprises/acme/account");
    assert!(own["low_balance_warned"].is_boolean(), "{own}");
    assert_eq!(
        own["low_balance_warned"], acme["low_balance_warned"],
        "{own}"
    );

    // The operator's suspension of the enterprise shows beside the account's status.
    let suspended = with_key(addr, &ops, "POST", "/api/v1/enterprises/acme/suspend", None);
    assert_eq!(suspended.status, 200, "{}", suspended.body);
    let acme = get_json(addr, &ops, "/api/v1/accounts")[0].clone();
    assert_eq!(acme["enterprise_suspended"], true, "{acme}");

    // The whole node's accounts are the operator's: the enterprise's users get 403.
    for login in ["acme-admin", "acme-viewer"] {
        let session = Session::login(addr, login);
        let reply = session.get("/api/v1/accounts");
        assert_eq!(reply.status, 403, "{login}: {}", reply.body);
    }
    assert_eq!(http(addr, "GET", "/api/v1/accounts", &[], None).status, 401);
}

#[test]
fn the_node_view_shows_a_held_call_in_progress_then_none() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let api_port = free_port();
    let daemon = Daemon::start_with(
        "",
        &operator_routing(api_port, &answers.uri("13900000001"), false),
    );
    let config = daemon.config_path();
    let addr: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("address");
    add_user(&config, "ops", "operator", None);
    add_user(&config, "acme-admin", "enterprise_admin", Some("acme"));
    let ops = api_key(&config, "ops");

    let idle = get_json(addr, &ops, "/api/v1/node");
    assert_eq!(idle["calls"]["in_progress"], 0, "{idle}");
    assert_eq!(idle["calls"]["offered"], 0, "{idle}");
    assert_eq!(idle["calls"]["answer_rate_last_hour"], Value::Null);
    assert_eq!(idle["calls"]["setup_rate_seconds"], 10);
    assert!(idle["uptime_seconds"].as_i64().is_some(), "{idle}");
    assert!(idle["tenant_revision"].as_i64() > Some(0), "{idle}");

    // A call held up for 5 s: in progress, and counted in the setup rate once its
    // second is a whole one.
    let mut call = Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(5000)
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(4);
    let during = loop {
        let node = get_json(addr, &ops, "/api/v1/node");
        let rate = node["calls"]["setups_per_second"].as_f64().unwrap_or(0.0);
        if node["calls"]["in_progress"] == 1 && rate > 0.0 {
            break node;
        }
        assert!(Instant::now() < deadline, "no call in progress: {node}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(during["calls"]["offered"], 1, "{during}");
    assert_eq!(during["calls"]["setups_per_second"], 0.1, "{during}");
    assert_eq!(during["calls"]["answered"], 0, "not ended yet: {during}");
    call.finish(Duration::from_secs(30), &daemon);
    answers.finish(&daemon);

    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let node = get_json(addr, &ops, "/api/v1/node");
        if node["calls"]["in_progress"] == 0 {
            break node;
        }
        assert!(
            Instant::now() < deadline,
            "the call is still counted: {node}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let calls = &after["calls"];
    assert_eq!(calls["answered"], 1, "{after}");
    assert_eq!(calls["answered_last_hour"], 1, "{after}");
    assert_eq!(calls["missed_last_hour"], 0, "{after}");
    assert_eq!(calls["answer_rate_last_hour"], 1.0, "{after}");
    assert!(after["sip"]["requests"].as_u64() >= Some(3), "{after}");

    // The whole node is the operator's.
    let admin = Session::login(addr, "acme-admin");
    assert_eq!(admin.get("/api/v1/node").status, 403);
}
