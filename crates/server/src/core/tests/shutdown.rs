//! Graceful shutdown in the core, on the virtual clock: during the drain new calls and
//! OPTIONS get `503` with `Retry-After` while calls in progress go on; the node stops
//! as soon as none is left and its last requests are answered; at the end of the drain
//! time (or at a second request) it ends the calls left itself, with BYE to both legs of
//! an answered call and `503` and CANCEL for a call in setup, a CDR for each; an
//! unresponsive peer delays the stop by the grace and no more.

use super::*;
use sihai_store::{HangupSide, Money, Outcome, ReservationOutcome};

const DRAIN: Duration = Duration::from_secs(30);

/// A core whose first phone takes up to ten calls at once, so that every call of a
/// test rings it.
fn roomy_core() -> Core {
    core_with(&roomy(CONFIG))
}

fn roomy(config: &str) -> String {
    config.replace(
        "ring_timeout_s = 5 }",
        "ring_timeout_s = 5, capacity = 10 }",
    )
}

/// `CALL` as the `n`th call: its own Call-ID and branch.
fn call(n: u32) -> Bytes {
    Bytes::from(
        CALL.replace("call-1@carrier", &format!("call-{n}@carrier"))
            .replace("z9hG4bKcall1", &format!("z9hG4bKcall{n}")),
    )
}

/// A request from the caller of call `n` in its dialog with us.
fn in_call(n: u32, method: &str, cseq: u32, our_tag: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{method}{n}x{cseq}\r\n\
         From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={our_tag}\r\n\
         Call-ID: call-{n}@carrier\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn options_probe(branch: &str) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bK{branch}\r\n\
         From: <sip:dispatcher@192.0.2.7>;tag=probe\r\nTo: <sip:sihai@127.0.0.1>\r\n\
         Call-ID: {branch}@dispatcher\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ))
}

/// Call `n` routed, its phone answering and the caller ACKing: the To tag we gave the
/// caller and the phone's INVITE.
fn answered_call(core: &mut Core, now: Instant, n: u32) -> (String, Message) {
    core.handle_received(now, wall(), call(n), udp_peer());
    let leg = requests_to_phones(&parsed(&drain(core)), Method::Invite).remove(0);
    phone_says(
        core,
        now,
        &leg,
        200,
        &format!("ph{n}"),
        Some("v=0\r\ns=phone\r\n"),
    );
    let ok = parsed(&drain(core))
        .into_iter()
        .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
        .expect("200 to the caller")
        .1;
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    core.handle_received(now, wall(), in_call(n, "ACK", 1, &tag), udp_peer());
    assert!(drain(core).is_empty());
    (tag, leg)
}

/// Call `n` routed and its first phone ringing (180): the phone's INVITE.
fn ringing_call(core: &mut Core, now: Instant, n: u32) -> Message {
    core.handle_received(now, wall(), call(n), udp_peer());
    let leg = requests_to_phones(&parsed(&drain(core)), Method::Invite).remove(0);
    phone_says(core, now, &leg, 180, &format!("ph{n}"), None);
    drain(core);
    leg
}

/// The caller answers our request (a BYE).
fn caller_says(core: &mut Core, now: Instant, request: &Message, status: u16) {
    let response = MessageBuilder::response_to(request, status, "OK", None).build();
    core.handle_received(now, wall(), response.wire(), udp_peer());
}

fn records(core: &mut Core) -> Vec<Cdr> {
    std::iter::from_fn(|| core.poll_record())
        .map(|(cdr, _)| cdr)
        .collect()
}

fn requests_to_caller(sent: &[(Peer, Message)], method: Method<'_>) -> Vec<Message> {
    sent.iter()
        .filter(|(p, m)| *p == udp_peer() && m.method() == Some(method))
        .map(|(_, m)| m.clone())
        .collect()
}

/// Runs the clock from `from` up to `until` in 100 ms steps (the core's own deadlines in
/// between), with everything it sends.
fn run_until(core: &mut Core, from: Instant, until: Instant) -> Vec<(Peer, Message)> {
    let mut sent = Vec::new();
    let mut now = from;
    while now < until {
        now = (now + Duration::from_millis(100)).min(until);
        core.handle_timeout(now, wall());
        sent.extend(parsed(&drain(core)));
    }
    sent
}

