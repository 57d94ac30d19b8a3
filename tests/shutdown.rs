//! Graceful shutdown through the built daemon: sipp plays the carrier and the bound
//! phone, the test sends SIGTERM as systemd would. On the first signal the node drains:
//! a new call gets `503` with `Retry-After`, an OPTIONS probe `503`, and the calls in
//! progress go on; calls that end by themselves are recorded as usual and the daemon
//! exits as soon as the last one has; at the end of `[sip] drain_timeout_s` (or at a
//! second signal) the node ends the rest itself, with a BYE to both sides that says why,
//! records every CDR (`system shutdown`), charges each billed call once, and exits 0.
//!
//! Behind Kamailio (docs/kamailio-dispatcher.cfg), the draining node's `503` to the
//! dispatcher's OPTIONS probe takes it out of the set: the next calls go to the other
//! node while the draining one finishes its call and exits.
//!
//! Every call is billed (¥0.60 a minute per second, as in tests/billing.rs), so that
//! each test also shows that a call the shutdown ended is charged exactly once and the
//! books stay clean (`sihai account verify`).

mod support;

use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use sihai_store::{EntryKind, LedgerStore, SqliteStore};
use support::kamailio::{Kamailio, PING_INTERVAL_S, PROBE_TIMEOUT_S};
use support::routing::{group, phone, routing};
use support::{
    Caller, CdrRow, Daemon, Phone, SIHAI, UdpClient, ack_for_failure, header_of, invite, options,
    read_cdrs, status_of,
};

/// `acme` billed per second at ¥0.60/min; the phone takes every call of a test at once.
fn billed_routing(phone_uri: &str) -> String {
    routing(
        "tariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\n\
         suspend_below = \"0\"\nlow_balance_warning = \"0\"\nmin_recharge = \"0.01\"\n",
        "group = \"sales\"",
        &format!(
            "{}\n[billing]\nreservation_minutes = 1\n\n\
             [[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n",
            group("sales", "sequential", &[phone(phone_uri, "capacity = 60")])
        ),
    )
}

