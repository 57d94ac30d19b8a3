//! Whole calls through the real daemon on 127.0.0.1: sipp plays the carrier (UAC) and
//! each bound phone (one UAS per phone, on its own port, started before the call), and
//! every test checks what the call left in the store with `sihai cdr` as an operator
//! would. A phone's sipp must see exactly the calls the test expects it to get and
//! exit 0; so must the caller's.

mod support;

use std::time::{Duration, Instant};

use support::routing::{attempts, group, nobody, only_cdr, phone, routing, routing_via};
use support::rtp::{caller_invite, is_request, respond, sdp, wait_for};
use support::webhook::Webhook;
use support::{
    Caller, CdrRow, Daemon, Phone, UdpClient, header_of, invite, read_cdrs, status_of,
    wait_for_cdrs,
};

// ------------------------------------------------------------------ hunting

#[test]
fn sequential_hunt_fails_over_from_a_busy_phone_to_the_next() {
    let mut busy = Phone::start("uas_busy.xml", 1, 0);
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&busy.uri("13900000001"), ""),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    busy.finish(&daemon);
    answers.finish(&daemon);

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.number, "4001234567");
    assert_eq!(cdr.caller, "13800138000");
    assert_eq!(cdr.region, "北京");
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.answered_by, answers.uri("13900000002"));
    assert_eq!(
        cdr.attempts,
        attempts(&[
            (&busy, "13900000001", "486"),
            (&answers, "13900000002", "answered")
        ])
    );
    assert_eq!(cdr.hangup, "caller BYE");
}

#[test]
fn silent_phone_is_cancelled_after_its_ring_timeout_and_the_next_answers() {
    let mut silent = Phone::start("uas_ring_cancelled.xml", 1, 0);
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&silent.uri("13900000001"), "ring_timeout_s = 2"),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    let started = Instant::now();
    Caller::new(&daemon, "uac_answered.xml").run();
    let took = started.elapsed();
    silent.finish(&daemon);
    answers.finish(&daemon);
    assert!(
        took >= Duration::from_secs(2),
        "the first phone rang its 2 s first, yet the call took {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "the hunt moved on late: {took:?}"
    );

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.answered_by, answers.uri("13900000002"));
    assert_eq!(
        cdr.attempts,
        attempts(&[
            (&silent, "13900000001", "no_answer"),
            (&answers, "13900000002", "answered")
        ])
    );
    assert!(
        cdr.ring < cdr.answer,
        "rang at {}, answered at {}",
        cdr.ring,
        cdr.answer
    );
}

#[test]
fn simultaneous_ring_first_answer_wins_and_the_other_phone_is_cancelled() {
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let mut rings = Phone::start("uas_ring_cancelled.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "simultaneous",
                &[
                    phone(&rings.uri("13900000001"), ""),
                    phone(&answers.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    answers.finish(&daemon);
    rings.finish(&daemon);

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.answered_by, answers.uri("13900000002"));
    let mut tried: Vec<&str> = cdr.attempts.split(", ").collect();
    tried.sort_unstable();
    let mut expected = [
        format!("{}:answered", answers.uri("13900000002")),
        format!("{}:cancelled", rings.uri("13900000001")),
    ];
    expected.sort_unstable();
    assert_eq!(tried, expected, "{cdr:#?}");
}

#[test]
fn round_robin_spreads_calls_evenly() {
    let mut phones: Vec<Phone> = (0..3)
        .map(|_| Phone::start("uas_answer.xml", 3, 0))
        .collect();
    let users = ["13900000001", "13900000002", "13900000003"];
    let list: Vec<String> = phones
        .iter()
        .zip(users)
        .map(|(p, u)| phone(&p.uri(u), ""))
        .collect();
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group("sales", "round_robin", &list),
        ),
    );
    // One call after the other, so no phone is ever busy and skipped.
    Caller::new(&daemon, "uac_answered.xml")
        .calls(9, 20)
        .at_most(1)
        .run();
    let answered_by: Vec<String> = phones.iter().zip(users).map(|(p, u)| p.uri(u)).collect();
    for p in &mut phones {
        // Each exits 0 only after exactly its 3 calls.
        p.finish(&daemon);
    }

    let rows = daemon.wait_for_cdrs(9);
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r.outcome == "answered"), "{rows:#?}");
    for uri in &answered_by {
        let n = rows.iter().filter(|r| &r.answered_by == uri).count();
        assert_eq!(n, 3, "{uri} answered {n} of 9 calls: {rows:#?}");
    }
}

