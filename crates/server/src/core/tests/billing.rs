//! Prepaid billing in the core, on the virtual clock: a billed call rings nobody until
//! the store admits it; a refused one is `480`, `out_of_credit`, with no phone rung; an
//! answered call is cut with BYE and `Reason` to both legs at the exact second its money
//! runs out; a voice menu's time is billed from the menu's answer. The store's side is
//! played by the test: it answers each `BillingOp::Reserve` as the store would.

use super::*;
use sihai_store::{Money, Refusal as Unfunded, ReservationOutcome};

/// `acme` billed per second at ¥0.60/min (¥0.01 a second); calls need ¥0.01 available.
pub(super) fn billed(config: &str) -> String {
    config.replace(
        "name = \"Acme\"\n",
        "name = \"Acme\"\ntariff = \"per-second\"\n[enterprise.billing]\nmin_balance = \"0.01\"\nsuspend_below = \"0\"\n",
    ) + "\n[[tariff]]\nname = \"per-second\"\nrate_per_minute = \"0.60\"\nincrement = 1\n"
}

pub(super) fn money(text: &str) -> Money {
    text.parse().unwrap()
}

/// The wall clock that goes with the virtual instants: `base` at `t0`.
pub(super) struct Clock {
    pub(super) t0: Instant,
    base: Timestamp,
}

impl Clock {
    pub(super) fn new() -> Clock {
        Clock {
            t0: Instant::now(),
            base: Timestamp::now(),
        }
    }

    pub(super) fn wall(&self, at: Instant) -> Timestamp {
        self.base + jiff::SignedDuration::try_from(at - self.t0).unwrap()
    }
}

/// The next reservation the core asks for.
pub(super) fn next_reservation(core: &mut Core) -> sihai_store::ReservationRequest {
    loop {
        match core.poll_billing().expect("a request for the store") {
            BillingOp::Reserve(request) => return request,
            BillingOp::Answered { .. } => continue,
        }
    }
}

/// Every answer the core reported to the store, by call id.
fn answers(core: &mut Core, requests: &mut Vec<sihai_store::ReservationRequest>) -> Vec<String> {
    let mut answered = Vec::new();
    while let Some(op) = core.poll_billing() {
        match op {
            BillingOp::Answered { call_id, .. } => answered.push(call_id),
            BillingOp::Reserve(request) => requests.push(request),
        }
    }
    answered
}