/// Runs `sihai ARGS -c CONFIG`, which must succeed, as an operator would.
fn sihai_ok(config: &Path, args: &[&str]) {
    let out = Command::new(SIHAI)
        .args(args)
        .arg("-c")
        .arg(config)
        .output()
        .expect("run sihai");
    assert!(
        out.status.success(),
        "sihai {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the books say once the daemon is gone: one charge per call, nothing left
/// reserved, and `sihai account verify` clean.
fn assert_each_call_charged_once(config: &Path, db: &Path, calls: usize) {
    let store = SqliteStore::open(db, Duration::from_millis(20)).expect("open the store");
    let charges = store
        .ledger("acme", None, None)
        .expect("ledger")
        .into_iter()
        .filter(|e| e.kind == EntryKind::CallCharge)
        .count();
    assert_eq!(charges, calls, "one charge per call");
    let account = store.account("acme").expect("read").expect("account");
    assert!(account.reserved.is_zero(), "{account:#?}");
    drop(store);
    sihai_ok(config, &["account", "verify"]);
}

/// The daemon's exit, which must come within `within` and be a success.
fn assert_exits_0(daemon: &mut Daemon, within: Duration) -> ExitStatus {
    let status = daemon.wait_exit(within).unwrap_or_else(|| {
        panic!(
            "still running {within:?} after SIGTERM:\n{}",
            daemon.plain_log()
        )
    });
    assert!(
        status.success(),
        "exited with {status}:\n{}",
        daemon.plain_log()
    );
    status
}

fn assert_answered_and_charged(cdrs: &[CdrRow], hangup: &str) {
    for cdr in cdrs {
        assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
        assert_eq!(cdr.hangup, hangup, "{cdr:#?}");
        assert!(
            !cdr.cost.is_empty() && cdr.cost != "0.00",
            "a billed call that talked has its cost: {cdr:#?}"
        );
    }
}

#[test]
fn sigterm_during_50_answered_calls_refuses_new_calls_then_ends_each_with_bye_and_a_cdr() {
    const CALLS: u32 = 50;
    const DRAIN: Duration = Duration::from_secs(2);
    let mut phones = Phone::start_for("uas_answer_node_hangs_up.xml", CALLS, 0, 60);
    let mut daemon = Daemon::start_with(
        "drain_timeout_s = 2",
        &billed_routing(&phones.uri("13900000001")),
    );
    let config = daemon.config_path();
    sihai_ok(
        &config,
        &["account", "recharge", "acme", "100", "--ref", "bank-1"],
    );
    // Neither side hangs up: the calls talk until the node ends them.
    let mut carrier = Caller::new(&daemon, "uac_answered_node_hangs_up.xml")
        .calls(CALLS, 25)
        .within_s(60)
        .spawn();
    daemon.wait_for_log("call answered", CALLS as usize, Duration::from_secs(30));
    let probe = UdpClient::new();
    probe.send(&options(&probe, daemon.port, "before"), daemon.addr());
    let answer = probe.recv_within(Duration::from_secs(2)).expect("answered");
    assert_eq!(status_of(&answer), Some(200), "serving: the probe passes");

    let asked = Instant::now();
    daemon.terminate();
    daemon.wait_for_log("draining:", 1, Duration::from_secs(5));
    assert!(
        daemon.plain_log().contains(&format!("calls={CALLS}")),
        "the drain says how many calls it waits for:\n{}",
        daemon.plain_log()
    );
    // A new call: 503 at once, with Retry-After, and nothing rings.
    let carrier_socket = UdpClient::new();
    let new_call = invite(
        &carrier_socket,
        daemon.port,
        "during-drain",
        "13800138000",
        "4001234567",
    );
    carrier_socket.send(&new_call, daemon.addr());
    let refusal = carrier_socket
        .recv_within(Duration::from_secs(2))
        .expect("the new call is answered");
    assert!(
        asked.elapsed() < DRAIN,
        "the drain was over before the check: this machine is too slow for the test"
    );
    assert_eq!(
        status_of(&refusal),
        Some(503),
        "{}",
        String::from_utf8_lossy(&refusal)
    );
    assert_eq!(header_of(&refusal, "Retry-After"), Some("5"));
    carrier_socket.send(&ack_for_failure(&new_call, &refusal), daemon.addr());
    // The dispatcher's probe fails, so that it sends the next calls elsewhere.
    probe.send(&options(&probe, daemon.port, "during"), daemon.addr());
    let answer = probe.recv_within(Duration::from_secs(2)).expect("answered");
    assert_eq!(status_of(&answer), Some(503));

    assert_exits_0(&mut daemon, Duration::from_secs(20));
    let took = asked.elapsed();
    assert!(
        took >= DRAIN,
        "stopped after {took:?}, before the drain time"
    );
    // The drain, the BYEs answered at once (the grace of 4 s is for peers that do not),
    // and a margin for a loaded machine.
    assert!(
        took < DRAIN + Duration::from_secs(8),
        "stopped after {took:?}"
    );
    let log = daemon.plain_log();
    assert!(
        log.contains(&format!(
            "drain time over: ending the calls left calls={CALLS}"
        )),
        "{log}"
    );
    assert!(
        log.contains("shutdown complete: no call left, every request answered"),
        "{log}"
    );
    // Both sides got their BYE (with its Reason) and answered it: each sipp checked.
    carrier.finish_with_log(Duration::from_secs(15), || log.clone());
    phones.finish_after(&log);

    let cdrs = read_cdrs(&config);
    assert_eq!(cdrs.len(), CALLS as usize, "one CDR per call: {cdrs:#?}");
    assert_answered_and_charged(&cdrs, "system shutdown");
    for cdr in &cdrs {
        assert!(
            cdr.talk_s >= 2,
            "talked until the end of the drain: {cdr:#?}"
        );
    }
    assert_each_call_charged_once(&config, &daemon.db_path(), CALLS as usize);
}

#[test]
fn calls_that_end_during_the_drain_are_recorded_as_usual_and_the_daemon_exits_after_the_last() {
    const CALLS: u32 = 10;
    let mut phones = Phone::start_for("uas_answer.xml", CALLS, 0, 60);
    // A drain far longer than the calls: the daemon must not wait it out.
    let mut daemon = Daemon::start_with(
        "drain_timeout_s = 120",
        &billed_routing(&phones.uri("13900000001")),
    );
    let config = daemon.config_path();
    sihai_ok(
        &config,
        &["account", "recharge", "acme", "100", "--ref", "bank-1"],
    );
    let mut carrier = Caller::new(&daemon, "uac_answered.xml")
        .calls(CALLS, 10)
        .talking_ms(4000)
        .within_s(60)
        .spawn();
    daemon.wait_for_log("call answered", CALLS as usize, Duration::from_secs(20));
    let asked = Instant::now();
    daemon.terminate();
    daemon.wait_for_log("draining:", 1, Duration::from_secs(5));

    // The callers hang up after their 4 s; the daemon follows the last one out.
    assert_exits_0(&mut daemon, Duration::from_secs(30));
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "exited {took:?} after SIGTERM: it waited for more than its calls"
    );
    let log = daemon.plain_log();
    assert!(log.contains("drain complete: no call left"), "{log}");
    assert!(!log.contains("ending the calls left"), "{log}");
    carrier.finish_with_log(Duration::from_secs(15), || log.clone());
    phones.finish_after(&log);

    let cdrs = read_cdrs(&config);
    assert_eq!(cdrs.len(), CALLS as usize, "{cdrs:#?}");
    assert_answered_and_charged(&cdrs, "caller BYE");
    assert_each_call_charged_once(&config, &daemon.db_path(), CALLS as usize);
}

#[test]
fn a_second_sigterm_ends_the_drain_at_once() {
    const CALLS: u32 = 5;
    let mut phones = Phone::start_for("uas_answer_node_hangs_up.xml", CALLS, 0, 60);
    let mut daemon = Daemon::start_with(
        "drain_timeout_s = 120",
        &billed_routing(&phones.uri("13900000001")),
    );
    let config = daemon.config_path();
    sihai_ok(
        &config,
        &["account", "recharge", "acme", "100", "--ref", "bank-1"],
    );
    let mut carrier = Caller::new(&daemon, "uac_answered_node_hangs_up.xml")
        .calls(CALLS, 10)
        .within_s(60)
        .spawn();
    daemon.wait_for_log("call answered", CALLS as usize, Duration::from_secs(20));
    daemon.terminate();
    daemon.wait_for_log("draining:", 1, Duration::from_secs(5));
    // The calls talk on for a while (and so have something to be charged).
    std::thread::sleep(Duration::from_secs(2));
    assert!(daemon.is_running(), "draining, not stopped");

    let again = Instant::now();
    daemon.terminate();
    assert_exits_0(&mut daemon, Duration::from_secs(20));
    let took = again.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after the second SIGTERM, with 120 s of drain left"
    );
    let log = daemon.plain_log();
    assert!(
        log.contains(&format!(
            "second shutdown request: ending the calls left calls={CALLS}"
        )),
        "{log}"
    );
    carrier.finish_with_log(Duration::from_secs(15), || log.clone());
    phones.finish_after(&log);

    let cdrs = read_cdrs(&config);
    assert_eq!(cdrs.len(), CALLS as usize, "{cdrs:#?}");
    assert_answered_and_charged(&cdrs, "system shutdown");
    assert_each_call_charged_once(&config, &daemon.db_path(), CALLS as usize);
}