#[test]
fn phone_at_capacity_is_skipped_for_the_next_one() {
    let mut first = Phone::start("uas_answer.xml", 1, 0);
    let mut second = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[
                    phone(&first.uri("13900000001"), "capacity = 1"),
                    phone(&second.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    // Two calls 0.5 s apart, each talking 3 s: the second arrives while the first
    // phone, capacity 1, still holds the first.
    Caller::new(&daemon, "uac_answered.xml")
        .calls(2, 2)
        .at_most(2)
        .talking_ms(3000)
        .run();
    first.finish(&daemon);
    second.finish(&daemon);

    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2);
    let by = |uri: String| {
        rows.iter()
            .find(|r| r.answered_by == uri)
            .unwrap_or_else(|| panic!("no call answered by {uri}: {rows:#?}"))
            .clone()
    };
    let held = by(first.uri("13900000001"));
    let skipped = by(second.uri("13900000002"));
    assert_eq!(
        held.attempts,
        attempts(&[(&first, "13900000001", "answered")])
    );
    assert_eq!(
        skipped.attempts,
        attempts(&[
            (&second, "13900000002", "answered"),
            (&first, "13900000001", "at_capacity")
        ]),
        "the busy first phone is not rung, only recorded as at capacity"
    );
    assert_eq!(
        first.messages().matches("INVITE sip:").count(),
        1,
        "the first phone got one INVITE only"
    );
    assert!(held.talk_s >= 3 && skipped.talk_s >= 3, "{rows:#?}");
}

// ------------------------------------------------------------------ call control

#[test]
fn caller_cancel_while_ringing_cancels_every_ringing_phone() {
    let mut first = Phone::start("uas_ring_cancelled.xml", 1, 0);
    let mut second = Phone::start("uas_ring_cancelled.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "simultaneous",
                &[
                    phone(&first.uri("13900000001"), ""),
                    phone(&second.uri("13900000002"), ""),
                ],
            ),
        ),
    );
    // The caller gets 200 for its CANCEL and 487 for its INVITE; each phone gets CANCEL
    // (its sipp exits 0 only after CANCEL, its 487 and the ACK for that).
    Caller::new(&daemon, "uac_cancel.xml").run();
    first.finish(&daemon);
    second.finish(&daemon);

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "cancelled");
    assert_eq!(cdr.hangup, "caller CANCEL");
    assert_eq!(cdr.answered_by, "");
    assert_eq!(cdr.talk_s, 0);
    assert_eq!(
        cdr.attempts,
        attempts(&[
            (&first, "13900000001", "cancelled"),
            (&second, "13900000002", "cancelled")
        ])
    );
}

#[test]
fn a_call_from_a_tcp_trunk_reaches_a_udp_phone_and_both_legs_end() {
    let mut answers = Phone::start("uas_answer.xml", 2, 0);
    let daemon = Daemon::start_with(
        "",
        &routing_via(
            answers.port,
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &["{ number = \"13900000001\" }".into()],
            ),
        ),
    );
    // Two calls one after the other over the same TCP connection.
    Caller::new(&daemon, "uac_answered.xml")
        .over_tcp()
        .calls(2, 2)
        .at_most(1)
        .talking_ms(200)
        .run();
    answers.finish(&daemon);
    let cdrs = daemon.wait_for_cdrs(2);
    assert!(
        cdrs.iter()
            .all(|c| c.outcome == "answered" && c.hangup == "caller BYE"),
        "{cdrs:?}"
    );
}

