//! Who gets through, driven end to end: the daemon screens each carrier call against the
//! plan (whitelist, blocked provinces and cities, anonymous callers) and the number's
//! limits (calls at once, calls per second) before any phone rings. sipp plays the
//! carrier and the phones; every refusal is checked by its status code at the caller,
//! by what the phones saw, and by the CDR an operator reads with `sihai cdr`.
//!
//! The callers' regions come from the real numbering data in `sihai-region`; each test
//! first checks that its callers are where the test says, so that a change of data
//! fails here, not as a puzzling routing result.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sihai_region::RegionTable;
use support::routing::{group, only_cdr, phone, routing, routing_with_number};
use support::{Caller, Daemon, Phone, UdpClient, ack_for_failure, free_port, invite, status_of};

/// (province, city) of `number` in the numbering data the daemon embeds.
fn region(number: &str) -> (&'static str, &'static str) {
    RegionTable::embedded()
        .lookup(number)
        .map(|r| (r.province, r.city))
        .unwrap_or_else(|| panic!("{number} has no region"))
}

const BEIJING_MOBILE: &str = "13800138000";
const GUANGZHOU_LANDLINE: &str = "02012345678";
const SHENZHEN_LANDLINE: &str = "075512345678";
const CHANGZHOU_MOBILE: &str = "13912341234";

#[test]
fn the_test_callers_are_where_the_tests_say() {
    assert_eq!(region(BEIJING_MOBILE), ("北京", "北京"));
    assert_eq!(region(GUANGZHOU_LANDLINE), ("广东", "广州"));
    assert_eq!(region(SHENZHEN_LANDLINE), ("广东", "深圳"));
    assert_eq!(region(CHANGZHOU_MOBILE), ("江苏", "常州"));
}

/// The plan's `group` "sales" rings one sipp phone that answers `answered` calls.
fn daemon_with_one_phone(plan_screening: &str, answered: u32) -> (Daemon, Phone) {
    let answers = Phone::start("uas_answer.xml", answered, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            &format!("group = \"sales\"\n{plan_screening}"),
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "capacity = 10")],
            ),
        ),
    );
    (daemon, answers)
}

/// The CDR of the call from `caller`.
fn cdr_from(rows: &[support::CdrRow], caller: &str) -> support::CdrRow {
    rows.iter()
        .find(|r| r.caller == caller)
        .unwrap_or_else(|| panic!("no CDR from {caller}: {rows:#?}"))
        .clone()
}

// ------------------------------------------------------------------ lists and regions

#[test]
fn whitelist_lets_only_listed_callers_through() {
    // The exact number and a prefix; everyone else, and callers without a number, are
    // refused before any phone rings (the phone's sipp expects exactly two calls).
    let (daemon, mut answers) =
        daemon_with_one_phone(&format!("whitelist = [\"{BEIJING_MOBILE}\", \"0755*\"]"), 2);
    Caller::new(&daemon, "uac_answered.xml")
        .caller(BEIJING_MOBILE)
        .run();
    Caller::new(&daemon, "uac_answered.xml")
        .caller(SHENZHEN_LANDLINE)
        .run();
    Caller::refused(&daemon, 603).caller(CHANGZHOU_MOBILE).run();
    Caller::refused(&daemon, 603).caller("anonymous").run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(4);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for caller in [BEIJING_MOBILE, SHENZHEN_LANDLINE] {
        let cdr = cdr_from(&rows, caller);
        assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
        assert_eq!(cdr.answered_by, answers.uri("13900000001"), "{cdr:#?}");
    }
    for caller in [CHANGZHOU_MOBILE, "anonymous"] {
        let cdr = cdr_from(&rows, caller);
        assert_eq!(cdr.outcome, "blacklisted", "{cdr:#?}");
        assert_eq!(cdr.hangup, "system 603", "{cdr:#?}");
        assert_eq!(cdr.attempts, "", "no phone rings: {cdr:#?}");
    }
}