#[test]
fn a_draining_node_fails_the_dispatchers_probe_and_the_next_calls_go_to_the_other_node() {
    const LATER_CALLS: u32 = 4;
    let mut answers = Phone::start_for("uas_answer.xml", 1 + LATER_CALLS, 0, 90);
    let config = routing(
        "",
        "group = \"sales\"",
        &group(
            "sales",
            "sequential",
            &[phone(&answers.uri("13900000001"), "capacity = 10")],
        ),
    );
    let node_a = Daemon::start_with("drain_timeout_s = 60", &config);
    let mut node_b = Daemon::start_with("drain_timeout_s = 60", &config);
    let mut kamailio = Kamailio::start(&[node_a.port, node_b.port]);
    let probed = Duration::from_secs(PING_INTERVAL_S + PROBE_TIMEOUT_S + 10);
    let node = |port: u16| format!("node sip:127.0.0.1:{port};transport=udp");
    kamailio.wait_for_log(&format!("{} is up", node(node_a.port)), probed);
    kamailio.wait_for_log(&format!("{} is up", node(node_b.port)), probed);

    // A call in progress on node B when it is told to stop: it talks on for 10 s.
    let mut held = Caller::new(&node_b, "uac_answered.xml")
        .talking_ms(10_000)
        .spawn();
    node_b.wait_for_log("call answered", 1, Duration::from_secs(10));
    node_b.terminate();
    node_b.wait_for_log("draining:", 1, Duration::from_secs(5));
    // The next probe gets 503: the dispatcher takes node B out of the set.
    kamailio.wait_for_log(&format!("{} is down", node(node_b.port)), probed);

    // New calls through the dispatcher: every one answered, all by node A.
    Caller::new(&node_a, "uac_answered_routed.xml")
        .through(kamailio.port)
        .calls(LATER_CALLS, 10)
        .at_most(1)
        .run();
    let on_a = node_a.wait_for_cdrs(LATER_CALLS as usize);
    assert_eq!(on_a.len(), LATER_CALLS as usize, "{on_a:#?}");
    assert!(on_a.iter().all(|r| r.outcome == "answered"), "{on_a:#?}");

    // Node B's own call ended as its caller chose, and node B followed it out.
    assert_exits_0(&mut node_b, Duration::from_secs(30));
    let log_b = node_b.plain_log();
    held.finish_with_log(Duration::from_secs(15), || log_b.clone());
    answers.finish(&node_a);
    let on_b = read_cdrs(&node_b.config_path());
    assert_eq!(on_b.len(), 1, "no new call reached node B: {on_b:#?}");
    assert_eq!(on_b[0].outcome, "answered");
    assert_eq!(on_b[0].hangup, "caller BYE");
    assert!(log_b.contains("drain complete: no call left"), "{log_b}");
}