#[test]
fn bye_from_the_caller_ends_both_legs() {
    // A phone given by number, called through the trunk's gateway.
    let mut answers = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing_via(
            answers.port,
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &["{ number = \"13900000001\" }".into()],
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml")
        .talking_ms(2000)
        .run();
    // The phone's sipp exits 0 only once sihai relayed the BYE to it.
    answers.finish(&daemon);
    let seen = answers.messages();
    let invite = &seen[seen.find("INVITE sip:").expect("the phone got an INVITE")..];
    let invite = &invite[..invite.find("\r\n\r\n").unwrap_or(invite.len())];
    assert!(
        invite.starts_with(&format!("INVITE {} SIP/2.0", answers.uri("13900000001"))),
        "{invite}"
    );
    for shown in [
        "From: <sip:13800138000@",
        "P-Asserted-Identity: <sip:13800138000@",
        "Diversion: <sip:4001234567@",
    ] {
        assert!(
            invite.contains(shown),
            "the phone sees the caller and the dialled number: {shown} not in\n{invite}"
        );
    }

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.answered_by, "13900000001");
    assert_eq!(cdr.hangup, "caller BYE");
    assert!(
        cdr.talk_s >= 2,
        "talked {} s, the caller paused 2 s",
        cdr.talk_s
    );
    assert!(cdr.talk_s < 10, "talked {} s", cdr.talk_s);
}

#[test]
fn bye_from_the_phone_ends_both_legs() {
    let mut hangs_up = Phone::start("uas_answer_hang_up.xml", 1, 2000);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[phone(&hangs_up.uri("13900000001"), "")],
            ),
        ),
    );
    // The caller's sipp exits 0 only once it got sihai's BYE and answered it.
    Caller::new(&daemon, "uac_phone_hangs_up.xml").run();
    hangs_up.finish(&daemon);

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.hangup, "phone BYE");
    assert!(
        cdr.talk_s >= 2,
        "talked {} s, the phone paused 2 s",
        cdr.talk_s
    );
    assert!(cdr.talk_s < 10, "talked {} s", cdr.talk_s);
}

// ------------------------------------------------------------------ screening and schedule

#[test]
fn blacklisted_caller_is_declined_with_603() {
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nblacklist = [\"13900000000\", \"170*\"]",
            &group("sales", "sequential", &[nobody()]),
        ),
    );
    Caller::refused(&daemon, 603).caller("13900000000").run();

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.caller, "13900000000");
    assert_eq!(cdr.outcome, "blacklisted");
    assert_eq!(cdr.hangup, "system 603");
    assert_eq!(cdr.attempts, "", "no phone rings for a blacklisted caller");
}

/// A schedule with no opening hours at all: every call is after hours.
const NEVER_OPEN: &str = "[[schedule]]\nname = \"closed\"\n";

#[test]
fn after_hours_call_rings_the_after_hours_group() {
    let mut on_duty = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nschedule = \"closed\"\nafter_hours = \"duty\"",
            &format!(
                "{}\n{}\n{NEVER_OPEN}",
                group("sales", "sequential", &[nobody()]),
                group(
                    "duty",
                    "sequential",
                    &[phone(&on_duty.uri("13900000041"), "")]
                ),
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml").run();
    on_duty.finish(&daemon);

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.answered_by, on_duty.uri("13900000041"));
}

#[test]
fn after_hours_without_a_group_is_refused_with_480_and_a_missed_call_webhook() {
    let webhook = Webhook::start();
    let daemon = Daemon::start_with(
        "",
        &routing(
            &format!(
                "alert_webhook = \"http://127.0.0.1:{}/missed\"",
                webhook.port
            ),
            "group = \"sales\"\nschedule = \"closed\"",
            &format!(
                "{}\n{NEVER_OPEN}",
                group("sales", "sequential", &[nobody()])
            ),
        ),
    );
    Caller::refused(&daemon, 480).run();

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.outcome, "after_hours");
    assert_eq!(cdr.attempts, "");

    let (request_line, body) = webhook
        .bodies
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no missed-call webhook within 10 s:\n{}", daemon.log_text()));
    assert_eq!(request_line, "POST /missed HTTP/1.1");
    for field in [
        "\"event\":\"missed_call\"",
        "\"enterprise\":\"acme\"",
        "\"number\":\"4001234567\"",
        "\"caller\":\"13800138000\"",
        "\"outcome\":\"after_hours\"",
    ] {
        assert!(body.contains(field), "{field} missing from {body}");
    }
}