#[test]
fn a_new_call_during_the_drain_gets_503_with_retry_after_and_no_record() {
    let mut core = core();
    let t0 = Instant::now();
    core.shut_down(t0, wall(), DRAIN);
    assert!(core.is_draining());
    core.handle_received(t0, wall(), call(1), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert_eq!(statuses_to_caller(&sent), [503], "no 100: refused at once");
    assert_eq!(
        sent[0].1.header(HeaderName::RetryAfter),
        Some(RETRY_AFTER_S.to_string().as_str())
    );
    assert!(requests_to_phones(&sent, Method::Invite).is_empty());
    assert_eq!(core.active_calls(), 0);
    assert!(
        core.poll_record().is_none(),
        "no record: the carrier takes the call to another node, which records it"
    );
    // A retransmission gets the same answer from the transaction.
    core.handle_received(t0 + Duration::from_millis(500), wall(), call(1), udp_peer());
    assert_eq!(
        statuses_to_caller(&parsed(&drain(&mut core))),
        [503],
        "the transaction replays its 503"
    );
    // Counted once for the metrics (the retransmission is the same call).
    assert_eq!(
        core.stats
            .calls_refused_draining
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[test]
fn options_get_200_while_serving_and_503_with_retry_after_while_draining() {
    let mut core = core();
    let t0 = Instant::now();
    core.handle_received(t0, wall(), options_probe("before"), udp_peer());
    assert_eq!(statuses_to_caller(&parsed(&drain(&mut core))), [200]);
    let draining = || {
        core.publish_gauges();
        core.stats
            .draining
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(draining(), 0);
    core.shut_down(t0, wall(), DRAIN);
    core.publish_gauges();
    assert_eq!(
        core.stats
            .draining
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the metrics say the node drains"
    );
    core.handle_received(t0, wall(), options_probe("during"), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert_eq!(
        statuses_to_caller(&sent),
        [503],
        "the dispatcher's probe fails"
    );
    assert_eq!(
        sent[0].1.header(HeaderName::RetryAfter),
        Some(RETRY_AFTER_S.to_string().as_str())
    );
}

#[test]
fn with_no_call_in_progress_the_node_stops_at_the_first_request() {
    let mut core = core();
    let t0 = Instant::now();
    assert!(!core.poll_shutdown(t0, wall()), "serving: never done");
    core.shut_down(t0, wall(), DRAIN);
    assert!(core.poll_shutdown(t0, wall()), "nothing to wait for");
    assert!(drain(&mut core).is_empty());
}

#[test]
fn calls_in_progress_go_on_during_the_drain_and_the_node_stops_when_the_last_ends() {
    let mut core = roomy_core();
    let t0 = Instant::now();
    let (tag, _leg) = answered_call(&mut core, t0, 1);
    let ringing = ringing_call(&mut core, t0, 2);
    core.shut_down(t0, wall(), DRAIN);
    assert!(!core.poll_shutdown(t0, wall()));
    assert_eq!(core.calls_left(), 2);

    // In-dialog requests keep working: an INFO is relayed to the phone.
    core.handle_received(t0, wall(), in_call(1, "INFO", 2, &tag), udp_peer());
    let info = requests_to_phones(&parsed(&drain(&mut core)), Method::Info);
    assert_eq!(info.len(), 1, "relayed to the phone");
    phone_says(&mut core, t0, &info[0], 200, "ph1", None);
    assert_eq!(statuses_to_caller(&parsed(&drain(&mut core))), [200]);

    // The ringing call is answered during the drain, as it would have been.
    let t1 = t0 + Duration::from_secs(3);
    phone_says(
        &mut core,
        t1,
        &ringing,
        200,
        "ph2",
        Some("v=0\r\ns=phone\r\n"),
    );
    let sent = parsed(&drain(&mut core));
    assert!(statuses_to_caller(&sent).contains(&200));
    let tag2 = sent
        .iter()
        .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
        .and_then(|(_, m)| m.to().ok()?.tag().map(str::to_string))
        .unwrap();
    // Its caller retransmits the INVITE before its ACK: still its call, not a new one.
    core.handle_received(t1, wall(), call(2), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert!(
        !statuses_to_caller(&sent).contains(&503),
        "a call in progress is not a new call: {sent:?}"
    );
    assert_eq!(core.calls_left(), 2);
    core.handle_received(t1, wall(), in_call(2, "ACK", 1, &tag2), udp_peer());
    drain(&mut core);

    // Both callers hang up; the node waits for the phones' answers to our BYEs.
    let t2 = t0 + Duration::from_secs(10);
    core.handle_received(t2, wall(), in_call(1, "BYE", 3, &tag), udp_peer());
    core.handle_received(t2, wall(), in_call(2, "BYE", 2, &tag2), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert_eq!(statuses_to_caller(&sent), [200, 200]);
    let byes = requests_to_phones(&sent, Method::Bye);
    assert_eq!(byes.len(), 2);
    assert!(
        byes.iter().all(|b| b.header(HeaderName::Reason).is_none()),
        "ended by their callers, not by the node"
    );
    assert_eq!(core.calls_left(), 0);
    assert!(!core.poll_shutdown(t2, wall()), "the phones' 200s are due");
    phone_says(&mut core, t2, &byes[0], 200, "ph1", None);
    assert!(!core.poll_shutdown(t2, wall()));
    phone_says(&mut core, t2, &byes[1], 200, "ph2", None);
    assert!(
        core.poll_shutdown(t2, wall()),
        "done long before the drain time: nothing is left"
    );
    let cdrs = records(&mut core);
    assert_eq!(cdrs.len(), 2);
    for cdr in &cdrs {
        assert_eq!(cdr.outcome, Outcome::Answered);
        assert_eq!(cdr.hangup_side, Some(HangupSide::Caller));
        assert_eq!(cdr.hangup_cause.as_deref(), Some("BYE"));
    }
}

#[test]
fn at_the_end_of_the_drain_the_node_ends_every_call_with_bye_or_503_and_cancel() {
    let mut core = roomy_core();
    let t0 = Instant::now();
    let (tag, leg) = answered_call(&mut core, t0, 1);
    let ringing = ringing_call(&mut core, t0, 2);
    // A third call whose phone has not answered anything yet.
    core.handle_received(t0, wall(), call(3), udp_peer());
    let silent = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    // Shorter than the phones' 5 s ring timeout: the calls in setup are still ringing
    // when it is over.
    let drain_time = Duration::from_secs(3);
    core.shut_down(t0, wall(), drain_time);
    phone_says(&mut core, t0, &silent, 100, "ph3", None);
    drain(&mut core);
    let before = t0 + drain_time - Duration::from_millis(100);
    for (_, m) in run_until(&mut core, t0, before) {
        assert_ne!(
            m.method(),
            Some(Method::Bye),
            "no BYE before the drain ends"
        );
        assert_ne!(m.status(), Some(503), "no 503 before the drain ends");
    }
    assert_eq!(core.calls_left(), 3);
    assert_eq!(
        core.poll_timeout().map(|at| at <= t0 + drain_time),
        Some(true),
        "the core wakes up for the end of the drain"
    );
    let end = t0 + drain_time;
    core.handle_timeout(end, wall());
    let sent = parsed(&drain(&mut core));
    assert_eq!(core.calls_left(), 0, "every call ended");

    // The answered call: BYE to both legs, with a Reason that says why.
    let to_phone: Vec<Message> = requests_to_phones(&sent, Method::Bye);
    let to_caller = requests_to_caller(&sent, Method::Bye);
    assert_eq!(to_caller.len(), 1, "{sent:?}");
    assert_eq!(to_caller[0].from().unwrap().tag(), Some(tag.as_str()));
    let phone_bye: Vec<&Message> = to_phone
        .iter()
        .filter(|b| b.call_id() == leg.call_id())
        .collect();
    assert_eq!(phone_bye.len(), 1);
    for bye in phone_bye.iter().copied().chain(&to_caller) {
        assert_eq!(
            bye.header(HeaderName::Reason),
            Some(sihai_call::b2bua::SHUTDOWN_REASON)
        );
    }
    // The calls in setup: 503 with Retry-After to their callers, CANCEL to the phone
    // that rang (the silent one's CANCEL waits for its provisional response: it sent
    // 100, so it goes now).
    let refusals: Vec<&Message> = sent
        .iter()
        .filter(|(p, m)| *p == udp_peer() && m.status() == Some(503))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(refusals.len(), 2, "{sent:?}");
    for refusal in &refusals {
        assert_eq!(
            refusal.header(HeaderName::RetryAfter),
            Some(RETRY_AFTER_S.to_string().as_str())
        );
    }
    let cancels = requests_to_phones(&sent, Method::Cancel);
    let mut cancelled: Vec<&str> = cancels.iter().map(|c| c.call_id().unwrap()).collect();
    cancelled.sort_unstable();
    let mut expected = vec![ringing.call_id().unwrap(), silent.call_id().unwrap()];
    expected.sort_unstable();
    assert_eq!(cancelled, expected);

    // A CDR for each call, saying the node ended it.
    let mut cdrs = records(&mut core);
    cdrs.sort_by_key(|c| c.outcome != Outcome::Answered);
    assert_eq!(cdrs.len(), 3);
    assert_eq!(cdrs[0].outcome, Outcome::Answered);
    assert_eq!(cdrs[0].talk_seconds, 3);
    for cdr in &cdrs {
        assert_eq!(cdr.hangup_side, Some(HangupSide::System), "{cdr:?}");
        assert_eq!(cdr.hangup_cause.as_deref(), Some("shutdown"), "{cdr:?}");
    }
    for cdr in &cdrs[1..] {
        assert_eq!(cdr.outcome, Outcome::Failed, "{cdr:?}");
        assert_eq!(cdr.attempts[0].result, "cancelled");
    }

    // The node waits for the answers to its BYEs and CANCELs, and no longer.
    assert!(!core.poll_shutdown(end, wall()));
    caller_says(&mut core, end, &to_caller[0], 200);
    phone_says(&mut core, end, phone_bye[0], 200, "ph1", None);
    for cancel in &cancels {
        phone_says(&mut core, end, cancel, 200, "x", None);
    }
    assert!(
        !core.poll_shutdown(end, wall()),
        "the cancelled INVITEs still wait for their 487"
    );
    phone_says(&mut core, end, &ringing, 487, "ph2", None);
    phone_says(&mut core, end, &silent, 487, "ph3", None);
    assert!(core.poll_shutdown(end, wall()), "every request answered");
}

#[test]
fn a_second_request_ends_the_drain_at_once() {
    let mut core = core();
    let t0 = Instant::now();
    let (_tag, leg) = answered_call(&mut core, t0, 1);
    core.shut_down(t0, wall(), DRAIN);
    let t1 = t0 + Duration::from_secs(2);
    core.handle_timeout(t1, wall());
    assert!(drain(&mut core).is_empty(), "still draining");
    core.shut_down(t1, wall(), DRAIN);
    let sent = parsed(&drain(&mut core));
    let phone_bye = requests_to_phones(&sent, Method::Bye);
    let caller_bye = requests_to_caller(&sent, Method::Bye);
    assert_eq!((phone_bye.len(), caller_bye.len()), (1, 1));
    assert_eq!(phone_bye[0].call_id(), leg.call_id());
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.talk_seconds, 2);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("shutdown"));
    phone_says(&mut core, t1, &phone_bye[0], 200, "ph1", None);
    caller_says(&mut core, t1, &caller_bye[0], 200);
    assert!(core.poll_shutdown(t1, wall()));
}

#[test]
fn no_drain_time_ends_the_calls_at_the_first_request() {
    let mut core = core();
    let t0 = Instant::now();
    answered_call(&mut core, t0, 1);
    core.shut_down(t0, wall(), Duration::ZERO);
    let sent = parsed(&drain(&mut core));
    assert_eq!(requests_to_phones(&sent, Method::Bye).len(), 1);
    assert_eq!(requests_to_caller(&sent, Method::Bye).len(), 1);
    assert_eq!(core.calls_left(), 0);
}

#[test]
fn an_unresponsive_peer_delays_the_stop_by_the_grace_and_no_more() {
    let mut core = core();
    let t0 = Instant::now();
    answered_call(&mut core, t0, 1);
    core.shut_down(t0, wall(), DRAIN);
    core.shut_down(t0, wall(), DRAIN);
    let first = parsed(&drain(&mut core));
    assert_eq!(first.len(), 2, "two BYEs: {first:?}");
    // Nobody answers: the BYEs are retransmitted (Timer E) until the grace is over.
    let grace_end = t0 + HANG_UP_GRACE;
    let mut retransmitted = 0;
    let mut now = t0;
    while now < grace_end {
        assert!(!core.poll_shutdown(now, wall()), "stopped early at {now:?}");
        now = core.poll_timeout().expect("a timer").min(grace_end);
        core.handle_timeout(now, wall());
        retransmitted += drain(&mut core).len();
    }
    assert!(
        core.poll_shutdown(grace_end, wall()),
        "stopped at the grace"
    );
    // 0.5, 1.5 and 3.5 s for each of the two BYEs.
    assert_eq!(retransmitted, 6);
    assert_eq!(
        core.poll_timeout().map(|at| at > grace_end),
        Some(true),
        "what is left are the transactions' own timers, not the shutdown's"
    );
}

#[test]
fn a_third_request_stops_waiting_for_the_last_answers() {
    let mut core = core();
    let t0 = Instant::now();
    answered_call(&mut core, t0, 1);
    core.shut_down(t0, wall(), DRAIN);
    core.shut_down(t0, wall(), DRAIN);
    drain(&mut core);
    let t1 = t0 + Duration::from_millis(200);
    assert!(!core.poll_shutdown(t1, wall()));
    core.shut_down(t1, wall(), DRAIN);
    assert!(core.poll_shutdown(t1, wall()));
}

#[test]
fn a_call_answered_by_the_voice_menu_gets_a_bye_and_its_ringing_phone_a_cancel() {
    let mut core = menu_core();
    let (tag, caller_port, mut now) = answered_by_menu(&mut core);
    let mut heard = Vec::new();
    listen(&mut core, &mut now, 200, &mut heard);
    let mut seq = 100;
    press(&mut core, now, caller_port, &mut seq, '1');
    let sent = listen(&mut core, &mut now, 40, &mut heard);
    let invite = requests_to_phones(&sent, Method::Invite).remove(0);
    phone_says(&mut core, now, &invite, 180, "sales", None);
    drain(&mut core);
    core.shut_down(now, wall(), Duration::ZERO);
    let sent = parsed(&drain(&mut core));
    let bye = requests_to_caller(&sent, Method::Bye);
    assert_eq!(bye.len(), 1, "the menu's dialog ends with a BYE: {sent:?}");
    assert_eq!(bye[0].from().unwrap().tag(), Some(tag.as_str()));
    assert!(
        !statuses_to_caller(&sent).contains(&503),
        "the caller was answered: no final response"
    );
    assert_eq!(requests_to_phones(&sent, Method::Cancel).len(), 1);
    let (cdr, _) = core.poll_record().expect("a CDR");
    assert_eq!(cdr.outcome, Outcome::Failed);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("shutdown"));
    assert_eq!(cdr.menu_path.as_deref(), Some("1"));
    assert_eq!(
        core.media_ports_available(),
        Some(5),
        "ports back in the pool"
    );
}

#[test]
fn a_billed_call_ended_by_the_node_is_settled_with_its_cdr() {
    use super::billing::{Clock, billed, money, next_reservation};
    let mut core = core_with(&billed(&roomy(CONFIG)));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), call(1), udp_peer());
    drain(&mut core);
    let admission = next_reservation(&mut core);
    core.on_reservation(
        t0,
        clock.wall(t0),
        &admission.call_id,
        ReservationOutcome::Granted {
            granted: money("3.00"),
            held: money("3.00"),
        },
    );
    let leg = requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).remove(0);
    // The phone answers at t0 on the virtual wall clock too.
    let answer = MessageBuilder::response_to(&leg, 200, "OK", Some("ph1"))
        .header(HeaderName::Contact, "<sip:phone@127.0.0.1:5080>")
        .body("application/sdp", b"v=0\r\ns=phone\r\n");
    core.handle_received(t0, clock.wall(t0), answer.wire(), phone_peer());
    drain(&mut core);
    // A second billed call is still waiting for the store when the node stops.
    core.handle_received(t0, clock.wall(t0), call(2), udp_peer());
    drain(&mut core);
    let waiting = next_reservation(&mut core);
    assert_eq!(
        core.calls_left(),
        2,
        "the call waiting for admission counts"
    );

    let end = t0 + Duration::from_secs(12);
    core.shut_down(end, clock.wall(end), Duration::ZERO);
    let sent = parsed(&drain(&mut core));
    assert_eq!(requests_to_phones(&sent, Method::Bye).len(), 1);
    assert_eq!(requests_to_caller(&sent, Method::Bye).len(), 1);
    assert_eq!(
        statuses_to_caller(&sent),
        [503],
        "the waiting call is refused"
    );
    let mut cdrs = records(&mut core);
    cdrs.sort_by_key(|c| c.outcome != Outcome::Answered);
    assert_eq!(cdrs.len(), 2);
    let answered = &cdrs[0];
    assert_eq!(
        answered.call_id, admission.call_id,
        "settles its reservation"
    );
    assert_eq!(answered.billed_seconds, 12);
    assert_eq!(answered.cost, Some(money("0.12")));
    assert_eq!(answered.hangup_cause.as_deref(), Some("shutdown"));
    let refused = &cdrs[1];
    assert_eq!(
        refused.call_id, waiting.call_id,
        "releases whatever the store reserved for it"
    );
    assert_eq!(refused.outcome, Outcome::Failed);
    assert_eq!(refused.cost, None::<Money>);
    assert_eq!(refused.hangup_side, Some(HangupSide::System));
    assert_eq!(refused.hangup_cause.as_deref(), Some("shutdown"));
    // The store's late answer for it changes nothing.
    core.on_reservation(
        end,
        clock.wall(end),
        &waiting.call_id,
        ReservationOutcome::Granted {
            granted: money("3.00"),
            held: money("3.00"),
        },
    );
    assert!(requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).is_empty());
}