#[test]
fn callers_from_a_blocked_province_are_declined() {
    let (daemon, mut answers) = daemon_with_one_phone("block_provinces = [\"广东\"]", 1);
    // Both Guangdong cities are refused, Beijing is not.
    Caller::refused(&daemon, 603)
        .caller(GUANGZHOU_LANDLINE)
        .run();
    Caller::refused(&daemon, 603)
        .caller(SHENZHEN_LANDLINE)
        .run();
    Caller::new(&daemon, "uac_answered.xml")
        .caller(BEIJING_MOBILE)
        .run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for (caller, place) in [
        (GUANGZHOU_LANDLINE, "广东 广州"),
        (SHENZHEN_LANDLINE, "广东 深圳"),
    ] {
        let cdr = cdr_from(&rows, caller);
        assert_eq!(cdr.region, place, "{cdr:#?}");
        assert_eq!(cdr.outcome, "blacklisted", "{cdr:#?}");
        assert_eq!(cdr.hangup, "system 603", "{cdr:#?}");
        assert_eq!(cdr.attempts, "", "{cdr:#?}");
    }
    assert_eq!(cdr_from(&rows, BEIJING_MOBILE).outcome, "answered");
}

#[test]
fn callers_from_a_blocked_city_are_declined_and_the_rest_of_its_province_is_not() {
    let (daemon, mut answers) = daemon_with_one_phone("block_cities = [\"深圳\"]", 1);
    Caller::refused(&daemon, 603)
        .caller(SHENZHEN_LANDLINE)
        .run();
    // Guangzhou is in the same province, and gets through.
    Caller::new(&daemon, "uac_answered.xml")
        .caller(GUANGZHOU_LANDLINE)
        .run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let refused = cdr_from(&rows, SHENZHEN_LANDLINE);
    assert_eq!(refused.region, "广东 深圳", "{refused:#?}");
    assert_eq!(refused.outcome, "blacklisted", "{refused:#?}");
    assert_eq!(refused.hangup, "system 603", "{refused:#?}");
    let through = cdr_from(&rows, GUANGZHOU_LANDLINE);
    assert_eq!(through.outcome, "answered", "{through:#?}");
    assert_eq!(through.answered_by, answers.uri("13900000001"));
}

#[test]
fn a_blacklist_prefix_declines_every_number_it_starts() {
    // "170*": every number of the 170 segment (virtual operators), and only those.
    let (daemon, mut answers) = daemon_with_one_phone("blacklist = [\"170*\"]", 1);
    Caller::refused(&daemon, 603).caller("17012345678").run();
    Caller::refused(&daemon, 603).caller("17099999999").run();
    Caller::new(&daemon, "uac_answered.xml")
        .caller("17112345678")
        .run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for caller in ["17012345678", "17099999999"] {
        let cdr = cdr_from(&rows, caller);
        assert_eq!(cdr.outcome, "blacklisted", "{cdr:#?}");
        assert_eq!(cdr.hangup, "system 603", "{cdr:#?}");
    }
    assert_eq!(cdr_from(&rows, "17112345678").outcome, "answered");
}

#[test]
fn a_number_written_with_dashes_is_reached_by_its_digits() {
    // "400-765-4321" in the file, dialled as the carrier sends it: 4007654321.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &format!(
                "{}\n[[number]]\nnumber = \"400-765-4321\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n",
                group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")],
                )
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml")
        .dialling("4007654321")
        .run();
    answers.finish(&daemon);
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.number, "4007654321", "{cdr:#?}");
    assert_eq!(cdr.outcome, "answered", "{cdr:#?}");
}

// ------------------------------------------------------------------ anonymous callers