#[test]
fn callers_reach_their_own_region_group() {
    let mut beijing = Phone::start("uas_answer.xml", 1, 0);
    let mut shanghai = Phone::start("uas_answer.xml", 1, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"\nregions = [\n  { provinces = [\"北京\"], group = \"bj\" },\n  { cities = [\"上海\"], group = \"sh\" },\n]",
            &format!(
                "{}\n{}\n{}",
                group("sales", "sequential", &[nobody()]),
                group(
                    "bj",
                    "sequential",
                    &[phone(&beijing.uri("13900000011"), "")]
                ),
                group(
                    "sh",
                    "sequential",
                    &[phone(&shanghai.uri("13900000021"), "")]
                ),
            ),
        ),
    );
    // A Beijing mobile (号段 1380013, as a carrier may write it) and a Shanghai
    // landline (area code 021).
    Caller::new(&daemon, "uac_answered.xml")
        .caller("+8613800138000")
        .run();
    Caller::new(&daemon, "uac_answered.xml")
        .caller("02112345678")
        .run();
    beijing.finish(&daemon);
    shanghai.finish(&daemon);

    let rows = daemon.wait_for_cdrs(2);
    assert_eq!(rows.len(), 2);
    let of = |caller: &str| {
        rows.iter()
            .find(|r| r.caller == caller)
            .unwrap_or_else(|| panic!("no CDR from {caller}: {rows:#?}"))
    };
    assert_eq!(of("13800138000").region, "北京");
    assert_eq!(of("13800138000").answered_by, beijing.uri("13900000011"));
    assert_eq!(of("02112345678").region, "上海");
    assert_eq!(of("02112345678").answered_by, shanghai.uri("13900000021"));
}

#[test]
fn unknown_number_gets_404() {
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group("sales", "sequential", &[nobody()]),
        ),
    );
    Caller::refused(&daemon, 404).dialling("4009999999").run();

    let cdr = only_cdr(&daemon);
    assert_eq!(cdr.number, "4009999999");
    assert_eq!(cdr.outcome, "rejected");
    assert_eq!(cdr.hangup, "system 404");
}

#[test]
fn untrusted_source_gets_403_and_leaves_no_cdr() {
    if let Err(err) = std::net::UdpSocket::bind("127.0.0.2:0") {
        panic!("127.0.0.2 is not usable on this machine's loopback: {err}");
    }
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group("sales", "sequential", &[nobody()]),
        ),
    );
    // The trunk allows 127.0.0.1 only.
    Caller::refused(&daemon, 403)
        .source_address("127.0.0.2")
        .run();
    // A call that does leave a CDR, from the trunk: once its CDR is there, a CDR for
    // the refused one would be too.
    Caller::refused(&daemon, 404).dialling("4009999999").run();
    let rows = daemon.wait_for_cdrs(1);
    assert_eq!(
        rows.len(),
        1,
        "only the trunk's call is recorded: {rows:#?}"
    );
    assert_eq!(rows[0].number, "4009999999");
}

// ------------------------------------------------------------------ operations