#[test]
fn a_billed_call_rings_nobody_until_admitted_and_is_cut_when_its_money_runs_out() {
    let mut core = core_with(&billed(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(
        t0,
        clock.wall(t0),
        Bytes::from_static(CALL.as_bytes()),
        udp_peer(),
    );
    let sent = parsed(&drain(&mut core));
    assert_eq!(statuses_to_caller(&sent), vec![100]);
    assert!(
        requests_to_phones(&sent, Method::Invite).is_empty(),
        "nothing rings before the store admits the call"
    );
    let admission = next_reservation(&mut core);
    assert_eq!(
        admission.floor,
        Some(money("0.01")),
        "admission needs the minimum"
    );
    assert_eq!(admission.want, money("3.00"), "five minutes at ¥0.60");
    assert_eq!(admission.enterprise, "acme");

    // The store has ¥0.42: forty-two seconds.
    core.on_reservation(
        t0,
        clock.wall(t0),
        &admission.call_id,
        ReservationOutcome::Granted {
            granted: money("0.42"),
            held: money("0.42"),
        },
    );
    let sent = parsed(&drain(&mut core));
    let invites = requests_to_phones(&sent, Method::Invite);
    assert_eq!(invites.len(), 1, "admitted: the phone rings");
    // The phone answers at t0 (on the virtual wall clock too).
    let answer = MessageBuilder::response_to(&invites[0], 200, "OK", Some("ph1"))
        .header(HeaderName::Contact, "<sip:phone@127.0.0.1:5080>")
        .body("application/sdp", b"v=0\r\ns=phone\r\n");
    core.handle_received(t0, clock.wall(t0), answer.wire(), phone_peer());
    let sent = parsed(&drain(&mut core));
    let ok = sent
        .iter()
        .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
        .expect("200 to the caller")
        .1
        .clone();
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    let ack = format!(
        "ACK sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKack1\r\n\
         From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>;tag={tag}\r\n\
         Call-ID: call-1@carrier\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    core.handle_received(t0, clock.wall(t0), Bytes::from(ack), udp_peer());
    let mut renewals = Vec::new();
    assert_eq!(
        answers(&mut core, &mut renewals),
        vec![admission.call_id.clone()]
    );

    // Step the clock by seconds; the renewal comes back empty; the call runs 42 s.
    let mut now = t0;
    let mut cut = None;
    while cut.is_none() && now < t0 + Duration::from_secs(60) {
        now += Duration::from_millis(100);
        core.handle_timeout(now, clock.wall(now));
        answers(&mut core, &mut renewals);
        for renewal in renewals.drain(..) {
            assert_eq!(renewal.floor, None, "a renewal takes what is left");
            core.on_reservation(
                now,
                clock.wall(now),
                &renewal.call_id,
                ReservationOutcome::Granted {
                    granted: Money::ZERO,
                    held: money("0.42"),
                },
            );
        }
        let sent = parsed(&drain(&mut core));
        let byes: Vec<&Message> = sent
            .iter()
            .filter(|(_, m)| m.method() == Some(Method::Bye))
            .map(|(_, m)| m)
            .collect();
        if !byes.is_empty() {
            assert_eq!(byes.len(), 2, "BYE to the caller and to the phone");
            for bye in byes {
                assert_eq!(
                    bye.header(HeaderName::Reason),
                    Some("Q.850;cause=16;text=\"Out of credit\"")
                );
            }
            cut = Some(now - t0);
        }
    }
    let cut = cut.expect("the call was cut");
    assert!(
        cut >= Duration::from_secs(42) && cut <= Duration::from_millis(42_100),
        "cut at {cut:?}, not at the 42nd second"
    );
    let (cdr, _) = core.poll_record().expect("the call's CDR");
    assert_eq!(
        cdr.call_id, admission.call_id,
        "the CDR settles the reservation's call"
    );
    assert_eq!(cdr.outcome, sihai_store::Outcome::OutOfCredit);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("out_of_credit"));
    assert_eq!(cdr.billed_seconds, 42);
    assert_eq!(cdr.cost, Some(money("0.42")), "never more than it held");
    assert_eq!(cdr.tariff.as_deref(), Some("per-second"));
}

#[test]
fn a_call_the_store_refuses_is_480_out_of_credit_and_rings_nobody() {
    let mut core = core_with(&billed(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(
        t0,
        clock.wall(t0),
        Bytes::from_static(CALL.as_bytes()),
        udp_peer(),
    );
    drain(&mut core);
    let admission = next_reservation(&mut core);
    core.on_reservation(
        t0,
        clock.wall(t0),
        &admission.call_id,
        ReservationOutcome::Refused(Unfunded::InsufficientBalance),
    );
    let sent = parsed(&drain(&mut core));
    assert_eq!(statuses_to_caller(&sent), vec![480]);
    assert!(requests_to_phones(&sent, Method::Invite).is_empty());
    let (cdr, alert) = core.poll_record().expect("the refused call's CDR");
    assert!(alert.is_none());
    assert_eq!(cdr.outcome, sihai_store::Outcome::OutOfCredit);
    assert_eq!(cdr.hangup_cause.as_deref(), Some("out_of_credit"));
    assert_eq!(core.active_calls(), 0);
}

#[test]
fn a_caller_who_cancels_while_the_store_decides_gets_487_and_a_cdr_under_the_call_s_id() {
    let mut core = core_with(&billed(CONFIG));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(
        t0,
        clock.wall(t0),
        Bytes::from_static(CALL.as_bytes()),
        udp_peer(),
    );
    drain(&mut core);
    let admission = next_reservation(&mut core);
    let cancel = "CANCEL sip:4001234567@127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKcall1;rport\r\n\
        From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4001234567@127.0.0.1>\r\n\
        Call-ID: call-1@carrier\r\nCSeq: 1 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    core.handle_received(
        t0,
        clock.wall(t0),
        Bytes::from_static(cancel.as_bytes()),
        udp_peer(),
    );
    let sent = parsed(&drain(&mut core));
    let mut statuses = statuses_to_caller(&sent);
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        vec![200, 487],
        "200 for the CANCEL, 487 for the INVITE"
    );
    let (cdr, _) = core.poll_record().expect("the cancelled call's CDR");
    assert_eq!(
        cdr.call_id, admission.call_id,
        "its CDR releases whatever the store reserved for it"
    );
    assert_eq!(cdr.outcome, sihai_store::Outcome::Cancelled);
    // The store's late answer finds no call and starts nothing.
    core.on_reservation(
        t0,
        clock.wall(t0),
        &admission.call_id,
        ReservationOutcome::Granted {
            granted: money("3"),
            held: money("3"),
        },
    );
    assert!(requests_to_phones(&parsed(&drain(&mut core)), Method::Invite).is_empty());
    assert_eq!(core.active_calls(), 0);
}

#[test]
fn the_voice_menu_s_time_is_billed_from_its_answer() {
    let mut core = anchored_core_with(&billed(&format!("{CONFIG}{MENU_CONFIG}")));
    let clock = Clock::new();
    let t0 = clock.t0;
    core.handle_received(t0, clock.wall(t0), menu_call(), udp_peer());
    let sent = parsed(&drain(&mut core));
    assert_eq!(
        statuses_to_caller(&sent),
        vec![100],
        "not answered before admission"
    );
    let admission = next_reservation(&mut core);
    core.on_reservation(
        t0,
        clock.wall(t0),
        &admission.call_id,
        ReservationOutcome::Granted {
            granted: money("3"),
            held: money("3"),
        },
    );
    let sent = parsed(&drain(&mut core));
    let ok = sent
        .iter()
        .find(|(p, m)| *p == udp_peer() && m.status() == Some(200))
        .expect("the menu answers the caller once admitted")
        .1
        .clone();
    let mut renewals = Vec::new();
    assert_eq!(
        answers(&mut core, &mut renewals),
        vec![admission.call_id.clone()],
        "billing starts with the menu's answer"
    );
    // The caller listens to the menu for 30 s and hangs up without choosing.
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    let t1 = t0 + Duration::from_secs(30);
    let bye = format!(
        "BYE sip:sihai@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5062;branch=z9hG4bKbye9\r\n\
         From: <sip:+8613800138000@192.0.2.7>;tag=carrier\r\nTo: <sip:4007654321@127.0.0.1>;tag={tag}\r\n\
         Call-ID: call-1@carrier\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    core.handle_received(t1, clock.wall(t1), Bytes::from(bye), udp_peer());
    drain(&mut core);
    let (cdr, _) = core.poll_record().expect("the call's CDR");
    assert_eq!(cdr.billed_seconds, 30, "{cdr:#?}");
    assert_eq!(cdr.cost, Some(money("0.30")));
}