#[test]
fn anonymous_callers_are_refused_with_433_anonymity_disallowed() {
    let (daemon, mut answers) = daemon_with_one_phone("reject_anonymous = true", 1);
    // Withheld the way trunks signal it: Privacy: id, the number only for the network.
    let run = Caller::refused_withholding_identity(&daemon, 433)
        .caller(BEIJING_MOBILE)
        .run();
    assert!(
        run.messages.contains("SIP/2.0 433 Anonymity Disallowed"),
        "RFC 5079's reason phrase:\n{}",
        run.messages
    );
    // [sip] user_agent names the server in its responses.
    assert!(
        run.messages.contains("Server: sihai-test"),
        "{}",
        run.messages
    );
    // No number at all: the From user says so.
    Caller::refused(&daemon, 433).caller("anonymous").run();
    // A caller who shows their number still gets through.
    Caller::new(&daemon, "uac_answered.xml")
        .caller(BEIJING_MOBILE)
        .run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let refused: Vec<_> = rows.iter().filter(|r| r.caller == "anonymous").collect();
    assert_eq!(refused.len(), 2, "both withheld calls: {rows:#?}");
    for cdr in refused {
        assert_eq!(cdr.outcome, "blacklisted", "{cdr:#?}");
        assert_eq!(cdr.hangup, "system 433", "{cdr:#?}");
        assert_eq!(cdr.region, "", "a withheld number has no region: {cdr:#?}");
        assert_eq!(cdr.attempts, "", "{cdr:#?}");
    }
    assert_eq!(cdr_from(&rows, BEIJING_MOBILE).outcome, "answered");
}

#[test]
fn anonymous_callers_get_through_when_the_plan_allows_them() {
    // reject_anonymous defaults to false.
    let (daemon, mut answers) = daemon_with_one_phone("", 1);
    Caller::new(&daemon, "uac_answered.xml")
        .caller("anonymous")
        .run();
    answers.finish(&daemon);
    let seen = answers.messages();
    let invite = &seen[seen.find("INVITE sip:").expect("the phone got an INVITE")..];
    let invite = &invite[..invite.find("\r\n\r\n").unwrap_or(invite.len())];
    assert!(
        invite.contains("From: <sip:anonymous@") || invite.contains("From: \"Anonymous\""),
        "the phone is not shown a number: {invite}"
    );
    // [sip] user_agent names sihai in the requests it originates.
    assert!(invite.contains("User-Agent: sihai-test"), "{invite}");
    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.caller, "anonymous");
    assert_eq!(cdr.outcome, "answered");
}

// ------------------------------------------------------------------ the number's limits

#[test]
fn a_suspended_number_is_refused_with_480_and_rings_nobody() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    // The same enterprise and plan, with a second number that is suspended (in
    // arrears): its calls are refused, the active number's still ring.
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &format!(
                "{}\n[[number]]\nnumber = \"4007654321\"\nenterprise = \"acme\"\nstatus = \"suspended\"\nplan = \"main\"\n",
                group(
                    "sales",
                    "sequential",
                    &[phone(&answers.uri("13900000001"), "")],
                )
            ),
        ),
    );
    Caller::refused(&daemon, 480).dialling("4007654321").run();
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let suspended = rows
        .iter()
        .find(|r| r.number == "4007654321")
        .unwrap_or_else(|| panic!("{rows:#?}"));
    assert_eq!(suspended.outcome, "rejected", "{suspended:#?}");
    assert_eq!(suspended.hangup, "system 480", "{suspended:#?}");
    assert_eq!(suspended.attempts, "", "{suspended:#?}");
    assert!(
        rows.iter()
            .any(|r| r.number == "4001234567" && r.outcome == "answered")
    );
}

#[test]
fn max_concurrent_refuses_the_call_over_the_limit_with_486() {
    let mut answers = Phone::start("uas_answer.xml", 2, 0);
    let daemon = Daemon::start_with(
        "",
        &routing_with_number(
            free_port(),
            "",
            "max_concurrent = 1",
            "group = \"sales\"",
            // The phone could take ten calls: only the number's limit refuses.
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "capacity = 10")],
            ),
        ),
    );
    let mut first = Caller::new(&daemon, "uac_answered.xml")
        .caller(BEIJING_MOBILE)
        .talking_ms(4000)
        .spawn();
    wait_until_answered(&answers, &daemon);
    // While the first call talks, a second is one too many.
    Caller::refused(&daemon, 486)
        .caller(GUANGZHOU_LANDLINE)
        .run();
    first.finish(Duration::from_secs(30), &daemon);
    // The first call's end gave its place back.
    Caller::new(&daemon, "uac_answered.xml")
        .caller(SHENZHEN_LANDLINE)
        .run();
    answers.finish(&daemon);

    let rows = daemon.wait_for_cdrs(3);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let refused = cdr_from(&rows, GUANGZHOU_LANDLINE);
    assert_eq!(refused.outcome, "busy", "{refused:#?}");
    assert_eq!(refused.hangup, "system 486", "{refused:#?}");
    assert_eq!(refused.attempts, "", "refused before any phone rang");
    for caller in [BEIJING_MOBILE, SHENZHEN_LANDLINE] {
        assert_eq!(cdr_from(&rows, caller).outcome, "answered", "{rows:#?}");
    }
}