#[test]
fn reload_during_load_drops_no_call() {
    const CALLS: usize = 150;
    // The load's calls, and one to the number the reloads add.
    let mut answers = Phone::start("uas_answer.xml", CALLS as u32 + 1, 0);
    let sales = group(
        "sales",
        "sequential",
        &[phone(&answers.uri("13900000001"), "capacity = 100")],
    );
    let base = routing("", "group = \"sales\"", &sales);
    let daemon = Daemon::start_with("", &base);
    let extra_number = "\n[[number]]\nnumber = \"4007654321\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"main\"\n";
    let with_extra = format!("{base}{extra_number}");
    let broken = format!(
        "{base}\n[[number]]\nnumber = \"4007654321\"\nenterprise = \"acme\"\nstatus = \"active\"\nplan = \"no-such-plan\"\n"
    );

    // `sihai cdr` reads the store the configuration names, and refuses a broken file
    // as the daemon does: read through a copy of the first one.
    let reader = daemon.dir.path().join("cdr-reader.toml");
    std::fs::copy(daemon.config_path(), &reader).expect("copy config");

    let mut load = Caller::new(&daemon, "uac_answered.xml")
        .calls(CALLS as u32, 30)
        .spawn();
    // Reload at points spread over the run, paced by the calls recorded so far.
    let mut reloads = 0;
    for (after_calls, text, valid) in [
        (15, &with_extra, true),
        (35, &base, true),
        (55, &with_extra, true),
        (75, &base, true),
        (95, &broken, false),
        (115, &with_extra, true),
    ] {
        wait_for_cdrs(&reader, after_calls);
        daemon.rewrite_routing("", text);
        daemon.hangup();
        // (The daemon also reloads when it sees the file change; only SIGHUP counts here.)
        if valid {
            reloads += 1;
            daemon.wait_for_log(
                "configuration reloaded trigger=\"SIGHUP\"",
                reloads,
                Duration::from_secs(5),
            );
        } else {
            daemon.wait_for_log(
                "configuration rejected; the running configuration stays trigger=\"SIGHUP\"",
                1,
                Duration::from_secs(5),
            );
        }
    }
    load.finish(Duration::from_secs(60), &daemon);
    // The last reload took effect: the number it added answers.
    Caller::new(&daemon, "uac_answered.xml")
        .dialling("4007654321")
        .run();
    answers.finish(&daemon);

    let rows = wait_for_cdrs(&reader, CALLS + 1);
    assert_eq!(rows.len(), CALLS + 1);
    let failed: Vec<&CdrRow> = rows.iter().filter(|r| r.outcome != "answered").collect();
    assert!(
        failed.is_empty(),
        "calls failed during reloads: {failed:#?}"
    );
    assert_eq!(rows.iter().filter(|r| r.number == "4007654321").count(), 1);
    let log = daemon.plain_log();
    assert!(
        log.contains("number[1].plan: no [[plan]] with name \"no-such-plan\""),
        "the rejection names the problem:\n{log}"
    );
}

#[test]
fn cdrs_survive_sigkill_right_after_the_calls() {
    const CALLS: usize = 20;
    let mut answers = Phone::start("uas_answer.xml", CALLS as u32, 0);
    let daemon = Daemon::start_with(
        "",
        &routing(
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &[phone(&answers.uri("13900000001"), "capacity = 30")],
            ),
        ),
    );
    Caller::new(&daemon, "uac_answered.xml")
        .calls(CALLS as u32, 20)
        .run();
    let config = daemon.config_path();
    let (dir, log) = daemon.kill9();
    answers.finish_after(&log);

    // The daemon is gone: what the store has now is all it will ever have.
    let rows = read_cdrs(&config);
    drop(dir);
    assert_eq!(rows.len(), CALLS, "CDRs lost to SIGKILL:\n{rows:#?}\n{log}");
    assert!(rows.iter().all(|r| r.outcome == "answered"), "{rows:#?}");
}