/// Waits (up to 10 s) until the phone has answered a call: its sipp received the ACK.
fn wait_until_answered(phone: &Phone, daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !phone.messages().contains("ACK sip:") {
        assert!(
            Instant::now() < deadline,
            "the phone answered no call within 10 s:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn max_cps_refuses_calls_over_the_rate_with_503() {
    // The admitted calls ring a phone that is busy, so each ends at once with 486 and
    // a CDR that shows it rang; a call refused for the rate rings nobody.
    let mut busy = Phone::start("uas_busy.xml", 3, 0);
    let daemon = Daemon::start_with(
        "",
        &routing_with_number(
            free_port(),
            "",
            "max_cps = 2",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[phone(&busy.uri("13900000001"), "capacity = 10")],
            ),
        ),
    );
    let client = UdpClient::new();
    // Five INVITEs within a millisecond or so: a one-second burst of 2 is admitted,
    // the other three are over the rate.
    let first = send_invites(&client, &daemon, "burst", 5);
    let statuses = final_statuses(&client, &daemon, &first);
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [486, 486, 503, 503, 503],
        "finals {statuses:?}:\n{}",
        daemon.log_text()
    );
    // A second and a half later the bucket has refilled: the next call is admitted.
    std::thread::sleep(Duration::from_millis(1500));
    let later = send_invites(&client, &daemon, "later", 1);
    assert_eq!(final_statuses(&client, &daemon, &later), [486]);
    busy.finish(&daemon);

    let rows = daemon.wait_for_cdrs(6);
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let over: Vec<_> = rows.iter().filter(|r| r.hangup == "system 503").collect();
    assert_eq!(over.len(), 3, "{rows:#?}");
    assert!(
        over.iter()
            .all(|r| r.outcome == "rejected" && r.attempts.is_empty()),
        "{over:#?}"
    );
    let rang = rows.iter().filter(|r| !r.attempts.is_empty()).count();
    assert_eq!(rang, 3, "the admitted calls rang the phone: {rows:#?}");
}

/// Sends `count` INVITEs to 4001234567 back to back, Call-IDs `<stem>-<i>`; returns them.
fn send_invites(client: &UdpClient, daemon: &Daemon, stem: &str, count: usize) -> Vec<Vec<u8>> {
    let to: SocketAddr = daemon.addr();
    (0..count)
        .map(|i| {
            let request = invite(
                client,
                daemon.port,
                &format!("{stem}-{i}"),
                BEIJING_MOBILE,
                "4001234567",
            );
            client.send(&request, to);
            request
        })
        .collect()
}

/// The final status of each INVITE in `invites`, in their order (ACKing each), within
/// 10 s; retransmissions are counted once.
fn final_statuses(client: &UdpClient, daemon: &Daemon, invites: &[Vec<u8>]) -> Vec<u16> {
    let call_id = |m: &[u8]| support::header_of(m, "Call-ID").map(str::to_string);
    let mut finals: Vec<Option<u16>> = vec![None; invites.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    while finals.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "finals after 10 s: {finals:?}\n{}",
            daemon.log_text()
        );
        let Some(response) = client.recv_within(Duration::from_millis(200)) else {
            continue;
        };
        let Some(status) = status_of(&response).filter(|s| *s >= 200) else {
            continue;
        };
        let Some(i) = invites
            .iter()
            .position(|r| call_id(r) == call_id(&response))
        else {
            continue;
        };
        client.send(&ack_for_failure(&invites[i], &response), daemon.addr());
        finals[i].get_or_insert(status);
    }
    finals.into_iter().map(|s| s.expect("final")).collect()
}