#[test]
fn the_bye_is_answered_once_the_cdr_is_committed_within_the_commit_interval() {
    // commit_interval_ms = 1500: an idle store commits a CDR at once, then at most once
    // per interval, and a call's last final response waits for its CDR's commit. A
    // refused call commits at once; the answered call hung up right after it has its
    // CDR committed, and its BYE answered, an interval later, not sooner (the tests'
    // usual 20 ms would answer at once) and not much later. Killed the moment the 200
    // arrives, the daemon has both CDRs on disk.
    const INTERVAL: Duration = Duration::from_millis(1500);
    let phone_sip = UdpClient::new();
    let daemon = Daemon::start_committing_every(
        INTERVAL.as_millis() as u32,
        "",
        &routing_via(
            phone_sip.port(),
            "",
            "group = \"sales\"",
            &group(
                "sales",
                "sequential",
                &["{ number = \"13900000001\" }".to_string()],
            ),
        ),
    );

    // The call to be hung up: answered by the hand-written phone.
    let caller = UdpClient::new();
    let offer = sdp(40_000, "0", "a=rtpmap:0 PCMU/8000\r\n");
    caller.send(
        &caller_invite(
            &caller,
            daemon.port,
            "durable-answered",
            "4001234567",
            &offer,
        ),
        daemon.addr(),
    );
    let phone_invite = wait_for(&phone_sip, "INVITE to the phone", |m| {
        is_request(m, "INVITE")
    });
    let answer = sdp(40_002, "0", "a=rtpmap:0 PCMU/8000\r\n");
    phone_sip.send(
        &respond(&phone_invite, 200, "OK", Some(&answer), phone_sip.port()),
        daemon.addr(),
    );
    let ok = wait_for(&caller, "200 to the caller", |m| {
        status_of(m) == Some(200) && header_of(m, "CSeq") == Some("1 INVITE")
    });
    let to = header_of(&ok, "To").expect("To of the 200").to_string();
    let contact = header_of(&ok, "Contact")
        .and_then(|c| c.split('<').nth(1))
        .and_then(|c| c.split('>').next())
        .expect("Contact of the 200")
        .to_string();
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} {contact} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{cport};branch=z9hG4bKdurable-{method}\r\n\
             From: <sip:13800138000@127.0.0.1>;tag=carrier\r\nTo: {to}\r\n\
             Call-ID: durable-answered@test\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n",
            cport = caller.port()
        )
        .into_bytes()
    };
    caller.send(&in_dialog("ACK", 1), daemon.addr());
    wait_for(&phone_sip, "ACK to the phone", |m| is_request(m, "ACK"));

    // A refused call (nobody owns the number): its CDR is the first the store commits,
    // at once.
    let refused = UdpClient::new();
    let sent = Instant::now();
    refused.send(
        &invite(
            &refused,
            daemon.port,
            "durable-refused",
            "13800138001",
            "4009999999",
        ),
        daemon.addr(),
    );
    wait_for(&refused, "404", |m| status_of(m) == Some(404));
    let committed = Instant::now();
    assert!(
        committed - sent < Duration::from_millis(1000),
        "an idle store commits at once, but the 404 took {:?}",
        committed - sent
    );

    // Hang up at once: the CDR waits for the next commit, an interval after the last.
    caller.send(&in_dialog("BYE", 2), daemon.addr());
    let bye = wait_for(&phone_sip, "BYE to the phone", |m| is_request(m, "BYE"));
    phone_sip.send(
        &respond(&bye, 200, "OK", None, phone_sip.port()),
        daemon.addr(),
    );
    let deadline = Instant::now() + INTERVAL + Duration::from_secs(3);
    let answered_bye = loop {
        let m = caller.recv_within(Duration::from_millis(50));
        if m.as_deref()
            .is_some_and(|m| status_of(m) == Some(200) && header_of(m, "CSeq") == Some("2 BYE"))
        {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no 200 for the BYE within the commit interval and 3 s:\n{}",
            daemon.log_text()
        );
    };
    let config = daemon.config_path();
    let (dir, log) = daemon.kill9();
    let waited = answered_bye - committed;
    assert!(
        waited >= INTERVAL - Duration::from_millis(300),
        "the BYE was answered {waited:?} after the last commit: before the CDR's commit, \
         due an interval (1.5 s) after it"
    );

    let rows = read_cdrs(&config);
    drop(dir);
    assert_eq!(rows.len(), 2, "CDRs lost to SIGKILL:\n{rows:#?}\n{log}");
    let hung_up = rows
        .iter()
        .find(|r| r.number == "4001234567")
        .unwrap_or_else(|| panic!("the answered call's CDR is not on disk: {rows:#?}"));
    assert_eq!(hung_up.outcome, "answered", "{rows:#?}");
}

// ------------------------------------------------------------------ webhook receiver
